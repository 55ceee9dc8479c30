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
    post, path = "/api/admin/venues", tag = "admin",
    request_body = CreateVenueDto,
    security(("admin" = [])),
    responses(
        (status = 201, body = VenueDto),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
pub async fn create_venue(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateVenueDto>,
) -> ApiResult<(StatusCode, Json<VenueDto>)> {
    let zones = body.zones()?;
    let venue = state.catalog().create_venue(&body.name, zones).await?;
    Ok((StatusCode::CREATED, Json(VenueDto::from(&venue))))
}

/// Creates an event at a venue with prices per zone.
#[utoipa::path(
    post, path = "/api/admin/events", tag = "admin",
    request_body = CreateEventDto,
    security(("admin" = [])),
    responses(
        (status = 201, body = EventDto),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown venue", body = ErrorBody),
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
    post, path = "/api/admin/orders/{orderId}/refund", tag = "admin",
    params(("orderId" = String, Path, description = "Order id (UUID)")),
    security(("admin" = [])),
    responses(
        (status = 200, body = OrderDto),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "INVALID_TRANSITION (not paid)", body = ErrorBody),
    )
)]
pub async fn refund_order(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrderDto>> {
    let id: OrderId = parse_id(&id)?;
    let order = state.tickets().refund(id).await?;
    Ok(Json(OrderDto::from(&order)))
}
