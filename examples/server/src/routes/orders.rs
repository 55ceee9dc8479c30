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
    get, path = "/api/orders/{orderId}", tag = "orders",
    params(("orderId" = String, Path, description = "Order id (UUID)")),
    responses(
        (status = 200, body = OrderDto),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 404, body = ErrorBody),
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
    post, path = "/api/orders/{orderId}/cancel", tag = "orders",
    params(("orderId" = String, Path, description = "Order id (UUID)")),
    responses(
        (status = 200, description = "The cancelled order", body = OrderDto),
        (status = 404, body = ErrorBody),
        (status = 409, description = "INVALID_TRANSITION (already paid or expired)", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrderDto>> {
    let id: OrderId = parse_id(&id)?;
    let order = state.tickets().cancel(id).await?;
    Ok(Json(OrderDto::from(&order)))
}
