//! `POST /api/tickets` (purchase) and `GET /api/tickets/{ticketId}`.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ticketing_core::domain::TicketId;

use crate::app::AppState;
use crate::dto::{OrderDto, PurchaseRequestDto, TicketDto};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, header_text, parse_id};

/// The header that makes a purchase safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Buys seats or general-admission places. The order is PENDING_PAYMENT until its payment
/// webhook arrives, and expires at `expiresAt`.
#[utoipa::path(
    post, path = "/api/tickets", tag = "tickets",
    request_body = PurchaseRequestDto,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Same key + same request → same order; same key + another request → 409")),
    responses(
        (status = 201, description = "The order, PENDING_PAYMENT", body = OrderDto),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 404, description = "Unknown event", body = ErrorBody),
        (status = 409, description = "SEATS_TAKEN, SOLD_OUT, NOT_ON_SALE or IDEMPOTENCY_CONFLICT", body = ErrorBody),
        (status = 422, description = "LIMIT_EXCEEDED", body = ErrorBody),
        (status = 503, description = "A backend is unavailable; retry", body = ErrorBody),
    )
)]
pub async fn purchase(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PurchaseRequestDto>,
) -> ApiResult<(StatusCode, Json<OrderDto>)> {
    let started = Instant::now();
    let result = async {
        let key = header_text(&headers, IDEMPOTENCY_KEY)?;
        let request = body.to_core(key)?;
        state
            .tickets()
            .purchase(request)
            .await
            .map_err(ApiError::from)
    }
    .await;
    match result {
        Ok(order) => {
            state.metrics().purchase("ok", started);
            Ok((StatusCode::CREATED, Json(OrderDto::from(&order))))
        }
        Err(error) => {
            state.metrics().purchase(error.code, started);
            Err(error)
        }
    }
}

/// One ticket.
#[utoipa::path(
    get, path = "/api/tickets/{ticketId}", tag = "tickets",
    params(("ticketId" = String, Path, description = "Ticket id (UUID)")),
    responses(
        (status = 200, body = TicketDto),
        (status = 400, description = "Not a UUID", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn ticket(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TicketDto>> {
    let id: TicketId = parse_id(&id)?;
    let ticket = state.queries().ticket(id).await?;
    Ok(Json(TicketDto::from(&ticket)))
}
