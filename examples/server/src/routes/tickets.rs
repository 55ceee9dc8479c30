//! `POST /api/tickets` (purchase) and `GET /api/tickets/{ticketId}`.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ticketing_core::domain::TicketId;

use crate::app::AppState;
use crate::contract;
use crate::dto::{OrderDto, PurchaseRequestDto, TicketDto};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, header_text, parse_id};

/// The header that makes a purchase safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The headers of a purchase.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct PurchaseHeaders {
    /// Same key + same request → same order; same key + another request → 409.
    #[param(rename = "Idempotency-Key", schema_with = contract::idempotency_key)]
    pub idempotency_key: Option<String>,
}

/// Buys seats or general-admission places. The order is PENDING_PAYMENT until its payment
/// webhook arrives, and expires at `expiresAt`.
#[utoipa::path(
    post, path = "/api/tickets", tag = "tickets", operation_id = "purchase",
    request_body = PurchaseRequestDto,
    params(PurchaseHeaders),
    responses(
        (status = 201, description = "The order, PENDING_PAYMENT", body = OrderDto),
        (status = 400, description = "INVALID_REQUEST: the body or the Idempotency-Key header breaks this schema", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 409, description = "SEATS_TAKEN (details.seats), SOLD_OUT, NOT_ON_SALE or IDEMPOTENCY_CONFLICT", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "LIMIT_EXCEEDED: more tickets than the event allows a customer; \
            INCONSISTENT_REQUEST: a seat or zone the event does not sell (details.field)", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
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
        let tickets = state.tickets().clone();
        super::run_detached(async move { tickets.purchase(request).await }).await
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
    get, path = "/api/tickets/{ticketId}", tag = "tickets", operation_id = "getTicket",
    params(("ticketId" = uuid::Uuid, Path, description = "Ticket id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    responses(
        (status = 200, description = "The ticket", body = TicketDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such ticket", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
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
