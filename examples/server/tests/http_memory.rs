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
    HoldItem, HoldOutcome, HoldRequest, HoldSource, LockSnapshot, SeatLock,
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
