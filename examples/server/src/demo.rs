//! Demo mode: a venue and an on-sale event created at start, the page at `/` that sells them,
//! a route that mints short-lived tokens for demo customers (`demo-…`), and, on the in-memory
//! backend only, a "simulate payment" route that signs a payment webhook with the configured
//! secret and sends it through the same verification and handling as the real webhook route.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::{get, post};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ticketing_core::domain::{
    Currency, CustomerId, EventSpec, Money, OrderId, Row, Zone, ZoneKind,
};
use ticketing_core::service::CatalogService;
use ticketing_core::{Error, Result};
use uuid::Uuid;

use crate::app::{AppState, DemoEvent};
use crate::auth::{Caller, unix_now};
use crate::contract::{DEMO_CUSTOMER_PREFIX, malformed, parse};
use crate::dto::{
    DemoConfigDto, DemoTokenDto, DemoTokenRequestDto, EventDto, PaymentWebhookDto, VenueDto,
    WebhookAnswerDto,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, parse_id};
use crate::routes::orders::visible_order;
use crate::routes::payments::process_webhook;

/// The page: plain HTML and JavaScript, no build step.
pub const PAGE: &str = include_str!("../static/index.html");

/// Creates the demo venue (a seated zone `STALLS` of rows A–E with 12 seats each, and a
/// general-admission zone `FLOOR` of 40 places) and an event on sale from a minute before `now`
/// for a year, with a 10-minute payment window and at most 6 tickets per customer.
pub async fn seed(catalog: &CatalogService, now: DateTime<Utc>) -> Result<DemoEvent> {
    let code = |c: &str| c.parse();
    let rows = ["A", "B", "C", "D", "E"]
        .iter()
        .map(|label| {
            Ok(Row {
                label: label.parse()?,
                seats: 12,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let venue = catalog
        .create_venue(
            "Demo Hall",
            vec![
                Zone {
                    code: code("STALLS")?,
                    name: "Stalls".into(),
                    kind: ZoneKind::Seated { rows },
                },
                Zone {
                    code: code("FLOOR")?,
                    name: "Standing floor".into(),
                    kind: ZoneKind::GeneralAdmission { capacity: 40 },
                },
            ],
        )
        .await?;
    let eur = Currency::new("EUR")?;
    let event = catalog
        .create_event(EventSpec {
            name: "Demo Night".into(),
            venue_id: venue.id(),
            sale_opens: now - TimeDelta::minutes(1),
            sale_closes: now + TimeDelta::days(365),
            prices: [
                (code("STALLS")?, Money::new(4500, eur)),
                (code("FLOOR")?, Money::new(2500, eur)),
            ]
            .into_iter()
            .collect(),
            hold_time: TimeDelta::minutes(10),
            per_customer_limit: 6,
        })
        .await?;
    Ok(DemoEvent {
        venue: venue.id(),
        event: event.id(),
    })
}

/// How long a demo token lives.
pub const DEMO_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// The demo routes: `/`, `/demo/config`, `/demo/token`, and with `payments`
/// `/demo/orders/{orderId}/pay` (only on the in-memory backend: with a real one, a route that
/// signs payment webhooks would let anyone pay for nothing).
pub fn routes(payments: bool) -> Router<AppState> {
    let routes = Router::new()
        .route("/", get(page))
        .route("/demo/config", get(config))
        .route("/demo/token", post(token));
    if payments {
        routes.route("/demo/orders/{orderId}/pay", post(simulate_payment))
    } else {
        routes
    }
}

/// The demo page: pick seats, buy, simulate the payment.
#[utoipa::path(
    get, path = "/", tag = "demo", operation_id = "demoPage",
    responses((status = 200, description = "The demo page", content_type = "text/html", body = String))
)]
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

fn demo_event(state: &AppState) -> ApiResult<DemoEvent> {
    state
        .demo()
        .ok_or_else(|| ApiError::not_found("demo mode is off"))
}

/// The demo event and its venue, as the page shows them.
#[utoipa::path(
    get, path = "/demo/config", tag = "demo", operation_id = "demoConfig",
    responses(
        (status = 200, description = "The demo event and venue", body = DemoConfigDto),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn config(State(state): State<AppState>) -> ApiResult<Json<DemoConfigDto>> {
    let demo = demo_event(&state)?;
    let event = state.catalog().event(demo.event).await?;
    let venue = state.catalog().venue(demo.venue).await?;
    Ok(Json(DemoConfigDto {
        event: EventDto::from(&event),
        venue: VenueDto::from(&venue),
    }))
}

/// A token for a demo customer (`demo-…`, given or random), valid for an hour. Demo mode
/// only, and only with an HS256 key (the server must be able to sign what it verifies).
#[utoipa::path(
    post, path = "/demo/token", tag = "demo", operation_id = "demoToken",
    request_body = DemoTokenRequestDto,
    responses(
        (status = 200, description = "The token and its customer", body = DemoTokenDto),
        (status = 400, description = "INVALID_REQUEST: the customer id breaks this schema", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DemoTokenRequestDto>,
) -> ApiResult<Json<DemoTokenDto>> {
    demo_event(&state)?;
    let customer: CustomerId = match &body.customer_id {
        Some(id)
            if id.len() > DEMO_CUSTOMER_PREFIX.len() && id.starts_with(DEMO_CUSTOMER_PREFIX) =>
        {
            parse(id)?
        }
        Some(_) => {
            return Err(malformed(Error::invalid(
                "customer_id",
                format!("a demo customer id starts with {DEMO_CUSTOMER_PREFIX:?}"),
            )));
        }
        None => parse(&format!(
            "{DEMO_CUSTOMER_PREFIX}{}",
            &Uuid::new_v4().simple().to_string()[..12]
        ))?,
    };
    let minter = state.customers().minter().ok_or_else(|| {
        ApiError::from(Error::config(
            "demo",
            "demo tokens need an HS256 key, not a public key",
        ))
    })?;
    let expires_at = unix_now() + DEMO_TOKEN_LIFETIME.as_secs();
    Ok(Json(DemoTokenDto {
        token: minter.mint(&customer, expires_at),
        customer_id: customer.to_string(),
        expires_at: DateTime::from_timestamp(expires_at as i64, 0).unwrap_or_default(),
    }))
}

/// Plays the payment provider: signs a webhook for an order of the token's customer with the
/// server's secret and hands it to the webhook handling, which verifies it like any other.
/// Served only in demo mode on the in-memory backend.
#[utoipa::path(
    post, path = "/demo/orders/{orderId}/pay", tag = "demo", operation_id = "demoPay",
    params(("orderId" = Uuid, Path, description = "Order id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("customer" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The paid order", body = WebhookAnswerDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired token; see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 404, description = "NOT_FOUND: no such order, or another customer's", body = ErrorBody),
        (status = 409, description = "PAYMENT_TOO_LATE (details.deadline) or INVALID_TRANSITION: the order \
            is cancelled, expired or paid already", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn simulate_payment(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(order): ApiPath<String>,
) -> ApiResult<Json<WebhookAnswerDto>> {
    if !state.demo_payments() {
        return Err(ApiError::not_found("demo payments are off"));
    }
    let order: OrderId = parse_id(&order)?;
    // The demo pays what the order costs.
    let total = visible_order(&state, &caller, order).await?.total;
    let payload = PaymentWebhookDto {
        id: format!("demo_{}", Uuid::new_v4().simple()),
        order_id: order.as_uuid(),
        payment_reference: format!("demo_pay_{}", Uuid::new_v4().simple()),
        amount_minor: total.minor,
        currency: total.currency.to_string(),
    };
    let body = serde_json::to_vec(&payload)
        .map_err(|e| ApiError::from(ticketing_core::Error::internal(e.to_string())))?;
    let now = state.backends().clock().now().timestamp();
    let signature = state.webhook_secret().sign(now, &body);
    let outcome = process_webhook(&state, Some(&signature), &body).await?;
    Ok(Json(outcome.answer?))
}
