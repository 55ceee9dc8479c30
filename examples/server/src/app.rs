//! The application state and the router with its layers.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{from_fn_with_state, map_request};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use ticketing_core::domain::{AdmissionSecret, EventId, VenueId, VenueLimits};
use ticketing_core::service::{
    Backends, CatalogService, ClosedEventSweep, HistoryPruner, Pruned, QueryService, ServiceConfig,
    TicketService, WaitingListService, WaitingRoomService,
};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::auth::CustomerAuth;
use crate::limits::{HttpLimits, InFlight, shed_load};
use crate::live_seat_map::{LiveSeatMap, LiveSeatMapConfig};
use crate::metrics::{Metrics, TimedSeatLock};
use crate::middleware::{REQUEST_ID, drop_odd_request_id, no_route, observe, require_admin};
use crate::rate_limit::{PurchaseLimiter, PurchaseRate};
use crate::routes;
use crate::seat_map_bodies::SeatMapBodies;
use crate::seat_map_pacing::SeatMapPacer;
use crate::webhook::{WebhookLog, WebhookSecret};

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the server is configured with, apart from the backends.
#[derive(Clone)]
pub struct AppConfig {
    /// The bearer token of the admin routes.
    pub admin_token: String,
    /// The payment webhook secret.
    pub webhook_secret: WebhookSecret,
    /// The demo event the page at `/` shows; `None` serves no demo routes.
    pub demo: Option<DemoEvent>,
    /// With `demo`: also serve `/demo/orders/{orderId}/pay`, which signs payment webhooks with
    /// the webhook secret. Only for the in-memory backend: with real stores, anyone could pay.
    pub demo_payments: bool,
    /// Verifies the customer tokens.
    pub customers: CustomerAuth,
    /// The per-customer rate limit on purchases.
    pub purchase_rate: PurchaseRate,
    /// Seat-map reads a second over the whole server, an answer counting once per
    /// [`READ_UNIT`](crate::seat_map_pacing::READ_UNIT) bytes; reads beyond wait their turn
    /// (`None`: no pace).
    pub seat_map_reads: Option<NonZeroU32>,
    /// The bounds of the live seat map's streams.
    pub live_seat_map: LiveSeatMapConfig,
    /// Tuning of the core services.
    pub service: ServiceConfig,
    /// Signs and checks the waiting rooms' admission tokens; every server of a deployment must
    /// share it.
    pub admission_secret: AdmissionSecret,
}

/// The event the demo page shows.
#[derive(Debug, Clone, Copy)]
pub struct DemoEvent {
    /// Its venue.
    pub venue: VenueId,
    /// The event.
    pub event: EventId,
}

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    backends: Backends,
    tickets: TicketService,
    queries: QueryService,
    catalog: CatalogService,
    waiting_room: WaitingRoomService,
    waiting_list: Option<WaitingListService>,
    metrics: Metrics,
    webhooks: WebhookLog,
    purchases: PurchaseLimiter,
    seat_map_bodies: SeatMapBodies,
    seat_map_pacer: SeatMapPacer,
    live_seat_map: LiveSeatMap,
    config: AppConfig,
}

impl AppState {
    /// Builds the services over `backends`; the seat lock is wrapped to record hold latency.
    pub fn new(backends: Backends, config: AppConfig) -> Self {
        let metrics = Metrics::new();
        let timed = TimedSeatLock::new(backends.seat_lock().clone(), metrics.clone());
        let backends = backends
            .to_builder()
            .seat_lock(Arc::new(timed))
            .build()
            .expect("every adapter comes from complete backends");
        let live_seat_map = LiveSeatMap::new(backends.clone(), config.live_seat_map);
        Self(Arc::new(Inner {
            tickets: TicketService::new(backends.clone(), config.service.clone()),
            queries: QueryService::new(backends.clone(), config.service.clone()),
            catalog: CatalogService::new(backends.clone()).with_limits(config.service.venue_limits),
            waiting_room: WaitingRoomService::new(
                backends.clone(),
                config.admission_secret.clone(),
            ),
            waiting_list: WaitingListService::new(backends.clone()).ok(),
            backends,
            metrics,
            webhooks: WebhookLog::default(),
            purchases: PurchaseLimiter::new(config.purchase_rate),
            seat_map_bodies: SeatMapBodies::new(config.service.seat_map_max_age),
            seat_map_pacer: SeatMapPacer::new(config.seat_map_reads),
            live_seat_map,
            config,
        }))
    }

    /// The adapters.
    pub fn backends(&self) -> &Backends {
        &self.0.backends
    }
    /// The write side.
    pub fn tickets(&self) -> &TicketService {
        &self.0.tickets
    }
    /// The read side.
    pub fn queries(&self) -> &QueryService {
        &self.0.queries
    }
    /// Venues and events.
    pub fn catalog(&self) -> &CatalogService {
        &self.0.catalog
    }
    /// The waiting rooms of events that require admission.
    pub fn waiting_room(&self) -> &WaitingRoomService {
        &self.0.waiting_room
    }
    /// The waiting lists of sold-out events; `None` when the backends have none.
    pub fn waiting_list(&self) -> Option<&WaitingListService> {
        self.0.waiting_list.as_ref()
    }
    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
    /// Processed webhook ids.
    pub fn webhooks(&self) -> &WebhookLog {
        &self.0.webhooks
    }
    /// The webhook secret.
    pub fn webhook_secret(&self) -> &WebhookSecret {
        &self.0.config.webhook_secret
    }
    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.0.config.admin_token
    }
    /// The serialised seat maps.
    pub fn seat_map_bodies(&self) -> &SeatMapBodies {
        &self.0.seat_map_bodies
    }
    /// The pace of seat-map reads.
    pub fn seat_map_pacer(&self) -> &SeatMapPacer {
        &self.0.seat_map_pacer
    }
    /// The live seat map: its feed and its streams.
    pub fn live_seat_map(&self) -> &LiveSeatMap {
        &self.0.live_seat_map
    }
    /// The size caps of new venues.
    pub fn venue_limits(&self) -> &VenueLimits {
        &self.0.config.service.venue_limits
    }
    /// The demo event, when demo mode is on.
    pub fn demo(&self) -> Option<DemoEvent> {
        self.0.config.demo
    }
    /// Whether the demo's simulated payments are served.
    pub fn demo_payments(&self) -> bool {
        self.0.config.demo.is_some() && self.0.config.demo_payments
    }
    /// The customer token verifier.
    pub fn customers(&self) -> &CustomerAuth {
        &self.0.config.customers
    }
    /// The per-customer purchase rate limit.
    pub fn purchase_limiter(&self) -> &PurchaseLimiter {
        &self.0.purchases
    }
}

/// The whole HTTP API with its layers and the default [`HttpLimits`]; see
/// [`router_with_limits`].
pub fn router(state: AppState) -> Router {
    router_with_limits(state, &HttpLimits::default())
}

/// The whole HTTP API with its layers: request ids (generated when absent, echoed on every
/// answer), JSON error rendering, one log line per request, load shedding beyond
/// `limits.max_in_flight` requests, the request and body-read timeouts (`408`), a body limit and
/// panic catching. The header-read timeout and the shutdown grace belong to the connection
/// ([`crate::limits::serve`]).
pub fn router_with_limits(state: AppState, limits: &HttpLimits) -> Router {
    let admin = Router::new()
        .route("/api/admin/venues", post(routes::admin::create_venue))
        .route("/api/admin/events", post(routes::admin::create_event))
        .route(
            "/api/admin/orders/{orderId}/refund",
            post(routes::admin::refund_order),
        )
        .route("/api/admin/refunds-due", get(routes::admin::refunds_due))
        .route(
            "/api/admin/events/{eventId}/waiting-room",
            put(routes::waiting_room::set_policy).delete(routes::waiting_room::remove_policy),
        )
        .route(
            "/api/admin/events/{eventId}/channels",
            post(routes::channels::create_channel).get(routes::channels::list_channels),
        )
        .route(
            "/api/admin/events/{eventId}/channels/{code}/release",
            post(routes::channels::release_channel_seats),
        )
        .route(
            "/api/admin/events/{eventId}/vouchers",
            post(routes::vouchers::create_voucher).get(routes::vouchers::list_vouchers),
        )
        .route(
            "/api/admin/payments/{paymentReference}/refunded",
            post(routes::admin::mark_refunded),
        )
        .route(
            "/api/admin/orders/{orderId}/payments",
            get(routes::admin::order_payments),
        )
        .route_layer(from_fn_with_state(state.clone(), require_admin));
    let mut api = Router::new()
        .route("/api/tickets", post(routes::tickets::purchase))
        .route("/api/tickets/{ticketId}", get(routes::tickets::ticket))
        .route("/api/orders/{orderId}", get(routes::orders::order))
        .route("/api/orders/{orderId}/cancel", post(routes::orders::cancel))
        .route("/api/orders/{orderId}/extend", post(routes::orders::extend))
        .route("/api/events/{eventId}", get(routes::events::event))
        .route(
            "/api/events/{eventId}/sold-count",
            get(routes::events::sold_count),
        )
        .route("/api/events/{eventId}/seats", get(routes::events::seat_map))
        .route(
            "/api/events/{eventId}/seat-changes",
            get(routes::seat_changes::seat_changes),
        )
        .route(
            "/api/events/{eventId}/zones/{zone}/seats",
            get(routes::events::zone_seat_map),
        )
        .route(
            "/api/events/{eventId}/waiting-room",
            post(routes::waiting_room::join).get(routes::waiting_room::place),
        )
        .route(
            "/api/events/{eventId}/waiting-list",
            post(routes::waiting_list::join),
        )
        .route(
            "/api/waiting-list/{entryId}",
            get(routes::waiting_list::entry).delete(routes::waiting_list::leave),
        )
        .route("/api/venues/{venueId}", get(routes::events::venue))
        .route(
            "/api/venues/{venueId}/events/{eventId}/revenue",
            get(routes::events::revenue),
        )
        .route("/api/payments/webhook", post(routes::payments::webhook))
        .route("/health", get(routes::ops::health))
        .route("/metrics", get(routes::ops::metrics))
        .route("/openapi.json", get(routes::ops::openapi))
        .merge(admin);
    if state.demo().is_some() {
        api = api.merge(crate::demo::routes(state.demo_payments()));
    }
    let request_id = HeaderName::from_static(REQUEST_ID);
    api.fallback(no_route)
        .layer(
            ServiceBuilder::new()
                .layer(map_request(|r| async move { drop_odd_request_id(r) }))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(from_fn_with_state(state.clone(), observe))
                // Inside `observe`, so a shed request and a timeout get the JSON error body.
                .layer(from_fn_with_state(
                    InFlight::new(limits.max_in_flight),
                    shed_load,
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    limits.request_timeout,
                ))
                // The timeout answers with an empty body of the inner services' body type.
                .map_response(IntoResponse::into_response)
                .layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout))
                .layer(DefaultBodyLimit::max(BODY_LIMIT))
                .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
                .layer(CatchPanicLayer::new()),
        )
        .with_state(state)
}

/// Longest pause between two expiry sweeps after failures in a row.
pub const SWEEP_BACKOFF_CAP: Duration = Duration::from_secs(60);

/// The expiry sweep: every `interval`, expire the orders whose deadline passed and free their
/// seats, until `stop` turns true. Safe on many servers at once: each expiry is a
/// compare-and-set in the repository, so two sweepers never expire one order twice.
///
/// During an outage the pause doubles with every failed sweep in a row, up to
/// [`SWEEP_BACKOFF_CAP`] ([`sweep_pause`]), so a database that is down or overloaded is not
/// hammered, nor the log filled, every interval; the first success returns to `interval`.
pub async fn sweep(state: AppState, interval: Duration, stop: tokio::sync::watch::Receiver<bool>) {
    // The first sweep runs at once: orders may have lapsed while no server ran.
    every_interval(interval, stop, "expiry sweep", || async {
        let metrics = state.metrics();
        match state.tickets().expire_due().await {
            Ok(expired) => {
                metrics.sweeps.with_label_values(&["ok"]).inc();
                metrics.expired_orders.inc_by(expired);
                if expired > 0 {
                    tracing::info!(expired, "expiry sweep freed seats");
                }
                Ok(())
            }
            Err(error) => {
                metrics.sweeps.with_label_values(&["error"]).inc();
                Err(error)
            }
        }
    })
    .await;
}

/// The pruning of history: every `interval`, delete the published outbox entries and the
/// idempotency records older than the pruner's retention, and drop the seat-lock state of the
/// events that are over, until `stop` turns true. Safe on many servers at once (each batch
/// deletes the oldest rows, whoever runs it; forgetting an event twice costs a delete of absent
/// keys); failures back off like the sweep's.
pub async fn prune_history(
    pruner: HistoryPruner,
    closed: ClosedEventSweep,
    interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    every_interval(interval, stop, "pruning history", || async {
        let pruned = pruner.prune_once().await?;
        if pruned != Pruned::default() {
            tracing::info!(
                outbox_entries = pruned.outbox_entries,
                idempotency_keys = pruned.idempotency_keys,
                "pruned history older than the retention"
            );
        }
        let events = closed.forget_closed_events().await?;
        if events > 0 {
            tracing::info!(
                events,
                "dropped the seat-lock state of events that are over"
            );
        }
        Ok(())
    })
    .await;
}

/// Runs `round` at once and then every `interval` until `stop` turns true. After a failure the
/// pause doubles with every failure in a row, up to [`SWEEP_BACKOFF_CAP`] ([`sweep_pause`]); the
/// first success returns to `interval`.
async fn every_interval<F, Fut>(
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    what: &'static str,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ticketing_core::Result<()>>,
{
    let mut failures = 0u32;
    let mut pause = Duration::ZERO;
    loop {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        match round().await {
            Ok(()) => failures = 0,
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(%error, failures, retry_in = ?sweep_pause(interval, failures), "{what} failed");
            }
        }
        pause = sweep_pause(interval, failures);
    }
}

/// The pause before the next sweep after `failures` failed sweeps in a row: `interval`, doubled
/// per failure, at most [`SWEEP_BACKOFF_CAP`] (or `interval`, if that is longer).
pub fn sweep_pause(interval: Duration, failures: u32) -> Duration {
    interval
        .saturating_mul(1 << failures.min(31))
        .min(SWEEP_BACKOFF_CAP.max(interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_pauses_double_per_failure_up_to_a_minute() {
        let second = Duration::from_secs(1);
        let pauses: Vec<u64> = (0..9).map(|n| sweep_pause(second, n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(sweep_pause(second, u32::MAX), SWEEP_BACKOFF_CAP);
        // An interval above the cap stays what it is.
        let long = Duration::from_secs(120);
        assert_eq!(sweep_pause(long, 3), long);
    }
}
