//! `POST /api/tickets` (purchase) and `GET /api/tickets/{ticketId}`.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ticketing_core::Error;
use ticketing_core::domain::TicketId;

use crate::app::AppState;
use crate::auth::{Caller, Customer};
use crate::contract;
use crate::dto::{OrderDto, PurchaseRequestDto, TicketDto};
use crate::error::{ApiError, ApiResult, ErrorBody};
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
    /// The admission token of the event's waiting room (`GET /api/events/{eventId}/waiting-room`
    /// gives it once admitted); required when the event has a waiting room.
    #[param(rename = "Admission-Token", schema_with = super::waiting_room::admission_token)]
    pub admission_token: Option<String>,
}

/// Buys seats or general-admission places for the customer of the bearer token. The order is
/// PENDING_PAYMENT until its payment webhook arrives, and expires at `expiresAt`. Each customer
/// may make a burst of purchases, then a sustained rate (`--purchase-burst`, `--purchase-rate`);
/// beyond it the answer is `429 RATE_LIMITED` with `Retry-After`. An event with a waiting room
/// needs the customer's live admission token in `Admission-Token` (`403 NOT_ADMITTED` without it,
/// or with an expired, used, or another customer's or event's token); a successful purchase uses
/// the admission up.
#[utoipa::path(
    post, path = "/api/tickets", tag = "tickets", operation_id = "purchase",
    request_body = PurchaseRequestDto,
    params(PurchaseHeaders),
    security(("customer" = [])),
    responses(
        (status = 201, description = "The order, PENDING_PAYMENT", body = OrderDto),
        (status = 400, description = "INVALID_REQUEST: the body or the Idempotency-Key header breaks this schema", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired customer token \
            (or the admin token, which names no customer); see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 429, description = "RATE_LIMITED: this customer made too many purchases; retry after Retry-After seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until this customer's next purchase is allowed"))),
        (status = 403, description = "NOT_ADMITTED: the event has a waiting room and the Admission-Token is missing, \
            expired, already used, in use by another purchase, or another customer's or event's (details.reason); \
            or CHANNEL_KEY_INVALID: the body's channel key is not that channel's", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such event", body = ErrorBody),
        (status = 409, description = "SEATS_TAKEN (details.seats), SOLD_OUT, NO_ADJACENT_SEATS (best available: no block of that size), \
            NOT_ON_SALE, IDEMPOTENCY_CONFLICT, \
            or the voucher's refusal: VOUCHER_UNKNOWN (no such code for the event), VOUCHER_NOT_YET_VALID, \
            VOUCHER_EXPIRED, VOUCHER_USED_UP (every use is taken by an active order) or VOUCHER_CUSTOMER_LIMIT", body = ErrorBody),
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
    Customer(customer): Customer,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PurchaseRequestDto>,
) -> Result<(StatusCode, Json<OrderDto>), Response> {
    let started = Instant::now();
    if let Err(limited) = state.purchase_limiter().check(&customer) {
        state.metrics().purchase("RATE_LIMITED", started);
        return Err(limited.into_response());
    }
    let result = async {
        let key = header_text(&headers, IDEMPOTENCY_KEY)?;
        let admission = super::waiting_room::admission_token_header(&headers)?;
        let request = body.to_core(customer, key)?;
        let tickets = state.tickets().clone();
        let room = state.waiting_room().clone();
        super::run_detached(
            async move { room.purchase(&tickets, request, admission.as_deref()).await },
        )
        .await
    }
    .await;
    match result {
        Ok(order) => {
            state.metrics().purchase("ok", started);
            Ok((StatusCode::CREATED, Json(OrderDto::from(&order))))
        }
        Err(error) => {
            state.metrics().purchase(error.code, started);
            Err(error.into_response())
        }
    }
}

/// One ticket of the token's customer (the admin token reads any).
#[utoipa::path(
    get, path = "/api/tickets/{ticketId}", tag = "tickets", operation_id = "getTicket",
    params(("ticketId" = uuid::Uuid, Path, description = "Ticket id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("customer" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The ticket", body = TicketDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired token; see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 404, description = "NOT_FOUND: no such ticket, or another customer's", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn ticket(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TicketDto>> {
    let id: TicketId = parse_id(&id)?;
    let ticket = state.queries().ticket(id).await?;
    if !caller.may_see(&ticket.customer) {
        // The same answer as for a ticket that does not exist: no existence leak.
        return Err(ApiError::from(Error::not_found("ticket", id)));
    }
    Ok(Json(TicketDto::from(&ticket)))
}
