//! Bounded growth under a steady sale, opt-in:
//! `cargo test -p ticketing-tests --test soak_growth -- --ignored --nocapture`
//! (`SOAK_ROUNDS`, default 20, and `SOAK_ORDERS` per round, default 200; `SOAK_PRUNE=0` runs the
//! same sale without any pruning, the baseline to compare with).
//!
//! Each round opens a new event whose sale closes 2 s later (hold time 1 s, hold grace 1 s),
//! buys `SOAK_ORDERS` seats with idempotency keys (8 buyers at once), pays half and lets the rest
//! expire; the relay publishes to the Redis stream and the seat lock, the projection consumes
//! the stream, and the pruning runs with a 3 s retention: history pruning, stream trimming and
//! the dropping of closed events' lock state. After each round it prints Redis `used_memory`,
//! key count and stream length, and rows and bytes (data + index, after `ANALYZE`) of the
//! tables. Orders and tickets are the truth and grow; the pruned stores must level off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use ticketing_bench::growth::{Sizes, measure};
use ticketing_core::domain::{
    Currency, CustomerId, EventSpec, HoldExtension, IdempotencyKey, Money, PaymentNotice,
    PaymentRef, Row, SeatRef, Zone, ZoneCode, ZoneKind,
};
use ticketing_core::ports::{EventSink, OutboxStore, SystemClock, TicketRepository};
use ticketing_core::service::{
    Backends, CatalogService, ClosedEventSweep, FanOutSink, HistoryPruner, OutboxRelay,
    PurchaseRequest, RelayConfig, RetentionConfig, SeatLockSync, Selection, ServiceConfig,
    TicketService,
};
use ticketing_redis::testing::{PrivateRedis, connect};
use ticketing_redis::{
    ProjectionConfig, RedisEventSink, RedisEventSinkConfig, RedisProjection, RedisSeatLock,
    RedisSeatLockConfig,
};
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{MySqlCatalog, MySqlTicketRepository};

const PREFIX: &str = "soak:";
fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a soak of about a minute and a half; run with --ignored --nocapture"]
async fn pruned_stores_level_off_under_a_steady_sale() {
    let rounds = env_u32("SOAK_ROUNDS", 20);
    let orders = env_u32("SOAK_ORDERS", 200);
    let prune = env_u32("SOAK_PRUNE", 1) != 0;
    let db = TestDatabase::create(16).await.expect("test database");
    let pool = db.pool().clone();
    let server = PrivateRedis::start().await;
    let url = server.url();
    let repo = Arc::new(MySqlTicketRepository::new(pool.clone()));
    let lock = RedisSeatLock::connect(
        &url,
        RedisSeatLockConfig {
            key_prefix: PREFIX.into(),
            ..RedisSeatLockConfig::default()
        },
    )
    .await
    .expect("lock");
    let backends = Backends::builder()
        .catalog(Arc::new(MySqlCatalog::new(pool.clone())))
        .tickets(repo.clone())
        .seat_lock(Arc::new(lock))
        .build()
        .expect("backends");
    let config = ServiceConfig {
        hold_grace: Duration::from_secs(1),
        payment_grace: Duration::from_millis(500),
        // No order is extended here; with extensions on, an event's lock state would wait for
        // the policy's cap (30 minutes) before it is dropped.
        hold_extension: HoldExtension::disabled(),
        ..ServiceConfig::default()
    };
    let tickets = Arc::new(TicketService::new(backends.clone(), config.clone()));
    let catalog = CatalogService::new(backends.clone());
    let sink = Arc::new(
        RedisEventSink::connect(
            &url,
            RedisEventSinkConfig {
                key_prefix: PREFIX.into(),
                max_len: None,
            },
        )
        .await
        .expect("sink"),
    );
    let sinks: Vec<Arc<dyn EventSink>> = vec![
        sink.clone(),
        Arc::new(SeatLockSync::new(backends.clone(), config.clone())),
    ];
    let relay = OutboxRelay::new(
        repo.clone(),
        Arc::new(FanOutSink::new(sinks)),
        Arc::new(SystemClock),
        RelayConfig::default(),
    )
    .expect("relay");
    let projection = RedisProjection::connect(
        &url,
        ProjectionConfig {
            key_prefix: PREFIX.into(),
            block: Duration::from_millis(10),
            ..ProjectionConfig::default()
        },
    )
    .await
    .expect("projection");
    projection.ensure_group().await.expect("group");
    let retention = RetentionConfig {
        retention: Duration::from_secs(3),
        ..RetentionConfig::default()
    };
    let pruner = HistoryPruner::new(&backends, repo.clone(), retention).expect("pruner");
    let closed = ClosedEventSweep::new(backends.clone(), &config);
    let mut redis = connect(&url).await;
    let zone = ZoneCode::new("A").unwrap();
    let seats_per_row = 50;
    let rows: Vec<Row> = (1..=orders.div_ceil(seats_per_row))
        .map(|r| Row {
            label: r.to_string().parse().unwrap(),
            seats: seats_per_row,
        })
        .collect();
    let venue = catalog
        .create_venue(
            "Soak Hall",
            vec![Zone {
                code: zone.clone(),
                name: "Hall".into(),
                kind: ZoneKind::Seated { rows },
            }],
        )
        .await
        .expect("venue");
    let eur = Currency::new("EUR").unwrap();
    let started = Instant::now();
    let mut history: Vec<Sizes> = Vec::new();
    println!("round | {}", Sizes::header());
    for round in 0..rounds {
        let now = backends.clock().now();
        let event = catalog
            .create_event(EventSpec {
                name: format!("Soak {round}"),
                venue_id: venue.id(),
                sale_opens: now - TimeDelta::hours(1),
                sale_closes: now + TimeDelta::seconds(2),
                prices: [(zone.clone(), Money::new(1_000, eur))].into(),
                hold_time: TimeDelta::seconds(1),
                per_customer_limit: 10,
            })
            .await
            .expect("event");
        let mut buyers = Vec::new();
        for buyer in 0..8u32 {
            let tickets = tickets.clone();
            let zone = zone.clone();
            let event = event.id();
            buyers.push(tokio::spawn(async move {
                let mut paid = 0;
                for n in (buyer..orders).step_by(8) {
                    let seat = SeatRef::new(
                        zone.clone(),
                        (n / seats_per_row + 1).to_string().parse().unwrap(),
                        n % seats_per_row + 1,
                    )
                    .unwrap();
                    let order = tickets
                        .purchase(PurchaseRequest {
                            event,
                            customer: CustomerId::new(format!("c{round}-{n}")).unwrap(),
                            selection: Selection::Seats(vec![seat]),
                            idempotency_key: Some(IdempotencyKey::new(format!("k{n}")).unwrap()),
                            voucher: None,
                            channel: None,
                        })
                        .await
                        .expect("purchase");
                    if n % 2 == 0 {
                        tickets
                            .pay(PaymentNotice::for_order(
                                &order,
                                PaymentRef::new(format!("p{round}-{n}")).unwrap(),
                            ))
                            .await
                            .expect("pay");
                        paid += 1;
                    }
                }
                paid
            }));
        }
        for buyer in buyers {
            buyer.await.expect("buyer");
        }
        // Past the sale's end plus hold time plus grace: the unpaid orders expire, the event
        // is over.
        tokio::time::sleep(Duration::from_millis(4_200)).await;
        tickets.expire_due().await.expect("expiry sweep");
        let head = repo.outbox_head().await.unwrap().unwrap_or(0);
        while repo.sent_up_to().await.unwrap() < head {
            relay.run_once().await.expect("relay round");
        }
        while projection.last_applied().await.unwrap() < head {
            projection.run_once().await.expect("projection round");
        }
        if prune {
            sink.trim_acknowledged().await.expect("trim");
            pruner.prune_once().await.expect("prune");
            closed.forget_closed_events().await.expect("forget");
        }
        let sizes = measure(&pool, &mut redis, PREFIX).await.expect("measure");
        println!("{round:>5} | {}", sizes.row());
        history.push(sizes);
    }
    println!(
        "{rounds} rounds of {orders} orders in {:?}",
        started.elapsed()
    );
    let last = history.last().expect("a round ran");
    let total = i64::from(rounds * orders);
    assert_eq!(last.tables[2].0, total, "orders are the truth and stay");
    if !prune {
        db.drop_database().await.expect("drop");
        return;
    }
    // Retention 3 s, a round takes more than 4 s: at most the last round's history is kept.
    let per_round = i64::from(orders) * 3; // reserved + paid or expired, and a margin
    assert!(
        last.tables[0].0 <= per_round,
        "outbox rows: {}",
        last.tables[0].0
    );
    assert!(
        last.tables[1].0 <= i64::from(orders),
        "idempotency rows: {}",
        last.tables[1].0
    );
    assert!(
        last.stream_len <= per_round as u64,
        "stream length: {}",
        last.stream_len
    );
    // Every event is over by the end of its round: no seat-lock key is left.
    assert_eq!(last.lock_keys, 0, "seat-lock keys of closed events");
    db.drop_database().await.expect("drop");
}
