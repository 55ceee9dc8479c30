//! The [`WaitingList`] port's promises, checked on the port alone: one open entry per customer
//! and event under concurrent joins, `waiting` in join order, an offer recorded once with its
//! outbox event, and an offer settled once.
//!
//! The context is the list with the stores it writes beside: the ticket repository whose outbox
//! gets its offer events (orders to offer are bought there) and the catalog holding its events.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use uuid::Uuid;

use crate::Error;
use crate::domain::{
    Currency, CustomerId, EventId, EventSpec, Money, Order, OrderId, OutboxKind, WaitingEntry,
    WaitingEntryId, WaitingState, Zone, ZoneKind,
};
use crate::memory::InMemorySeatLock;
use crate::ports::{CatalogRepository, Joined, OutboxStore, TicketRepository, WaitingList};
use crate::service::{Backends, CatalogService, PurchaseRequest, Selection, TicketService};

use super::t0;

/// A waiting list and the stores beside it.
#[derive(Clone)]
pub struct WaitingListContext {
    /// The list under test.
    pub list: Arc<dyn WaitingList>,
    /// The ticket repository whose outbox the list writes its offer events to.
    pub tickets: Arc<dyn TicketRepository>,
    /// That repository's outbox, to read the offer events back.
    pub outbox: Arc<dyn OutboxStore>,
    /// The catalog of the events the entries wait for.
    pub catalog: Arc<dyn CatalogRepository>,
}

impl WaitingListContext {
    fn services(&self) -> (CatalogService, TicketService) {
        let backends = Backends::builder()
            .catalog(self.catalog.clone())
            .tickets(self.tickets.clone())
            .seat_lock(Arc::new(InMemorySeatLock::new()))
            .waiting_list(self.list.clone())
            .build()
            .expect("complete backends");
        (
            CatalogService::new(backends.clone()),
            TicketService::new(backends, Default::default()),
        )
    }

    /// A new event on sale now with a general-admission zone `GA` of 100 places.
    async fn event(&self) -> EventId {
        let (catalog, _) = self.services();
        let zone = Zone {
            code: "GA".parse().expect("zone"),
            name: "Floor".into(),
            kind: ZoneKind::GeneralAdmission { capacity: 100 },
        };
        let venue = catalog
            .create_venue("Contract Hall", vec![zone])
            .await
            .expect("venue");
        let now = Utc::now();
        let eur = Currency::new("EUR").expect("EUR");
        catalog
            .create_event(EventSpec {
                name: "Contract Night".into(),
                venue_id: venue.id(),
                sale_opens: now - TimeDelta::hours(1),
                sale_closes: now + TimeDelta::days(1),
                prices: BTreeMap::from([("GA".parse().expect("zone"), Money::new(1000, eur))]),
                hold_time: TimeDelta::minutes(10),
                per_customer_limit: 4,
            })
            .await
            .expect("event")
            .id()
    }

    /// A pending order of one place of `event` for `customer`, to offer.
    async fn order(&self, event: EventId, customer: &str) -> Order {
        let (_, tickets) = self.services();
        tickets
            .purchase(PurchaseRequest {
                event,
                customer: customer_id(customer),
                selection: Selection::General {
                    zone: "GA".parse().expect("zone"),
                    quantity: 1,
                },
                idempotency_key: None,
                voucher: None,
                channel: None,
            })
            .await
            .expect("purchase")
    }

    /// The `WaitingListOffered` events of `entry` in the outbox.
    async fn offer_events(&self, entry: WaitingEntryId) -> Vec<(OrderId, u32)> {
        self.outbox
            .unsent(100_000)
            .await
            .expect("outbox")
            .into_iter()
            .filter(|e| e.event.kind == OutboxKind::WaitingListOffered)
            .filter_map(|e| {
                let offer = e.event.offer?;
                (offer.entry == entry).then_some((e.event.order_id, offer.number))
            })
            .collect()
    }
}

fn customer_id(name: &str) -> CustomerId {
    CustomerId::new(name).expect("customer")
}

fn entry(event: EventId, customer: &str, seconds: i64) -> WaitingEntry {
    WaitingEntry::new(
        WaitingEntryId::from_uuid(Uuid::now_v7()),
        event,
        customer_id(customer),
        None,
        1,
        t0() + TimeDelta::seconds(seconds),
    )
    .expect("entry")
}

async fn added(list: &dyn WaitingList, entry: &WaitingEntry) -> WaitingEntry {
    match list.join(entry).await.expect("join") {
        Joined::Added(added) => {
            assert_eq!(&added, entry, "an added entry is stored as given, WAITING");
            added
        }
        Joined::AlreadyOpen(open) => panic!("{} had an open entry: {open:?}", entry.customer),
    }
}

/// A second join of a customer answers the open entry; 16 concurrent joins of one customer add
/// exactly one; after leaving, the customer may join again; unknown ids are `None`.
pub async fn one_open_entry_per_customer_and_event(ctx: WaitingListContext) {
    let list = &*ctx.list;
    let (event, other) = (ctx.event().await, ctx.event().await);
    let first = added(list, &entry(event, "ann", 0)).await;
    let again = list.join(&entry(event, "ann", 1)).await.expect("join");
    assert_eq!(again, Joined::AlreadyOpen(first.clone()));
    added(list, &entry(other, "ann", 2)).await;

    let racers: Vec<_> = (0..16)
        .map(|i| {
            let (list, entry) = (ctx.list.clone(), entry(event, "bob", i));
            tokio::spawn(async move { list.join(&entry).await })
        })
        .collect();
    let mut adds = 0;
    for racer in racers {
        if let Joined::Added(_) = racer.await.expect("task").expect("join") {
            adds += 1;
        }
    }
    assert_eq!(adds, 1, "one of 16 concurrent joins adds the entry");

    let left = list.leave(first.id).await.expect("leave").expect("known");
    assert_eq!(left.state, WaitingState::Left);
    let twice = list.leave(first.id).await.expect("leave").expect("known");
    assert_eq!(
        twice.state,
        WaitingState::Left,
        "leaving again changes nothing"
    );
    added(list, &entry(event, "ann", 3)).await;
    let unknown = WaitingEntryId::from_uuid(Uuid::now_v7());
    assert_eq!(list.entry(unknown).await.expect("entry"), None);
    assert_eq!(list.leave(unknown).await.expect("leave"), None);
}

/// `waiting` lists an event's `WAITING` entries by join time, up to the limit, without the
/// entries that left, were offered, or wait for another event.
pub async fn waiting_is_in_join_order(ctx: WaitingListContext) {
    let list = &*ctx.list;
    let (event, other) = (ctx.event().await, ctx.event().await);
    let mut entries = Vec::new();
    for (customer, at) in [("c", 30), ("a", 10), ("e", 50), ("b", 20), ("d", 40)] {
        entries.push(added(list, &entry(event, customer, at)).await);
    }
    added(list, &entry(other, "a", 0)).await;
    let names = |listed: Vec<WaitingEntry>| -> Vec<String> {
        listed.into_iter().map(|e| e.customer.to_string()).collect()
    };
    assert_eq!(
        names(list.waiting(event, 3).await.expect("waiting")),
        ["a", "b", "c"]
    );
    let b = entries
        .iter()
        .find(|e| e.customer.as_str() == "b")
        .expect("b");
    list.leave(b.id).await.expect("leave");
    let d = entries
        .iter()
        .find(|e| e.customer.as_str() == "d")
        .expect("d");
    let order = ctx.order(event, "d").await;
    assert!(list.record_offer(d.id, &order, t0()).await.expect("offer"));
    assert_eq!(
        names(list.waiting(event, 10).await.expect("waiting")),
        ["a", "c", "e"]
    );
    assert!(
        list.waiting(ctx.event().await, 10)
            .await
            .expect("none")
            .is_empty()
    );
}

/// `record_offer` moves a `WAITING` entry to `OFFERED` once, with its order, one offer counted
/// and one `WaitingListOffered` outbox event; eight concurrent offers of one entry record one;
/// an entry that left takes none.
pub async fn an_offer_is_recorded_once_with_its_event(ctx: WaitingListContext) {
    let list = &*ctx.list;
    let event = ctx.event().await;
    let ann = added(list, &entry(event, "ann", 0)).await;
    let order = ctx.order(event, "ann").await;
    assert!(
        list.record_offer(ann.id, &order, t0())
            .await
            .expect("offer")
    );
    let offered = list.entry(ann.id).await.expect("entry").expect("known");
    assert_eq!(
        (offered.state, offered.offer, offered.offers),
        (WaitingState::Offered, Some(order.id), 1)
    );
    assert!(
        !list
            .record_offer(ann.id, &order, t0())
            .await
            .expect("again")
    );
    assert_eq!(
        ctx.offer_events(ann.id).await,
        vec![(order.id, 1)],
        "one event"
    );

    let bob = added(list, &entry(event, "bob", 1)).await;
    // Four orders (the event's per-customer limit), each offered twice at once.
    let mut orders = Vec::new();
    for _ in 0..4 {
        orders.push(ctx.order(event, "bob").await);
    }
    let bob = bob.id;
    let racers: Vec<_> = orders
        .iter()
        .cycle()
        .take(8)
        .map(|order| {
            let (list, order) = (ctx.list.clone(), order.clone());
            tokio::spawn(async move { list.record_offer(bob, &order, t0()).await })
        })
        .collect();
    let mut recorded = 0;
    for racer in racers {
        if racer.await.expect("task").expect("offer") {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 1, "one of eight concurrent offers is recorded");
    assert_eq!(ctx.offer_events(bob).await.len(), 1, "with one event");

    let cy = added(list, &entry(event, "cy", 2)).await;
    list.leave(cy.id).await.expect("leave");
    let order = ctx.order(event, "cy").await;
    assert!(!list.record_offer(cy.id, &order, t0()).await.expect("offer"));
    assert!(ctx.offer_events(cy.id).await.is_empty());
}

/// `settle_offer` moves the entry offered an order to `SERVED` or `LAPSED` once (of two
/// concurrent settlements, one wins); an order no entry holds as an open offer settles nothing;
/// any other outcome is refused.
pub async fn an_offer_is_settled_once(ctx: WaitingListContext) {
    let list = &*ctx.list;
    let event = ctx.event().await;
    assert_eq!(
        list.settle_offer(OrderId::from_uuid(Uuid::now_v7()), WaitingState::Served)
            .await
            .expect("settle"),
        None
    );
    let ann = added(list, &entry(event, "ann", 0)).await;
    let order = ctx.order(event, "ann").await;
    assert_eq!(
        list.settle_offer(order.id, WaitingState::Served)
            .await
            .expect("settle"),
        None,
        "not offered yet"
    );
    assert!(
        list.record_offer(ann.id, &order, t0())
            .await
            .expect("offer")
    );
    let refused = list.settle_offer(order.id, WaitingState::Waiting).await;
    assert!(
        matches!(refused, Err(Error::InvalidRequest { .. })),
        "{refused:?}"
    );
    let (served, lapsed) = tokio::join!(
        list.settle_offer(order.id, WaitingState::Served),
        list.settle_offer(order.id, WaitingState::Lapsed)
    );
    let settled: Vec<_> = [served.expect("served"), lapsed.expect("lapsed")]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(settled.len(), 1, "one settlement wins: {settled:?}");
    let now = list.entry(ann.id).await.expect("entry").expect("known");
    assert_eq!(now.state, settled[0].state);
    assert_eq!(now.offer, Some(order.id));
    assert_eq!(
        list.leave(ann.id)
            .await
            .expect("leave")
            .expect("known")
            .state,
        now.state,
        "a settled entry stays settled"
    );
}

/// Expands one `#[tokio::test]` per waiting-list check, each with a fresh context from
/// `$fresh` (a path to an `async fn() -> (WaitingListContext, G)`; the guard `G` lives until the
/// check ends).
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
#[macro_export]
macro_rules! waiting_list_contract {
    ($fresh:path) => {
        $crate::waiting_list_contract!(@checks $fresh;
            one_open_entry_per_customer_and_event,
            waiting_is_in_join_order,
            an_offer_is_recorded_once_with_its_event,
            an_offer_is_settled_once,
        );
    };
    (@checks $fresh:path; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let (ctx, _guard) = $fresh().await;
            $crate::testkit::contracts::waiting_list::$check(ctx).await;
        }
    )*};
}
