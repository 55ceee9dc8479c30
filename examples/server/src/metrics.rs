//! Prometheus metrics: purchases by outcome, seat-hold and purchase latency, sweeps, payments and
//! HTTP answers, exposed as text at `GET /metrics`.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};
use ticketing_core::Result;
use ticketing_core::domain::{EventId, OrderId, Zone};
use ticketing_core::ports::{
    BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldRequest, HoldSource,
    LockSnapshot, SeatLock,
};

/// Every metric of the server, in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Purchases by outcome: `ok` or the error code in lower case.
    pub purchases: IntCounterVec,
    /// Purchase latency by outcome.
    pub purchase_seconds: HistogramVec,
    /// Seat-lock hold latency by outcome (`held`, `taken`, `no_block` for a best-available hold without a block, `not_loaded`, `error`).
    pub hold_seconds: HistogramVec,
    /// Payment confirmations by outcome.
    pub payments: IntCounterVec,
    /// Expiry sweeps by result (`ok`, `error`).
    pub sweeps: IntCounterVec,
    /// Orders expired by the sweep.
    pub expired_orders: IntCounter,
    /// HTTP answers by status code.
    pub http_responses: IntCounterVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            registry
                .register(Box::new(c.clone()))
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )
            .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            registry
                .register(Box::new(h.clone()))
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            h
        };
        let purchases = counter(
            "ticketing_purchases_total",
            "Purchases by outcome (ok or the error code).",
            &["outcome"],
        );
        let purchase_seconds = histogram(
            "ticketing_purchase_duration_seconds",
            "Purchase latency: validation, seat hold and persistence.",
            &["outcome"],
        );
        let hold_seconds = histogram(
            "ticketing_seat_hold_duration_seconds",
            "Latency of one seat-lock hold call.",
            &["outcome"],
        );
        let payments = counter(
            "ticketing_payments_total",
            "Payment confirmations by outcome.",
            &["outcome"],
        );
        let sweeps = counter(
            "ticketing_expiry_sweeps_total",
            "Expiry sweeps by result.",
            &["result"],
        );
        let expired = counter(
            "ticketing_expired_orders_total",
            "Orders expired by the sweep.",
            &[],
        );
        let http_responses = counter(
            "ticketing_http_responses_total",
            "HTTP answers by status code.",
            &["status"],
        );
        Self {
            expired_orders: expired.with_label_values::<&str>(&[]),
            registry,
            purchases,
            purchase_seconds,
            hold_seconds,
            payments,
            sweeps,
            http_responses,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "encoding metrics failed");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Records one purchase: `outcome` is `ok` or an error code.
    pub fn purchase(&self, outcome: &str, started: Instant) {
        let outcome = outcome.to_ascii_lowercase();
        self.purchases.with_label_values(&[&outcome]).inc();
        self.purchase_seconds
            .with_label_values(&[&outcome])
            .observe(started.elapsed().as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A seat lock that times every `hold` of the lock it wraps. Everything else passes through.
pub struct TimedSeatLock {
    inner: Arc<dyn SeatLock>,
    metrics: Metrics,
}

impl TimedSeatLock {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: Arc<dyn SeatLock>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl SeatLock for TimedSeatLock {
    async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome> {
        let started = Instant::now();
        let result = self.inner.hold(request).await;
        let outcome = match &result {
            Ok(HoldOutcome::Held) => "held",
            Ok(HoldOutcome::Taken { .. }) => "taken",
            Ok(HoldOutcome::NotLoaded) => "not_loaded",
            Err(_) => "error",
        };
        self.metrics
            .hold_seconds
            .with_label_values(&[outcome])
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// Recorded with the holds: a best-available hold is one too (outcome `no_block` when no
    /// row had the block).
    async fn hold_best_available(
        &self,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome> {
        let started = Instant::now();
        let result = self.inner.hold_best_available(request).await;
        let outcome = match &result {
            Ok(BestAvailableOutcome::Held { .. }) => "held",
            Ok(BestAvailableOutcome::NoBlock) => "no_block",
            Ok(BestAvailableOutcome::NotLoaded) => "not_loaded",
            Err(_) => "error",
        };
        self.metrics
            .hold_seconds
            .with_label_values(&[outcome])
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        self.inner.release(event, order, items).await
    }

    async fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        self.inner.mark_sold(event, order, items).await
    }

    async fn snapshot(&self, event: EventId, now: DateTime<Utc>) -> Result<Option<LockSnapshot>> {
        self.inner.snapshot(event, now).await
    }

    async fn zone_snapshot(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        self.inner.zone_snapshot(event, zone, now).await
    }

    async fn rebuild(&self, event: EventId, source: &dyn HoldSource) -> Result<()> {
        self.inner.rebuild(event, source).await
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        self.inner.forget(event).await
    }
}
