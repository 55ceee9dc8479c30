//! Write batching for [`insert_order`](super::purchase::insert_order): concurrent purchases
//! coalesce into one READ COMMITTED transaction with multi-row statements, so a stampede pays one
//! commit (one redo-log flush) per batch instead of one per order.
//!
//! Per-order atomicity is kept by *excluding culprits and retrying*: a batch either commits whole,
//! or rolls back and runs again without the orders that broke a rule (a seat with an active
//! ticket, a full general-admission zone, a customer over the limit, a duplicate idempotency key).
//! Each excluded order then runs alone on the unbatched path, which gives it its exact answer
//! (`SeatsTaken` naming the seats, `SoldOut`, `LimitExceeded`, `DuplicateKey`, or success when the
//! conflict has vanished meanwhile). The other orders of the batch commit; none of them ever sees
//! another order's failure.
//!
//! One batch transaction:
//! 1. per general-admission zone (in key order), the batch's places from the zone's shards
//!    ([`zone_capacity::take`]);
//! 2. `INSERT INTO tickets … VALUES (…), (…)` — the unique active-seat key is invariant 1;
//! 3. `INSERT INTO idempotency_keys … VALUES …` for the orders that carry a key;
//! 4. `customer_usage`: one upsert adding each key's sum, then the new values are compared with
//!    the limit (the rows stay locked until COMMIT, so they are the ones committed). When the
//!    upsert created every row (a flash sale's buyers are new to the event), the new values are
//!    the sums themselves; otherwise one read fetches them;
//! 5. `INSERT INTO orders … VALUES …`;
//! 6. the outbox rows, without numbers (they are numbered after the commit).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, MySql, MySqlConnection, MySqlPool, Row};
use ticketing_core::domain::{
    EventId, OutboxEvent, OutboxKind, SeatRef, Ticket, TicketId, TicketStatus, ZoneCode,
};
use ticketing_core::ports::{InsertOutcome, NewOrder};
use ticketing_core::{Error, Result};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{purchase, sql, zone_capacity};
use crate::codec::{expand, markers, value_rows};
use crate::error::{StoreResult, code, message, number};
use crate::outbox;
use crate::pool::BEGIN_READ_COMMITTED;
use crate::retry::with_retry;

/// Most tickets in one batch: 14 placeholders each keeps the ticket insert far below the
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
            return Ok(purchase::insert_order(&self.pool, new).await?);
        }
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE_PER_SLOT * self.config.max_in_flight);
            tokio::spawn(collect(self.pool.clone(), self.config, receiver));
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
            return Ok(purchase::insert_order(&self.pool, new).await?);
        }
        answer.await.unwrap_or_else(|_| {
            Err(Error::unavailable(
                crate::ADAPTER,
                "the batch writer stopped before answering; the order may or may not be stored",
            ))
        })
    }
}

/// The connections batches are written on, kept from one batch to the next (at most one per
/// in-flight slot): each keeps its prepared multi-row statements. Drawn from the pool at random
/// instead, a connection would prepare them again, which with a 64-connection pool made a large
/// share of a short sale's statements. Handed back to the pool after [`IDLE_RETURN`] without
/// batches, so the pool can close.
struct Connections {
    pool: MySqlPool,
    kept: Mutex<Vec<PoolConnection<MySql>>>,
    keep: usize,
}

impl Connections {
    async fn take(&self) -> sqlx::Result<PoolConnection<MySql>> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match kept {
            Some(conn) => Ok(conn),
            None => self.pool.acquire().await,
        }
    }

    /// Keeps `conn` for the next batch; call it only with a connection outside any transaction.
    fn put(&self, conn: PoolConnection<MySql>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < self.keep && !self.pool.is_closed() {
            kept.push(conn);
        }
    }

    fn release(&self) {
        let kept = std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()));
        drop(kept);
    }
}

/// The collector: cuts batches from the queue and writes up to `max_in_flight` at once.
async fn collect(pool: MySqlPool, config: BatchConfig, mut queue: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(config.max_in_flight));
    let conns = Arc::new(Connections {
        pool: pool.clone(),
        kept: Mutex::new(Vec::new()),
        keep: config.max_in_flight,
    });
    loop {
        let first = match tokio::time::timeout(IDLE_RETURN, queue.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => break,
            Err(_) => {
                // No batch for a while: hand the kept connections back. With no batch being
                // written, none can be kept again until the next order arrives, so wait for it.
                let quiet = slots.available_permits() == config.max_in_flight;
                conns.release();
                if !quiet {
                    continue;
                }
                match queue.recv().await {
                    Some(first) => first,
                    None => break,
                }
            }
        };
        // Wait for a free slot first: orders arriving meanwhile join this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let deadline = first.arrived + config.max_wait;
        let mut tickets = first.order.order.tickets.len();
        let mut batch = vec![first];
        while batch.len() < config.max_orders && tickets < MAX_BATCH_TICKETS {
            let next = match queue.try_recv() {
                Ok(pending) => Some(pending),
                Err(TryRecvError::Empty) => tokio::time::timeout_at(deadline, queue.recv())
                    .await
                    .ok()
                    .flatten(),
                Err(TryRecvError::Disconnected) => None,
            };
            let Some(pending) = next else { break };
            tickets += pending.order.order.tickets.len();
            batch.push(pending);
        }
        let pool = pool.clone();
        let conns = conns.clone();
        tokio::spawn(async move {
            write(&pool, &conns, batch).await;
            drop(slot);
        });
    }
    conns.release();
}

/// What one attempt at a batch transaction ended with, when no statement failed unexpectedly.
enum Attempt {
    /// Every order of the batch is committed.
    Committed,
    /// Rolled back: these orders (indexes into the batch) broke a rule. Empty when the conflict
    /// vanished before it could be attributed.
    Culprits(Vec<usize>),
}

/// Writes a batch and answers every caller in it.
async fn write(pool: &MySqlPool, conns: &Connections, batch: Vec<Pending>) {
    let (mut members, mut alone) = separate_overlaps(batch);
    let mut rounds = 0;
    while !members.is_empty() {
        let orders: Vec<&NewOrder> = members.iter().map(|p| &p.order).collect();
        let attempt = with_retry("insert_order_batch", || write_once(pool, conns, &orders)).await;
        match attempt {
            Ok(Attempt::Committed) => {
                for pending in members.drain(..) {
                    let _ = pending.reply.send(Ok(InsertOutcome::Inserted));
                }
            }
            Ok(Attempt::Culprits(culprits)) if rounds < MAX_ROUNDS => {
                rounds += 1;
                let culprits: HashSet<usize> = culprits.into_iter().collect();
                let (out, stay): (Vec<_>, Vec<_>) = members
                    .drain(..)
                    .enumerate()
                    .partition(|(i, _)| culprits.contains(i));
                alone.extend(out.into_iter().map(|(_, p)| p));
                members = stay.into_iter().map(|(_, p)| p).collect();
            }
            Ok(Attempt::Culprits(_)) => alone.append(&mut members),
            Err(error) => {
                // Not attributable to one order (connection lost, retries exhausted, a bug):
                // every order gets its own answer from the unbatched path.
                tracing::debug!(
                    ?error,
                    orders = members.len(),
                    "batch failed; writing its orders alone"
                );
                alone.append(&mut members);
            }
        }
    }
    let mut singles = JoinSet::new();
    for pending in alone {
        let pool = pool.clone();
        singles.spawn(async move {
            let result = purchase::insert_order(&pool, &pending.order)
                .await
                .map_err(Error::from);
            let _ = pending.reply.send(result);
        });
    }
    while singles.join_next().await.is_some() {}
}

/// Splits off orders that overlap an earlier order of the same batch (a seat, an idempotency
/// key or an order id): they cannot both commit, and running them alone afterwards gives the
/// later one its exact answer.
fn separate_overlaps(batch: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let mut seats: HashSet<(EventId, &SeatRef)> = HashSet::new();
    let mut keys = HashSet::new();
    let mut ids = HashSet::new();
    let mut overlapping = vec![false; batch.len()];
    for (i, pending) in batch.iter().enumerate() {
        let order = &pending.order.order;
        let seat_clash = order
            .tickets
            .iter()
            .filter_map(|t| t.seat.as_ref())
            .any(|s| seats.contains(&(order.event_id, s)));
        let key = pending
            .order
            .idempotency
            .as_ref()
            .map(|r| (r.customer.as_str(), r.key.as_str()));
        let key_clash = key.is_some_and(|k| keys.contains(&k));
        if seat_clash || key_clash || ids.contains(&order.id) {
            overlapping[i] = true;
            continue;
        }
        seats.extend(
            order
                .tickets
                .iter()
                .filter_map(|t| t.seat.as_ref())
                .map(|s| (order.event_id, s)),
        );
        keys.extend(key);
        ids.insert(order.id);
    }
    let mut members = Vec::with_capacity(batch.len());
    let mut alone = Vec::new();
    for (pending, overlaps) in batch.into_iter().zip(overlapping) {
        if overlaps {
            alone.push(pending);
        } else {
            members.push(pending);
        }
    }
    (members, alone)
}

/// One attempt at the whole batch in one transaction, on a kept connection.
async fn write_once(
    pool: &MySqlPool,
    conns: &Connections,
    orders: &[&NewOrder],
) -> StoreResult<Attempt> {
    let mut conn = conns.take().await?;
    let attempt = write_on(&mut conn, pool, orders).await;
    if attempt.is_ok() {
        // Committed or rolled back: the connection is outside any transaction. After an error
        // it goes back to the pool instead, which rolls back or closes it.
        conns.put(conn);
    }
    attempt
}

async fn write_on(
    conn: &mut MySqlConnection,
    pool: &MySqlPool,
    orders: &[&NewOrder],
) -> StoreResult<Attempt> {
    let mut tx = conn.begin_with(BEGIN_READ_COMMITTED).await?;

    // 1. Invariant 2: each general-admission zone's places for the whole batch, from shards with
    //    room (zones in key order).
    let shards = match take_places(&mut tx, orders).await? {
        Ok(shards) => shards,
        Err(culprits) => {
            tx.rollback().await?;
            return Ok(Attempt::Culprits(culprits));
        }
    };

    // 2. Tickets of all orders, in seat order (competing batches meet on the key in one order).
    let mut tickets: Vec<&Ticket> = orders.iter().flat_map(|o| &o.order.tickets).collect();
    tickets.sort_by(|a, b| (a.event_id, &a.seat, a.id).cmp(&(b.event_id, &b.seat, b.id)));
    let placed: Vec<_> = tickets
        .iter()
        .map(|t| (*t, shards.get(&t.id).copied()))
        .collect();
    if let Err(e) = purchase::insert_tickets(&mut tx, &placed).await {
        if number(&e) == Some(code::DUPLICATE_KEY) && message(&e).contains(sql::ACTIVE_SEAT_KEY) {
            tx.rollback().await?;
            return Ok(Attempt::Culprits(taken_seat_orders(pool, orders).await?));
        }
        return Err(e.into());
    }

    // 3. Idempotency records.
    let keyed: Vec<(usize, &NewOrder)> = orders
        .iter()
        .enumerate()
        .filter(|(_, o)| o.idempotency.is_some())
        .map(|(i, o)| (i, *o))
        .collect();
    if !keyed.is_empty() {
        let mut insert = sqlx::query(expand(INSERT_IDEMPOTENCY_ROWS, &value_rows(keyed.len(), 4)));
        for record in keyed.iter().filter_map(|(_, o)| o.idempotency.as_ref()) {
            insert = insert
                .bind(record.customer.as_str())
                .bind(record.key.as_str())
                .bind(&record.fingerprint)
                .bind(record.order_id.as_uuid());
        }
        if let Err(e) = insert.execute(&mut *tx).await {
            if number(&e) == Some(code::DUPLICATE_KEY) {
                tx.rollback().await?;
                return Ok(Attempt::Culprits(used_key_orders(pool, &keyed).await?));
            }
            return Err(e.into());
        }
    }

    // 4. Invariant 6: per-customer sums against the limit.
    let mut customers: BTreeMap<(EventId, String), Usage> = BTreeMap::new();
    for (i, new) in orders.iter().enumerate() {
        let order = &new.order;
        customers
            .entry((order.event_id, order.customer.as_str().to_owned()))
            .or_insert_with(|| Usage::new(new.per_customer_limit))
            .add(i, order.tickets.len() as u32, new.per_customer_limit);
    }
    let over = raise_counters(&mut tx, &CUSTOMER_COUNTER, &customers).await?;
    if !over.is_empty() {
        tx.rollback().await?;
        return Ok(Attempt::Culprits(over));
    }

    // 5. The order rows.
    let mut by_id: Vec<&NewOrder> = orders.to_vec();
    by_id.sort_by_key(|o| o.order.id);
    let mut insert = sqlx::query(expand(INSERT_ORDER_ROWS, &value_rows(by_id.len(), 5)));
    for new in &by_id {
        let order = &new.order;
        insert = insert
            .bind(order.id.as_uuid())
            .bind(order.event_id.as_uuid())
            .bind(order.customer.as_str())
            .bind(TicketStatus::PendingPayment.as_str())
            .bind(order.expires_at);
    }
    if let Err(e) = insert.execute(&mut *tx).await {
        return Err(match number(&e) {
            Some(code::DUPLICATE_KEY) => {
                Error::internal("an order of the batch exists already").into()
            }
            _ => e.into(),
        });
    }

    // 6. The outbox rows: numbered after the commit, so they take no lock other writers wait for.
    let events: Vec<OutboxEvent> = orders
        .iter()
        .map(|new| {
            let order = &new.order;
            let at = order
                .tickets
                .iter()
                .map(|t| t.created_on)
                .min()
                .unwrap_or(order.expires_at);
            OutboxEvent::for_order(OutboxKind::TicketReserved, order, at)
        })
        .collect();
    outbox::append(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(Attempt::Committed)
}

/// The general-admission places of the batch: per zone (in key order) the sum of its orders'
/// places, taken from the zone's shards. `Ok(shard of each ticket)`, or `Err(orders)` naming the
/// orders of the zones that lack room (they then run alone and get their exact answer).
async fn take_places(
    conn: &mut MySqlConnection,
    orders: &[&NewOrder],
) -> StoreResult<Result<HashMap<TicketId, u16>, Vec<usize>>> {
    let mut zones: BTreeMap<(EventId, &ZoneCode), (u32, Vec<usize>)> = BTreeMap::new();
    for (i, new) in orders.iter().enumerate() {
        if let Some((zone, capacity)) = &new.general_admission {
            let entry = zones
                .entry((new.order.event_id, zone))
                .or_insert((*capacity, Vec::new()));
            entry.0 = entry.0.min(*capacity);
            entry.1.push(i);
        }
    }
    let mut shards = HashMap::new();
    for ((event, zone), (capacity, members)) in zones {
        let tickets: Vec<TicketId> = members
            .iter()
            .flat_map(|&i| orders[i].order.tickets.iter().map(|t| t.id))
            .collect();
        let start = orders[members[0]].order.id.as_uuid().as_u128() as u32;
        let n = tickets.len() as u32;
        match zone_capacity::take(conn, event, zone, capacity, n, start).await? {
            Some(taken) => shards.extend(tickets.into_iter().zip(taken)),
            None => return Ok(Err(members)),
        }
    }
    Ok(Ok(shards))
}

/// The orders of the batch with a seat that has an active ticket now (read after the rollback).
async fn taken_seat_orders(pool: &MySqlPool, orders: &[&NewOrder]) -> StoreResult<Vec<usize>> {
    let mut wanted: BTreeMap<EventId, Vec<String>> = BTreeMap::new();
    for new in orders {
        wanted.entry(new.order.event_id).or_default().extend(
            new.order
                .tickets
                .iter()
                .filter_map(|t| t.seat.as_ref().map(SeatRef::key)),
        );
    }
    let mut taken: HashSet<(EventId, String)> = HashSet::new();
    for (event, keys) in wanted.iter().filter(|(_, k)| !k.is_empty()) {
        let mut query = sqlx::query(expand(sql::SELECT_TAKEN_SEATS, &markers(keys.len())))
            .bind(event.as_uuid());
        for key in keys {
            query = query.bind(key);
        }
        for row in query.fetch_all(pool).await? {
            taken.insert((*event, row.try_get("active_seat")?));
        }
    }
    Ok(orders
        .iter()
        .enumerate()
        .filter(|(_, new)| {
            new.order.tickets.iter().any(|t| {
                t.seat
                    .as_ref()
                    .is_some_and(|s| taken.contains(&(new.order.event_id, s.key())))
            })
        })
        .map(|(i, _)| i)
        .collect())
}

/// The keyed orders whose idempotency key is stored already.
async fn used_key_orders(
    pool: &MySqlPool,
    keyed: &[(usize, &NewOrder)],
) -> StoreResult<Vec<usize>> {
    let records: Vec<_> = keyed
        .iter()
        .filter_map(|(i, o)| o.idempotency.as_ref().map(|r| (*i, r)))
        .collect();
    let condition = vec!["(customer_id = ? AND idem_key = ?)"; records.len()].join(" OR ");
    let mut query = sqlx::query(expand(SELECT_USED_KEYS, &condition));
    for (_, record) in &records {
        query = query
            .bind(record.customer.as_str())
            .bind(record.key.as_str());
    }
    let mut used = HashSet::new();
    for row in query.fetch_all(pool).await? {
        let customer: String = row.try_get("customer_id")?;
        let key: String = row.try_get("idem_key")?;
        used.insert((customer, key));
    }
    Ok(records
        .iter()
        .filter(|(_, r)| {
            used.contains(&(r.customer.as_str().to_owned(), r.key.as_str().to_owned()))
        })
        .map(|(i, _)| *i)
        .collect())
}

/// The tickets one batch adds to one counter row, and the bound they must stay within.
struct Usage {
    add: u32,
    bound: u32,
    orders: Vec<usize>,
}

impl Usage {
    fn new(bound: u32) -> Self {
        Self {
            add: 0,
            bound,
            orders: Vec::new(),
        }
    }

    fn add(&mut self, order: usize, n: u32, bound: u32) {
        self.add += n;
        self.bound = self.bound.min(bound);
        self.orders.push(order);
    }
}

/// A counter table's statements: an upsert that adds, and a read of the new values.
struct Counter {
    upsert: &'static str,
    read: &'static str,
}

const CUSTOMER_COUNTER: Counter = Counter {
    upsert: "INSERT INTO customer_usage (event_id, customer_id, active) VALUES {list} \
             ON DUPLICATE KEY UPDATE active = active + VALUES(active)",
    read: "SELECT customer_id AS k, active FROM customer_usage \
           WHERE event_id = ? AND customer_id IN ({list})",
};

/// Adds every key's sum in one upsert (keys in order, so batches lock counter rows in one
/// order), reads the new values (ours, locked until COMMIT), and returns the orders of every key
/// now over its bound.
async fn raise_counters(
    conn: &mut MySqlConnection,
    counter: &Counter,
    usage: &BTreeMap<(EventId, String), Usage>,
) -> StoreResult<Vec<usize>> {
    if usage.is_empty() {
        return Ok(Vec::new());
    }
    let mut upsert = sqlx::query(expand(counter.upsert, &value_rows(usage.len(), 3)));
    for ((event, key), u) in usage {
        upsert = upsert.bind(event.as_uuid()).bind(key.as_str()).bind(u.add);
    }
    let done = upsert.execute(&mut *conn).await?;
    // Per row, the upsert reports 1 for a new row and 2 for a raised one (every sum is at least
    // 1, so no row is left as it was). A total of one per key means every row is new and holds
    // exactly this batch's sum: compare it without reading it back.
    if done.rows_affected() == usage.len() as u64 {
        return Ok(usage
            .values()
            .filter(|u| u.add > u.bound)
            .flat_map(|u| u.orders.iter().copied())
            .collect());
    }
    let mut per_event: BTreeMap<EventId, Vec<&str>> = BTreeMap::new();
    for (event, key) in usage.keys() {
        per_event.entry(*event).or_default().push(key);
    }
    let mut values: HashMap<(EventId, String), u32> = HashMap::new();
    for (event, keys) in per_event {
        let mut read =
            sqlx::query(expand(counter.read, &markers(keys.len()))).bind(event.as_uuid());
        for key in keys {
            read = read.bind(key);
        }
        for row in read.fetch_all(&mut *conn).await? {
            values.insert((event, row.try_get("k")?), row.try_get("active")?);
        }
    }
    let mut over = Vec::new();
    for (key, u) in usage {
        match values.get(key) {
            Some(active) if *active <= u.bound => {}
            Some(_) => over.extend(&u.orders),
            None => {
                return Err(
                    Error::internal("a counter row vanished inside its transaction").into(),
                );
            }
        }
    }
    Ok(over)
}

const INSERT_IDEMPOTENCY_ROWS: &str =
    "INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, order_id) VALUES {list}";

const SELECT_USED_KEYS: &str = "SELECT customer_id, idem_key FROM idempotency_keys WHERE {list}";

const INSERT_ORDER_ROWS: &str =
    "INSERT INTO orders (id, event_id, customer_id, status, expires_at) VALUES {list}";
