//! HTTP mode: the example server's router served in process on 127.0.0.1, and a keep-alive
//! client that buys through `POST /api/tickets`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ticketing_core::service::{Backends, PurchaseRequest, Selection, ServiceConfig};
use ticketing_server::app::{AppConfig, AppState, router};
use ticketing_server::webhook::WebhookSecret;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::BenchError;
use crate::scenario::Outcome;

/// The example server running in this process until [`InProcessServer::stop`].
pub struct InProcessServer {
    /// Where it listens (127.0.0.1, a free port).
    pub address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl InProcessServer {
    /// Serves the example server's router over `backends` on 127.0.0.1.
    pub async fn start(backends: Backends) -> Result<Self, BenchError> {
        let state = AppState::new(
            backends,
            AppConfig {
                admin_token: Uuid::new_v4().simple().to_string(),
                webhook_secret: WebhookSecret::new(Uuid::new_v4().as_bytes()),
                demo: None,
                service: ServiceConfig::default(),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router(state))
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                eprintln!("in-process server failed: {e}");
            }
        });
        Ok(Self {
            address,
            stop,
            task,
        })
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// A keep-alive HTTP/1 client buying at one server.
#[derive(Clone)]
pub struct HttpBuyer {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
}

impl HttpBuyer {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(connector);
        Self {
            client,
            url: format!("{}/api/tickets", base.trim_end_matches('/')),
        }
    }

    /// One purchase: 201 is a success, 409 a rejection (seats taken), anything else a failure.
    pub async fn buy(&self, request: &PurchaseRequest) -> (Outcome, Option<String>) {
        let seats = match &request.selection {
            Selection::Seats(seats) => seats
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "zone": s.zone.as_str(),
                        "row": s.row.as_str(),
                        "number": s.number,
                    })
                })
                .collect::<Vec<_>>(),
            Selection::General { .. } => Vec::new(),
        };
        let body = serde_json::json!({
            "eventId": request.event.as_uuid(),
            "customerId": request.customer.as_str(),
            "seats": seats,
        });
        let http_request = Request::post(&self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())));
        let http_request = match http_request {
            Ok(r) => r,
            Err(e) => return (Outcome::Failed, Some(e.to_string())),
        };
        match self.client.request(http_request).await {
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await.map(|b| b.to_bytes());
                match status {
                    StatusCode::CREATED => (Outcome::Success, None),
                    StatusCode::CONFLICT => (Outcome::Rejected, None),
                    other => (
                        Outcome::Failed,
                        Some(format!(
                            "HTTP {other}: {}",
                            body.map(|b| String::from_utf8_lossy(&b).into_owned())
                                .unwrap_or_default()
                        )),
                    ),
                }
            }
            Err(e) => (Outcome::Failed, Some(e.to_string())),
        }
    }
}
