//! HTTP mode: the example server's router served in process on 127.0.0.1 (`--mode http`), and
//! the buyer that talks to any example server over keep-alive HTTP: `POST /api/tickets`, the
//! signed payment webhook, and cancellation.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::StatusCode;
use serde::Deserialize;
use ticketing_core::domain::{CustomerId, EventId, Money, OrderId};
use ticketing_core::service::{Backends, PurchaseRequest, Selection, ServiceConfig};
use ticketing_server::app::{AppConfig, AppState, router};
use ticketing_server::auth::{CustomerAuth, JwtKey, TokenMinter, TokenRules, unix_now};
use ticketing_server::dto::{
    BestAvailableDto, GeneralAdmissionDto, MoneyDto, PurchaseRequestDto, RowRangeDto, SeatDto,
    TicketStatusDto,
};
use ticketing_server::rate_limit::PurchaseRate;
use ticketing_server::routes::channels::ChannelAccessDto;
use ticketing_server::webhook::WebhookSecret;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::BenchError;
use crate::client::{HttpClient, RequestError};
use crate::scenario::Attempt;
use crate::webhook;

/// The example server running in this process until [`InProcessServer::stop`].
pub struct InProcessServer {
    /// Where it listens (127.0.0.1, a free port).
    pub address: SocketAddr,
    /// The bearer token of its admin routes (random).
    pub admin_token: String,
    /// The secret its payment webhooks are signed with (random).
    pub webhook_secret: Vec<u8>,
    /// The HS256 secret of its customer tokens (random).
    pub jwt_secret: Vec<u8>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl InProcessServer {
    /// Serves the example server's router over `backends` on 127.0.0.1, with a random admin
    /// token, webhook secret and customer-token secret, and the default purchase rate limit
    /// (every attempt of a run is a new customer, so it never binds).
    pub async fn start(backends: Backends) -> Result<Self, BenchError> {
        Self::start_with_jwt_secret(backends, random_secret()).await
    }

    /// [`start`](Self::start) with a given customer-token secret, for servers that share their
    /// customers.
    pub async fn start_with_jwt_secret(
        backends: Backends,
        jwt_secret: Vec<u8>,
    ) -> Result<Self, BenchError> {
        let admin_token = Uuid::new_v4().simple().to_string();
        let webhook_secret = Uuid::new_v4().simple().to_string().into_bytes();
        let state = AppState::new(
            backends,
            AppConfig {
                admin_token: admin_token.clone(),
                webhook_secret: WebhookSecret::new(&webhook_secret),
                demo: None,
                demo_payments: false,
                customers: CustomerAuth::new(
                    &JwtKey::Hs256(jwt_secret.clone()),
                    &TokenRules::default(),
                )?,
                purchase_rate: PurchaseRate::default(),
                seat_map_reads: None,
                live_seat_map: Default::default(),
                service: ServiceConfig::default(),
                admission_secret: ticketing_core::domain::AdmissionSecret::random(),
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
            admin_token,
            webhook_secret,
            jwt_secret,
            stop,
            task,
        })
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// 64 random hex characters.
fn random_secret() -> Vec<u8> {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()).into_bytes()
}

/// How long the buyer's tokens live: longer than any run's request.
const TOKEN_LIFETIME_SECONDS: u64 = 15 * 60;

/// The part of a `201` order the buyer reads.
#[derive(Deserialize)]
struct CreatedOrder {
    id: Uuid,
}

/// The part of a webhook answer the buyer reads.
#[derive(Deserialize)]
struct PaidAnswer {
    order: PaidOrder,
}

#[derive(Deserialize)]
struct PaidOrder {
    status: TicketStatusDto,
}

/// A buyer at one server, over a shared keep-alive [`HttpClient`].
#[derive(Clone)]
pub struct HttpBuyer {
    client: HttpClient,
    base: Arc<str>,
    tickets_url: Arc<str>,
    webhook_url: Arc<str>,
    webhook_secret: Option<Arc<[u8]>>,
    tokens: TokenMinter,
}

impl HttpBuyer {
    /// A buyer at the server at `base` (e.g. `http://127.0.0.1:8080`), signing each customer's
    /// token with `tokens` (the server's HS256 secret) and payment webhooks with
    /// `webhook_secret` when it has one.
    pub fn new(
        client: HttpClient,
        base: &str,
        webhook_secret: Option<&[u8]>,
        tokens: TokenMinter,
    ) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            client,
            base: base.into(),
            tickets_url: format!("{base}/api/tickets").into(),
            webhook_url: format!("{base}/api/payments/webhook").into(),
            webhook_secret: webhook_secret.map(Into::into),
            tokens,
        }
    }

    /// `Bearer <token>` for `customer`.
    fn authorization(&self, customer: &CustomerId) -> String {
        let token = self
            .tokens
            .mint(customer, unix_now() + TOKEN_LIFETIME_SECONDS);
        format!("Bearer {token}")
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One purchase: `201` is a success, `409 SEATS_TAKEN` / `SOLD_OUT` / `NO_ADJACENT_SEATS` a
    /// rejection, anything else a failure.
    pub async fn buy(&self, request: &PurchaseRequest) -> Attempt {
        let authorization = self.authorization(&request.customer);
        let mut headers = vec![("authorization", authorization.as_str())];
        if let Some(key) = &request.idempotency_key {
            headers.push(("idempotency-key", key.as_str()));
        }
        let answer = match self
            .client
            .post_json(&self.tickets_url, &headers, &purchase_body(request))
            .await
        {
            Ok(answer) => answer,
            Err(e) => return Attempt::failed(e),
        };
        if answer.status == StatusCode::CONFLICT {
            let error = RequestError::from_answer(answer.status, &answer.body);
            return match error.code() {
                Some("SEATS_TAKEN" | "SOLD_OUT" | "NO_ADJACENT_SEATS") => Attempt::rejected(),
                _ => Attempt::failed(error),
            };
        }
        match answer.expect::<CreatedOrder>(StatusCode::CREATED) {
            Ok(order) => Attempt::success(OrderId::from_uuid(order.id)),
            Err(e) => Attempt::failed(e),
        }
    }

    /// Pays `order` through `POST /api/payments/webhook`, signed with the webhook secret; `tag`
    /// makes the webhook id unique within the sale of `event`. Success is a `200` whose order is
    /// PAID.
    pub async fn pay(
        &self,
        event: EventId,
        tag: &str,
        order: OrderId,
        amount: Money,
    ) -> Result<(), RequestError> {
        let secret = self.webhook_secret.as_deref().ok_or_else(|| {
            RequestError::Connect("no webhook secret to sign payments with".into())
        })?;
        let body = webhook::payment_body(event, tag, order, amount);
        let signature = webhook::signature(secret, chrono::Utc::now().timestamp(), &body);
        let answer = self
            .client
            .post_bytes(
                &self.webhook_url,
                &[(webhook::SIGNATURE_HEADER, &signature)],
                Bytes::from(body),
            )
            .await?;
        let paid: PaidAnswer = answer.expect(StatusCode::OK)?;
        match paid.order.status {
            TicketStatusDto::Paid => Ok(()),
            other => Err(RequestError::Body(format!(
                "the webhook answered 200 with the order {other:?}"
            ))),
        }
    }

    /// Cancels an unpaid order of `customer` (`POST /api/orders/{id}/cancel`).
    pub async fn cancel(&self, customer: &CustomerId, order: OrderId) -> Result<(), RequestError> {
        let url = format!("{}/api/orders/{}/cancel", self.base, order.as_uuid());
        let authorization = self.authorization(customer);
        self.client
            .post_bytes(&url, &[("authorization", &authorization)], Bytes::new())
            .await?
            .expect::<serde_json::Value>(StatusCode::OK)
            .map(drop)
    }
}

/// The wire body of a purchase (the customer travels in the token).
pub fn purchase_body(request: &PurchaseRequest) -> PurchaseRequestDto {
    let (seats, general_admission, best_available) = match &request.selection {
        Selection::Seats(seats) => (Some(seats.iter().map(SeatDto::from).collect()), None, None),
        Selection::General { zone, quantity } => (
            None,
            Some(GeneralAdmissionDto {
                zone: zone.to_string(),
                quantity: *quantity,
            }),
            None,
        ),
        Selection::BestAvailable(wanted) => (
            None,
            None,
            Some(BestAvailableDto {
                zone: wanted
                    .zone
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                quantity: wanted.quantity,
                rows: wanted.rows.as_ref().map(|range| RowRangeDto {
                    first: range.first.to_string(),
                    last: range.last.to_string(),
                }),
                max_price: wanted.max_price.map(MoneyDto::from),
            }),
        ),
    };
    PurchaseRequestDto {
        event_id: request.event.as_uuid(),
        seats,
        general_admission,
        voucher: request.voucher.as_ref().map(ToString::to_string),
        best_available,
        channel: request.channel.as_ref().map(|access| ChannelAccessDto {
            code: access.code.to_string(),
            key: access.key.as_str().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purchase_bodies_round_trip_through_the_server_dto() {
        let event = EventId::from_uuid(Uuid::now_v7());
        for selection in [
            Selection::Seats(vec!["A:1:7".parse().unwrap(), "A:1:8".parse().unwrap()]),
            Selection::General {
                zone: "GA".parse().unwrap(),
                quantity: 1,
            },
        ] {
            let request = PurchaseRequest {
                event,
                customer: "b42".parse().unwrap(),
                selection,
                idempotency_key: None,
                voucher: None,
                channel: None,
            };
            let json = serde_json::to_vec(&purchase_body(&request)).unwrap();
            let parsed: PurchaseRequestDto = serde_json::from_slice(&json).unwrap();
            assert_eq!(
                parsed.to_core(request.customer.clone(), None).unwrap(),
                request
            );
        }
    }
}
