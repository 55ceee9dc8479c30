//! `GET /api/orders/{orderId}` and `POST /api/orders/{orderId}/cancel`.

use axum::Json;
use axum::extract::State;
use ticketing_core::domain::OrderId;

use crate::app::AppState;
use crate::dto::OrderDto;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiPath, parse_id};

/// An order with its tickets.
#[utoipa::path(
    get, path = "/api/orders/{orderId}", tag = "orders", operation_id = "getOrder",
    params(("orderId" = uuid::Uuid, Path, description = "Order id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    responses(
        (status = 200, description = "The order", body = OrderDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such order", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn order(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrderDto>> {
    let id: OrderId = parse_id(&id)?;
    let order = state.queries().order(id).await?;
    Ok(Json(OrderDto::from(&order)))
}

/// Cancels an unpaid order and frees its seats. Cancelling again returns the cancelled order.
#[utoipa::path(
    post, path = "/api/orders/{orderId}/cancel", tag = "orders", operation_id = "cancelOrder",
    params(("orderId" = uuid::Uuid, Path, description = "Order id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    responses(
        (status = 200, description = "The cancelled order", body = OrderDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such order", body = ErrorBody),
        (status = 409, description = "INVALID_TRANSITION: the order is paid, expired or refunded", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrderDto>> {
    let id: OrderId = parse_id(&id)?;
    let tickets = state.tickets().clone();
    let order = super::run_detached(async move { tickets.cancel(id).await }).await?;
    Ok(Json(OrderDto::from(&order)))
}
