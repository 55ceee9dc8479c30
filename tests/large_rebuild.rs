//! A seat-lock rebuild of a large event while buyers retry, on MariaDB and a private Redis (so
//! that its `SLOWLOG` holds this test's calls alone).
//!
//! The active tickets are written straight into the database in multi-row INSERTs (one unpaid or
//! paid order per ticket, on every other seat), the lock is loaded, its state dropped with
//! `FLUSHALL`, and the event rebuilt by a loader while buyers, two per seat, buy the free seats
//! and try taken ones, retrying while the lock answers `Unavailable`. The test counts: no seat
//! sold twice, no taken seat sold, every buyer served after the rebuild, the rebuilt lock holding
//! exactly the repository's active seats. It prints the rebuild times and the script calls
//! `SLOWLOG` saw during the rebuild under buyers.
//!
//! - `cargo test -p ticketing-tests --test large_rebuild` runs 20,000 active tickets of a
//!   40,000-seat event in pages of 1,000 tickets and chunks of 400 seats: 21 pages, 61 chunk
//!   calls, each renewing the lease, in a few seconds.
//! - `cargo test -p ticketing-tests --test large_rebuild -- --ignored --nocapture` runs the
//!   1,000,000-seat event with 500,000 active tickets and the default page and chunk sizes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{MySql, MySqlPool, QueryBuilder};
use ticketing_core::Error;
use ticketing_core::domain::{
    Currency, CustomerId, Event, EventSpec, Money, Row, SeatRef, Venue, Zone, ZoneCode, ZoneKind,
};
use ticketing_core::ports::SeatLock;
use ticketing_core::service::{
    Backends, CatalogService, PurchaseRequest, RepositoryHolds, Selection, ServiceConfig,
    TicketService,
};
use ticketing_redis::redis::aio::ConnectionManager;
use ticketing_redis::redis::{self, Value};
use ticketing_redis::testing::{PrivateRedis, connect};
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{MySqlCatalog, MySqlTicketRepository};
use uuid::Uuid;

/// The size of one run and the rebuild's settings.
#[derive(Debug, Clone, Copy)]
struct Scale {
    rows: u32,
    seats_per_row: u32,
    /// Active tickets, on seats 0, 2, 4, …: every other seat stays free.
    active: u32,
    page: u32,
    chunk: usize,
    lease: Duration,
    /// Buyers, two per sequence of free seats.
    buyers: usize,
    /// Purchases each buyer makes.
    wins: u32,
    /// `slowlog-log-slower-than`: 0 logs every call, and every command a script runs too, which
    /// slows the scripts down; a threshold keeps the timings true.
    slowlog_micros: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_20_000_ticket_event_rebuilds_in_pages_and_chunks_while_buyers_retry() {
    let scale = Scale {
        rows: 40,
        seats_per_row: 1_000,
        active: 20_000,
        page: 1_000,
        chunk: 400,
        lease: Duration::from_millis(500),
        buyers: 16,
        wins: 3,
        slowlog_micros: 0,
    };
    let report = run(scale).await;
    // 20 full pages of 1,000 seats in chunks of 400, 400 and 200, and the empty page after the
    // last full one (a call that only renews the lease): one pass, no call above the chunk.
    assert_eq!(report.chunk_calls, 20 * 3 + 1, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "1,000,000 seats, 500,000 active tickets: minutes; run with -- --ignored --nocapture"]
async fn a_million_seat_event_rebuilds_while_buyers_retry() {
    let defaults = RedisSeatLockConfig::default();
    let scale = Scale {
        rows: 1_000,
        seats_per_row: 1_000,
        active: 500_000,
        page: ServiceConfig::default().rebuild_page,
        chunk: defaults.rebuild_chunk,
        lease: defaults.rebuild_lock_ttl,
        buyers: 32,
        wins: 5,
        slowlog_micros: 200,
    };
    run(scale).await;
}

/// What a run measured.
#[derive(Debug)]
struct Report {
    /// Chunk script calls of the rebuild under buyers.
    chunk_calls: usize,
}

async fn run(scale: Scale) -> Report {
    let db = TestDatabase::create(32)
        .await
        .unwrap_or_else(|e| panic!("a test database (set TICKETING_MYSQL_URL): {e}"));
    let redis = PrivateRedis::start_with(&[
        "--slowlog-log-slower-than",
        &scale.slowlog_micros.to_string(),
        "--slowlog-max-len",
        "1000000",
    ])
    .await;
    let config = RedisSeatLockConfig {
        key_prefix: "large:".into(),
        rebuild_chunk: scale.chunk,
        rebuild_lock_ttl: scale.lease,
        rebuild_wait: Duration::from_secs(2),
        ..Default::default()
    };
    let lock: Arc<dyn SeatLock> =
        Arc::new(RedisSeatLock::new(connect(&redis.url()).await, config.clone()).expect("config"));
    let service_config = ServiceConfig {
        rebuild_page: scale.page,
        ..ServiceConfig::default()
    };
    let backends = Backends::builder()
        .catalog(Arc::new(MySqlCatalog::new(db.pool().clone())))
        .tickets(Arc::new(MySqlTicketRepository::new(db.pool().clone())))
        .seat_lock(lock.clone())
        .build()
        .expect("backends");
    let (venue, event) = create_event(&backends, scale).await;
    let started = Instant::now();
    insert_active_tickets(db.pool(), &venue, &event, scale).await;
    println!(
        "inserted {} active tickets of {} seats in {:?}",
        scale.active,
        scale.rows * scale.seats_per_row,
        started.elapsed()
    );

    // The loader has all the time it needs; buyers give up waiting after 2 s and retry.
    let loader = RedisSeatLock::new(
        connect(&redis.url()).await,
        RedisSeatLockConfig {
            rebuild_wait: Duration::from_secs(600),
            ..config
        },
    )
    .expect("config");
    let source = || {
        RepositoryHolds::new(
            backends.tickets().clone(),
            service_config.hold_grace,
            HashMap::new(),
        )
        .with_page_size(scale.page)
    };
    let cold = Instant::now();
    loader.rebuild(event.id(), &source()).await.expect("load");
    let cold = cold.elapsed();

    let mut raw = connect(&redis.url()).await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async(&mut raw)
        .await
        .unwrap();

    let tickets = TicketService::new(backends.clone(), service_config.clone());
    let rebuilt = Arc::new(AtomicBool::new(false));
    let buyers = spawn_buyers(&tickets, &event, scale, rebuilt.clone());
    let warm = Instant::now();
    let source = source();
    loader
        .rebuild(event.id(), &source)
        .await
        .expect("rebuild under buyers");
    let warm = warm.elapsed();
    rebuilt.store(true, Ordering::SeqCst);
    source
        .catch_up(&loader, event.id(), backends.clock().now())
        .await;
    let slowlog = Slowlog::read(&mut raw).await;
    println!(
        "rebuild of {} active tickets (pages of {}, chunks of {}): {cold:?} alone, {warm:?} \
         with {} buyers retrying",
        scale.active, scale.page, scale.chunk, scale.buyers
    );
    println!("{slowlog}");

    let mut sold: HashMap<SeatRef, u32> = HashMap::new();
    let (mut purchases, mut unavailable) = (0, 0);
    for buyer in buyers {
        let outcome = buyer.await.expect("buyer");
        unavailable += outcome.unavailable;
        assert_eq!(
            outcome.wins_after_rebuild, scale.wins,
            "every buyer is served after the rebuild: {outcome:?}"
        );
        purchases += outcome.seats.len();
        for seat in outcome.seats {
            *sold.entry(seat).or_default() += 1;
        }
    }
    println!("{purchases} purchases; {unavailable} answers Unavailable (each retried)");
    let oversold: Vec<_> = sold.iter().filter(|(_, n)| **n > 1).collect();
    assert!(oversold.is_empty(), "seats sold twice: {oversold:?}");
    assert_eq!(
        sold.len(),
        purchases,
        "every purchase has a seat of its own"
    );
    for seat in sold.keys() {
        assert_eq!(
            seat.number % 2,
            0,
            "only free seats (odd indexes, even numbers) are sold: {seat}"
        );
    }
    let active = count_active(db.pool(), &event).await;
    assert_eq!(
        active,
        u64::from(scale.active) + sold.len() as u64,
        "the database holds the inserted tickets and every purchase, nothing else"
    );
    // Every hold lasts for minutes: the seat hash has one entry per active seat. (Counted in
    // Redis: a snapshot of 500,000 seats is one reply of tens of megabytes.)
    let held: u64 = redis::cmd("HLEN")
        .arg(format!("large:{{ev:{}}}:seats", event.id()))
        .query_async(&mut raw)
        .await
        .expect("HLEN");
    assert_eq!(
        held, active,
        "the rebuilt lock holds exactly the active seats"
    );
    db.drop_database().await.expect("drop");
    Report {
        chunk_calls: slowlog.chunks.calls,
    }
}

async fn create_event(backends: &Backends, scale: Scale) -> (Venue, Event) {
    let catalog = CatalogService::new(backends.clone());
    let zone = ZoneCode::new("A").expect("zone");
    let rows = (1..=scale.rows)
        .map(|r| Row {
            label: r.to_string().parse().expect("row label"),
            seats: scale.seats_per_row,
        })
        .collect();
    let venue = catalog
        .create_venue(
            "Stadium",
            vec![Zone {
                code: zone.clone(),
                name: "Bowl".into(),
                kind: ZoneKind::Seated { rows },
            }],
        )
        .await
        .expect("venue");
    let now = backends.clock().now();
    let event = catalog
        .create_event(EventSpec {
            name: "Final".into(),
            venue_id: venue.id(),
            sale_opens: now - TimeDelta::hours(1),
            sale_closes: now + TimeDelta::days(1),
            prices: [(zone, Money::new(5_000, eur()))].into(),
            hold_time: TimeDelta::minutes(10),
            per_customer_limit: 10,
        })
        .await
        .expect("event");
    (venue, event)
}

fn eur() -> Currency {
    Currency::new("EUR").expect("EUR")
}

/// Seat `n` (0-based) of zone A, row by row.
fn seat(scale: Scale, n: u32) -> SeatRef {
    let row = (n / scale.seats_per_row + 1)
        .to_string()
        .parse()
        .expect("row");
    SeatRef::new(
        ZoneCode::new("A").expect("zone"),
        row,
        n % scale.seats_per_row + 1,
    )
    .expect("seat")
}

/// Rows per multi-row INSERT: 14 placeholders a ticket, within the 65,535 of a statement.
const INSERT_ROWS: u32 = 4_000;

/// One order of one ticket on each of the seats 0, 2, 4, …: even orders paid, odd ones unpaid
/// with their deadline ahead, in multi-row INSERTs on four connections at once.
async fn insert_active_tickets(pool: &MySqlPool, venue: &Venue, event: &Event, scale: Scale) {
    let now = Utc::now();
    let batches: Vec<(u32, u32)> = (0..scale.active)
        .step_by(INSERT_ROWS as usize)
        .map(|from| (from, (from + INSERT_ROWS).min(scale.active)))
        .collect();
    let batches = Arc::new(tokio::sync::Mutex::new(batches.into_iter()));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (pool, batches) = (pool.clone(), batches.clone());
            let (venue, event) = (venue.id().as_uuid(), event.id().as_uuid());
            tokio::spawn(async move {
                loop {
                    let Some((from, to)) = batches.lock().await.next() else {
                        return;
                    };
                    let rows: Vec<BulkTicket> =
                        (from..to).map(|k| BulkTicket::new(scale, k, now)).collect();
                    let mut tx = pool.begin().await.expect("begin");
                    insert_orders(event, &rows)
                        .build()
                        .execute(&mut *tx)
                        .await
                        .expect("orders");
                    insert_tickets(venue, event, &rows)
                        .build()
                        .execute(&mut *tx)
                        .await
                        .expect("tickets");
                    tx.commit().await.expect("commit");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
}

/// The k-th inserted ticket and its order.
struct BulkTicket {
    id: Uuid,
    order: Uuid,
    seat: String,
    customer: String,
    status: &'static str,
    expires_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    payment_ref: Option<String>,
}

impl BulkTicket {
    fn new(scale: Scale, k: u32, now: DateTime<Utc>) -> Self {
        let paid = k.is_multiple_of(2);
        Self {
            id: Uuid::now_v7(),
            order: Uuid::now_v7(),
            seat: seat(scale, 2 * k).key(),
            customer: format!("bulk-{k}"),
            status: if paid { "PAID" } else { "PENDING_PAYMENT" },
            expires_at: now + TimeDelta::minutes(10),
            paid_at: paid.then_some(now),
            payment_ref: paid.then(|| format!("ref-{k}")),
        }
    }
}

fn insert_orders(event: Uuid, rows: &[BulkTicket]) -> QueryBuilder<MySql> {
    let mut insert =
        QueryBuilder::new("INSERT INTO orders (id, event_id, customer_id, status, expires_at) ");
    insert.push_values(rows, |mut row, t| {
        row.push_bind(t.order)
            .push_bind(event)
            .push_bind(&t.customer)
            .push_bind(t.status)
            .push_bind(t.expires_at);
    });
    insert
}

fn insert_tickets(venue: Uuid, event: Uuid, rows: &[BulkTicket]) -> QueryBuilder<MySql> {
    let mut insert = QueryBuilder::new(
        "INSERT INTO tickets (id, order_id, event_id, venue_id, zone_code, seat_key, \
         customer_id, price_minor, currency, status, created_on, expires_at, paid_at, \
         payment_ref) ",
    );
    insert.push_values(rows, |mut row, t| {
        row.push_bind(t.id)
            .push_bind(t.order)
            .push_bind(event)
            .push_bind(venue)
            .push_bind("A")
            .push_bind(&t.seat)
            .push_bind(&t.customer)
            .push_bind(5_000i64)
            .push_bind("EUR")
            .push_bind(t.status)
            .push_bind(t.expires_at - TimeDelta::minutes(10))
            .push_bind(t.expires_at)
            .push_bind(t.paid_at)
            .push_bind(&t.payment_ref);
    });
    insert
}

async fn count_active(pool: &MySqlPool, event: &Event) -> u64 {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tickets WHERE event_id = ? \
         AND status IN ('PENDING_PAYMENT', 'PAID')",
    )
    .bind(event.id().as_uuid())
    .fetch_one(pool)
    .await
    .expect("count");
    u64::try_from(n).expect("a count")
}

/// What one buyer did.
#[derive(Debug, Default)]
struct BuyerOutcome {
    seats: Vec<SeatRef>,
    wins_after_rebuild: u32,
    unavailable: u64,
}

/// Buyers in pairs: both of a pair go through the same free seats (odd indexes) in the same
/// order, so every seat is contested; every fifth try is a taken seat (even index), which must be
/// refused. A buyer retries a seat while the answer is `Unavailable` (the lock is rebuilding).
fn spawn_buyers(
    tickets: &TicketService,
    event: &Event,
    scale: Scale,
    rebuilt: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<BuyerOutcome>> {
    let customers = Arc::new(AtomicU64::new(0));
    (0..scale.buyers)
        .map(|b| {
            let (tickets, event, rebuilt) = (tickets.clone(), event.id(), rebuilt.clone());
            let customers = customers.clone();
            tokio::spawn(async move {
                let pair = (b / 2) as u32;
                let free = |j: u32| seat(scale, 2 * (pair * 1_000 + j) + 1);
                let taken = |j: u32| seat(scale, 2 * (pair * 1_000 + j));
                let mut outcome = BuyerOutcome::default();
                let deadline = Instant::now() + Duration::from_secs(600);
                let mut j = 0;
                let mut tries = 0u32;
                while outcome.wins_after_rebuild < scale.wins {
                    assert!(Instant::now() < deadline, "buyer {b} starved: {outcome:?}");
                    tries += 1;
                    let wants_taken = tries.is_multiple_of(5);
                    let wanted = if wants_taken { taken(j) } else { free(j) };
                    let customer = customers.fetch_add(1, Ordering::Relaxed);
                    let request = PurchaseRequest {
                        event,
                        customer: CustomerId::new(format!("buyer-{customer}")).expect("customer"),
                        selection: Selection::Seats(vec![wanted.clone()]),
                        idempotency_key: None,
                        voucher: None,
                        channel: None,
                    };
                    let done = rebuilt.load(Ordering::SeqCst);
                    match tickets.purchase(request).await {
                        Ok(_) => {
                            assert!(!wants_taken, "a taken seat was sold again: {wanted}");
                            outcome.seats.push(wanted);
                            if done {
                                outcome.wins_after_rebuild += 1;
                            }
                            j += 1;
                        }
                        Err(Error::SeatsTaken { .. }) if wants_taken => {}
                        Err(Error::SeatsTaken { .. }) => j += 1, // the other of the pair won
                        Err(Error::Unavailable { .. }) => {
                            outcome.unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(other) => panic!("buyer {b}: unexpected {other}"),
                    }
                }
                outcome
            })
        })
        .collect()
}

/// The logged calls of one kind in `SLOWLOG`.
#[derive(Debug, Default)]
struct Longest {
    calls: usize,
    max_micros: i64,
    micros: Vec<i64>,
}

impl Longest {
    fn add(&mut self, micros: i64) {
        self.calls += 1;
        self.max_micros = self.max_micros.max(micros);
        self.micros.push(micros);
    }

    /// The `p`-th percentile of the logged durations, in µs.
    fn percentile(&self, p: usize) -> i64 {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        sorted
            .get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    }
}

/// The calls `SLOWLOG` logged, by kind: the rebuild's chunk and finishing scripts, the other
/// scripts (holds, claims, releases) and the commands scripts ran (logged one by one at threshold
/// 0, inside the script's own time).
#[derive(Debug, Default)]
struct Slowlog {
    chunks: Longest,
    finishes: Longest,
    scripts: Longest,
    longest_script: String,
}

impl Slowlog {
    /// Every logged call (the log keeps them all at `slowlog-log-slower-than 0`), sorted by the
    /// script's keys: a chunk call has the lease first and five keys, the finishing call ten.
    async fn read(conn: &mut ConnectionManager) -> Self {
        let entries: Value = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query_async(conn)
            .await
            .expect("SLOWLOG GET");
        let Value::Array(entries) = entries else {
            panic!("SLOWLOG GET: {entries:?}");
        };
        let mut log = Slowlog::default();
        for entry in entries {
            let Value::Array(fields) = entry else {
                continue;
            };
            let (Some(Value::Int(micros)), Some(Value::Array(args))) =
                (fields.get(2), fields.get(3))
            else {
                continue;
            };
            let args: Vec<String> = args
                .iter()
                .map(|a| match a {
                    Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    other => format!("{other:?}"),
                })
                .collect();
            let kind = (
                args.first().map(String::as_str),
                args.get(2).map(String::as_str),
                args.get(3).is_some_and(|k| k.ends_with(":rebuild-lock")),
            );
            match kind {
                (Some("SLOWLOG"), _, _) => {}
                (Some("EVALSHA"), Some("5"), true) => log.chunks.add(*micros),
                (Some("EVALSHA"), Some("10"), _) => log.finishes.add(*micros),
                (Some("EVALSHA" | "EVAL"), _, _) => {
                    if *micros > log.scripts.max_micros {
                        log.longest_script =
                            args.iter().take(4).cloned().collect::<Vec<_>>().join(" ");
                    }
                    log.scripts.add(*micros);
                }
                _ => {}
            }
        }
        log
    }
}

impl std::fmt::Display for Slowlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SLOWLOG during the rebuild under buyers: {} chunk calls logged, median {} µs, \
             p99 {} µs, longest {} µs; {} finishing call(s), longest {} µs; {} other script \
             calls logged, longest {} µs ({})",
            self.chunks.calls,
            self.chunks.percentile(50),
            self.chunks.percentile(99),
            self.chunks.max_micros,
            self.finishes.calls,
            self.finishes.max_micros,
            self.scripts.calls,
            self.scripts.max_micros,
            self.longest_script
        )
    }
}
