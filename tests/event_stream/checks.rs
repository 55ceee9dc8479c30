// The event-stream checks, shared by `event_stream.rs` (MySQL) and `event_stream_postgres.rs`
// (PostgreSQL), which include this file after defining `Repo`, `Db` and `backend`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use ticketing_core::domain::{OrderId, OutboxKind, PaymentRef, TicketStatus, ZoneCode};
use ticketing_core::ports::{Clock, OutboxStore, SystemClock, TicketRepository};
use ticketing_core::service::{OutboxRelay, RelayConfig};
use ticketing_core::testkit::{Fixture, Harness, Layout};
use ticketing_redis::testing::{PrivateRedis, TestRedis, connect};
use ticketing_redis::{
    EventTotals, ProjectionConfig, RedisEventSink, RedisEventSinkConfig, RedisProjection,
    ZoneTotals, redis,
};
use tokio::task::JoinHandle;

/// Upper bound for waiting on convergence, so a broken relay fails the test instead of hanging.
const CONVERGE_WITHIN: Duration = Duration::from_secs(120);

struct World {
    fixture: Fixture,
    repo: Arc<Repo>,
    db: Db,
    _seat_lock_keys: TestRedis,
}

async fn world(layout: Layout) -> World {
    let (db, repo, catalog) = backend().await;
    let redis = TestRedis::shared();
    let harness = Harness {
        seat_lock: Arc::new(redis.lock().await),
        tickets: repo.clone(),
        outbox: repo.clone(),
        waiting_list: waiting_list(&db),
        catalog,
        wipe_seat_lock: Arc::new(|| Box::pin(async {})),
        teardown: None,
    };
    World {
        fixture: Fixture::new(&harness, layout).await,
        repo,
        db,
        _seat_lock_keys: redis,
    }
}

fn relay(
    repo: &Arc<Repo>,
    sink: &Arc<RedisEventSink>,
    id: &str,
) -> Arc<OutboxRelay> {
    Arc::new(
        OutboxRelay::new(
            repo.clone(),
            sink.clone(),
            Arc::new(SystemClock),
            RelayConfig {
                relay_id: id.into(),
                batch_size: 16,
                lease_ttl: Duration::from_millis(800),
                poll_interval: Duration::from_millis(5),
                backoff_min: Duration::from_millis(5),
                backoff_max: Duration::from_millis(80),
            },
        )
        .expect("relay config"),
    )
}

fn projection_config(prefix: &str, consumer: &str) -> ProjectionConfig {
    ProjectionConfig {
        key_prefix: prefix.into(),
        group: "sales".into(),
        consumer: consumer.into(),
        batch_size: 10,
        block: Duration::from_millis(50),
        claim_min_idle: Duration::from_millis(100),
        retry_interval: Duration::from_millis(10),
        retry_max: Duration::from_millis(200),
    }
}

/// A background task running `run` until stopped (or aborted, to simulate a crash).
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
}

fn spawn<F, Fut>(run: F) -> Running
where
    F: FnOnce(tokio::sync::oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = tokio::sync::oneshot::channel();
    Running {
        stop,
        task: tokio::spawn(run(stopped)),
    }
}

fn run_relay(relay: &Arc<OutboxRelay>) -> Running {
    let relay = relay.clone();
    spawn(|stopped| async move {
        relay
            .run(async {
                let _ = stopped.await;
            })
            .await
    })
}

fn run_projection(projection: &Arc<RedisProjection>) -> Running {
    let projection = projection.clone();
    spawn(|stopped| async move {
        projection
            .run(async {
                let _ = stopped.await;
            })
            .await
    })
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("task ends cleanly");
    }

    /// Kills the task at whatever await point it is at, like a process crash.
    async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// What a worker did, to tally afterwards.
#[derive(Default)]
struct Tally {
    orders: Vec<OrderId>,
    refused: u64,
}

/// `workers` concurrent customers, each buying `per_worker` orders on its own seats (or GA
/// places) and then paying, refunding, cancelling or leaving them to expire.
async fn sale(fixture: &Fixture, round: u32, workers: u32, per_worker: u32) -> Tally {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let tickets = fixture.tickets.clone();
        let requests: Vec<_> = (0..per_worker)
            .map(|i| {
                let n = (round * workers + w) * per_worker + i;
                let customer = format!("c{n}");
                if n.is_multiple_of(3) {
                    fixture.general_request(&customer, 1 + i % 3)
                } else {
                    let seats = if n.is_multiple_of(2) {
                        vec![fixture.seat(2 * n), fixture.seat(2 * n + 1)]
                    } else {
                        vec![fixture.seat(2 * n)]
                    };
                    fixture.seats_request(&customer, seats)
                }
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            for (i, request) in requests.into_iter().enumerate() {
                let order = tickets.purchase(request).await.expect("purchase");
                tally.orders.push(order.id);
                let pay_ref = || -> PaymentRef {
                    format!("pi_{}", order.id.as_uuid().simple())
                        .parse()
                        .unwrap()
                };
                let outcome = match i % 5 {
                    0 | 4 => tickets
                        .pay(ticketing_core::domain::PaymentNotice::for_order(
                            &order,
                            pay_ref(),
                        ))
                        .await
                        .map(|_| ()),
                    1 => match tickets
                        .pay(ticketing_core::domain::PaymentNotice::for_order(
                            &order,
                            pay_ref(),
                        ))
                        .await
                    {
                        Ok(_) => tickets.refund(order.id).await.map(|_| ()),
                        Err(e) => Err(e),
                    },
                    2 => tickets.cancel(order.id).await.map(|_| ()),
                    _ => Ok(()), // left to expire
                };
                if outcome.is_err() {
                    tally.refused += 1;
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.expect("worker");
        all.orders.extend(tally.orders);
        all.refused += tally.refused;
    }
    all
}

/// The last outbox seq written.
async fn outbox_top(repo: &Repo) -> u64 {
    repo.outbox_after(0, u32::MAX)
        .await
        .expect("outbox")
        .last()
        .map_or(0, |e| e.seq)
}

/// Waits until the relay marked everything sent and the projection applied it.
async fn converge(repo: &Repo, projection: &RedisProjection) -> u64 {
    let top = outbox_top(repo).await;
    tokio::time::timeout(CONVERGE_WITHIN, async {
        loop {
            let sent = repo.sent_up_to().await.unwrap_or(0);
            let applied = projection.last_applied().await.unwrap_or(0);
            if sent >= top && applied >= top {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("relay and projection did not reach seq {top}"));
    top
}

/// Every entry of the stream: (seq from the id, seq field, event field, kind field).
async fn stream_entries(url: &str, key: &str) -> Vec<(u64, u64, String, String)> {
    let mut conn = connect(url).await;
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("XRANGE");
    entries
        .into_iter()
        .map(|(id, fields)| {
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| panic!("entry {id} has no {name}"))
            };
            let (seq, suffix) = id.split_once('-').expect("id <seq>-0");
            assert_eq!(suffix, "0", "entry id {id}");
            (
                seq.parse().expect("seq id"),
                field("seq").parse().expect("seq field"),
                field("event"),
                field("kind"),
            )
        })
        .collect()
}

/// The stream holds the outbox exactly (every seq once, in order, same event and kind), and each
/// order's changes follow the state machine in order.
async fn assert_stream_is_the_outbox(repo: &Repo, url: &str, key: &str) {
    let outbox = repo.outbox_after(0, u32::MAX).await.expect("outbox");
    let stream = stream_entries(url, key).await;
    assert_eq!(
        stream.len(),
        outbox.len(),
        "stream entries vs outbox rows (no loss, no duplicate)"
    );
    let mut per_order: HashMap<OrderId, Vec<OutboxKind>> = HashMap::new();
    for ((id_seq, seq, event, kind), entry) in stream.iter().zip(&outbox) {
        assert_eq!((*id_seq, *seq), (entry.seq, entry.seq), "stream order");
        assert_eq!(event, &entry.event.event_id.to_string());
        assert_eq!(kind, entry.event.kind.as_str());
        per_order
            .entry(entry.event.order_id)
            .or_default()
            .push(entry.event.kind);
    }
    use OutboxKind::*;
    for (order, kinds) in per_order {
        let allowed: &[&[OutboxKind]] = &[
            &[TicketReserved],
            &[TicketReserved, TicketPaid],
            &[TicketReserved, TicketPaid, TicketRefunded],
            &[TicketReserved, TicketExpired],
            &[TicketReserved, TicketCancelled],
        ];
        assert!(
            allowed.contains(&kinds.as_slice()),
            "order {order}: {kinds:?}"
        );
        let status = repo
            .order(order)
            .await
            .expect("order")
            .expect("exists")
            .status;
        let last = *kinds.last().expect("one change");
        let expected = match last {
            TicketReserved => TicketStatus::PendingPayment,
            TicketPaid => TicketStatus::Paid,
            TicketRefunded => TicketStatus::Refunded,
            TicketExpired => TicketStatus::Expired,
            TicketCancelled => TicketStatus::Cancelled,
            other => panic!("order {order}: the test makes no {other:?} change"),
        };
        assert_eq!(
            status, expected,
            "order {order}: last change vs stored status"
        );
    }
}

/// The repository's own aggregates, in the read model's shape.
async fn repository_totals(
    fixture: &Fixture,
    repo: &Repo,
    orders: &[OrderId],
) -> EventTotals {
    let event = fixture.event.id();
    let count =
        |status| async move { repo.count_by_status(event, status).await.expect("count") as i64 };
    let mut zones: BTreeMap<ZoneCode, ZoneTotals> = BTreeMap::new();
    for id in orders {
        let order = repo.order(*id).await.expect("order").expect("exists");
        for ticket in &order.tickets {
            let zone = zones.entry(ticket.zone.clone()).or_default();
            match ticket.status {
                TicketStatus::PendingPayment => zone.pending += 1,
                TicketStatus::Paid => {
                    zone.sold += 1;
                    zone.revenue_minor += ticket.price.minor;
                }
                _ => {}
            }
        }
    }
    EventTotals {
        pending: count(TicketStatus::PendingPayment).await,
        sold: count(TicketStatus::Paid).await,
        revenue_minor: repo
            .revenue_minor(fixture.venue.id(), event)
            .await
            .expect("revenue"),
        expired: count(TicketStatus::Expired).await,
        cancelled: count(TicketStatus::Cancelled).await,
        refunded: count(TicketStatus::Refunded).await,
        currency: Some("EUR".into()),
        zones,
    }
}

fn layout() -> Layout {
    Layout {
        rows: 20,
        seats_per_row: 20,
        general_capacity: 1000,
        limit: 10,
        hold_time: TimeDelta::minutes(10),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_read_model_converges_through_crashes_restarts_and_duplicates() {
    let w = world(layout()).await;
    let keys = TestRedis::shared();
    let sink = Arc::new(
        RedisEventSink::new(
            connect(&keys.url).await,
            RedisEventSinkConfig {
                key_prefix: keys.prefix.clone(),
                max_len: None,
            },
        )
        .expect("sink"),
    );
    let projection_on = |consumer: &str| {
        let config = projection_config(&keys.prefix, consumer);
        let url = keys.url.clone();
        async move { Arc::new(RedisProjection::new(connect(&url).await, config).expect("projection")) }
    };

    // Phase 1: one relay, one consumer, a concurrent sale.
    let first_relay = relay(&w.repo, &sink, "relay-1");
    let first_consumer = projection_on("consumer-1").await;
    first_consumer.ensure_group().await.expect("group");
    let relay_1 = run_relay(&first_relay);
    let consumer_1 = run_projection(&first_consumer);
    let mut orders = sale(&w.fixture, 0, 6, 10).await.orders;

    // Crash both mid-stream. A crashed relay may have published without marking: do exactly that
    // by hand, so the successors publish those entries again.
    relay_1.crash().await;
    consumer_1.crash().await;
    let unsent = w.repo.unsent(1000).await.expect("unsent");
    sink.publish_counted(&unsent)
        .await
        .expect("publish without marking");

    // Phase 2: two relays at once (neither is the crashed one, whose lease must lapse first) and
    // a new consumer that claims the crashed one's pending entries; the sale goes on, with the
    // expiry sweep running concurrently after the clock passed the first orders' deadlines.
    let (relay_2, relay_3) = (
        relay(&w.repo, &sink, "relay-2"),
        relay(&w.repo, &sink, "relay-3"),
    );
    let second_consumer = projection_on("consumer-2").await;
    let running = [
        run_relay(&relay_2),
        run_relay(&relay_3),
        run_projection(&second_consumer),
    ];
    w.fixture
        .clock
        .set(w.fixture.clock.now() + TimeDelta::minutes(11));
    let sweeper = {
        let tickets = w.fixture.tickets.clone();
        tokio::spawn(async move { tickets.expire_due().await.expect("sweep") })
    };
    orders.extend(sale(&w.fixture, 1, 6, 10).await.orders);
    let expired_first = sweeper.await.expect("sweeper");
    assert!(expired_first > 0, "phase-1 orders left unpaid expired");
    w.fixture
        .clock
        .set(w.fixture.clock.now() + TimeDelta::minutes(11));
    assert!(w.fixture.tickets.expire_due().await.expect("sweep") > 0);

    let top = converge(&w.repo, &second_consumer).await;
    for task in running {
        task.stop().await;
    }
    let published: u64 = [&first_relay, &relay_2, &relay_3]
        .iter()
        .map(|r| r.stats().published)
        .sum();
    assert!(
        published <= top,
        "marked-sent ranges of different relays never overlap: {published} > {top}"
    );
    assert!(
        relay_2.stats().published + relay_3.stats().published > 0,
        "the successors published"
    );

    assert_stream_is_the_outbox(&w.repo, &keys.url, &sink.stream_key()).await;
    let expected = repository_totals(&w.fixture, &w.repo, &orders).await;
    assert!(expected.sold > 0 && expected.refunded > 0 && expected.cancelled > 0);
    assert!(expected.zones.len() == 2, "{:?}", expected.zones);
    let model = second_consumer
        .totals(w.fixture.event.id())
        .await
        .expect("totals");
    assert_eq!(model, expected, "read model vs repository");

    // Duplicates, injected: every entry delivered again to the group, and republished.
    let mut raw = connect(&keys.url).await;
    let _: () = redis::cmd("XGROUP")
        .arg("SETID")
        .arg(sink.stream_key())
        .arg("sales")
        .arg("0")
        .query_async(&mut raw)
        .await
        .expect("XGROUP SETID");
    let everything = w.repo.outbox_after(0, u32::MAX).await.expect("outbox");
    let (appended, refused) = sink.publish_counted(&everything).await.expect("republish");
    assert_eq!((appended, refused), (0, top));
    let replayer = projection_on("consumer-3").await;
    let mut duplicates = 0;
    while duplicates < top {
        let round = replayer.run_once().await.expect("round");
        assert_eq!(round.applied, 0, "nothing is applied twice");
        duplicates += round.duplicates;
    }
    assert_eq!(duplicates, top);
    assert_eq!(
        replayer.totals(w.fixture.event.id()).await.expect("totals"),
        expected,
        "duplicates changed nothing"
    );
    w.db.drop_database().await.expect("drop the test database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relay_backs_off_while_redis_is_down_and_catches_up_after() {
    let w = world(layout()).await;
    let mut server = PrivateRedis::start().await;
    let prefix = "stream-test:";
    let sink = Arc::new(
        RedisEventSink::new(
            connect(&server.url()).await,
            RedisEventSinkConfig {
                key_prefix: prefix.into(),
                max_len: None,
            },
        )
        .expect("sink"),
    );
    let projection = Arc::new(
        RedisProjection::new(
            connect(&server.url()).await,
            projection_config(prefix, "consumer"),
        )
        .expect("projection"),
    );
    projection.ensure_group().await.expect("group");
    let relay = relay(&w.repo, &sink, "relay");
    let running = [run_relay(&relay), run_projection(&projection)];
    let mut orders = sale(&w.fixture, 0, 4, 5).await.orders;
    converge(&w.repo, &projection).await;

    // Counted before the kill: the running relay's first failure can come between the kill and
    // a read after it, and would then be both "before" and one of the four below.
    let failures_before = relay.stats().failures;
    server.kill();
    // The sale goes on while the sink is down: the outbox grows, nothing is marked sent.
    orders.extend(sale(&w.fixture, 1, 4, 5).await.orders);
    tokio::time::timeout(CONVERGE_WITHIN, async {
        while relay.stats().consecutive_failures < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the relay keeps failing while Redis is down");
    let stats = relay.stats();
    assert!(stats.failures >= failures_before + 4, "{stats:?}");
    assert!(
        stats.last_backoff >= Duration::from_millis(20),
        "backing off: {stats:?}"
    );
    let sent_while_down = w.repo.sent_up_to().await.expect("cursor");
    assert!(
        sent_while_down < outbox_top(&w.repo).await,
        "nothing new sent while down"
    );

    // Back, but empty (no persistence): the relay sees the stream lost its entries, publishes
    // everything again, and the projection rebuilds the read model from the start.
    server.restart().await;
    let top = converge(&w.repo, &projection).await;
    for task in running {
        task.stop().await;
    }
    assert!(relay.stats().rewinds >= 1, "{:?}", relay.stats());
    assert_eq!(relay.stats().consecutive_failures, 0);
    assert_stream_is_the_outbox(&w.repo, &server.url(), &sink.stream_key()).await;
    assert_eq!(projection.last_applied().await.expect("last"), top);
    assert_eq!(
        projection
            .totals(w.fixture.event.id())
            .await
            .expect("totals"),
        repository_totals(&w.fixture, &w.repo, &orders).await,
        "read model vs repository"
    );
    w.db.drop_database().await.expect("drop the test database");
}
