//! `GET /health`, `GET /metrics`, `GET /openapi.json`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use ticketing_core::domain::{EventId, TicketId};
use uuid::Uuid;

use crate::app::AppState;
use crate::dto::HealthDto;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::openapi::{DemoRoutes, document_with_limits};

/// How long each health check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks the ticket repository (a lookup) and the seat lock (a snapshot of a random event, which
/// runs the lock's script path on Redis, not just PING). `503` when either fails.
#[utoipa::path(
    get, path = "/health", tag = "ops", operation_id = "health",
    responses(
        (status = 200, description = "Both checks passed", body = HealthDto),
        (status = 500, description = "INTERNAL: a bug, broken stored data, or a backend failure that retrying will not cure (no retry)", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: a check failed or timed out", body = ErrorBody),
    )
)]
pub async fn health(State(state): State<AppState>) -> ApiResult<Json<HealthDto>> {
    let b = state.backends();
    let probe = TicketId::from_uuid(Uuid::new_v4());
    check("repository", b.tickets().ticket(probe)).await?;
    let event = EventId::from_uuid(Uuid::new_v4());
    check("seat lock", b.seat_lock().snapshot(event, b.clock().now())).await?;
    Ok(Json(HealthDto {
        status: "ok".into(),
        repository: "ok".into(),
        seat_lock: "ok".into(),
    }))
}

async fn check<T>(
    what: &str,
    call: impl Future<Output = ticketing_core::Result<T>>,
) -> ApiResult<()> {
    let unavailable = |why: String| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            format!("{what} check failed: {why}"),
        )
    };
    match tokio::time::timeout(CHECK_TIMEOUT, call).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => {
            tracing::warn!(%error, check = what, "health check failed");
            Err(unavailable(error.code().to_lowercase()))
        }
        Err(_) => Err(unavailable("timed out".into())),
    }
}

/// Prometheus text exposition.
#[utoipa::path(
    get, path = "/metrics", tag = "ops", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
    )
}

/// This API's OpenAPI 3 document (with the demo routes in demo mode).
#[utoipa::path(
    get, path = "/openapi.json", tag = "ops", operation_id = "openapi",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    let demo = match (state.demo().is_some(), state.demo_payments()) {
        (false, _) => DemoRoutes::Off,
        (true, false) => DemoRoutes::Page,
        (true, true) => DemoRoutes::PageAndPayments,
    };
    Json(document_with_limits(demo, state.venue_limits()))
}
