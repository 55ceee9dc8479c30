//! `DatabaseClock`: every server judges deadlines by the database's time, so a server whose own
//! clock is a minute off neither expires orders early nor accepts payments late.
//!
//! The database runs on this machine, so its clock is the system clock; a server's skew is
//! injected as the local clock the `DatabaseClock` adds its offset to.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::MySqlPool;
use support::{customer, database, eur, zone};
use ticketing_core::Error;
use ticketing_core::domain::{
    Event, EventSpec, Order, PaymentNotice, PaymentOutcome, PaymentRef, Row, SeatRef, TicketStatus,
    Zone, ZoneKind,
};
use ticketing_core::ports::{Clock, ManualClock, SystemClock};
use ticketing_core::service::{
    Backends, CatalogService, PurchaseRequest, Selection, ServiceConfig, TicketService,
};
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{
    DatabaseClock, DatabaseClockConfig, MySqlCatalog, MySqlSeatLock, MySqlTicketRepository,
};

/// How far a server's clock is off in these tests.
const SKEW: TimeDelta = TimeDelta::seconds(60);

/// How far a `DatabaseClock` may read off the database here: the sampling error is well under a
/// millisecond on one machine, this leaves room for a loaded CI host and is still 1/60 of the
/// skew it corrects.
const TOLERANCE: TimeDelta = TimeDelta::seconds(1);

/// How long past a deadline (by the database) the two-server tests act, so that a reading
/// within the sampling error of the database is past it too.
const SAMPLING_MARGIN: TimeDelta = TimeDelta::milliseconds(200);

/// The system clock, off by a fixed span: a server whose clock is wrong.
struct SkewedClock(TimeDelta);

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

/// The database's own time.
async fn database_now(pool: &MySqlPool) -> DateTime<Utc> {
    let now: chrono::NaiveDateTime = sqlx::query_scalar("SELECT UTC_TIMESTAMP(6)")
        .fetch_one(pool)
        .await
        .expect("database time");
    now.and_utc()
}

/// Waits until the database's clock is past `instant`.
async fn wait_for_database(pool: &MySqlPool, instant: DateTime<Utc>) {
    while database_now(pool).await <= instant {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `DatabaseClock` over `local`.
async fn database_clock(db: &TestDatabase, local: Arc<dyn Clock>) -> Arc<DatabaseClock> {
    let config = DatabaseClockConfig {
        local,
        ..DatabaseClockConfig::default()
    };
    DatabaseClock::start(db.pool().clone(), config)
        .await
        .expect("database clock")
}

/// Asserts that `clock` reads the database's time within [`TOLERANCE`].
async fn assert_tracks_database(pool: &MySqlPool, clock: &DatabaseClock) {
    let before = database_now(pool).await;
    let reading = clock.now();
    let after = database_now(pool).await;
    assert!(
        reading >= before - TOLERANCE && reading <= after + TOLERANCE,
        "clock read {reading}, the database {before} .. {after} (offset {})",
        clock.offset()
    );
}

#[tokio::test]
async fn follows_the_database_whichever_way_the_local_clock_is_off() {
    let db = database(2).await;
    for skew in [SKEW, -SKEW] {
        let clock = database_clock(&db, Arc::new(SkewedClock(skew))).await;
        assert!(
            (clock.offset() + skew).abs() < TOLERANCE,
            "skew {skew}: offset {}",
            clock.offset()
        );
        assert!(clock.uncertainty() < TOLERANCE, "{clock:?}");
        assert_tracks_database(db.pool(), &clock).await;
    }
    // The default local clock: the system's, read through the monotonic clock.
    let clock = DatabaseClock::start(db.pool().clone(), DatabaseClockConfig::default())
        .await
        .unwrap();
    assert!(clock.offset().abs() < TOLERANCE, "{clock:?}");
    assert_tracks_database(db.pool(), &clock).await;
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn never_goes_backwards_when_the_local_clock_is_stepped_back() {
    let db = database(2).await;
    let local = Arc::new(ManualClock::new(Utc::now()));
    let clock = database_clock(&db, local.clone()).await;
    let first = clock.now();
    local.advance(-TimeDelta::seconds(5));
    assert_eq!(clock.now(), first, "stands still until time catches up");
    // A sync measures the new offset; the reading is the database's again, past `first`.
    clock.sync().await.unwrap();
    assert!(clock.now() >= first);
    assert_tracks_database(db.pool(), &clock).await;
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn resyncs_in_the_background_after_the_local_clock_jumps() {
    let db = database(2).await;
    let local = Arc::new(ManualClock::new(Utc::now()));
    let config = DatabaseClockConfig {
        refresh: Duration::from_millis(100),
        local: local.clone(),
        ..DatabaseClockConfig::default()
    };
    let clock = DatabaseClock::start(db.pool().clone(), config)
        .await
        .unwrap();
    // The manual clock stands still while real time runs, and then jumps a minute ahead.
    local.advance(SKEW);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (clock.offset() + SKEW).abs() >= TOLERANCE {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no background sync: {clock:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_tracks_database(db.pool(), &clock).await;
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_zero_refresh_is_a_configuration_error() {
    let db = database(1).await;
    let config = DatabaseClockConfig {
        refresh: Duration::ZERO,
        ..DatabaseClockConfig::default()
    };
    let error = DatabaseClock::start(db.pool().clone(), config)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Config { .. }), "{error:?}");
    db.drop_database().await.unwrap();
}

/// Two servers over one MySQL database, one with a clock a minute ahead, one a minute behind,
/// selling an event with a three-second payment window.
struct TwoServers {
    db: TestDatabase,
    event: Event,
    ahead: TicketService,
    behind: TicketService,
    config: ServiceConfig,
}

impl TwoServers {
    /// The servers read `ahead` and `behind` as their clocks.
    async fn new(db: TestDatabase, ahead: Arc<dyn Clock>, behind: Arc<dyn Clock>) -> Self {
        let pool = db.pool().clone();
        let backends = Backends::builder()
            .catalog(Arc::new(MySqlCatalog::new(pool.clone())))
            .tickets(Arc::new(MySqlTicketRepository::new(pool.clone())))
            .seat_lock(Arc::new(MySqlSeatLock::new(pool)))
            .clock(Arc::new(SystemClock))
            .build()
            .unwrap();
        let catalog = CatalogService::new(backends.clone());
        let venue = catalog
            .create_venue(
                "Skew Hall",
                vec![Zone {
                    code: zone("A"),
                    name: "Stalls".into(),
                    kind: ZoneKind::Seated {
                        rows: vec![Row {
                            label: "1".parse().unwrap(),
                            seats: 10,
                        }],
                    },
                }],
            )
            .await
            .unwrap();
        let now = Utc::now();
        let event = catalog
            .create_event(EventSpec {
                name: "Skew Night".into(),
                venue_id: venue.id(),
                sale_opens: now - TimeDelta::hours(1),
                sale_closes: now + TimeDelta::days(1),
                prices: BTreeMap::from([(zone("A"), eur(2_500))]),
                hold_time: TimeDelta::seconds(3),
                per_customer_limit: 4,
            })
            .await
            .unwrap();
        let config = ServiceConfig {
            hold_grace: Duration::from_secs(2),
            payment_grace: Duration::from_secs(1),
            ..ServiceConfig::default()
        };
        let server = |clock| {
            let backends = backends.to_builder().clock(clock).build().unwrap();
            TicketService::new(backends, config.clone())
        };
        Self {
            ahead: server(ahead),
            behind: server(behind),
            db,
            event,
            config,
        }
    }

    /// Seat `n` of row 1, bought by its own customer through `server`.
    async fn buy(&self, server: &TicketService, n: u32) -> Order {
        let seat: SeatRef = format!("A:1:{n}").parse().unwrap();
        server
            .purchase(PurchaseRequest {
                event: self.event.id(),
                customer: customer(&format!("buyer{n}")),
                selection: Selection::Seats(vec![seat]),
                idempotency_key: None,
                voucher: None,
                channel: None,
            })
            .await
            .unwrap()
    }

    async fn status(&self, order: &Order) -> TicketStatus {
        let repo = MySqlTicketRepository::new(self.db.pool().clone());
        ticketing_core::ports::TicketRepository::order(&repo, order.id)
            .await
            .unwrap()
            .unwrap()
            .status
    }

    fn payment_grace(&self) -> TimeDelta {
        TimeDelta::from_std(self.config.payment_grace).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_a_minute_apart_on_the_database_clock_neither_expire_early_nor_pay_late() {
    let db = database(8).await;
    let ahead = database_clock(&db, Arc::new(SkewedClock(SKEW))).await;
    let behind = database_clock(&db, Arc::new(SkewedClock(-SKEW))).await;
    let servers = TwoServers::new(db, ahead, behind).await;
    let pool = servers.db.pool().clone();

    let bought_at = database_now(&pool).await;
    let first = servers.buy(&servers.behind, 1).await;
    let second = servers.buy(&servers.ahead, 2).await;
    // Both deadlines are the database's time of purchase plus the payment window.
    let hold = servers.event.hold_time();
    for order in [&first, &second] {
        let from_database = order.expires_at - hold - bought_at;
        assert!(
            from_database > -TOLERANCE && from_database < TOLERANCE,
            "deadline {} for a purchase at {bought_at}",
            order.expires_at
        );
    }

    // The server a minute ahead sweeps at once: nothing is due yet.
    assert_eq!(servers.ahead.expire_due().await.unwrap(), 0);
    assert_eq!(servers.status(&first).await, TicketStatus::PendingPayment);

    // A payment that reaches the server a minute behind after the deadline is too late.
    wait_for_database(&pool, second.expires_at + SAMPLING_MARGIN).await;
    let late = PaymentNotice::for_order(&second, PaymentRef::new("late").unwrap());
    let answer = servers.behind.pay(late).await;
    assert!(
        matches!(answer, Err(Error::PaymentTooLate { .. })),
        "{answer:?}"
    );
    let ledger = servers.behind.payments_of(second.id).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].outcome, PaymentOutcome::TooLate);

    // Once deadline and grace have passed, the server a minute behind expires both on time.
    let due = first.expires_at.max(second.expires_at) + servers.payment_grace();
    wait_for_database(&pool, due + SAMPLING_MARGIN).await;
    assert_eq!(servers.behind.expire_due().await.unwrap(), 2);
    assert_eq!(servers.status(&first).await, TicketStatus::Expired);
    assert_eq!(servers.status(&second).await, TicketStatus::Expired);
    servers.db.drop_database().await.unwrap();
}

/// The negative control: the same sale on the servers' own skewed clocks goes wrong both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_a_minute_apart_on_their_own_clocks_expire_early_and_pay_late() {
    let servers = TwoServers::new(
        database(8).await,
        Arc::new(SkewedClock(SKEW)),
        Arc::new(SkewedClock(-SKEW)),
    )
    .await;
    let pool = servers.db.pool().clone();
    let hold = servers.event.hold_time();

    let bought_at = database_now(&pool).await;
    let first = servers.buy(&servers.behind, 1).await;
    let second = servers.buy(&servers.ahead, 2).await;

    // The server ahead expires the first order while its payment window is still open.
    assert!(database_now(&pool).await < bought_at + hold);
    assert_eq!(servers.ahead.expire_due().await.unwrap(), 1);
    assert_eq!(servers.status(&first).await, TicketStatus::Expired);

    // The server behind accepts a payment for the second order after its real deadline.
    wait_for_database(&pool, bought_at + hold + TOLERANCE).await;
    let late = PaymentNotice::for_order(&second, PaymentRef::new("late").unwrap());
    let paid = servers.behind.pay(late).await.unwrap();
    assert_eq!(paid.status, TicketStatus::Paid);
    servers.db.drop_database().await.unwrap();
}
