//! Conformance checks of the waiting list (docs/DESIGN.md, "Waiting list"): freed seats are
//! offered in one relay pass to the first entry they can serve, an offer lapses to the next
//! entry, an offered seat is nobody else's, a party gets adjacent seats or waits, and a relay
//! that delivers the same change twice makes one offer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    CustomerId, Order, OrderId, OutboxKind, SeatRef, TicketStatus, WaitingEntry, WaitingState,
    ZoneCode,
};
use crate::ports::{EventSink, Joined};
use crate::service::{
    FanOutSink, OutboxRelay, RelayConfig, RelayRound, SeatLockSync, WaitingListConfig,
    WaitingListOffers, WaitingListService,
};
use crate::{Error, Result};

use super::Harness;
use super::checks::{count, race, race_purchases};
use super::fixture::{Fixture, Layout, customer_id, outcome};

/// The offer time of the checks: shorter than the fixture's hold time (10 minutes), so an offer
/// order's deadline shows it was made with the list's time.
const OFFER_TIME: Duration = Duration::from_secs(5 * 60);

/// Public buyers racing for an offered seat.
const RIVALS: usize = 64;

/// The waiting list's services over a fixture: joins, the offer sink, and a relay running the
/// seat-lock repair and then the offers, as a server does.
struct Offers {
    list: WaitingListService,
    sink: Arc<WaitingListOffers>,
    relay: OutboxRelay,
    f: Arc<Fixture>,
    harness: Harness,
}

impl Offers {
    async fn new(harness: Harness, layout: Layout) -> Offers {
        let f = Arc::new(Fixture::new(&harness, layout).await);
        let list = WaitingListService::new(f.backends.clone()).expect("waiting list service");
        let sink = Arc::new(offer_sink(&f));
        let repair = Arc::new(SeatLockSync::new(f.backends.clone(), f.config.clone()));
        let relay = OutboxRelay::new(
            harness.outbox.clone(),
            Arc::new(FanOutSink::new(vec![repair, sink.clone()])),
            f.clock.clone(),
            RelayConfig::default(),
        )
        .expect("relay");
        Offers {
            list,
            sink,
            relay,
            f,
            harness,
        }
    }

    /// Relay passes until everything written so far is published.
    async fn catch_up(&self) {
        while self.relay.run_once().await.expect("catch up") != RelayRound::CaughtUp {}
    }

    /// One relay pass; it must publish something. (The entries an offer writes, its order's
    /// `TicketReserved` and the `WaitingListOffered`, are the next pass's.)
    async fn pass(&self) {
        let round = self.relay.run_once().await.expect("relay pass");
        assert!(
            matches!(round, RelayRound::Published { .. }),
            "the pass published nothing: {round:?}"
        );
    }

    async fn join(&self, customer: &str, zone: Option<&str>, party: u32) -> WaitingEntry {
        match self
            .list
            .join(
                self.f.event.id(),
                customer_id(customer),
                zone.map(zone_code),
                party,
            )
            .await
            .expect("join")
        {
            Joined::Added(entry) => entry,
            Joined::AlreadyOpen(entry) => panic!("{customer} was on the list already: {entry:?}"),
        }
    }

    async fn entry(&self, entry: &WaitingEntry) -> WaitingEntry {
        self.list.entry(entry.id).await.expect("entry")
    }

    /// The entry's offer order, asserting it is `Offered` with a pending order of its customer.
    async fn offer(&self, entry: &WaitingEntry) -> Order {
        let now = self.entry(entry).await;
        assert_eq!(now.state, WaitingState::Offered, "{now:?}");
        let order = self
            .order(now.offer.expect("an offered entry names its order"))
            .await;
        assert_eq!(order.customer, entry.customer);
        assert_eq!(order.status, TicketStatus::PendingPayment);
        assert_eq!(
            order.expires_at - order.tickets[0].created_on,
            chrono::TimeDelta::from_std(OFFER_TIME).unwrap(),
            "the offer holds its seats for the list's offer time"
        );
        order
    }

    async fn order(&self, id: OrderId) -> Order {
        self.f
            .backends
            .tickets()
            .order(id)
            .await
            .expect("order")
            .expect("the order exists")
    }

    /// Buys `seats` for `customer` and pays them.
    async fn sell(&self, customer: &str, seats: Vec<SeatRef>) -> Order {
        let order = self.f.buy(customer, seats).await;
        self.f.pay(&order, &format!("pay-{}", order.id)).await
    }

    /// Sells and pays the row of [`sold_out`] seat by seat, one order each (`fan0`..`fan3`).
    async fn sell_row(&self) -> Vec<Order> {
        let mut sold = Vec::new();
        for n in 0..4 {
            sold.push(self.sell(&format!("fan{n}"), vec![self.f.seat(n)]).await);
        }
        sold
    }

    /// The `WaitingListOffered` outbox events per order.
    async fn offer_events(&self) -> HashMap<OrderId, usize> {
        let entries = self
            .f
            .backends
            .tickets()
            .outbox_after(0, 1_000_000)
            .await
            .expect("outbox");
        let mut offers = HashMap::new();
        for e in entries {
            if e.event.kind == OutboxKind::WaitingListOffered {
                assert!(e.event.offer.is_some(), "an offer event names its entry");
                assert!(e.event.deadline.is_some(), "an offer event names its end");
                *offers.entry(e.event.order_id).or_insert(0) += 1;
            }
        }
        offers
    }

    /// Active orders of `customer` in the event, counted from the repository's tickets.
    async fn active_orders(&self, customer: &CustomerId) -> usize {
        let mut orders: Vec<OrderId> = self
            .f
            .backends
            .tickets()
            .active_tickets(self.f.event.id())
            .await
            .expect("active tickets")
            .into_iter()
            .filter(|t| &t.customer == customer)
            .map(|t| t.order_id)
            .collect();
        orders.sort();
        orders.dedup();
        orders.len()
    }
}

fn offer_sink(f: &Fixture) -> WaitingListOffers {
    WaitingListOffers::new(
        f.tickets.clone(),
        WaitingListConfig {
            offer_time: OFFER_TIME,
            ..WaitingListConfig::default()
        },
    )
    .expect("offer sink")
}

fn zone_code(code: &str) -> ZoneCode {
    code.parse().expect("zone code")
}

fn seats_of(order: &Order) -> Vec<SeatRef> {
    order
        .tickets
        .iter()
        .filter_map(|t| t.seat.clone())
        .collect()
}

/// One row of four seats and two general-admission places, all sold.
fn sold_out() -> Layout {
    Layout {
        rows: 1,
        seats_per_row: 4,
        general_capacity: 2,
        ..Layout::default()
    }
}

/// A refunded PAID ticket is held for the first entry it can serve after ONE relay pass (an
/// entry of another zone is passed over, one of the whole event waits behind), with an offer
/// event in the outbox; the offer lapses (clock, sweep, one pass) to the next entry, who pays it
/// and is served. A cancelled general-admission order is offered to its zone's entry the same
/// way. Joins: one open entry per customer, a party within the event's limit, a zone on sale;
/// an entry that left is never offered.
pub async fn waiting_list_offers_freed_seats_in_join_order(harness: Harness) {
    let o = Offers::new(harness, sold_out()).await;
    let f = o.f.clone();
    let sold = o.sell_row().await;
    let standing = f
        .tickets
        .purchase(f.general_request("standing", 2))
        .await
        .expect("the last places");

    let gone = o.join("gone", Some("A"), 1).await;
    let ga = o.join("ga", Some("GA"), 2).await;
    let ann = o.join("ann", Some("A"), 1).await;
    let ben = o.join("ben", None, 1).await;
    // Join rules.
    let again = o
        .list
        .join(f.event.id(), customer_id("ann"), None, 1)
        .await
        .expect("join again");
    assert_eq!(
        again,
        Joined::AlreadyOpen(ann.clone()),
        "one open entry per customer"
    );
    let too_many = o.list.join(f.event.id(), customer_id("cy"), None, 5).await;
    assert!(
        matches!(too_many, Err(Error::LimitExceeded { limit: 4 })),
        "{too_many:?}"
    );
    let nowhere = o
        .list
        .join(f.event.id(), customer_id("cy"), Some(zone_code("NOPE")), 1)
        .await;
    assert!(
        matches!(nowhere, Err(Error::InvalidRequest { .. })),
        "{nowhere:?}"
    );
    let left = o.list.leave(gone.id).await.expect("leave");
    assert_eq!(left.state, WaitingState::Left);
    o.catch_up().await;

    f.tickets.refund(sold[1].id).await.expect("refund");
    o.pass().await;
    let offer = o.offer(&ann).await;
    assert_eq!(
        seats_of(&offer),
        vec![f.seat(1)],
        "ann holds the refunded seat"
    );
    assert_eq!(
        o.entry(&gone).await.state,
        WaitingState::Left,
        "who left gets nothing"
    );
    assert_eq!(o.entry(&ben).await.state, WaitingState::Waiting);
    assert_eq!(
        o.entry(&ga).await.state,
        WaitingState::Waiting,
        "no place was freed"
    );
    assert_eq!(o.offer_events().await.get(&offer.id), Some(&1));
    f.audit().await;

    // The offer lapses: the sweep expires it, one pass offers the seat to ben.
    f.clock.set(f.sweep_due(&offer));
    f.tickets.expire_due().await.expect("sweep");
    o.pass().await;
    assert_eq!(o.entry(&ann).await.state, WaitingState::Lapsed);
    let second = o.offer(&ben).await;
    assert_eq!(seats_of(&second), vec![f.seat(1)], "the seat passes to ben");
    f.pay(&second, "pay-ben").await;
    o.pass().await;
    assert_eq!(o.entry(&ben).await.state, WaitingState::Served);

    // General admission: the cancelled order's two places go to the zone's party of two.
    f.tickets.cancel(standing.id).await.expect("cancel");
    o.pass().await;
    let places = o.offer(&ga).await;
    assert_eq!(places.tickets.len(), 2);
    assert!(places.tickets.iter().all(|t| t.zone == zone_code("GA")));
    assert_eq!(
        o.entry(&ann).await.state,
        WaitingState::Lapsed,
        "a lapsed entry stays out"
    );
    f.audit().await;
    f.assert_seat_map_matches_repository().await;
    let Offers { harness, .. } = o;
    harness.finish().await;
}

/// While a seat is offered, every public buyer is refused: 64 concurrent purchases of the seat
/// (`SeatsTaken`) and 16 best-available ones (`NoAdjacentSeats`), counted; the repository holds
/// exactly the offer's one active ticket on it, and the customer can pay it.
pub async fn an_offered_seat_is_nobody_elses(harness: Harness) {
    let o = Offers::new(harness, sold_out()).await;
    let f = o.f.clone();
    let sold = o.sell_row().await;
    let ann = o.join("ann", Some("A"), 1).await;
    o.catch_up().await;
    f.tickets.refund(sold[2].id).await.expect("refund");
    o.pass().await;
    let offer = o.offer(&ann).await;
    let seat = f.seat(2);
    assert_eq!(seats_of(&offer), vec![seat.clone()]);

    let named = race_purchases(&f, RIVALS, |f, i| {
        f.seats_request(&format!("rival{i}"), vec![f.seat(2)])
    })
    .await;
    let named = count(&named.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(
        named.get("SEATS_TAKEN"),
        Some(&RIVALS),
        "outcomes: {named:?}"
    );
    let best: Vec<Result<Order>> = race(16, |i| {
        let f = f.clone();
        async move {
            f.tickets
                .purchase(crate::service::PurchaseRequest {
                    selection: crate::service::Selection::BestAvailable(
                        crate::service::BestAvailable {
                            zone: Some(zone_code("A")),
                            quantity: 1,
                            rows: None,
                            max_price: None,
                        },
                    ),
                    ..f.seats_request(&format!("best{i}"), vec![])
                })
                .await
        }
    })
    .await;
    let best = count(&best.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(
        best.get("NO_ADJACENT_SEATS"),
        Some(&16),
        "outcomes: {best:?}"
    );

    let holders: Vec<_> = f
        .backends
        .tickets()
        .active_tickets(f.event.id())
        .await
        .expect("active")
        .into_iter()
        .filter(|t| t.seat.as_ref() == Some(&seat))
        .collect();
    assert_eq!(holders.len(), 1, "one active ticket on the offered seat");
    assert_eq!(holders[0].order_id, offer.id);
    f.pay(&offer, "pay-ann").await;
    o.pass().await;
    assert_eq!(o.entry(&ann).await.state, WaitingState::Served);
    f.audit().await;
    let Offers { harness, .. } = o;
    harness.finish().await;
}

/// A party of two is passed over while the freed seat has no free neighbour (the single behind
/// it gets the seat in the same pass), and served when a pair frees: two adjacent seats.
pub async fn a_party_gets_adjacent_seats_or_waits(harness: Harness) {
    let o = Offers::new(harness, sold_out()).await;
    let f = o.f.clone();
    let first = o.sell("fan0", vec![f.seat(0)]).await;
    o.sell("fan1", vec![f.seat(1)]).await;
    let pair = o.sell("fan2", vec![f.seat(2), f.seat(3)]).await;
    let duo = o.join("duo", Some("A"), 2).await;
    let solo = o.join("solo", Some("A"), 1).await;
    o.catch_up().await;

    f.tickets.refund(first.id).await.expect("refund one seat");
    o.pass().await;
    assert_eq!(
        o.entry(&duo).await.state,
        WaitingState::Waiting,
        "no pair is free"
    );
    let single = o.offer(&solo).await;
    assert_eq!(seats_of(&single), vec![f.seat(0)]);

    f.tickets.refund(pair.id).await.expect("refund a pair");
    o.pass().await;
    let together = o.offer(&duo).await;
    let mut seats = seats_of(&together);
    seats.sort();
    assert_eq!(seats, vec![f.seat(2), f.seat(3)], "side by side");
    f.audit().await;
    let Offers { harness, .. } = o;
    harness.finish().await;
}

/// The same freed seats delivered again and again (eight sinks at once, as two relays that both
/// believe they hold the lease would, then once more in turn) make one offer: one order, one
/// offer event, the entry behind still waiting; and 16 concurrent joins of one customer add one
/// entry.
pub async fn a_duplicate_delivery_makes_one_offer(harness: Harness) {
    let o = Offers::new(harness, sold_out()).await;
    let f = o.f.clone();
    let sold = o.sell_row().await;
    let joins = race(16, |_| {
        let list = o.list.clone();
        let event = f.event.id();
        async move { list.join(event, customer_id("ann"), None, 1).await }
    })
    .await;
    let added: Vec<WaitingEntry> = joins
        .into_iter()
        .filter_map(|j| match j.expect("join") {
            Joined::Added(entry) => Some(entry),
            Joined::AlreadyOpen(_) => None,
        })
        .collect();
    assert_eq!(added.len(), 1, "one of 16 concurrent joins adds the entry");
    let ann = added[0].clone();
    let ben = o.join("ben", None, 1).await;
    o.catch_up().await;
    f.tickets.refund(sold[3].id).await.expect("refund");
    // The batch a relay would publish, not marked sent.
    let batch = o.harness.outbox.unsent(100).await.expect("unsent");
    assert!(
        batch
            .iter()
            .any(|e| e.event.kind == OutboxKind::TicketRefunded),
        "the refund is in the batch: {batch:?}"
    );
    let repair = SeatLockSync::new(f.backends.clone(), f.config.clone());
    repair.publish(&batch).await.expect("repair");
    let sinks: Vec<Arc<WaitingListOffers>> = (0..8).map(|_| Arc::new(offer_sink(&f))).collect();
    let batch = Arc::new(batch);
    let results = race(8, |i| {
        let (sink, batch) = (sinks[i].clone(), batch.clone());
        async move { sink.publish(&batch).await }
    })
    .await;
    for result in results {
        result.expect("every duplicate delivery succeeds");
    }
    o.sink.publish(&batch).await.expect("once more");
    let offer = o.offer(&ann).await;
    assert_eq!(seats_of(&offer), vec![f.seat(3)]);
    assert_eq!(o.active_orders(&ann.customer).await, 1, "one order");
    assert_eq!(
        o.offer_events().await.get(&offer.id),
        Some(&1),
        "one offer event"
    );
    assert_eq!(o.entry(&ben).await.state, WaitingState::Waiting);
    assert_eq!(o.active_orders(&ben.customer).await, 0);
    // The relay's own pass over the same entries changes nothing either.
    o.pass().await;
    assert_eq!(o.active_orders(&ann.customer).await, 1);
    assert_eq!(o.offer_events().await.len(), 1);
    f.audit().await;
    let Offers { harness, .. } = o;
    harness.finish().await;
}

/// A channel's release of kept seats to the public frees them like a cancellation does: one
/// relay pass offers them to the first entry they can serve (here a party of two gets the two
/// released seats side by side), with its offer event, and the public cannot buy them meanwhile.
pub async fn a_channel_release_is_offered_to_the_waiting_list(harness: Harness) {
    let o = Offers::new(harness, sold_out()).await;
    let f = o.f.clone();
    let catalog = crate::service::CatalogService::new(f.backends.clone());
    let box_office: crate::domain::ChannelCode = "BOX".parse().expect("channel code");
    let kept = vec![f.seat(2), f.seat(3)];
    catalog
        .create_channel(f.event.id(), box_office.clone(), kept.clone())
        .await
        .expect("create channel");
    o.sell("fan0", vec![f.seat(0)]).await;
    o.sell("fan1", vec![f.seat(1)]).await;
    let pair = o.join("pair", Some("A"), 2).await;
    o.catch_up().await;
    assert_eq!(
        o.entry(&pair).await.state,
        WaitingState::Waiting,
        "kept seats are not offered"
    );

    let released = catalog
        .release_channel_seats(f.event.id(), box_office, None)
        .await
        .expect("release");
    assert_eq!(released, kept);
    o.pass().await;
    let offer = o.offer(&pair).await;
    assert_eq!(seats_of(&offer), kept, "the pair holds both released seats");
    assert_eq!(o.offer_events().await.get(&offer.id), Some(&1));
    let rival = f
        .tickets
        .purchase(f.seats_request("rival", vec![f.seat(2)]))
        .await;
    assert_eq!(
        outcome(&rival),
        "SEATS_TAKEN",
        "an offered seat is nobody else's"
    );
    f.audit().await;
    let Offers { harness, .. } = o;
    harness.finish().await;
}
