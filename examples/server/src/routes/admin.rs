//! Admin routes (bearer token): create venues and events, refund orders.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ticketing_core::domain::OrderId;

use crate::app::AppState;
use crate::dto::{CreateEventDto, CreateVenueDto, EventDto, OrderDto, VenueDto};
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
            a zone the venue lacks or a zone twice, or the prices use more than one currency", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn create_event(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateEventDto>,
) -> ApiResult<(StatusCode, Json<EventDto>)> {
    let spec = body.to_core()?;
    let event = state.catalog().create_event(spec).await?;
    Ok((StatusCode::CREATED, Json(EventDto::from(&event))))
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
