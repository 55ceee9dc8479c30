//! Shared by the brokers' end-to-end tests: a sale on the in-memory repository (the source of
//! truth), the relay and a consumer in the background, and the repository's own totals to hold
//! the read model to.

#![allow(dead_code)] // each test binary uses a different subset

#[cfg(feature = "kafka")]
pub mod kafka;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use ticketing_core::domain::{
    EventTotals, OrderId, PaymentNotice, PaymentRef, TicketStatus, ZoneCode, ZoneTotals,
};
use ticketing_core::memory::{
    InMemoryCatalog, InMemorySeatLock, InMemoryTicketRepository, InMemoryWaitingList,
};
use ticketing_core::ports::{
    EventSink, OutboxStore, SalesReadModel, SystemClock, TicketRepository,
};
use ticketing_core::service::{OutboxRelay, RelayConfig};
use ticketing_core::testkit::{Fixture, Harness, Layout};
use tokio::task::JoinHandle;

/// The repository and a fixture (venue, event, services) on it.
pub struct World {
    pub fixture: Fixture,
    pub repo: Arc<InMemoryTicketRepository>,
}

pub async fn world() -> World {
    let repo = Arc::new(InMemoryTicketRepository::new());
    let harness = Harness {
        seat_lock: Arc::new(InMemorySeatLock::new()),
        tickets: repo.clone(),
        outbox: repo.clone(),
        waiting_list: Arc::new(InMemoryWaitingList::new(repo.clone())),
        catalog: Arc::new(InMemoryCatalog::new()),
        wipe_seat_lock: Arc::new(|| Box::pin(async {})),
        teardown: None,
    };
    let layout = Layout {
        rows: 20,
        seats_per_row: 20,
        general_capacity: 1000,
        limit: 10,
        hold_time: TimeDelta::minutes(10),
    };
    World {
        fixture: Fixture::new(&harness, layout).await,
        repo,
    }
}

/// A relay publishing `repo`'s outbox to `sink`, with short pauses.
pub fn relay(repo: &Arc<InMemoryTicketRepository>, sink: Arc<dyn EventSink>) -> Arc<OutboxRelay> {
    Arc::new(
        OutboxRelay::new(
            repo.clone(),
            sink,
            Arc::new(SystemClock),
            RelayConfig {
                relay_id: "relay".into(),
                batch_size: 16,
                lease_ttl: Duration::from_secs(5),
                poll_interval: Duration::from_millis(5),
                backoff_min: Duration::from_millis(5),
                backoff_max: Duration::from_millis(200),
            },
        )
        .expect("relay config"),
    )
}

/// A background task running until stopped.
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
}

pub fn spawn<F, Fut>(run: F) -> Running
where
    F: FnOnce(tokio::sync::oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop, stopped) = tokio::sync::oneshot::channel();
    Running {
        stop,
        task: tokio::spawn(run(stopped)),
    }
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("task ends cleanly");
    }
}

pub fn run_relay(relay: &Arc<OutboxRelay>) -> Running {
    let relay = relay.clone();
    spawn(|stopped| async move {
        relay
            .run(async {
                let _ = stopped.await;
            })
            .await
    })
}

/// `workers` concurrent customers, each buying `per_worker` orders (seats or GA places) and
/// then paying, refunding, cancelling or leaving them pending.
pub async fn sale(fixture: &Fixture, round: u32, workers: u32, per_worker: u32) -> Vec<OrderId> {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let tickets = fixture.tickets.clone();
        let requests: Vec<_> = (0..per_worker)
            .map(|i| {
                let n = (round * workers + w) * per_worker + i;
                let customer = format!("c{n}");
                if n.is_multiple_of(3) {
                    fixture.general_request(&customer, 1 + i % 3)
                } else {
                    fixture.seats_request(&customer, vec![fixture.seat(n)])
                }
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut orders = Vec::new();
            for (i, request) in requests.into_iter().enumerate() {
                let order = tickets.purchase(request).await.expect("purchase");
                orders.push(order.id);
                let reference: PaymentRef = format!("pi_{}", order.id.as_uuid().simple())
                    .parse()
                    .expect("a payment reference");
                match i % 4 {
                    0 => {
                        tickets
                            .pay(PaymentNotice::for_order(&order, reference))
                            .await
                            .expect("pay");
                    }
                    1 => {
                        tickets
                            .pay(PaymentNotice::for_order(&order, reference))
                            .await
                            .expect("pay");
                        tickets.refund(order.id).await.expect("refund");
                    }
                    2 => {
                        tickets.cancel(order.id).await.expect("cancel");
                    }
                    _ => {}
                }
            }
            orders
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("worker"));
    }
    all
}

/// The last outbox seq written.
pub async fn outbox_top(repo: &InMemoryTicketRepository) -> u64 {
    repo.outbox_after(0, u32::MAX)
        .await
        .expect("outbox")
        .last()
        .map_or(0, |e| e.seq)
}

/// Waits (bounded) until the relay marked everything sent and the model applied it.
pub async fn converge(repo: &InMemoryTicketRepository, model: &dyn SalesReadModel) -> u64 {
    let top = outbox_top(repo).await;
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let sent = repo.sent_up_to().await.unwrap_or(0);
            let applied = model.last_applied().await.unwrap_or(0);
            if sent >= top && applied >= top {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "relay and projection did not reach seq {top}: sent {:?}, applied {:?}",
            futures::executor::block_on(repo.sent_up_to()).ok(),
            futures::executor::block_on(model.last_applied()).ok()
        )
    });
    top
}

/// The repository's own totals, in the read model's shape.
pub async fn repository_totals(
    fixture: &Fixture,
    repo: &InMemoryTicketRepository,
    orders: &[OrderId],
) -> EventTotals {
    let event = fixture.event.id();
    let count =
        |status| async move { repo.count_by_status(event, status).await.expect("count") as i64 };
    let mut zones: BTreeMap<ZoneCode, ZoneTotals> = BTreeMap::new();
    for id in orders {
        let order = repo.order(*id).await.expect("order").expect("exists");
        for ticket in &order.tickets {
            let zone = zones.entry(ticket.zone.clone()).or_default();
            match ticket.status {
                TicketStatus::PendingPayment => zone.pending += 1,
                TicketStatus::Paid => {
                    zone.sold += 1;
                    zone.revenue_minor += ticket.price.minor;
                }
                _ => {}
            }
        }
    }
    EventTotals {
        pending: count(TicketStatus::PendingPayment).await,
        sold: count(TicketStatus::Paid).await,
        revenue_minor: repo
            .revenue_minor(fixture.venue.id(), event)
            .await
            .expect("revenue"),
        expired: count(TicketStatus::Expired).await,
        cancelled: count(TicketStatus::Cancelled).await,
        refunded: count(TicketStatus::Refunded).await,
        currency: Some("EUR".into()),
        zones,
    }
}
