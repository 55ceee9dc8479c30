//! Admin routes (bearer token): create venues and events, refund orders, and the payments
//! ledger (refunds due, an order's payments).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ticketing_core::Error;
use ticketing_core::domain::{OrderId, PaymentRef};

use crate::app::AppState;
use crate::dto::{CreateEventDto, CreateVenueDto, EventDto, OrderDto, PaymentDto, VenueDto};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, parse_id};

/// Creates a venue with seated and general-admission zones.
#[utoipa::path(
    post, path = "/api/admin/venues", tag = "admin", operation_id = "createVenue",
    request_body = CreateVenueDto,
    security(("admin" = [])),
    responses(
        (status = 201, description = "The venue, with a new id", body = VenueDto),
        (status = 400, description = "INVALID_REQUEST: the body breaks this schema", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "INCONSISTENT_REQUEST: a zone code twice in the venue, a row label twice in a zone, \
            or more numbered seats in the venue than the server's cap (see CreateVenueDto)", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn create_venue(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateVenueDto>,
) -> ApiResult<(StatusCode, Json<VenueDto>)> {
    let zones = body.zones(state.venue_limits())?;
    let venue = state.catalog().create_venue(&body.name, zones).await?;
    Ok((StatusCode::CREATED, Json(VenueDto::from(&venue))))
}

/// Creates an event at a venue with prices per zone.
#[utoipa::path(
    post, path = "/api/admin/events", tag = "admin", operation_id = "createEvent",
    request_body = CreateEventDto,
    security(("admin" = [])),
    responses(
        (status = 201, description = "The event, with a new id", body = EventDto),
        (status = 400, description = "INVALID_REQUEST: the body breaks this schema", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such venue", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "INCONSISTENT_REQUEST: the sale closes before it opens, a price names \
            a zone the venue lacks or a zone twice, the prices use more than one currency, a hidden zone \
            has no price, or price tiers name an unpriced zone, a zone twice, or another currency", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn create_event(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateEventDto>,
) -> ApiResult<(StatusCode, Json<EventDto>)> {
    let hidden = body.hidden_zones()?;
    let tiers = body.price_tiers()?;
    let spec = body.to_core()?;
    let event = state
        .catalog()
        .create_event_with_price_tiers(spec, hidden, tiers)
        .await?;
    let standing = state.queries().price_tiers(&event).await?;
    Ok((
        StatusCode::CREATED,
        Json(EventDto::admin(&event).with_tiers(&event, &standing, false)),
    ))
}

/// Refunds a paid order and frees its seats.
#[utoipa::path(
    post, path = "/api/admin/orders/{orderId}/refund", tag = "admin", operation_id = "refundOrder",
    params(("orderId" = uuid::Uuid, Path, description = "Order id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("admin" = [])),
    responses(
        (status = 200, description = "The refunded order", body = OrderDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such order", body = ErrorBody),
        (status = 409, description = "INVALID_TRANSITION: the order is not paid", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn refund_order(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrderDto>> {
    let id: OrderId = parse_id(&id)?;
    let tickets = state.tickets().clone();
    let order = super::run_detached(async move { tickets.refund(id).await }).await?;
    Ok(Json(OrderDto::from(&order)))
}

/// Most entries `GET /api/admin/refunds-due` lists in one answer; mark some refunded to see more.
pub const MAX_REFUNDS_LISTED: u32 = 500;

/// The payments whose money is owed back and not yet reported refunded, oldest first (at most
/// 500): a wrong amount, a payment after the deadline, one for a cancelled, refunded or
/// otherwise paid order, or for no order at all.
#[utoipa::path(
    get, path = "/api/admin/refunds-due", tag = "admin", operation_id = "refundsDue",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The refunds owed, oldest first (at most 500)", body = Vec<PaymentDto>),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn refunds_due(State(state): State<AppState>) -> ApiResult<Json<Vec<PaymentDto>>> {
    let due = state.tickets().refunds_due(MAX_REFUNDS_LISTED).await?;
    Ok(Json(due.iter().map(PaymentDto::from).collect()))
}

/// Notes that the refund owed under a payment reference was sent (through the provider); it
/// leaves the refunds due.
#[utoipa::path(
    post, path = "/api/admin/payments/{paymentReference}/refunded", tag = "admin",
    operation_id = "markRefunded",
    params(("paymentReference" = String, Path, description = "The provider's payment reference",
        min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.@+-]+$", example = "pi_3Nabc")),
    security(("admin" = [])),
    responses(
        (status = 200, description = "The ledger entry, with refundedAt", body = PaymentDto),
        (status = 400, description = "INVALID_REQUEST: the reference is not a token", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no refund is owed under this reference (unknown, it paid, or refunded already)", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn mark_refunded(
    State(state): State<AppState>,
    ApiPath(reference): ApiPath<String>,
) -> ApiResult<Json<PaymentDto>> {
    let reference: PaymentRef = crate::contract::parse(&reference)?;
    if !state.tickets().mark_refunded(&reference).await? {
        return Err(Error::not_found("refund owed under payment", &reference).into());
    }
    let entry = state
        .tickets()
        .payment(&reference)
        .await?
        .ok_or_else(|| Error::internal(format!("payment {reference} vanished")))?;
    Ok(Json(PaymentDto::from(&entry)))
}

/// Every payment notification recorded for an order, oldest first, whatever became of it.
#[utoipa::path(
    get, path = "/api/admin/orders/{orderId}/payments", tag = "admin", operation_id = "orderPayments",
    params(("orderId" = uuid::Uuid, Path, description = "Order id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("admin" = [])),
    responses(
        (status = 200, description = "The order's ledger entries, oldest first (empty for an order never paid, or none)", body = Vec<PaymentDto>),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or a wrong admin bearer token", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn order_payments(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<PaymentDto>>> {
    let id: OrderId = parse_id(&id)?;
    let entries = state.tickets().payments_of(id).await?;
    Ok(Json(entries.iter().map(PaymentDto::from).collect()))
}
