//! `POST /api/payments/webhook`: the payment provider confirms a payment.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use ticketing_core::domain::{OrderId, PaymentNotice, PaymentRef};

use crate::app::AppState;
use crate::contract::{self, MAX_WEBHOOK_ID_CHARS};
use crate::dto::{OrderDto, PaymentWebhookDto, WebhookAnswerDto};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{header_text, require_json_object};
use crate::webhook::SIGNATURE_HEADER;

/// Set to `true` on the answer to a webhook id that was processed before.
pub const REPLAYED_HEADER: &str = "x-webhook-replayed";

/// Confirms the payment of an order. The body must be signed (`webhook-signature:
/// t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">`); a bad signature or a timestamp more
/// than 300 s away is `401`. A replayed webhook id gets the same answer and has no second effect.
/// Every notification is recorded in the payments ledger (one entry per payment reference) with
/// its outcome; one that cannot pay its order is a refund due (`GET /api/admin/refunds-due`):
/// a payment after the deadline is `409 PAYMENT_TOO_LATE` (unless the server accepts late
/// payments and the seats are still to be had), a wrong amount or currency
/// `409 PAYMENT_MISMATCH`.
#[utoipa::path(
    post, path = "/api/payments/webhook", tag = "payments", operation_id = "paymentWebhook",
    request_body = PaymentWebhookDto,
    params(("webhook-signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256>; \
        checked before the body is read")),
    responses(
        (status = 200, description = "The paid order", body = WebhookAnswerDto,
            headers(("x-webhook-replayed" = String, description = "`true` on the answer to a webhook id processed before"))),
        (status = 400, description = "INVALID_REQUEST: a signed body that breaks this schema, or a signature header that is not visible ASCII", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no, a wrong or a stale (over 300 s) signature", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such order (recorded as a refund due)", body = ErrorBody),
        (status = 409, description = "PAYMENT_TOO_LATE (details.deadline), PAYMENT_MISMATCH (the amount or currency \
            is not the order's total) or INVALID_TRANSITION (the order is cancelled, refunded or paid with another \
            reference); each recorded as a refund due", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: a body over 64 KiB", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the request or its body took longer than the server allows", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a backend failed, or the server is at its in-flight limit (see Retry-After); retry", body = ErrorBody),
    )
)]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body?;
    let signature = header_text(&headers, SIGNATURE_HEADER)?;
    let outcome = process_webhook(&state, signature, &body).await?;
    let mut response = match outcome.answer {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => error.into_response(),
    };
    if outcome.replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The remembered answer to a webhook id, and whether this request replayed it.
#[derive(Debug)]
pub struct WebhookOutcome {
    /// The paid order, or a definitive refusal (404, 409, …).
    pub answer: ApiResult<WebhookAnswerDto>,
    /// Whether the webhook id had been processed before.
    pub replayed: bool,
}

/// Verifies, parses and applies one webhook; the demo's "simulate payment" goes through here too.
/// An `Err` is a refusal before processing (signature, body) or a retryable failure, neither of
/// which is remembered.
pub async fn process_webhook(
    state: &AppState,
    signature: Option<&str>,
    body: &[u8],
) -> ApiResult<WebhookOutcome> {
    let now = state.backends().clock().now().timestamp();
    state.webhook_secret().verify(signature, body, now)?;
    require_json_object(body, "webhook body")?;
    let payload: PaymentWebhookDto = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("invalid webhook body: {e}")))?;
    let id_chars = payload.id.chars().count();
    if id_chars == 0 || id_chars > MAX_WEBHOOK_ID_CHARS {
        return Err(ApiError::invalid(format!(
            "webhook id must be 1 to {MAX_WEBHOOK_ID_CHARS} characters"
        )));
    }
    let notice = PaymentNotice {
        order: OrderId::from_uuid(payload.order_id),
        reference: contract::parse::<PaymentRef>(&payload.payment_reference)?,
        amount: payload.amount()?,
    };
    let tickets = state.tickets().clone();
    let (answer, replayed) = state
        .webhooks()
        .answer(&payload.id, || async move {
            // Detached: a provider that gives up waiting must not cut the payment off between
            // its commit and the seat-lock update.
            match super::run_detached(async move { tickets.pay(notice).await }).await {
                Ok(order) => Ok(Ok(OrderDto::from(&order))),
                Err(error) => {
                    if error.status.is_server_error() {
                        // Retryable: not remembered, the provider's retry runs again.
                        Err(error)
                    } else {
                        Ok(Err(error))
                    }
                }
            }
        })
        .await
        .inspect_err(|e| {
            state
                .metrics()
                .payments
                .with_label_values(&[&e.code.to_ascii_lowercase()])
                .inc();
        })?;
    let outcome = match (&answer, replayed) {
        (_, true) => "replayed".to_owned(),
        (Ok(_), false) => "paid".to_owned(),
        (Err(e), false) => e.code.to_ascii_lowercase(),
    };
    state
        .metrics()
        .payments
        .with_label_values(&[&outcome])
        .inc();
    Ok(WebhookOutcome {
        answer: answer.map(|order| WebhookAnswerDto {
            webhook_id: payload.id,
            order,
        }),
        replayed,
    })
}
