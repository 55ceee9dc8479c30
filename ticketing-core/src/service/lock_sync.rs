//! Mirroring committed order changes into the seat lock from the outbox.
//!
//! After a payment, refund, cancel or expiry commits, the service updates the seat lock in a
//! separate call. If the process dies between the two, or the lock fails right then, the lock
//! misses the change: a refunded seat stays *sold* for good, a paid seat shows held and then
//! free. The outbox holds every committed change durably, so publishing it to a
//! [`SeatLockSync`] (through the [`OutboxRelay`](super::OutboxRelay), at least once, in order)
//! repairs whatever the direct update missed.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};

use crate::Result;
use crate::domain::OutboxEntry;
use crate::ports::EventSink;

use super::catalog::EventCache;
use super::holds::mirror_order;
use super::{Backends, ServiceConfig};

/// Orders of a batch read from the repository at once. A few, not many: a relay catching up
/// must never take the database connections the purchases need (the example server's pool has
/// 16), and four reads at a time already remove most of the wait.
const READS_IN_FLIGHT: usize = 4;

/// Orders mirrored into the seat lock at once. One after another, the reads and lock calls were
/// the relay's whole round: it published 400 entries a second while a sustained sale wrote 940,
/// so the outbox could never be pruned.
const LOCK_UPDATES_IN_FLIGHT: usize = 16;

/// An [`EventSink`] that makes the seat lock show each published order as the repository has it
/// now. It reads every order again instead of replaying the event, so duplicates, replays and
/// batches that overlap direct updates all converge to the same state.
///
/// A batch's orders are read four at a time, then mirrored in two waves, 16 at a time within
/// each: first the orders that are over (their seats and places released), then the live ones
/// (re-held, and marked sold if paid). The order within a wave does not matter: the live orders'
/// current states never compete with each other (the repository keeps one active ticket per
/// seat and each zone within its capacity), so once the orders that are over have let go, every
/// live order can be re-held in any order, as the repository already holds it.
pub struct SeatLockSync {
    backends: Backends,
    config: ServiceConfig,
    events: EventCache,
}

impl SeatLockSync {
    /// A sink over the service's adapters (the same repository and seat lock).
    pub fn new(backends: Backends, config: ServiceConfig) -> Self {
        Self {
            backends,
            config,
            events: EventCache::default(),
        }
    }
}

#[async_trait]
impl EventSink for SeatLockSync {
    /// The lock keeps no sequence numbers, so it cannot tell a loss; a lost lock is rebuilt
    /// from the repository instead (`NotLoaded`).
    async fn high_water_mark(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    async fn publish(&self, entries: &[OutboxEntry]) -> Result<()> {
        // Each order once per batch: its current state already includes all its changes.
        let mut seen = HashSet::new();
        let orders: Vec<_> = entries
            .iter()
            .filter(|e| seen.insert(e.event.order_id))
            .map(|e| (e.event.event_id, e.event.order_id))
            .collect();
        let tickets = &self.backends.tickets;
        let read: Vec<_> = stream::iter(orders)
            .map(|(event, id)| async move { Ok((event, tickets.order(id).await?)) })
            .buffered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let (over, live): (Vec<_>, Vec<_>) = read
            .into_iter()
            .filter_map(|(event, order)| Some((event, order?)))
            .partition(|(_, order)| order.status.is_terminal());
        let now = self.backends.now();
        for wave in [over, live] {
            stream::iter(wave)
                .map(|(event, order)| async move {
                    let info = self.events.get(&*self.backends.catalog, event).await?;
                    let (lock, grace) = (&*self.backends.seat_lock, self.config.grace());
                    mirror_order(lock, &order, &info.capacities, grace, now).await
                })
                .buffer_unordered(LOCK_UPDATES_IN_FLIGHT)
                .try_collect::<Vec<()>>()
                .await?;
        }
        Ok(())
    }
}

/// Publishes every batch to several sinks in turn (e.g. the Redis stream and [`SeatLockSync`]),
/// so one relay and one outbox cursor feed them all. A failure of any sink fails the batch, and
/// the relay publishes it again to all of them; every sink must therefore be idempotent, as the
/// [`EventSink`] contract asks.
pub struct FanOutSink {
    sinks: Vec<Arc<dyn EventSink>>,
}

impl FanOutSink {
    /// A sink publishing to `sinks`, in this order.
    pub fn new(sinks: Vec<Arc<dyn EventSink>>) -> Self {
        Self { sinks }
    }
}

#[async_trait]
impl EventSink for FanOutSink {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<()> {
        for sink in &self.sinks {
            sink.publish(entries).await?;
        }
        Ok(())
    }

    /// The lowest mark among the sinks that can tell, so that a sink that lost data makes the
    /// relay republish to all.
    async fn high_water_mark(&self) -> Result<Option<u64>> {
        let mut lowest: Option<u64> = None;
        for sink in &self.sinks {
            if let Some(mark) = sink.high_water_mark().await? {
                lowest = Some(lowest.map_or(mark, |l| l.min(mark)));
            }
        }
        Ok(lowest)
    }
}
