//! The handlers, one module per resource. Each maps its wire types to a core call and back.

pub mod admin;
pub mod channels;
pub mod events;
pub mod ops;
pub mod orders;
pub mod payments;
pub mod seat_changes;
pub mod tickets;
pub mod vouchers;
pub mod waiting_list;
pub mod waiting_room;

use std::future::Future;

use axum::http::StatusCode;

use crate::error::{ApiError, ApiResult};

/// Runs a write (purchase, payment, cancellation, refund) in a task of its own and waits for it.
///
/// hyper drops a handler's future when its client disconnects (and the request timeout drops it
/// too). Dropped between the commit and the seat-lock update, a write would leave the lock
/// disagreeing with the database until a deadline, the relay or a rebuild repaired it; dropped
/// inside sqlx's `BEGIN`, it could hand a pooled connection back inside a transaction. A spawned
/// task is not dropped with the handler, so the write runs to completion whoever waits for it.
/// A panic in the task is `500 INTERNAL`, as a panic in a handler is.
pub async fn run_detached<T, F>(write: F) -> ApiResult<T>
where
    F: Future<Output = ticketing_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    match tokio::spawn(write).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(error) => {
            tracing::error!(%error, "a detached write panicked or was cancelled");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            ))
        }
    }
}
