//! Writes run to completion when the client goes away. hyper drops a handler's future when its
//! connection closes; a purchase, payment, cancellation or refund cut off between its database
//! write and its seat-lock update would leave the two disagreeing (the relay's repair is not
//! running here, so nothing would mend it).
//!
//! The repository is slowed down at exactly that point: a purchase waits after its hold and
//! before its insert, a transition waits after its commit and before the lock update. Each
//! client sends its request on a raw TCP stream, waits until the write reached the slow point
//! and drops the connection. Afterwards the order and the seat lock must agree: PENDING_PAYMENT
//! ⇔ held by the order, PAID ⇔ sold to it, no order or a terminal one ⇔ free.
//!
//! Checked without the fix (the handlers calling the service directly instead of through
//! `routes::run_detached`): the purchase leaves the seat held without an order, the payment
//! leaves a paid order whose seat is only held, the cancellation leaves a cancelled order's seat
//! held. (A refund frees the seats before its commit too, so it agrees either way.)

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::{ADMIN, SECRET, TestApp};
use serde_json::json;
use ticketing_core::Result;
use ticketing_core::domain::{
    Channel, ChannelRelease, CustomerId, EventId, IdempotencyKey, Order, OrderId, OutboxEntry,
    Payment, PaymentRecorded, PaymentRef, PaymentWrite, SeatRef, Ticket, TicketId, TicketStatus,
    VenueId, VoucherCode, ZoneCode,
};
use ticketing_core::ports::{
    Clock, Extension, ExtensionOutcome, IdempotencyRecord, InsertOutcome, NewOrder, SeatState,
    TicketRepository, Transition,
};
use ticketing_core::service::{Backends, ServiceConfig};
use ticketing_server::limits::{HttpLimits, serve};
use ticketing_server::webhook::{SIGNATURE_HEADER, WebhookSecret};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long a slowed write waits at its slow point.
const DELAY: Duration = Duration::from_millis(400);

/// The in-memory repository, slowed down between the hold and the insert of a purchase and
/// between the commit of a transition and its seat-lock update. `reached` counts the writes
/// that arrived at their slow point.
struct SlowWrites {
    inner: Arc<dyn TicketRepository>,
    reached: watch::Sender<u64>,
}

impl SlowWrites {
    async fn pause(&self) {
        self.reached.send_modify(|n| *n += 1);
        tokio::time::sleep(DELAY).await;
    }
}

#[async_trait]
impl TicketRepository for SlowWrites {
    async fn insert_order(&self, order: &NewOrder) -> Result<InsertOutcome> {
        // The seats are held already; the order is not stored yet.
        self.pause().await;
        self.inner.insert_order(order).await
    }
    async fn idempotency_record(
        &self,
        customer: &CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>> {
        self.inner.idempotency_record(customer, key).await
    }

    async fn prune_idempotency_keys(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<u64> {
        self.inner.prune_idempotency_keys(before, limit).await
    }
    async fn transition(&self, transition: &Transition) -> Result<bool> {
        let committed = self.inner.transition(transition).await;
        // Committed; the service has not told the seat lock yet.
        self.pause().await;
        committed
    }
    async fn extend_deadline(&self, extension: &Extension) -> Result<ExtensionOutcome> {
        let committed = self.inner.extend_deadline(extension).await;
        // Committed; the service has not re-asserted the seat lock's hold yet.
        self.pause().await;
        committed
    }
    async fn record_payment(&self, write: &PaymentWrite) -> Result<PaymentRecorded> {
        let committed = self.inner.record_payment(write).await;
        // Committed; the service has not told the seat lock yet.
        self.pause().await;
        committed
    }
    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>> {
        self.inner.payment(reference).await
    }
    async fn payments_of(&self, order: OrderId) -> Result<Vec<Payment>> {
        self.inner.payments_of(order).await
    }
    async fn refunds_due(&self, limit: u32) -> Result<Vec<Payment>> {
        self.inner.refunds_due(limit).await
    }
    async fn mark_refunded(&self, reference: &PaymentRef, at: DateTime<Utc>) -> Result<bool> {
        self.inner.mark_refunded(reference, at).await
    }
    async fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>> {
        self.inner.expire_due(now, limit).await
    }
    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        self.inner.ticket(id).await
    }
    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        self.inner.order(id).await
    }
    async fn active_tickets(&self, event: EventId) -> Result<Vec<Ticket>> {
        self.inner.active_tickets(event).await
    }
    async fn count_by_status(&self, event: EventId, status: TicketStatus) -> Result<u64> {
        self.inner.count_by_status(event, status).await
    }
    async fn revenue_minor(&self, venue: VenueId, event: EventId) -> Result<i64> {
        self.inner.revenue_minor(venue, event).await
    }
    async fn outbox_head(&self) -> Result<Option<u64>> {
        self.inner.outbox_head().await
    }
    async fn outbox_after(&self, after: u64, limit: u32) -> Result<Vec<OutboxEntry>> {
        self.inner.outbox_after(after, limit).await
    }

    async fn active_tickets_page(
        &self,
        event: EventId,
        after: Option<TicketId>,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        self.inner.active_tickets_page(event, after, limit).await
    }

    async fn voucher_uses(&self, event: EventId) -> Result<Vec<(VoucherCode, u32)>> {
        self.inner.voucher_uses(event).await
    }

    async fn tier_sales(&self, event: EventId) -> Result<Vec<(ZoneCode, u16, u32)>> {
        self.inner.tier_sales(event).await
    }

    async fn insert_channel(&self, channel: &Channel) -> Result<()> {
        self.inner.insert_channel(channel).await
    }

    async fn channels(&self, event: EventId) -> Result<Vec<Channel>> {
        self.inner.channels(event).await
    }

    async fn release_channel_seats(&self, release: &ChannelRelease) -> Result<Vec<SeatRef>> {
        self.inner.release_channel_seats(release).await
    }
}

/// The server over slowed in-memory backends, on a loopback port.
struct Served {
    app: TestApp,
    address: SocketAddr,
    reached: watch::Receiver<u64>,
}

impl Served {
    async fn start() -> Self {
        let backends = Backends::in_memory();
        let (reached, reached_seen) = watch::channel(0);
        let slow = SlowWrites {
            inner: backends.tickets().clone(),
            reached,
        };
        let backends = backends
            .to_builder()
            .tickets(Arc::new(slow))
            .build()
            .expect("complete backends");
        let app = TestApp::new(backends, None).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(serve(
            listener,
            app.router.clone(),
            HttpLimits::default(),
            std::future::pending(),
        ));
        Self {
            app,
            address,
            reached: reached_seen,
        }
    }

    /// Sends `request` and drops the connection as soon as the write reached its slow point.
    async fn send_and_hang_up(&mut self, request: String) {
        let before = *self.reached.borrow_and_update();
        let mut stream = TcpStream::connect(self.address).await.expect("connect");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the request");
        tokio::time::timeout(
            Duration::from_secs(5),
            self.reached.wait_for(|n| *n > before),
        )
        .await
        .expect("the write reached its slow point")
        .expect("the repository is alive");
        drop(stream);
    }

    /// Waits (bounded) until the order and the seat lock agree on `seat`, and asserts they do.
    async fn assert_agree(&self, seat: &str, order: OrderId, expected: Option<TicketStatus>) {
        let seat: SeatRef = seat.parse().expect("seat");
        let deadline = Instant::now() + DELAY * 5;
        loop {
            let stored = self
                .app
                .state
                .backends()
                .tickets()
                .order(order)
                .await
                .expect("order look-up")
                .map(|o| o.status);
            let lock = self
                .app
                .state
                .backends()
                .seat_lock()
                .snapshot(self.app.demo.event, self.app.clock.now())
                .await
                .expect("snapshot")
                .expect("the event is loaded");
            let in_lock = lock.seats.get(&seat).cloned();
            let agree = match (stored, &in_lock) {
                (Some(TicketStatus::PendingPayment), Some(SeatState::Held { order: o, .. })) => {
                    *o == order
                }
                (Some(TicketStatus::Paid), Some(SeatState::Sold { order: o })) => *o == order,
                (None | Some(_), None) => !stored.is_some_and(|s| s.is_active()),
                _ => false,
            };
            if agree && stored == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "order {order} is {stored:?} (expected {expected:?}) but the seat lock has \
                 {seat} as {in_lock:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Buys `seat` for `customer` and waits for the answer; the order's id.
    async fn buy(&self, customer: &str, seat: &str) -> OrderId {
        let bought = self.app.buy(customer, &[seat]).await;
        assert_eq!(bought.status, 201, "{}", bought.text());
        bought.body["id"]
            .as_str()
            .expect("order id")
            .parse()
            .expect("uuid")
    }

    async fn pay(&self, order: OrderId, reference: &str) {
        let paid = self
            .app
            .webhook(&format!("evt_{reference}"), &order.to_string(), reference)
            .await;
        assert_eq!(paid.status, 200, "{}", paid.text());
    }
}

fn post(path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_completes_after_its_client_hangs_up() {
    let mut served = Served::start().await;
    let body = common::purchase(served.app.demo.event.to_string(), &["STALLS:A:1"]);
    let bearer = common::bearer("alice");
    served
        .send_and_hang_up(post(
            "/api/tickets",
            &[("idempotency-key", "gone-1"), ("authorization", &bearer)],
            &body.to_string(),
        ))
        .await;
    let customer: CustomerId = "alice".parse().expect("customer");
    let key: IdempotencyKey = "gone-1".parse().expect("key");
    let order =
        OrderId::for_idempotency_key(&ServiceConfig::default().order_id_secret, &customer, &key);
    served
        .assert_agree("STALLS:A:1", order, Some(TicketStatus::PendingPayment))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_completes_after_its_provider_hangs_up() {
    let mut served = Served::start().await;
    let order = served.buy("bob", "STALLS:A:2").await;
    let total = served
        .app
        .state
        .queries()
        .order(order)
        .await
        .expect("order")
        .total;
    let body = json!({
        "id": "evt_gone", "orderId": order, "paymentReference": "pi_gone",
        "amountMinor": total.minor, "currency": total.currency.to_string(),
    })
    .to_string();
    let signature =
        WebhookSecret::new(SECRET).sign(served.app.clock.now().timestamp(), body.as_bytes());
    served
        .send_and_hang_up(post(
            "/api/payments/webhook",
            &[(SIGNATURE_HEADER, &signature)],
            &body,
        ))
        .await;
    served
        .assert_agree("STALLS:A:2", order, Some(TicketStatus::Paid))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_completes_after_its_client_hangs_up() {
    let mut served = Served::start().await;
    let order = served.buy("carol", "STALLS:A:3").await;
    let bearer = common::bearer("carol");
    served
        .send_and_hang_up(post(
            &format!("/api/orders/{order}/cancel"),
            &[("authorization", &bearer)],
            "",
        ))
        .await;
    served
        .assert_agree("STALLS:A:3", order, Some(TicketStatus::Cancelled))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_completes_after_its_admin_hangs_up() {
    let mut served = Served::start().await;
    let order = served.buy("dave", "STALLS:A:4").await;
    served.pay(order, "pi_refund").await;
    let bearer = format!("Bearer {ADMIN}");
    served
        .send_and_hang_up(post(
            &format!("/api/admin/orders/{order}/refund"),
            &[("authorization", &bearer)],
            "",
        ))
        .await;
    served
        .assert_agree("STALLS:A:4", order, Some(TicketStatus::Refunded))
        .await;
}
