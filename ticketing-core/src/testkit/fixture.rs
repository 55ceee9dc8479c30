//! A venue, an event and services over the harness, on a manual clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::Result;
use crate::domain::{
    Currency, CustomerId, Event, EventSpec, Money, Order, PriceTier, Row, SeatRef, TicketStatus,
    Venue, Zone, ZoneCode, ZoneKind,
};
use crate::ports::{ManualClock, UuidV7Ids};
use crate::service::{
    Backends, CatalogService, PurchaseRequest, QueryService, Selection, ServiceConfig,
    TicketService,
};

use super::Harness;

/// The shape of the test event.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Rows in the seated zone `A`.
    pub rows: u32,
    /// Seats per row.
    pub seats_per_row: u32,
    /// Capacity of the general-admission zone `GA`.
    pub general_capacity: u32,
    /// Per-customer limit.
    pub limit: u32,
    /// Payment window.
    pub hold_time: TimeDelta,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            rows: 4,
            seats_per_row: 10,
            general_capacity: 100,
            limit: 4,
            hold_time: TimeDelta::minutes(10),
        }
    }
}

/// Services over the harness's adapters, with a venue and an on-sale event.
pub struct Fixture {
    /// The clock every service of this fixture reads.
    pub clock: Arc<ManualClock>,
    /// The adapters, with the manual clock.
    pub backends: Backends,
    /// The write side.
    pub tickets: TicketService,
    /// The read side.
    pub queries: QueryService,
    /// The venue.
    pub venue: Venue,
    /// The event, on sale from an hour before the clock's start for 30 days.
    pub event: Event,
    /// The service configuration used.
    pub config: ServiceConfig,
}

/// Active tickets per page of the fixture's seat-lock rebuilds: few, so that every rebuild of the
/// conformance checks reads several pages and one order's tickets can fall on two of them.
pub const REBUILD_PAGE: u32 = 3;

/// The price of every zone in the fixture: EUR 25.00.
pub const PRICE_MINOR: i64 = 2500;

impl Fixture {
    /// Creates the venue and event through the harness's catalog.
    pub async fn new(harness: &Harness, layout: Layout) -> Fixture {
        Self::with_price_tiers(harness, layout, BTreeMap::new()).await
    }

    /// As [`Fixture::new`], with count-based price tiers on some of the event's zones.
    pub async fn with_price_tiers(
        harness: &Harness,
        layout: Layout,
        price_tiers: BTreeMap<ZoneCode, Vec<PriceTier>>,
    ) -> Fixture {
        // Start at the real time so adapters that set real key expiries see sensible values.
        let start = Utc::now()
            .duration_trunc(TimeDelta::milliseconds(1))
            .expect("truncate now");
        let clock = Arc::new(ManualClock::new(start));
        let backends = Backends {
            catalog: harness.catalog.clone(),
            tickets: harness.tickets.clone(),
            seat_lock: harness.seat_lock.clone(),
            clock: clock.clone(),
            ids: Arc::new(UuidV7Ids),
            waiting_room: Arc::new(crate::memory::InMemoryWaitingRoom::new()),
            waiting_list: Some(harness.waiting_list.clone()),
        };
        let config = ServiceConfig {
            rebuild_page: REBUILD_PAGE,
            ..ServiceConfig::default()
        };
        let catalog = CatalogService::new(backends.clone());
        let zones = vec![
            Zone {
                code: zone("A"),
                name: "Stalls".into(),
                kind: ZoneKind::Seated {
                    rows: (1..=layout.rows)
                        .map(|r| Row {
                            label: r.to_string().parse().expect("row label"),
                            seats: layout.seats_per_row,
                        })
                        .collect(),
                },
            },
            Zone {
                code: zone("GA"),
                name: "Standing".into(),
                kind: ZoneKind::GeneralAdmission {
                    capacity: layout.general_capacity,
                },
            },
        ];
        let venue = catalog
            .create_venue("Conformance Hall", zones)
            .await
            .expect("create venue");
        let eur = Currency::new("EUR").expect("EUR");
        let prices: BTreeMap<ZoneCode, Money> = [
            (zone("A"), Money::new(PRICE_MINOR, eur)),
            (zone("GA"), Money::new(PRICE_MINOR, eur)),
        ]
        .into();
        let event = catalog
            .create_event_with_price_tiers(
                EventSpec {
                    name: "Conformance Night".into(),
                    venue_id: venue.id(),
                    sale_opens: start - TimeDelta::hours(1),
                    sale_closes: start + TimeDelta::days(30),
                    prices,
                    hold_time: layout.hold_time,
                    per_customer_limit: layout.limit,
                },
                Vec::new(),
                price_tiers,
            )
            .await
            .expect("create event");
        Fixture {
            tickets: TicketService::new(backends.clone(), config.clone()),
            queries: QueryService::new(backends.clone(), config.clone()),
            clock,
            backends,
            venue,
            event,
            config,
        }
    }

    /// The first instant the sweep expires `order` if it is still unpaid: its deadline plus the
    /// payment grace.
    pub fn sweep_due(&self, order: &Order) -> DateTime<Utc> {
        order.expires_at + self.config.payment_grace()
    }

    /// A second ticket service over the same adapters but with its own clock, to race two
    /// instances whose clocks disagree.
    pub fn service_with_clock(&self, clock: Arc<ManualClock>) -> TicketService {
        let backends = Backends {
            clock,
            ..self.backends.clone()
        };
        TicketService::new(backends, self.config.clone())
    }

    /// Pays `order`'s total under `reference`, panicking on failure (for setup steps).
    pub async fn pay(&self, order: &Order, reference: &str) -> Order {
        let reference = crate::domain::PaymentRef::new(reference).expect("payment reference");
        self.tickets
            .pay(crate::domain::PaymentNotice::for_order(order, reference))
            .await
            .expect("pay")
    }

    /// A second ticket service over the same adapters and clock with its own configuration (a
    /// late-payment policy, say).
    pub fn service_with_config(&self, config: ServiceConfig) -> TicketService {
        TicketService::new(self.backends.clone(), config)
    }

    /// Seat `n` (0-based) of zone A, row by row.
    pub fn seat(&self, n: u32) -> SeatRef {
        let per_row = match &self.venue.zones()[0].kind {
            ZoneKind::Seated { rows } => rows[0].seats,
            ZoneKind::GeneralAdmission { .. } => unreachable!("zone A is seated"),
        };
        let row = n / per_row + 1;
        SeatRef::new(
            zone("A"),
            row.to_string().parse().expect("row"),
            n % per_row + 1,
        )
        .expect("seat")
    }

    /// A purchase of seats by a customer, without idempotency key.
    pub fn seats_request(&self, customer: &str, seats: Vec<SeatRef>) -> PurchaseRequest {
        PurchaseRequest {
            event: self.event.id(),
            customer: customer_id(customer),
            selection: Selection::Seats(seats),
            idempotency_key: None,
            voucher: None,
            channel: None,
        }
    }

    /// A purchase of general-admission places.
    pub fn general_request(&self, customer: &str, quantity: u32) -> PurchaseRequest {
        PurchaseRequest {
            event: self.event.id(),
            customer: customer_id(customer),
            selection: Selection::General {
                zone: zone("GA"),
                quantity,
            },
            idempotency_key: None,
            voucher: None,
            channel: None,
        }
    }

    /// Buys seats, panicking on failure (for setup steps).
    pub async fn buy(&self, customer: &str, seats: Vec<SeatRef>) -> Order {
        self.tickets
            .purchase(self.seats_request(customer, seats))
            .await
            .expect("purchase")
    }

    /// Audits invariants 1, 2 and 6 by counting the repository's active tickets. Returns the
    /// active seats.
    pub async fn audit(&self) -> Vec<SeatRef> {
        let active = self
            .backends
            .tickets
            .active_tickets(self.event.id())
            .await
            .expect("active tickets");
        let mut per_seat: HashMap<SeatRef, u32> = HashMap::new();
        let mut general = 0u32;
        let mut per_customer: HashMap<CustomerId, u32> = HashMap::new();
        for ticket in &active {
            assert!(
                ticket.status.is_active(),
                "active_tickets returned a {} ticket",
                ticket.status
            );
            match &ticket.seat {
                Some(seat) => *per_seat.entry(seat.clone()).or_default() += 1,
                None => general += 1,
            }
            *per_customer.entry(ticket.customer.clone()).or_default() += 1;
        }
        for (seat, n) in &per_seat {
            assert_eq!(
                *n, 1,
                "invariant 1 broken: seat {seat} has {n} active tickets"
            );
        }
        let capacity = self
            .venue
            .zone(&zone("GA"))
            .map(|z| z.capacity())
            .unwrap_or(0);
        assert!(
            u64::from(general) <= capacity,
            "invariant 2 broken: {general} active GA tickets > {capacity}"
        );
        for (customer, n) in &per_customer {
            assert!(
                *n <= self.event.per_customer_limit(),
                "invariant 6 broken: {customer} has {n} active tickets"
            );
        }
        per_seat.into_keys().collect()
    }

    /// Checks the seat map against the repository: a seat is free exactly when it has no active
    /// ticket, sold exactly when its ticket is PAID; GA taken = active GA tickets.
    pub async fn assert_seat_map_matches_repository(&self) {
        let active = self
            .backends
            .tickets
            .active_tickets(self.event.id())
            .await
            .expect("active tickets");
        let map = self
            .queries
            .seat_map(self.event.id())
            .await
            .expect("seat map");
        let by_seat: HashMap<SeatRef, TicketStatus> = active
            .iter()
            .filter_map(|t| t.seat.clone().map(|s| (s, t.status)))
            .collect();
        for view in map.seats() {
            let expected = match by_seat.get(&view.seat) {
                None => crate::service::SeatAvailability::Free,
                Some(TicketStatus::Paid) => crate::service::SeatAvailability::Sold,
                Some(_) => crate::service::SeatAvailability::Held,
            };
            assert_eq!(
                view.state, expected,
                "seat map disagrees with the repository for {}",
                view.seat
            );
        }
        let general = active.iter().filter(|t| t.seat.is_none()).count() as u32;
        let ga = map
            .general
            .iter()
            .find(|g| g.zone == zone("GA"))
            .expect("GA on the map");
        assert_eq!(
            ga.taken, general,
            "GA taken places disagree with the repository"
        );
    }
}

/// A customer id from a short name.
pub(super) fn customer_id(name: &str) -> CustomerId {
    CustomerId::new(name).expect("customer id")
}

fn zone(code: &str) -> ZoneCode {
    code.parse().expect("zone code")
}

/// Shorthand used by checks: the result's error code, or `"OK"`.
pub(super) fn outcome<T>(result: &Result<T>) -> &'static str {
    match result {
        Ok(_) => "OK",
        Err(error) => error.code(),
    }
}
