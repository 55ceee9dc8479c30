//! `QueryService`: the read side.

use std::sync::Arc;

use crate::domain::{
    Event, EventId, Money, Order, OrderId, PriceTier, SeatRef, Ticket, TicketId, TicketStatus,
    VenueId, Zone, ZoneCode,
};
use crate::{Error, Result};

use super::catalog::{EventCache, EventInfo};
use super::holds::{RepositoryHolds, snapshot_with_rebuild};
use super::seat_map::SeatMap;
use super::shared_reads::SharedReads;
use super::{Backends, ServiceConfig};

/// A price tier of an event's zone with the active tickets counted in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierStanding {
    /// The tiered zone.
    pub zone: ZoneCode,
    /// The tier's place in the zone's order (0 is the first).
    pub index: u16,
    /// The tier: its size and price.
    pub tier: PriceTier,
    /// Active tickets (PENDING_PAYMENT or PAID) counted in it.
    pub active: u32,
}

impl TierStanding {
    /// Places the tier has left at the price it offers.
    pub fn places_left(&self) -> u32 {
        self.tier.size.saturating_sub(self.active)
    }
}

/// Which seat map: an event's, or one zone's of it.
type MapKey = (EventId, Option<ZoneCode>);

/// The read side: tickets, orders, counts, revenue and the seat map.
///
/// Clones share their caches: the catalog, and the seat maps read within
/// [`ServiceConfig::seat_map_max_age`].
#[derive(Clone)]
pub struct QueryService {
    backends: Backends,
    config: ServiceConfig,
    events: Arc<EventCache>,
    seat_maps: Arc<SharedReads<MapKey, Arc<SeatMap>>>,
}

impl QueryService {
    /// A query service over `backends`.
    pub fn new(backends: Backends, config: ServiceConfig) -> Self {
        Self {
            seat_maps: Arc::new(SharedReads::new(config.seat_map_max_age)),
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

    /// Every price tier of `event`'s zones, in zone and tier order, with its active tickets as
    /// the repository counts them at the time of the read (no cache: a tier's count changes
    /// with every purchase in the zone). An event without tiers asks the repository nothing.
    pub async fn price_tiers(&self, event: &Event) -> Result<Vec<TierStanding>> {
        if event.price_tiers().is_empty() {
            return Ok(Vec::new());
        }
        let sales = self.backends.tickets.tier_sales(event.id()).await?;
        let active = |zone: &ZoneCode, index: u16| {
            sales
                .iter()
                .find(|(z, i, _)| z == zone && *i == index)
                .map_or(0, |(_, _, n)| *n)
        };
        Ok(event
            .price_tiers()
            .iter()
            .flat_map(|(zone, tiers)| {
                tiers.iter().enumerate().map(move |(i, tier)| {
                    let index = u16::try_from(i).unwrap_or(u16::MAX);
                    TierStanding {
                        zone: zone.clone(),
                        index,
                        tier: *tier,
                        active: active(zone, index),
                    }
                })
            })
            .collect())
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

    /// The seat map of every priced zone but the hidden ones, from the seat lock's snapshot (rebuilt first if the
    /// lock lost its state). Concurrent callers share one snapshot, and its map is reused for
    /// [`ServiceConfig::seat_map_max_age`] (by default not at all).
    pub async fn seat_map(&self, event: EventId) -> Result<Arc<SeatMap>> {
        let info = self.events.get(&*self.backends.catalog, event).await?;
        let read = self.read_map(&info, None);
        self.seat_maps.get((event, None), read).await
    }

    /// The seat map of one priced zone (`NotFound` for a zone the event does not sell publicly:
    /// unpriced, or hidden), reading
    /// only that zone from the seat lock ([`SeatLock::zone_snapshot`](crate::ports::SeatLock)),
    /// shared like [`seat_map`](Self::seat_map).
    pub async fn zone_seat_map(&self, event: EventId, zone: &ZoneCode) -> Result<Arc<SeatMap>> {
        let info = self.events.get(&*self.backends.catalog, event).await?;
        let layout = info
            .venue
            .zone(zone)
            .filter(|z| info.event.price(&z.code).is_some() && !info.event.is_hidden(&z.code))
            .ok_or_else(|| Error::not_found("zone", format!("{zone} of event {event}")))?;
        let read = self.read_map(&info, Some(layout));
        self.seat_maps.get((event, Some(zone.clone())), read).await
    }

    /// Reads the lock's snapshot of the event (or of `zone`) and builds its map.
    async fn read_map(&self, info: &EventInfo, zone: Option<&Zone>) -> Result<Arc<SeatMap>> {
        let event = info.event.id();
        let source = || {
            RepositoryHolds::new(
                self.backends.tickets.clone(),
                self.config.hold_grace,
                info.capacities.clone(),
            )
            .with_page_size(self.config.rebuild_page)
        };
        let snapshot = snapshot_with_rebuild(
            &*self.backends.seat_lock,
            source,
            event,
            zone,
            self.backends.now(),
            self.config.rebuild_attempts,
        )
        .await?;
        // Hidden zones are sold only with a voucher that opens them, so the public map leaves
        // them out.
        let priced =
            |z: &&Zone| info.event.price(&z.code).is_some() && !info.event.is_hidden(&z.code);
        // Seats kept back for a sales channel are taken for the public.
        let reserved: Vec<SeatRef> = self
            .backends
            .tickets
            .channels(event)
            .await?
            .iter()
            .flat_map(|c| c.reserved().iter().cloned())
            .collect();
        let map = match zone {
            Some(zone) => SeatMap::build(event, std::iter::once(zone), &snapshot, &reserved),
            None => SeatMap::build(
                event,
                info.venue.zones().iter().filter(priced),
                &snapshot,
                &reserved,
            ),
        };
        Ok(Arc::new(map))
    }
}
