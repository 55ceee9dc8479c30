//! The layers every request passes: request ids, the error renderer, the request log line and
//! the admin guard.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};

/// The trace-id header.
pub const REQUEST_ID: &str = "x-request-id";

/// Drops an incoming `x-request-id` that is not a short token (at most 128 of `[A-Za-z0-9._-]`),
/// so the id layer generates a fresh one: client text never reaches logs unchecked.
pub fn drop_odd_request_id(mut request: Request) -> Request {
    let odd = request.headers().get(REQUEST_ID).is_some_and(|value| {
        let bytes = value.as_bytes();
        bytes.is_empty()
            || bytes.len() > 128
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if odd {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// Renders every error answer as `{code, message, path, traceId}`, counts answers and writes one
/// structured log line per request.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let trace_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut response = next.run(request).await;
    if response.status().is_client_error() || response.status().is_server_error() {
        response = render_error(response, &path, &trace_id);
    }
    let status = response.status().as_u16();
    state
        .metrics()
        .http_responses
        .with_label_values(&[&status.to_string()])
        .inc();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(target: "ticketing_server::http", %method, %path, status, latency_ms, trace_id = %trace_id, "request");
    } else {
        tracing::info!(target: "ticketing_server::http", %method, %path, status, latency_ms, trace_id = %trace_id, "request");
    }
    response
}

fn render_error(response: Response, path: &str, trace_id: &str) -> Response {
    let (mut parts, _body) = response.into_parts();
    let error = parts
        .extensions
        .remove::<ApiError>()
        .unwrap_or_else(|| ApiError::from_status(parts.status));
    let body = ErrorBody {
        code: error.code.to_owned(),
        message: error.message,
        path: path.to_owned(),
        trace_id: trace_id.to_owned(),
        details: error.details,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"code\":\"INTERNAL\"}".to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.status = error.status;
    Response::from_parts(parts, Body::from(bytes))
}

/// Lets a request through only with `Authorization: Bearer <admin token>` (constant-time compare).
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let expected = state.admin_token().as_bytes();
    let ok = presented.is_some_and(|token| bool::from(token.as_bytes().ct_eq(expected)));
    if !ok {
        let mut response =
            ApiError::unauthorized("admin routes need Authorization: Bearer <admin token>")
                .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(request).await
}

/// Answers unknown routes with a JSON 404.
pub async fn no_route() -> ApiError {
    ApiError::from_status(StatusCode::NOT_FOUND)
}
