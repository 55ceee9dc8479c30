//! Chaos runs against the real services: a concurrent flash sale through the services while a
//! chaos task injects faults (Redis data loss, script-cache loss, Redis crashes, MariaDB
//! connections killed mid-transaction), then an audit of the database by SQL and of every answer
//! the buyers were given.
//!
//! What is asserted does not depend on timing: whatever the interleaving, no seat is sold twice,
//! general admission stays within capacity, the per-customer limit holds, every acknowledged
//! purchase, payment and cancellation is in the database, no order is half written, every error a
//! caller saw is a domain answer or `Unavailable`, and the seat map agrees with the database at
//! the end. The seed only decides the buyers' choices and the chaos schedule; it is printed, and
//! `CHAOS_SEED` replays the same choices (timing still varies).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, MySqlPool, PgPool};
use ticketing_core::Error;
use ticketing_core::domain::{
    CustomerId, IdempotencyKey, Order, OrderId, OutboxKind, PaymentNotice, PaymentRef, SeatRef,
    TicketId, TicketStatus,
};
use ticketing_core::ports::{SeatLock, SeatState};
use ticketing_core::service::{PurchaseRequest, RepositoryHolds, Selection};
use ticketing_core::testkit::{BoxFuture, Fixture, Harness, Layout};
use ticketing_redis::RedisSeatLock;
use ticketing_sqlx::postgres::{PgCatalog, PgTicketRepository, PgWaitingList};
use ticketing_sqlx::testing::{TestDatabase, URL_VAR as MYSQL_URL_VAR};
use ticketing_sqlx::{MySqlCatalog, MySqlTicketRepository, MySqlWaitingList};
use uuid::Uuid;

/// The database a chaos run audits by SQL: MySQL/MariaDB or PostgreSQL (`From` each pool).
#[derive(Clone)]
pub enum AuditPool {
    /// MySQL / MariaDB.
    MySql(MySqlPool),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl From<&MySqlPool> for AuditPool {
    fn from(pool: &MySqlPool) -> Self {
        AuditPool::MySql(pool.clone())
    }
}

impl From<&PgPool> for AuditPool {
    fn from(pool: &PgPool) -> Self {
        AuditPool::Postgres(pool.clone())
    }
}

impl AuditPool {
    /// The rows of `mysql` or `postgres` (the same question in each dialect), with the event
    /// bound to its one parameter when given.
    async fn rows<T>(
        &self,
        mysql: &'static str,
        postgres: &'static str,
        event: Option<Uuid>,
    ) -> Vec<T>
    where
        T: for<'r> FromRow<'r, MySqlRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        match self {
            AuditPool::MySql(pool) => {
                let mut query = sqlx::query_as::<_, T>(mysql);
                if let Some(event) = event {
                    query = query.bind(event);
                }
                query.fetch_all(pool).await
            }
            AuditPool::Postgres(pool) => {
                let mut query = sqlx::query_as::<_, T>(postgres);
                if let Some(event) = event {
                    query = query.bind(event);
                }
                query.fetch_all(pool).await
            }
        }
        .unwrap_or_else(|e| panic!("audit query {mysql}: {e}"))
    }

    /// [`rows`](Self::rows) of a query answering one row.
    async fn one<T>(&self, mysql: &'static str, postgres: &'static str, event: Uuid) -> T
    where
        T: for<'r> FromRow<'r, MySqlRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        self.rows(mysql, postgres, Some(event))
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("audit query {mysql} answered no row"))
    }
}

/// Environment variable: the seed of the buyers' choices and of the chaos schedule.
pub const SEED_VAR: &str = "CHAOS_SEED";
/// Environment variable: how many faults the chaos task injects (each run has its default).
pub const ROUNDS_VAR: &str = "CHAOS_ROUNDS";

/// Most attempts of one purchase, payment or cancellation that keeps failing with `Unavailable`.
const MAX_ATTEMPTS: u32 = 60;

/// The seeded stream of the chaos choices: the simulator's SplitMix64, the same on every platform.
pub use ticketing_core::testkit::sim::SimRng as ChaosRng;

/// The size of a chaos run, from the environment or the run's defaults.
#[derive(Debug, Clone, Copy)]
pub struct ChaosConfig {
    /// Seed of the buyers' choices and of the chaos schedule.
    pub seed: u64,
    /// Faults the chaos task injects.
    pub faults: u32,
    /// Concurrent buyer tasks.
    pub buyers: usize,
    /// Most purchase rounds per buyer (the sale ends earlier when the chaos is over).
    pub max_rounds: u32,
}

impl ChaosConfig {
    /// `CHAOS_SEED` (default: a fresh random seed) and `CHAOS_ROUNDS` (default `default_faults`)
    /// from the environment. Prints the seed so a failure can be replayed.
    pub fn from_env(name: &str, default_faults: u32, buyers: usize) -> Self {
        let seed = match std::env::var(SEED_VAR) {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{SEED_VAR}={text:?} is not a u64: {e}")),
            Err(_) => Uuid::new_v4().as_u64_pair().0,
        };
        let faults = match std::env::var(ROUNDS_VAR) {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{ROUNDS_VAR}={text:?} is not a u32: {e}")),
            Err(_) => default_faults,
        };
        let config = Self {
            seed,
            faults,
            buyers,
            max_rounds: 40 + faults * 4,
        };
        println!(
            "{name}: seed {seed} ({faults} faults, {buyers} buyers); replay with {SEED_VAR}={seed} {ROUNDS_VAR}={faults}"
        );
        config
    }
}

/// Counters of the sale, shared by all buyer tasks.
#[derive(Debug, Default)]
pub struct SaleStats {
    /// Purchases answered with an order.
    pub purchases_acknowledged: AtomicU64,
    /// Purchases answered `SeatsTaken`, `SoldOut` or `LimitExceeded`.
    pub rejections: AtomicU64,
    /// `Unavailable` answers (purchases, payments, cancellations, look-ups), each retried.
    pub unavailable: AtomicU64,
    /// Purchases whose every attempt failed with `Unavailable`.
    pub gave_up: AtomicU64,
    /// Payments answered with a PAID order.
    pub payments_acknowledged: AtomicU64,
    /// Cancellations answered with a CANCELLED order.
    pub cancels_acknowledged: AtomicU64,
    /// Purchases that committed although the caller saw an error (found by the idempotency key).
    pub unknown_results: AtomicU64,
    /// Retries after an error that returned an order (the same one, checked).
    pub recovered_by_retry: AtomicU64,
}

impl SaleStats {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "purchases acknowledged {}, rejections {}, Unavailable errors {}, purchases given up {}, payments acknowledged {}, cancels acknowledged {}, unknown results {}, recovered by retry {}",
            get(&self.purchases_acknowledged),
            get(&self.rejections),
            get(&self.unavailable),
            get(&self.gave_up),
            get(&self.payments_acknowledged),
            get(&self.cancels_acknowledged),
            get(&self.unknown_results),
            get(&self.recovered_by_retry),
        )
    }
}

/// What the buyers were told, to be checked against the database at the end.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Acknowledged purchases: order → its ticket ids.
    pub purchases: BTreeMap<OrderId, Vec<TicketId>>,
    /// Acknowledged payments: order → reference.
    pub payments: BTreeMap<OrderId, PaymentRef>,
    /// Every payment reference sent (as the provider's webhooks would, replays included), with
    /// its order: the payments ledger may hold these and nothing else.
    pub sent: BTreeMap<PaymentRef, OrderId>,
    /// References refused with a final answer (a refund is due for each).
    pub refused: HashSet<PaymentRef>,
    /// Acknowledged cancellations.
    pub cancels: HashSet<OrderId>,
    /// Orders of purchases given up after only `Unavailable` answers (they may have committed).
    pub given_up: HashSet<OrderId>,
    /// Answers no caller should ever see (`Internal`, a wrong order, …), with context.
    pub unexpected: Vec<String>,
}

/// A counter of injected faults by kind.
#[derive(Debug, Default)]
pub struct FaultCounts(Mutex<BTreeMap<&'static str, u64>>);

impl FaultCounts {
    /// Counts one fault of `kind`.
    pub fn record(&self, kind: &'static str) {
        *self
            .0
            .lock()
            .expect("fault counts")
            .entry(kind)
            .or_default() += 1;
    }

    /// The counts.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().expect("fault counts").clone()
    }

    /// The total.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

/// A flash sale over a [`Fixture`]: buyer tasks that purchase, pay and cancel, retrying
/// `Unavailable` answers with the same idempotency key, until told to stop.
pub struct Sale {
    /// The venue, event and services.
    pub fixture: Arc<Fixture>,
    /// Counters.
    pub stats: Arc<SaleStats>,
    /// Every answer worth checking.
    pub ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    config: ChaosConfig,
    seats: u32,
}

impl Sale {
    /// A sale of `seats` seats (zone A, from the fixture's layout) and the fixture's GA zone.
    pub fn new(fixture: Arc<Fixture>, seats: u32, config: ChaosConfig) -> Self {
        Self {
            fixture,
            stats: Arc::default(),
            ledger: Arc::default(),
            stop: Arc::default(),
            config,
            seats,
        }
    }

    /// Starts the buyer tasks. They run until [`Sale::stop`] (then each finishes its round and
    /// buys once more, after the chaos) or their round limit.
    pub fn start(&self) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.config.buyers)
            .map(|i| {
                let buyer = Buyer {
                    index: i,
                    // Two buyer tasks per customer: the per-customer limit is raced too.
                    customer: CustomerId::new(format!("c{}", i / 2)).expect("customer id"),
                    rng: ChaosRng::stream(self.config.seed, 1_000 + i as u64),
                    fixture: self.fixture.clone(),
                    stats: self.stats.clone(),
                    ledger: self.ledger.clone(),
                    seats: self.seats,
                };
                let (stop, max_rounds) = (self.stop.clone(), self.config.max_rounds);
                tokio::spawn(buyer.run(stop, max_rounds))
            })
            .collect()
    }

    /// Fails the run when no purchase at all was acknowledged (the chaos then tested nothing).
    pub fn assert_some_purchase_acknowledged(&self) {
        assert!(
            self.stats.purchases_acknowledged.load(Ordering::Relaxed) > 0,
            "no purchase succeeded"
        );
    }

    /// Tells the buyers the chaos is over.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for every buyer; a panicked buyer fails the test.
    pub async fn join(handles: Vec<tokio::task::JoinHandle<()>>) {
        for handle in handles {
            handle.await.expect("a buyer task panicked");
        }
    }

    /// Checks every acknowledged answer against the repository: each acknowledged purchase is
    /// there with exactly its tickets, each acknowledged payment is PAID with its reference, each
    /// acknowledged cancellation is CANCELLED, an order nobody touched after buying is still
    /// PENDING_PAYMENT, and every order in the database was acknowledged (or its buyer gave up
    /// on it). Returns the number of checks performed.
    pub async fn check_acknowledged(&self, pool: &AuditPool) -> u64 {
        let ledger = self.ledger.lock().expect("ledger").clone();
        assert!(
            ledger.unexpected.is_empty(),
            "{} answers no caller may see, first ones: {:#?}",
            ledger.unexpected.len(),
            &ledger.unexpected[..ledger.unexpected.len().min(10)]
        );
        let mut checks = 0;
        for (id, ticket_ids) in &ledger.purchases {
            let order = self
                .fixture
                .backends
                .tickets()
                .order(*id)
                .await
                .expect("read an order")
                .unwrap_or_else(|| panic!("acknowledged order {id} is not in the repository"));
            let mut stored: Vec<TicketId> = order.tickets.iter().map(|t| t.id).collect();
            let mut acked = ticket_ids.clone();
            stored.sort();
            acked.sort();
            assert_eq!(
                stored, acked,
                "order {id}: tickets differ from the acknowledged ones"
            );
            let expected = if let Some(reference) = ledger.payments.get(id) {
                assert!(
                    order
                        .tickets
                        .iter()
                        .all(|t| t.payment_ref.as_ref() == Some(reference) && t.paid_at.is_some()),
                    "order {id}: acknowledged payment {reference} not recorded on every ticket"
                );
                TicketStatus::Paid
            } else if ledger.cancels.contains(id) {
                TicketStatus::Cancelled
            } else {
                TicketStatus::PendingPayment
            };
            assert_eq!(order.status, expected, "order {id}");
            checks += 2;
        }
        checks += self.check_payments_ledger(&ledger).await;
        let rows: Vec<(Uuid,)> = pool
            .rows(
                "SELECT id FROM orders WHERE event_id = ?",
                "SELECT id FROM orders WHERE event_id = $1",
                Some(self.fixture.event.id().as_uuid()),
            )
            .await;
        for (id,) in rows {
            let id = OrderId::from_uuid(id);
            assert!(
                ledger.purchases.contains_key(&id) || ledger.given_up.contains(&id),
                "order {id} is in the database but no buyer was given it and none gave up on it"
            );
            checks += 1;
        }
        checks
    }
}

impl Sale {
    /// The payments ledger equals the webhooks sent: every entry is a reference some buyer sent
    /// for that order, each acknowledged payment is there as PAID, each refused one as a refund
    /// due, and an order has at most one entry that paid it, however often a webhook was replayed.
    async fn check_payments_ledger(&self, ledger: &Ledger) -> u64 {
        let tickets = self.fixture.backends.tickets();
        let mut checks = 0;
        let orders: HashSet<OrderId> = ledger
            .purchases
            .keys()
            .chain(ledger.given_up.iter())
            .copied()
            .collect();
        for order in orders {
            let entries = tickets
                .payments_of(order)
                .await
                .expect("payments of an order");
            let paid: Vec<_> = entries.iter().filter(|p| p.outcome.paid()).collect();
            assert!(
                paid.len() <= 1,
                "order {order} was paid {} times: {paid:?}",
                paid.len()
            );
            for entry in &entries {
                assert_eq!(
                    ledger.sent.get(&entry.reference),
                    Some(&order),
                    "ledger entry {} for order {order} was never sent for it",
                    entry.reference
                );
                checks += 1;
            }
            if let Some(reference) = ledger.payments.get(&order) {
                assert!(
                    paid.iter().any(|p| &p.reference == reference),
                    "order {order}: acknowledged payment {reference} is not in the ledger as paid"
                );
                checks += 1;
            }
        }
        for reference in &ledger.refused {
            let entry = tickets
                .payment(reference)
                .await
                .expect("read the ledger")
                .unwrap_or_else(|| panic!("refused payment {reference} is not in the ledger"));
            assert!(entry.outcome.refund_due(), "{reference}: {entry:?}");
            checks += 1;
        }
        checks
    }
}

/// One buyer task.
struct Buyer {
    index: usize,
    customer: CustomerId,
    rng: ChaosRng,
    fixture: Arc<Fixture>,
    stats: Arc<SaleStats>,
    ledger: Arc<Mutex<Ledger>>,
    seats: u32,
}

/// What a purchase attempt loop ended with.
enum Bought {
    Order(Order),
    Rejected,
    GaveUp,
    Unexpected,
}

impl Buyer {
    async fn run(mut self, stop: Arc<AtomicBool>, max_rounds: u32) {
        let mut round = 0;
        let mut after_stop = 0;
        while round < max_rounds && after_stop < 1 {
            if stop.load(Ordering::SeqCst) {
                after_stop += 1;
            }
            round += 1;
            self.round(round).await;
            tokio::time::sleep(Duration::from_millis(self.rng.between(0, 4) as u64)).await;
        }
    }

    fn unexpected(&self, what: String) {
        self.ledger.lock().expect("ledger").unexpected.push(what);
    }

    /// One purchase, then maybe a payment or a cancellation.
    async fn round(&mut self, round: u32) {
        let key = IdempotencyKey::new(format!("b{}-r{round}", self.index)).expect("key");
        let selection = if self.rng.chance(0.75) {
            let first = self.rng.below(u64::from(self.seats)) as u32;
            let count = self.rng.between(1, 3) as u32;
            Selection::Seats(
                (first..first + count)
                    .map(|n| self.fixture.seat(n % self.seats))
                    .collect(),
            )
        } else {
            Selection::General {
                zone: "GA".parse().expect("zone"),
                quantity: self.rng.between(1, 2) as u32,
            }
        };
        let request = PurchaseRequest {
            event: self.fixture.event.id(),
            customer: self.customer.clone(),
            selection,
            idempotency_key: Some(key.clone()),
            voucher: None,
            channel: None,
        };
        let order = match self.purchase(&request, &key).await {
            Bought::Order(order) => order,
            Bought::Rejected | Bought::Unexpected => return,
            Bought::GaveUp => {
                SaleStats::add(&self.stats.gave_up);
                let id = OrderId::for_idempotency_key(
                    &self.fixture.config.order_id_secret,
                    &self.customer,
                    &key,
                );
                self.ledger.lock().expect("ledger").given_up.insert(id);
                return;
            }
        };
        match self.rng.below(4) {
            0 | 1 => {
                let reference = PaymentRef::new(format!("pay-{key}")).expect("payment ref");
                self.pay_and_replay(PaymentNotice::for_order(&order, reference))
                    .await;
            }
            2 => self.cancel(order.id).await,
            _ => {}
        }
    }

    /// Purchases with retries of `Unavailable` under the same idempotency key. After a failed
    /// attempt it looks the key up: if the attempt committed after all (an unknown result), the
    /// retry must return exactly that order.
    async fn purchase(&mut self, request: &PurchaseRequest, key: &IdempotencyKey) -> Bought {
        let expected_id =
            OrderId::for_idempotency_key(&self.fixture.config.order_id_secret, &self.customer, key);
        let mut committed: Option<Vec<TicketId>> = None;
        let mut failed_before = false;
        for attempt in 1..=MAX_ATTEMPTS {
            match self.fixture.tickets.purchase(request.clone()).await {
                Ok(order) => {
                    if let Err(problem) = check_order(&order, request, expected_id) {
                        self.unexpected(format!("purchase {key}: {problem}"));
                        return Bought::Unexpected;
                    }
                    if let Some(ticket_ids) = &committed {
                        let returned: Vec<TicketId> = order.tickets.iter().map(|t| t.id).collect();
                        if !same_ids(ticket_ids, &returned) {
                            self.unexpected(format!(
                                "purchase {key}: the retry returned tickets {returned:?}, not the committed {ticket_ids:?}"
                            ));
                            return Bought::Unexpected;
                        }
                    }
                    if failed_before {
                        SaleStats::add(&self.stats.recovered_by_retry);
                    }
                    SaleStats::add(&self.stats.purchases_acknowledged);
                    self.ledger
                        .lock()
                        .expect("ledger")
                        .purchases
                        .insert(order.id, order.tickets.iter().map(|t| t.id).collect());
                    return Bought::Order(order);
                }
                Err(
                    Error::SeatsTaken { .. } | Error::SoldOut { .. } | Error::LimitExceeded { .. },
                ) => {
                    if committed.is_some() {
                        self.unexpected(format!(
                            "purchase {key}: committed order {expected_id} was answered with a rejection on retry"
                        ));
                        return Bought::Unexpected;
                    }
                    SaleStats::add(&self.stats.rejections);
                    return Bought::Rejected;
                }
                Err(error @ Error::Unavailable { .. }) => {
                    SaleStats::add(&self.stats.unavailable);
                    failed_before = true;
                    tracing_free_log(attempt, &error);
                    if committed.is_none()
                        && let Some(ticket_ids) = self.committed_order(expected_id).await
                    {
                        SaleStats::add(&self.stats.unknown_results);
                        committed = Some(ticket_ids);
                    }
                    self.backoff(attempt).await;
                }
                Err(error) => {
                    self.unexpected(format!(
                        "purchase {key} attempt {attempt}: {} {error}",
                        error.code()
                    ));
                    return Bought::Unexpected;
                }
            }
        }
        Bought::GaveUp
    }

    /// The ticket ids of `order` if it is in the repository (a look-up that keeps failing counts
    /// as "not known").
    async fn committed_order(&mut self, order: OrderId) -> Option<Vec<TicketId>> {
        for attempt in 1..=5 {
            match self.fixture.backends.tickets().order(order).await {
                Ok(found) => return found.map(|o| o.tickets.iter().map(|t| t.id).collect()),
                Err(Error::Unavailable { .. }) => {
                    SaleStats::add(&self.stats.unavailable);
                    self.backoff(attempt).await;
                }
                Err(error) => {
                    self.unexpected(format!("order look-up {order}: {} {error}", error.code()));
                    return None;
                }
            }
        }
        None
    }

    /// Pays, then now and then replays the same webhook (which must answer the same) and sends
    /// a second payment for the paid order (which must be refused as a refund due).
    async fn pay_and_replay(&mut self, notice: PaymentNotice) {
        self.pay(notice.clone()).await;
        if !self
            .ledger
            .lock()
            .expect("ledger")
            .payments
            .contains_key(&notice.order)
        {
            return;
        }
        if self.rng.below(3) == 0 {
            self.pay(notice.clone()).await;
        }
        if self.rng.below(4) == 0 {
            let second = PaymentNotice {
                reference: PaymentRef::new(format!("{}-again", notice.reference)).expect("ref"),
                ..notice
            };
            self.pay(second).await;
        }
    }

    async fn pay(&mut self, notice: PaymentNotice) {
        let (order, reference) = (notice.order, notice.reference.clone());
        self.ledger
            .lock()
            .expect("ledger")
            .sent
            .insert(reference.clone(), order);
        for attempt in 1..=MAX_ATTEMPTS {
            match self.fixture.tickets.pay(notice.clone()).await {
                Ok(paid) => {
                    if paid.status != TicketStatus::Paid {
                        self.unexpected(format!("pay {order}: answered {}", paid.status));
                        return;
                    }
                    SaleStats::add(&self.stats.payments_acknowledged);
                    self.ledger
                        .lock()
                        .expect("ledger")
                        .payments
                        .insert(order, reference);
                    return;
                }
                Err(Error::Unavailable { .. }) => {
                    SaleStats::add(&self.stats.unavailable);
                    self.backoff(attempt).await;
                }
                // A second reference for a paid order: refused, owed back.
                Err(Error::InvalidTransition { .. }) if reference.as_str().ends_with("-again") => {
                    self.ledger
                        .lock()
                        .expect("ledger")
                        .refused
                        .insert(reference);
                    return;
                }
                Err(error) => {
                    self.unexpected(format!("pay {order}: {} {error}", error.code()));
                    return;
                }
            }
        }
        self.unexpected(format!("pay {order}: Unavailable {MAX_ATTEMPTS} times"));
    }

    async fn cancel(&mut self, order: OrderId) {
        for attempt in 1..=MAX_ATTEMPTS {
            match self.fixture.tickets.cancel(order).await {
                Ok(cancelled) => {
                    if cancelled.status != TicketStatus::Cancelled {
                        self.unexpected(format!("cancel {order}: answered {}", cancelled.status));
                        return;
                    }
                    SaleStats::add(&self.stats.cancels_acknowledged);
                    self.ledger.lock().expect("ledger").cancels.insert(order);
                    return;
                }
                Err(Error::Unavailable { .. }) => {
                    SaleStats::add(&self.stats.unavailable);
                    self.backoff(attempt).await;
                }
                Err(error) => {
                    self.unexpected(format!("cancel {order}: {} {error}", error.code()));
                    return;
                }
            }
        }
        self.unexpected(format!("cancel {order}: Unavailable {MAX_ATTEMPTS} times"));
    }

    /// 5, 10, 20, 40, 80, 80, … ms plus jitter: long enough to ride out a Redis restart.
    async fn backoff(&mut self, attempt: u32) {
        let base = 5u64 << attempt.saturating_sub(1).min(4);
        let jitter = self.rng.below(base + 1);
        tokio::time::sleep(Duration::from_millis(base + jitter)).await;
    }
}

/// Set `CHAOS_VERBOSE=1` to see every `Unavailable` a buyer retries.
fn tracing_free_log(attempt: u32, error: &Error) {
    if std::env::var_os("CHAOS_VERBOSE").is_some() {
        eprintln!("attempt {attempt}: {error}");
    }
}

fn same_ids(a: &[TicketId], b: &[TicketId]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

/// An acknowledged order must be the request's: its derived id, its customer, its seats or
/// number of places, PENDING_PAYMENT or later.
fn check_order(order: &Order, request: &PurchaseRequest, expected: OrderId) -> Result<(), String> {
    if order.id != expected {
        return Err(format!("order id {} is not the key's {expected}", order.id));
    }
    if order.customer != request.customer || order.event_id != request.event {
        return Err(format!("order {} belongs to someone else", order.id));
    }
    match &request.selection {
        Selection::Seats(seats) => {
            let mut wanted: Vec<&SeatRef> = seats.iter().collect();
            let mut got: Vec<&SeatRef> = order
                .tickets
                .iter()
                .filter_map(|t| t.seat.as_ref())
                .collect();
            wanted.sort();
            got.sort();
            if wanted != got || got.len() != order.tickets.len() {
                return Err(format!(
                    "order {} has seats {got:?}, asked {wanted:?}",
                    order.id
                ));
            }
        }
        Selection::General { quantity, .. } => {
            if order.tickets.len() != *quantity as usize
                || order.tickets.iter().any(|t| t.seat.is_some())
            {
                return Err(format!(
                    "order {} has {} tickets, asked {quantity} GA places",
                    order.id,
                    order.tickets.len()
                ));
            }
        }
        Selection::BestAvailable(wanted) => {
            let seated = order.tickets.iter().filter(|t| t.seat.is_some()).count();
            if seated != wanted.quantity as usize || order.tickets.len() != seated {
                return Err(format!(
                    "order {} has {} tickets, asked {} best-available seats",
                    order.id,
                    order.tickets.len(),
                    wanted.quantity
                ));
            }
        }
    }
    Ok(())
}

/// Audits the test database by SQL, without going through the adapters: no seat with two active
/// tickets, GA within `capacity`, every customer within `limit`, the counters (`zone_usage`,
/// `customer_usage`) equal to the active tickets, every order whole (at least one ticket, every
/// ticket in the order's status, no ticket without its order) with its outbox rows. Returns the
/// number of checks performed.
pub async fn audit_database(pool: &AuditPool, fixture: &Fixture, capacity: u32, limit: u32) -> u64 {
    let event = fixture.event.id().as_uuid();
    let mut checks = 0u64;

    // Invariant 1, on the status itself (not on the key that enforces it).
    let doubles: Vec<(String, i64)> = pool
        .rows(
            "SELECT seat_key, COUNT(*) AS n FROM tickets WHERE event_id = ? \
             AND seat_key IS NOT NULL AND status IN ('PENDING_PAYMENT', 'PAID') \
             GROUP BY seat_key HAVING COUNT(*) > 1",
            "SELECT seat_key, COUNT(*) AS n FROM tickets WHERE event_id = $1 \
             AND seat_key IS NOT NULL AND status IN ('PENDING_PAYMENT', 'PAID') \
             GROUP BY seat_key HAVING COUNT(*) > 1",
            Some(event),
        )
        .await;
    assert!(
        doubles.is_empty(),
        "OVERSELL: seats with two active tickets: {doubles:?}"
    );
    checks += 1;

    // Invariant 2.
    let (general,): (i64,) = pool
        .one(
            "SELECT COUNT(*) AS n FROM tickets WHERE event_id = ? AND seat_key IS NULL \
             AND status IN ('PENDING_PAYMENT', 'PAID')",
            "SELECT COUNT(*) AS n FROM tickets WHERE event_id = $1 AND seat_key IS NULL \
             AND status IN ('PENDING_PAYMENT', 'PAID')",
            event,
        )
        .await;
    assert!(
        general <= i64::from(capacity),
        "OVERSELL: {general} active GA tickets > capacity {capacity}"
    );
    checks += 1;

    // Invariant 6, and customer_usage equal to the active tickets of every customer.
    let per_customer: HashMap<String, i64> = pool
        .rows::<(String, i64)>(
            "SELECT customer_id, COUNT(*) AS n FROM tickets WHERE event_id = ? \
             AND status IN ('PENDING_PAYMENT', 'PAID') GROUP BY customer_id",
            "SELECT customer_id, COUNT(*) AS n FROM tickets WHERE event_id = $1 \
             AND status IN ('PENDING_PAYMENT', 'PAID') GROUP BY customer_id",
            Some(event),
        )
        .await
        .into_iter()
        .collect();
    for (customer, n) in &per_customer {
        assert!(
            *n <= i64::from(limit),
            "LIMIT BROKEN: customer {customer} has {n} active tickets > {limit}"
        );
        checks += 1;
    }
    let usage: HashMap<String, i64> = pool
        .rows::<(String, i64)>(
            "SELECT customer_id, CAST(active AS SIGNED) AS n FROM customer_usage WHERE event_id = ?",
            "SELECT customer_id, active AS n FROM customer_usage WHERE event_id = $1",
            Some(event),
        )
        .await
        .into_iter()
        .collect();
    for customer in per_customer.keys().chain(usage.keys()) {
        let counted = per_customer.get(customer).copied().unwrap_or(0);
        let recorded = usage.get(customer).copied().unwrap_or(0);
        assert_eq!(
            recorded, counted,
            "customer_usage of {customer} says {recorded}, the active tickets are {counted}"
        );
        checks += 1;
    }
    let (zone_usage,): (i64,) = pool
        .one(
            "SELECT CAST(COALESCE(SUM(active), 0) AS SIGNED) AS n FROM zone_usage \
             WHERE event_id = ? AND zone_code = 'GA'",
            "SELECT COALESCE(SUM(active), 0)::bigint AS n FROM zone_usage \
             WHERE event_id = $1 AND zone_code = 'GA'",
            event,
        )
        .await;
    assert_eq!(
        zone_usage, general,
        "zone_usage of GA says {zone_usage}, the active GA tickets are {general}"
    );
    checks += 1;

    // No half-written order: tickets, one status, the outbox rows of its history.
    let orders: Vec<(Uuid, String, i64, i64)> = pool
        .rows(
            "SELECT o.id, o.status, COUNT(t.id) AS tickets, \
                    CAST(COALESCE(SUM(t.status <> o.status OR t.expires_at <> o.expires_at), 0) AS SIGNED) AS off \
             FROM orders o LEFT JOIN tickets t ON t.order_id = o.id \
             WHERE o.event_id = ? GROUP BY o.id, o.status",
            "SELECT o.id, o.status, COUNT(t.id) AS tickets, \
                    COUNT(*) FILTER (WHERE t.status <> o.status OR t.expires_at <> o.expires_at) AS off \
             FROM orders o LEFT JOIN tickets t ON t.order_id = o.id \
             WHERE o.event_id = $1 GROUP BY o.id, o.status",
            Some(event),
        )
        .await;
    let outbox: HashSet<(Uuid, String)> = pool
        .rows::<(Uuid, String)>(
            "SELECT order_id, kind FROM outbox",
            "SELECT order_id, kind FROM outbox",
            None,
        )
        .await
        .into_iter()
        .collect();
    for (id, status, tickets, off) in &orders {
        assert!(
            *tickets >= 1,
            "HALF-WRITTEN: order {id} ({status}) has no tickets"
        );
        assert_eq!(
            *off, 0,
            "HALF-WRITTEN: order {id} ({status}) has {off} tickets out of step"
        );
        let mut kinds = vec![OutboxKind::TicketReserved];
        match status.as_str() {
            "PAID" => kinds.push(OutboxKind::TicketPaid),
            "CANCELLED" => kinds.push(OutboxKind::TicketCancelled),
            "EXPIRED" => kinds.push(OutboxKind::TicketExpired),
            "REFUNDED" => kinds.extend([OutboxKind::TicketPaid, OutboxKind::TicketRefunded]),
            _ => {}
        }
        for kind in kinds {
            assert!(
                outbox.contains(&(*id, kind.as_str().to_owned())),
                "HALF-WRITTEN: order {id} ({status}) has no {} outbox row",
                kind.as_str()
            );
        }
        checks += 3;
    }
    let (orphans,): (i64,) = pool
        .one(
            "SELECT COUNT(*) AS n FROM tickets t LEFT JOIN orders o ON o.id = t.order_id \
             WHERE t.event_id = ? AND o.id IS NULL",
            "SELECT COUNT(*) AS n FROM tickets t LEFT JOIN orders o ON o.id = t.order_id \
             WHERE t.event_id = $1 AND o.id IS NULL",
            event,
        )
        .await;
    assert_eq!(
        orphans, 0,
        "HALF-WRITTEN: {orphans} tickets without their order"
    );
    checks += 1;
    checks
}

/// A fresh test database; panics naming `TICKETING_MYSQL_URL` when the server is not usable.
pub async fn test_database(pool_size: u32) -> TestDatabase {
    TestDatabase::create(pool_size)
        .await
        .unwrap_or_else(|e| panic!("a test database on MariaDB/MySQL (set {MYSQL_URL_VAR}): {e}"))
}

/// The MySQL repositories on `db` behind `seat_lock`, as a harness for [`Fixture::new`]. The
/// caller owns the teardown (drop the database at the end).
pub fn harness(db: &TestDatabase, seat_lock: Arc<dyn SeatLock>) -> Harness {
    let pool = db.pool().clone();
    let tickets = Arc::new(MySqlTicketRepository::new(pool.clone()));
    Harness {
        seat_lock,
        outbox: tickets.clone(),
        tickets,
        waiting_list: Arc::new(MySqlWaitingList::new(pool.clone())),
        catalog: Arc::new(MySqlCatalog::new(pool)),
        wipe_seat_lock: Arc::new(|| -> BoxFuture { Box::pin(async {}) }),
        teardown: None,
    }
}

/// The PostgreSQL repositories on `pool` behind `seat_lock`, as a harness for
/// [`Fixture::new`]. The caller owns the teardown.
pub fn postgres_harness(pool: &PgPool, seat_lock: Arc<dyn SeatLock>) -> Harness {
    let tickets = Arc::new(PgTicketRepository::new(pool.clone()));
    Harness {
        seat_lock,
        outbox: tickets.clone(),
        tickets,
        waiting_list: Arc::new(PgWaitingList::new(pool.clone())),
        catalog: Arc::new(PgCatalog::new(pool.clone())),
        wipe_seat_lock: Arc::new(|| -> BoxFuture { Box::pin(async {}) }),
        teardown: None,
    }
}

/// The layout of every chaos sale: 200 seats in zone A (10 rows of 20), 60 GA places, at most 4
/// tickets per customer, a 10-minute payment window (nothing expires during a run).
pub fn layout() -> Layout {
    Layout {
        rows: 10,
        seats_per_row: 20,
        general_capacity: GA_CAPACITY,
        limit: LIMIT,
        hold_time: chrono::TimeDelta::minutes(10),
    }
}

/// Seats of [`layout`].
pub const SEATS: u32 = 200;
/// GA capacity of [`layout`].
pub const GA_CAPACITY: u32 = 60;
/// Per-customer limit of [`layout`].
pub const LIMIT: u32 = 4;

/// Environment variable: set (to anything) to fail on a seat lock left stale by the traffic
/// (see [`lock_disagreements`]) instead of reporting it.
pub const STRICT_LOCK_VAR: &str = "CHAOS_STRICT_LOCK";

/// Every end-of-run check on the database and the answers: the buyers saw no forbidden answer,
/// every acknowledged answer is in the database, the SQL audit and the adapter-level audit. Then
/// the seat lock as the traffic left it is compared with the repository: a disagreement is a
/// known bug (writes to the lock lost in races, see the README's "Correctness" section), printed
/// and counted, and fatal only with `CHAOS_STRICT_LOCK` set. Returns the number of checks and
/// the number of disagreements.
pub async fn check_everything(sale: &Sale, pool: impl Into<AuditPool>) -> (u64, usize) {
    let pool = pool.into();
    let mut checks = sale.check_acknowledged(&pool).await;
    checks += audit_database(&pool, &sale.fixture, GA_CAPACITY, LIMIT).await;
    let active_seats = sale.fixture.audit().await;
    checks += 3;
    let stale = lock_disagreements(&sale.fixture).await;
    checks += u64::from(SEATS) + 1;
    if !stale.is_empty() {
        println!(
            "KNOWN BUG: the seat lock, as the traffic left it, disagrees with the repository on {} seats/zones:\n{}",
            stale.len(),
            stale.join("\n")
        );
        assert!(
            std::env::var_os(STRICT_LOCK_VAR).is_none(),
            "{STRICT_LOCK_VAR} is set and the seat lock is stale on {} seats/zones",
            stale.len()
        );
    }
    println!(
        "{checks} checks passed; {} seats active at the end, {} orders acknowledged",
        active_seats.len(),
        sale.ledger.lock().expect("ledger").purchases.len()
    );
    (checks, stale.len())
}

/// After the lock was rebuilt from the database (a restart, or a forced reload): the lock and the
/// seat map must equal the repository exactly. Returns the number of checks.
pub async fn assert_lock_equals_repository(fixture: &Fixture) -> u64 {
    let wrong = lock_disagreements(fixture).await;
    assert!(
        wrong.is_empty(),
        "AVAILABILITY WRONG after a rebuild: the seat lock disagrees with the repository on {} seats/zones:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    fixture.assert_seat_map_matches_repository().await;
    2 * (u64::from(SEATS) + 1)
}

/// Reloads `lock` from the repository by force (as an operator would after repairing Redis) and
/// checks that the lock and the seat map then equal the repository exactly. Returns the number of
/// checks.
pub async fn reload_and_assert_lock_equals_repository(
    lock: &RedisSeatLock,
    fixture: &Fixture,
) -> u64 {
    let source = RepositoryHolds::new(
        fixture.backends.tickets().clone(),
        fixture.config.hold_grace,
        HashMap::from([("GA".parse().expect("zone"), GA_CAPACITY)]),
    );
    lock.reload(fixture.event.id(), &source)
        .await
        .expect("reload the seat lock from the database");
    assert_lock_equals_repository(fixture).await
}

/// Compares the seat lock's snapshot with the repository's active tickets, seat by seat, and
/// lists every disagreement with both sides' order ids: a seat with an active ticket must
/// be held (unpaid) or sold (paid) by that ticket's order, a seat without one must be free, and
/// the GA places taken must equal the active GA tickets. The lock must be loaded.
pub async fn lock_disagreements(fixture: &Fixture) -> Vec<String> {
    let event = fixture.event.id();
    let backends = &fixture.backends;
    let now = backends.clock().now();
    let snapshot = match backends
        .seat_lock()
        .snapshot(event, now)
        .await
        .expect("snapshot")
    {
        Some(snapshot) => snapshot,
        None => panic!("the seat lock is not loaded at the end of the run"),
    };
    let active = backends
        .tickets()
        .active_tickets(event)
        .await
        .expect("active tickets");
    let by_seat: HashMap<&SeatRef, &ticketing_core::domain::Ticket> = active
        .iter()
        .filter_map(|t| t.seat.as_ref().map(|s| (s, t)))
        .collect();
    let mut wrong = Vec::new();
    for n in 0..SEATS {
        let seat = fixture.seat(n);
        let lock = snapshot.seats.get(&seat);
        let ticket = by_seat.get(&seat);
        let agrees = match (lock, ticket) {
            (None, None) => true,
            (Some(SeatState::Held { order, .. }), Some(t)) => {
                *order == t.order_id && t.status == TicketStatus::PendingPayment
            }
            (Some(SeatState::Sold { order }), Some(t)) => {
                *order == t.order_id && t.status == TicketStatus::Paid
            }
            _ => false,
        };
        if !agrees {
            wrong.push(format!(
                "{seat}: lock {lock:?}, repository {:?}",
                ticket.map(|t| (t.order_id, t.status, t.created_on))
            ));
        }
    }
    let general = active.iter().filter(|t| t.seat.is_none()).count() as u32;
    let taken = snapshot.general.values().sum::<u32>();
    if taken != general {
        wrong.push(format!(
            "GA: lock {taken} places taken, repository {general} active tickets"
        ));
    }
    wrong
}
