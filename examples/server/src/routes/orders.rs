//! `GET /api/orders/{orderId}`, `POST /api/orders/{orderId}/cancel` and
//! `POST /api/orders/{orderId}/extend`.

use axum::Json;
use axum::extract::State;
use ticketing_core::Error;
use ticketing_core::domain::{Order, OrderId};

use crate::app::AppState;
use crate::auth::Caller;
use crate::dto::{ExtendedHoldDto, OrderDto};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, parse_id};

/// The order `id` if `caller` may see it; another customer's order is `404` exactly like one
/// that does not exist, so ids cannot be probed.
pub async fn visible_order(state: &AppState, caller: &Caller, id: OrderId) -> ApiResult<Order> {
    let order = state.queries().order(id).await?;
    if !caller.may_see(&order.customer) {
        return Err(ApiError::from(Error::not_found("order", id)));
    }
    Ok(order)
}

/// An order of the token's customer, with its tickets (the admin token reads any).
#[utoipa::path(
    get, path = "/api/orders/{orderId}", tag = "orders", operation_id = "getOrder",
    params(("orderId" = uuid::Uuid, Path, description = "Order id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("customer" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The order", body = OrderDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired token; see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 404, description = "NOT_FOUND: no such order, or another customer's", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn order(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrderDto>> {
    let id: OrderId = parse_id(&id)?;
    let order = visible_order(&state, &caller, id).await?;
    Ok(Json(OrderDto::from(&order)))
}

/// Cancels an unpaid order of the token's customer (the admin token cancels any) and frees its
/// seats. Cancelling again returns the cancelled order.
#[utoipa::path(
    post, path = "/api/orders/{orderId}/cancel", tag = "orders", operation_id = "cancelOrder",
    params(("orderId" = uuid::Uuid, Path, description = "Order id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("customer" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The cancelled order", body = OrderDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired token; see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 404, description = "NOT_FOUND: no such order, or another customer's", body = ErrorBody),
        (status = 409, description = "INVALID_TRANSITION: the order is paid, expired or refunded", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OrderDto>> {
    let id: OrderId = parse_id(&id)?;
    // An order's customer never changes, so the check cannot go stale before the cancel.
    visible_order(&state, &caller, id).await?;
    let tickets = state.tickets().clone();
    let order = super::run_detached(async move { tickets.cancel(id).await }).await?;
    Ok(Json(OrderDto::from(&order)))
}

/// Extends the payment deadline of an unpaid order of the token's customer (the admin token
/// extends any) by the server's step, within its count and total cap (`--hold-extensions`,
/// `--hold-extension-step`, `--hold-extension-max-total`). A refusal changes nothing.
#[utoipa::path(
    post, path = "/api/orders/{orderId}/extend", tag = "orders", operation_id = "extendOrder",
    params(("orderId" = uuid::Uuid, Path, description = "Order id", example = "01936a6e-70aa-7cde-8a11-5b6c7d8e9f00")),
    security(("customer" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The order with its new deadline, and the extensions used and left", body = ExtendedHoldDto),
        (status = 400, description = "INVALID_REQUEST: the id is not a hyphenated UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a malformed, a forged or an expired token; see WWW-Authenticate", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was refused"))),
        (status = 404, description = "NOT_FOUND: no such order, or another customer's", body = ErrorBody),
        (status = 409, description = "HOLD_NOT_EXTENDED: details.reason is limit_reached (extended as often as allowed), cap_reached (at the longest hold allowed), expired (the deadline passed), not_pending (paid, cancelled or refunded) or disabled; SEATS_TAKEN or SOLD_OUT: another order holds its seats or places now (its hold had lapsed). Nothing changed", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn extend(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ExtendedHoldDto>> {
    let id: OrderId = parse_id(&id)?;
    // An order's customer never changes; the admin extends in the customer's name.
    let order = visible_order(&state, &caller, id).await?;
    let tickets = state.tickets().clone();
    let extended =
        super::run_detached(async move { tickets.extend_hold(id, &order.customer).await }).await?;
    Ok(Json(ExtendedHoldDto::from(&extended)))
}
