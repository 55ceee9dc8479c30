//! Test support: an app over some backends with a manual clock, and request helpers that go
//! through the real router (`tower::ServiceExt::oneshot`).
#![allow(dead_code)]

pub mod suite;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use ticketing_core::ports::{Clock, ManualClock};
use ticketing_core::service::{Backends, CatalogService, ServiceConfig};
use ticketing_server::app::{AppConfig, AppState, DemoEvent, router};
use ticketing_server::auth::{CustomerAuth, JwtKey, TokenMinter, TokenRules, unix_now};
use ticketing_server::live_seat_map::LiveSeatMapConfig;
use ticketing_server::rate_limit::PurchaseRate;
use ticketing_server::webhook::{SIGNATURE_HEADER, WebhookSecret};
use tower::ServiceExt;

/// The admin token of test apps.
pub const ADMIN: &str = "test-admin-token";
/// The webhook secret of test apps.
pub const SECRET: &str = "whsec_test_secret";
/// The HS256 secret of test apps' customer tokens.
pub const JWT_SECRET: &str = "test-customer-token-secret-0123456789";

/// A customer token for `customer`, valid for an hour, signed with [`JWT_SECRET`].
pub fn token(customer: &str) -> String {
    let minter = TokenMinter::hs256(JWT_SECRET.as_bytes(), &TokenRules::default()).unwrap();
    minter.mint(
        &customer.parse().expect("a valid customer id"),
        unix_now() + 3600,
    )
}

/// `Bearer <token>` for `customer`.
pub fn bearer(customer: &str) -> String {
    format!("Bearer {}", token(customer))
}

/// The customer-token verifier of test apps.
pub fn customer_auth() -> CustomerAuth {
    CustomerAuth::new(
        &JwtKey::Hs256(JWT_SECRET.as_bytes().to_vec()),
        &TokenRules::default(),
    )
    .expect("a usable test key")
}

/// A router over some backends, with the demo event seeded and a manual clock.
pub struct TestApp {
    /// The router under test.
    pub router: Router,
    /// Its state (for the sweep and direct service calls).
    pub state: AppState,
    /// The clock every backend and service reads.
    pub clock: Arc<ManualClock>,
    /// The seeded demo venue and event.
    pub demo: DemoEvent,
    _guard: Option<Box<dyn Any + Send + Sync>>,
}

/// One answer: status, headers and the body as JSON (`Value::Null` when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

impl Answer {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("<no code>")
    }

    /// Asserts the status and, for errors, the JSON error shape and code.
    #[track_caller]
    pub fn expect(&self, status: StatusCode, code: Option<&str>) -> &Self {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text());
        if let Some(code) = code {
            assert_error_shape(self);
            assert_eq!(self.code(), code, "unexpected code: {}", self.text());
        }
        self
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// Every error answer: JSON `{code, message, path, traceId}` whose trace id is the
/// `x-request-id` header.
#[track_caller]
pub fn assert_error_shape(answer: &Answer) {
    assert_eq!(
        answer
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "error answers are JSON: {}",
        answer.text()
    );
    for field in ["code", "message", "path", "traceId"] {
        assert!(
            answer.body[field].is_string(),
            "error body lacks {field}: {}",
            answer.text()
        );
    }
    let header = answer
        .headers
        .get("x-request-id")
        .expect("every answer has x-request-id")
        .to_str()
        .unwrap();
    assert_eq!(answer.body["traceId"], header);
}

/// A free loopback port for a server started by a test (bound once and released, so another
/// process may take it before the server binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Now, truncated to milliseconds like the services do.
pub fn now_ms() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(TimeDelta::milliseconds(1))
        .unwrap()
}

impl TestApp {
    /// An app over `backends` (its clock is replaced by a manual one); `guard` lives as long as
    /// the app (e.g. a test database).
    pub async fn new(backends: Backends, guard: Option<Box<dyn Any + Send + Sync>>) -> Self {
        Self::custom(backends, guard, customer_auth(), PurchaseRate::default()).await
    }

    /// [`new`](Self::new) with another token verifier and per-customer purchase rate.
    pub async fn custom(
        backends: Backends,
        guard: Option<Box<dyn Any + Send + Sync>>,
        customers: CustomerAuth,
        purchase_rate: PurchaseRate,
    ) -> Self {
        let live = LiveSeatMapConfig {
            poll: Duration::from_millis(20),
            ..LiveSeatMapConfig::default()
        };
        Self::configured(backends, guard, customers, purchase_rate, live).await
    }

    /// [`custom`](Self::custom) with the live seat map's bounds too.
    pub async fn configured(
        backends: Backends,
        guard: Option<Box<dyn Any + Send + Sync>>,
        customers: CustomerAuth,
        purchase_rate: PurchaseRate,
        live_seat_map: LiveSeatMapConfig,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(now_ms()));
        let backends = backends
            .to_builder()
            .clock(clock.clone())
            .build()
            .expect("complete backends");
        let demo =
            ticketing_server::demo::seed(&CatalogService::new(backends.clone()), clock.now())
                .await
                .expect("seeding the demo event");
        let state = AppState::new(
            backends,
            AppConfig {
                admin_token: ADMIN.into(),
                webhook_secret: WebhookSecret::new(SECRET),
                demo: Some(demo),
                demo_payments: true,
                customers,
                purchase_rate,
                seat_map_reads: None,
                live_seat_map,
                service: ServiceConfig::default(),
                admission_secret: ticketing_core::domain::AdmissionSecret::new(
                    b"test admission secret",
                )
                .expect("a non-empty secret"),
            },
        );
        // The live seat map follows the outbox while the test's runtime runs.
        let live = state.live_seat_map().clone();
        tokio::spawn(async move { live.follow(std::future::pending()).await });
        Self {
            router: router(state.clone()),
            state,
            clock,
            demo,
            _guard: guard,
        }
    }

    /// An app over the in-memory adapters.
    pub async fn in_memory() -> Self {
        Self::new(Backends::in_memory(), None).await
    }

    /// Sends a request through the router.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let raw = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            raw,
        }
    }

    /// A request with optional JSON body and extra headers.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(path);
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.send(builder.body(body).unwrap()).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None, &[]).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    /// `GET path` as `customer`.
    pub async fn get_as(&self, customer: &str, path: &str) -> Answer {
        let auth = bearer(customer);
        self.call(Method::GET, path, None, &[("authorization", &auth)])
            .await
    }

    /// `POST path` with a JSON body as `customer`.
    pub async fn post_as(&self, customer: &str, path: &str, body: &Value) -> Answer {
        let auth = bearer(customer);
        self.call(Method::POST, path, Some(body), &[("authorization", &auth)])
            .await
    }

    /// `GET path` with the admin token.
    pub async fn admin_get(&self, path: &str) -> Answer {
        let auth = format!("Bearer {ADMIN}");
        self.call(Method::GET, path, None, &[("authorization", &auth)])
            .await
    }

    /// `POST path` to an admin route with the admin token.
    pub async fn admin_post(&self, path: &str, body: &Value) -> Answer {
        let auth = format!("Bearer {ADMIN}");
        self.call(Method::POST, path, Some(body), &[("authorization", &auth)])
            .await
    }

    /// Buys seats (`"STALLS:A:1"`) of the demo event for `customer`.
    pub async fn buy(&self, customer: &str, seats: &[&str]) -> Answer {
        self.post_as(
            customer,
            "/api/tickets",
            &purchase(self.demo.event.to_string(), seats),
        )
        .await
    }

    /// Sends a payment webhook for the order's total, signed at the test clock's now.
    pub async fn webhook(&self, id: &str, order: &str, reference: &str) -> Answer {
        let total = match order.parse() {
            Ok(uuid) => self
                .state
                .queries()
                .order(ticketing_core::domain::OrderId::from_uuid(uuid))
                .await
                .map(|o| (o.total.minor, o.total.currency.to_string()))
                .unwrap_or((100, "EUR".to_owned())),
            Err(_) => (100, "EUR".to_owned()),
        };
        self.webhook_paying(id, order, reference, total.0, &total.1)
            .await
    }

    /// Sends a payment webhook for `amount_minor` in `currency`, signed at the test clock's now.
    pub async fn webhook_paying(
        &self,
        id: &str,
        order: &str,
        reference: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Answer {
        let body = json!({
            "id": id, "orderId": order, "paymentReference": reference,
            "amountMinor": amount_minor, "currency": currency,
        })
        .to_string();
        let signature =
            WebhookSecret::new(SECRET).sign(self.clock.now().timestamp(), body.as_bytes());
        self.signed_webhook(body, &signature).await
    }

    /// Sends a webhook body with the given signature header.
    pub async fn signed_webhook(&self, body: String, signature: &str) -> Answer {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/payments/webhook")
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }
}

/// One Server-Sent Event: its name, its id and its data as JSON.
#[derive(Debug, Clone)]
pub struct SseMessage {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// A Server-Sent Events answer read as a browser's `EventSource` reads it.
pub struct SseClient {
    pub headers: HeaderMap,
    body: Body,
    buffer: String,
}

impl SseClient {
    /// The next event (keep-alive comments skipped), or `None` when none comes within `idle`
    /// or the stream ended.
    pub async fn next_within(&mut self, idle: Duration) -> Option<SseMessage> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = ("message".to_owned(), None, String::new());
                for line in block.lines().filter(|l| !l.starts_with(':')) {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => event = value.to_owned(),
                        "id" => id = Some(value.to_owned()),
                        "data" => data.push_str(value),
                        _ => {}
                    }
                }
                if data.is_empty() && id.is_none() {
                    continue; // a keep-alive comment
                }
                let data = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
                return Some(SseMessage { event, id, data });
            }
            let frame = tokio::time::timeout(idle, self.body.frame()).await.ok()??;
            let frame = frame.expect("the stream's body does not fail");
            if let Ok(bytes) = frame.into_data() {
                self.buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8 events"));
            }
        }
    }

    /// Every event until none comes for `idle`.
    pub async fn drain(&mut self, idle: Duration) -> Vec<SseMessage> {
        let mut all = Vec::new();
        while let Some(message) = self.next_within(idle).await {
            all.push(message);
        }
        all
    }
}

impl TestApp {
    /// Opens the live seat map of `event` (with `Last-Event-ID: last_event_id`): the stream, or
    /// the answer when it is not `200`.
    pub async fn seat_changes(
        &self,
        event: &str,
        last_event_id: Option<&str>,
    ) -> Result<SseClient, Answer> {
        let mut request = Request::get(format!("/api/events/{event}/seat-changes"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .expect("the router is infallible");
        if response.status() != StatusCode::OK {
            let status = response.status();
            let headers = response.headers().clone();
            let raw = response.into_body().collect().await.unwrap().to_bytes();
            let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            return Err(Answer {
                status,
                headers,
                body,
                raw,
            });
        }
        let headers = response.headers().clone();
        Ok(SseClient {
            headers,
            body: response.into_body(),
            buffer: String::new(),
        })
    }

    /// Waits until the live seat map has read every outbox entry the repository holds.
    pub async fn live_seat_map_caught_up(&self) {
        let tickets = self.state.backends().tickets();
        let head = tickets.outbox_head().await.unwrap().unwrap_or(0);
        let feed = self.state.live_seat_map().feed();
        let started = std::time::Instant::now();
        while feed.position() < Some(head) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the live seat map is at {:?}, the outbox at {head}",
                feed.position()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A purchase body for seats given as `"ZONE:ROW:NUMBER"` (the customer is the token's).
pub fn purchase(event: String, seats: &[&str]) -> Value {
    let seats: Vec<Value> = seats
        .iter()
        .map(|s| {
            let mut parts = s.split(':');
            json!({
                "zone": parts.next().unwrap(),
                "row": parts.next().unwrap(),
                "number": parts.next().unwrap().parse::<u32>().unwrap(),
            })
        })
        .collect();
    json!({"eventId": event, "seats": seats})
}
