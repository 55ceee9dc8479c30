//! What bounds each client: a header-read timeout on every connection, a request timeout and a
//! body-read timeout on every request, a cap on requests in flight that sheds the rest with
//! `503 UNAVAILABLE` and `Retry-After`, and a deadline on the shutdown drain.
//!
//! [`serve`] is the accept loop (hyper's HTTP/1 connection with a Tokio timer, which
//! `axum::serve` does not set, so it has no header-read timeout); the per-request limits are
//! layers of [`crate::app::router_with_limits`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::error::ApiError;

/// The limits of one server. [`Default`] gives the flags' defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest time a connection may take to send a request's header, counted from the
    /// connection's start or from the end of its previous response (so it also closes idle
    /// keep-alive connections).
    pub header_read_timeout: Duration,
    /// Longest time from a request's header to its response (`408` after it).
    pub request_timeout: Duration,
    /// Longest silence while reading a request body (`408` after it).
    pub body_read_timeout: Duration,
    /// Most requests handled at once; more are refused with `503` and `Retry-After` (`/health`
    /// and `/metrics` are neither counted nor refused).
    pub max_in_flight: usize,
    /// How long the connections get to finish after the shutdown signal before they are closed.
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(5),
            max_in_flight: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The seconds a shed request is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// The request slots of [`shed_load`].
#[derive(Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    /// At most `max` requests at once.
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))))
    }
}

/// Paths that are never shed: probes and scrapes must see an overloaded server.
fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/metrics")
}

/// Runs a request when a slot is free, and otherwise answers at once with `503 UNAVAILABLE` and
/// `Retry-After` instead of queueing it.
pub async fn shed_load(State(slots): State<InFlight>, request: Request, next: Next) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(_slot) = slots.0.try_acquire() else {
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "too many requests in flight; retry shortly",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        return response;
    };
    next.run(request).await
}

/// Serves `router` on `listener` until `shutdown` completes: HTTP/1 with keep-alive, a
/// header-read timeout and `TCP_NODELAY` on every connection. After `shutdown`, it stops
/// accepting, asks every connection to close after its current request, and closes those still
/// open after [`HttpLimits::shutdown_grace`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let (closing, closing_seen) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connections so the set stays as large as the open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: let some connections end, then retry.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Each response goes out at once (TCP_NODELAY): with Nagle's algorithm a response
        // written behind an unacknowledged one waits for the client's delayed ACK.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY on a connection");
        }
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(|request: axum::http::Request<Incoming>| request.map(Body::new)),
        );
        let connection = http.serve_connection(TokioIo::new(tcp), service);
        let mut closing_seen = closing_seen.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                // Sent once, at shutdown (or the sender is gone: shutting down too).
                _ = closing_seen.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = served {
                // Header timeouts, resets and malformed requests: the client's doing.
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let open = connections.len();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            of = open,
            grace = ?limits.shutdown_grace,
            "shutdown grace over: closing the connections still open"
        );
        connections.shutdown().await;
    }
}
