//! Write batching for `insert_order` (`crate::flows::purchase::Purchase::insert_order`): concurrent purchases
//! coalesce into one READ COMMITTED transaction with multi-row statements, so a stampede pays one
//! commit (one redo-log flush) per batch instead of one per order.
//!
//! Per-order atomicity is kept by *excluding culprits and retrying*: a batch either commits whole,
//! or rolls back and runs again without the orders that broke a rule (a seat with an active
//! ticket, a full general-admission zone, a customer over the limit, a duplicate idempotency key).
//! Each excluded order then runs alone on the unbatched path, which gives it its exact answer
//! (`SeatsTaken` naming the seats, `SoldOut`, `LimitExceeded`, `DuplicateKey`, or success when the
//! conflict has vanished meanwhile). The other orders of the batch commit; none of them ever sees
//! another order's failure. An order that uses a voucher, has tickets in a zone with price
//! tiers, or is of a sales channel never joins a batch: it runs alone from the start, where the
//! voucher's conditional counter update, the tiers' shards and the channel's check decide it.
//!
//! One batch transaction:
//! 0. the rows of `channel_seats` of the batch's seats, in share mode: the orders with a seat
//!    still kept for a channel leave the batch (and are refused alone);
//! 1. per general-admission zone (in key order), the batch's places from the zone's shards
//!    ([`zone_capacity::take`](super::zone_capacity::take));
//! 2. `INSERT INTO tickets … VALUES (…), (…)` — the unique active-seat key is invariant 1;
//! 3. `INSERT INTO idempotency_keys … VALUES …` for the orders that carry a key;
//! 4. `customer_usage`: one upsert adding each key's sum, then the new values are compared with
//!    the limit (the rows stay locked until COMMIT, so they are the ones committed). When the
//!    upsert created every row (a flash sale's buyers are new to the event), the new values are
//!    the sums themselves; otherwise one read fetches them;
//! 5. `INSERT INTO orders … VALUES …`;
//! 6. the outbox rows, without numbers (they are numbered after the commit).
//!
//! The parts: [`collector`] cuts batches from the queue, [`connections`] keeps the connections
//! they are written on, [`write`](mod@write) runs a batch's rounds and answers its callers, [`transaction`]
//! is the one multi-row transaction, [`customer_limit`] its invariant-6 step, and [`culprits`]
//! finds the orders a rolled-back batch must leave out.

mod collector;
mod connections;
mod culprits;
mod customer_limit;
mod transaction;
mod write;

use std::sync::OnceLock;
use std::time::Duration;

use sqlx::{MySql, MySqlPool};

use ticketing_core::ports::{InsertOutcome, NewOrder};
use ticketing_core::{Error, Result};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::purchase;
use crate::flows::purchase::Purchase;

/// Most tickets in one batch: 15 placeholders each keeps the ticket insert far below the
/// protocol's 65,535 placeholders per statement.
const MAX_BATCH_TICKETS: usize = 2_000;

/// How often a batch runs again without its culprits before the rest goes the unbatched way.
const MAX_ROUNDS: u32 = 4;

/// Queued orders per in-flight batch slot before callers wait to enqueue (back-pressure).
const QUEUE_PER_SLOT: usize = 256;

/// How long the batch writer keeps its connections without a batch before it hands them back
/// to the pool.
const IDLE_RETURN: Duration = Duration::from_millis(100);

/// How [`MySqlTicketRepository::with_batching`](super::MySqlTicketRepository::with_batching)
/// groups concurrent `insert_order` calls.
///
/// A batch is cut when it has `max_orders` orders (or 2,000 tickets), or `max_wait` after its
/// first order arrived, whichever comes first; at most `max_in_flight` batches write at once,
/// and while they do, new orders queue up for the next one. So under a stampede batches fill
/// by themselves, and a lone caller waits at most `max_wait` more than without batching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most orders in one transaction (at least 1).
    pub max_orders: usize,
    /// Longest a queued order waits for companions once a batch slot is free.
    pub max_wait: Duration,
    /// Batches writing at the same time (at least 1), each on its own pooled connection.
    pub max_in_flight: usize,
}

impl Default for BatchConfig {
    /// 64 orders, 1 ms, 2 batches in flight: measured on a 2-core MariaDB host, where it keeps
    /// a flash sale's inserts at several thousand orders per commit-second.
    fn default() -> Self {
        Self {
            max_orders: 64,
            max_wait: Duration::from_millis(1),
            max_in_flight: 2,
        }
    }
}

/// One queued `insert_order` call.
struct Pending {
    order: NewOrder,
    arrived: Instant,
    reply: oneshot::Sender<Result<InsertOutcome>>,
}

/// The front of the batching path: a queue to a collector task, started on first use (so the
/// repository can be built outside a Tokio runtime).
pub(super) struct Batcher {
    pool: MySqlPool,
    config: BatchConfig,
    queue: OnceLock<mpsc::Sender<Pending>>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Batcher {
    pub(super) fn new(pool: MySqlPool, config: BatchConfig) -> Self {
        let config = BatchConfig {
            max_orders: config.max_orders.max(1),
            max_wait: config.max_wait,
            max_in_flight: config.max_in_flight.max(1),
        };
        Self {
            pool,
            config,
            queue: OnceLock::new(),
        }
    }

    pub(super) fn config(&self) -> BatchConfig {
        self.config
    }

    /// Queues `new` for the next batch and waits for its own answer.
    ///
    /// Once queued, the order is written even if the caller stops waiting (as an unbatched
    /// insert whose COMMIT was already sent would be): the seat lock's hold and the payment
    /// deadline then take care of it like any unpaid order.
    pub(super) async fn insert(&self, new: &NewOrder) -> Result<InsertOutcome> {
        purchase::check(new)?;
        if new.order.tickets.len() >= MAX_BATCH_TICKETS {
            return Ok(MySql::insert_order(&self.pool, new).await?);
        }
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE_PER_SLOT * self.config.max_in_flight);
            tokio::spawn(collector::collect(self.pool.clone(), self.config, receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            order: new.clone(),
            arrived: Instant::now(),
            reply,
        };
        if queue.send(pending).await.is_err() {
            // The collector is gone (its runtime shut down): write this order alone.
            return Ok(MySql::insert_order(&self.pool, new).await?);
        }
        answer.await.unwrap_or_else(|_| {
            Err(Error::unavailable(
                crate::ADAPTER,
                "the batch writer stopped before answering; the order may or may not be stored",
            ))
        })
    }
}
