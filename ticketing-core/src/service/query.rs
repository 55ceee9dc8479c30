//! `QueryService`: the read side.

use std::sync::Arc;

use crate::domain::{
    EventId, Money, Order, OrderId, SeatRef, Ticket, TicketId, TicketStatus, VenueId, ZoneCode,
};
use crate::ports::SeatState;
use crate::{Error, Result};

use super::catalog::EventCache;
use super::holds::{RepositoryHolds, snapshot_with_rebuild};
use super::{Backends, ServiceConfig};

/// Whether a seat can be bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeatAvailability {
    /// Nobody holds it.
    Free,
    /// An order holds it while its buyer pays.
    Held,
    /// Paid.
    Sold,
}

/// One seat on the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatView {
    /// The seat.
    pub seat: SeatRef,
    /// Its availability.
    pub state: SeatAvailability,
}

/// Places of a general-admission zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralAvailability {
    /// The zone.
    pub zone: ZoneCode,
    /// Its capacity.
    pub capacity: u32,
    /// Places held or sold.
    pub taken: u32,
    /// Places left.
    pub remaining: u32,
}

/// The availability of every seat and general-admission zone of an event that is on sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatMap {
    /// The event.
    pub event: EventId,
    /// Every seat of the priced seated zones, in layout order.
    pub seats: Vec<SeatView>,
    /// Every priced general-admission zone.
    pub general: Vec<GeneralAvailability>,
}

/// The read side: tickets, orders, counts, revenue and the seat map.
#[derive(Clone)]
pub struct QueryService {
    backends: Backends,
    config: ServiceConfig,
    events: Arc<EventCache>,
}

impl QueryService {
    /// A query service over `backends`.
    pub fn new(backends: Backends, config: ServiceConfig) -> Self {
        Self {
            backends,
            config,
            events: Arc::new(EventCache::default()),
        }
    }

    /// A ticket by id.
    pub async fn ticket(&self, id: TicketId) -> Result<Ticket> {
        self.backends
            .tickets
            .ticket(id)
            .await?
            .ok_or_else(|| Error::not_found("ticket", id))
    }

    /// An order with its tickets.
    pub async fn order(&self, id: OrderId) -> Result<Order> {
        self.backends
            .tickets
            .order(id)
            .await?
            .ok_or_else(|| Error::not_found("order", id))
    }

    /// How many tickets of the event are PAID.
    pub async fn sold_count(&self, event: EventId) -> Result<u64> {
        self.events.get(&*self.backends.catalog, event).await?;
        self.backends
            .tickets
            .count_by_status(event, TicketStatus::Paid)
            .await
    }

    /// The sum of PAID ticket prices of an event at a venue.
    pub async fn revenue(&self, venue: VenueId, event: EventId) -> Result<Money> {
        let info = self.events.get(&*self.backends.catalog, event).await?;
        if info.event.venue_id() != venue {
            return Err(Error::not_found(
                "event at venue",
                format!("{event} at {venue}"),
            ));
        }
        let minor = self.backends.tickets.revenue_minor(venue, event).await?;
        Ok(Money::new(minor, info.event.currency()))
    }

    /// The seat map from the seat lock, in one lock round trip (rebuilt first if the lock lost
    /// its state).
    pub async fn seat_map(&self, event: EventId) -> Result<SeatMap> {
        let info = self.events.get(&*self.backends.catalog, event).await?;
        let source = || {
            RepositoryHolds::new(
                self.backends.tickets.clone(),
                self.config.hold_grace,
                info.capacities.clone(),
            )
            .with_page_size(self.config.rebuild_page)
        };
        let now = self.backends.now();
        let snapshot = snapshot_with_rebuild(
            &*self.backends.seat_lock,
            source,
            event,
            now,
            self.config.rebuild_attempts,
        )
        .await?;
        let priced = |zone: &ZoneCode| info.event.price(zone).is_some();
        let seats = info
            .venue
            .zones()
            .iter()
            .filter(|zone| priced(&zone.code))
            .flat_map(|zone| zone.seats())
            .map(|seat| {
                let state = match snapshot.seats.get(&seat) {
                    None => SeatAvailability::Free,
                    Some(SeatState::Held { .. }) => SeatAvailability::Held,
                    Some(SeatState::Sold { .. }) => SeatAvailability::Sold,
                };
                SeatView { seat, state }
            })
            .collect();
        let mut general: Vec<GeneralAvailability> = info
            .capacities
            .iter()
            .filter(|(zone, _)| priced(zone))
            .map(|(zone, capacity)| {
                let taken = snapshot
                    .general
                    .get(zone)
                    .copied()
                    .unwrap_or(0)
                    .min(*capacity);
                GeneralAvailability {
                    zone: zone.clone(),
                    capacity: *capacity,
                    taken,
                    remaining: capacity - taken,
                }
            })
            .collect();
        general.sort_by(|a, b| a.zone.cmp(&b.zone));
        Ok(SeatMap {
            event,
            seats,
            general,
        })
    }
}
