//! The HTTP suite on the in-memory adapters, plus the 503/500 mappings, which need a failing
//! backend.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::TestApp;
use ticketing_core::domain::{EventId, OrderId, Zone};
use ticketing_core::ports::{
    BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldRequest, HoldSource,
    LockSnapshot, SeatLock,
};
use ticketing_core::service::Backends;
use ticketing_core::{Error, Result};

http_suite!(TestApp::in_memory());

/// A seat lock whose every call fails with the error `make` builds.
struct FailingLock(fn() -> Error);

#[async_trait]
impl SeatLock for FailingLock {
    async fn hold(&self, _: &HoldRequest) -> Result<HoldOutcome> {
        Err((self.0)())
    }
    async fn hold_best_available(&self, _: &BestAvailableRequest) -> Result<BestAvailableOutcome> {
        Err((self.0)())
    }
    async fn release(&self, _: EventId, _: OrderId, _: &[HoldItem]) -> Result<()> {
        Err((self.0)())
    }
    async fn mark_sold(&self, _: EventId, _: OrderId, _: &[HoldItem]) -> Result<()> {
        Err((self.0)())
    }
    async fn snapshot(&self, _: EventId, _: DateTime<Utc>) -> Result<Option<LockSnapshot>> {
        Err((self.0)())
    }
    async fn zone_snapshot(
        &self,
        _: EventId,
        _: &Zone,
        _: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        Err((self.0)())
    }
    async fn rebuild(&self, _: EventId, _: &dyn HoldSource) -> Result<()> {
        Err((self.0)())
    }
    async fn forget(&self, _: EventId) -> Result<()> {
        Err((self.0)())
    }
}

async fn app_with_lock(make: fn() -> Error) -> TestApp {
    let backends = Backends::in_memory()
        .to_builder()
        .seat_lock(Arc::new(FailingLock(make)))
        .build()
        .expect("complete backends");
    TestApp::new(backends, None).await
}

#[tokio::test]
async fn unavailable_backend_is_503_without_driver_details() {
    let app = app_with_lock(|| Error::unavailable("redis", "connection refused at 10.1.2.3")).await;
    let answer = app.buy("alice", &["STALLS:A:1"]).await;
    answer.expect(StatusCode::SERVICE_UNAVAILABLE, Some("UNAVAILABLE"));
    assert!(
        !answer.text().contains("10.1.2.3"),
        "leaks the driver error: {}",
        answer.text()
    );
    app.get(&format!("/api/events/{}/seats", app.demo.event))
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE, Some("UNAVAILABLE"));
    app.get("/health")
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE, Some("UNAVAILABLE"));
    let metrics = app.get("/metrics").await.text();
    assert!(metrics.contains("ticketing_purchases_total{outcome=\"unavailable\"} 1"));
    assert!(metrics.contains("ticketing_seat_hold_duration_seconds_count{outcome=\"error\"} 1"));
}

#[tokio::test]
async fn internal_error_is_500_without_details() {
    let app = app_with_lock(|| Error::internal("secret stack detail")).await;
    let answer = app.buy("alice", &["STALLS:A:1"]).await;
    answer.expect(StatusCode::INTERNAL_SERVER_ERROR, Some("INTERNAL"));
    assert_eq!(answer.body["message"], "internal error");
}

/// One customer's burst passes, then `429 RATE_LIMITED` with `Retry-After`, while another
/// customer buys unhindered; after `Retry-After` the first customer buys again. 40 concurrent
/// purchases by one customer, one seat each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_purchase_rate_limit_is_per_customer() {
    use std::num::NonZeroU32;
    use std::time::{Duration, Instant};
    use ticketing_server::rate_limit::PurchaseRate;

    let rate = PurchaseRate {
        per_second: NonZeroU32::new(1).unwrap(),
        burst: NonZeroU32::new(5).unwrap(),
    };
    let app =
        Arc::new(TestApp::custom(Backends::in_memory(), None, common::customer_auth(), rate).await);
    let seats: Vec<String> = ["B", "C", "D", "E"]
        .iter()
        .flat_map(|row| (1..=10).map(move |n| format!("STALLS:{row}:{n}")))
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = seats
        .into_iter()
        .map(|seat| {
            let app = app.clone();
            tokio::spawn(async move { app.buy("rush", &[&seat]).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let limited: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    let passed = answers.len() - limited.len();
    // The burst, plus at most one purchase per second the rush took.
    let most = 5 + elapsed.as_secs() as usize + 1;
    assert!(
        (5..=most).contains(&passed),
        "{passed} of 40 passed the limit in {elapsed:?}"
    );
    for answer in &limited {
        answer.expect(StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED"));
        let retry: u64 = answer.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(retry, 1, "a one-per-second refill is at most a second away");
    }
    // The passed ones were real purchases (the event allows 6 tickets per customer).
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        created,
        passed.min(6),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );

    // Another customer is not limited by the first one's rush.
    app.buy("calm", &["STALLS:A:1"])
        .await
        .expect(StatusCode::CREATED, None);
    let metrics = app.get("/metrics").await.text();
    assert!(
        metrics.contains(&format!(
            "ticketing_purchases_total{{outcome=\"rate_limited\"}} {}",
            limited.len()
        )),
        "{metrics}"
    );
    // After Retry-After, the first customer may buy again (up to the event's 6 tickets).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = app.buy("rush", &["STALLS:A:2"]).await;
    if created < 6 {
        again.expect(StatusCode::CREATED, None);
    } else {
        again.expect(StatusCode::UNPROCESSABLE_ENTITY, Some("LIMIT_EXCEEDED"));
    }
}

/// The live seat map's streams are capped: beyond `max_streams` a new one is `503` with
/// `Retry-After`; a stream that ends gives its slot back; a client that falls behind the feed's
/// per-event buffer is sent a `reset` (never a silent skip), then the recent changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_seat_map_streams_are_bounded() {
    use std::time::Duration;
    use ticketing_core::service::SeatChangeFeedConfig;
    use ticketing_server::live_seat_map::LiveSeatMapConfig;
    use ticketing_server::rate_limit::PurchaseRate;

    let live = LiveSeatMapConfig {
        max_streams: 2,
        poll: Duration::from_millis(20),
        feed: SeatChangeFeedConfig {
            live_buffer: 2,
            ..SeatChangeFeedConfig::default()
        },
        ..LiveSeatMapConfig::default()
    };
    let app = TestApp::configured(
        Backends::in_memory(),
        None,
        common::customer_auth(),
        PurchaseRate::default(),
        live,
    )
    .await;
    let event = app.demo.event.to_string();
    let first = app
        .seat_changes(&event, None)
        .await
        .expect("a first stream");
    let mut slow = app.seat_changes(&event, None).await.expect("a second one");
    let refused = app.seat_changes(&event, None).await.err().expect("a 503");
    refused.expect(StatusCode::SERVICE_UNAVAILABLE, Some("UNAVAILABLE"));
    assert_eq!(refused.headers["retry-after"], "1");
    drop(first);
    let _third = app
        .seat_changes(&event, None)
        .await
        .expect("the ended stream's slot is free again");

    // Five changes while `slow` reads nothing: more than its buffer of two.
    for (n, seat) in [
        "STALLS:E:1",
        "STALLS:E:2",
        "STALLS:E:3",
        "STALLS:E:4",
        "STALLS:E:5",
    ]
    .iter()
    .enumerate()
    {
        app.buy(&format!("fan{n}"), &[seat])
            .await
            .expect(StatusCode::CREATED, None);
    }
    app.live_seat_map_caught_up().await;
    let messages = slow.drain(Duration::from_millis(300)).await;
    assert_eq!(messages[0].event, "reset", "{messages:?}");
    let seats: Vec<_> = messages[1..]
        .iter()
        .map(|m| m.data["seats"][0]["number"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seats,
        [1, 2, 3, 4, 5],
        "after the reset, the recent changes in order"
    );
    let resume: u64 = messages[0].id.as_deref().unwrap().parse().unwrap();
    assert_eq!(messages[0].data["resumeAfter"], resume);
    assert_eq!(messages[1].id, Some((resume + 1).to_string()));
}
