//! Creating venues and events, and the cache every purchase reads them from.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crate::domain::{
    Channel, ChannelCode, ChannelKey, ChannelRelease, Event, EventId, EventSpec, MAX_CHANNEL_SEATS,
    PriceTier, SeatRef, Venue, VenueId, VenueLimits, Voucher, VoucherSpec, Zone, ZoneCode,
    ZoneKind,
};
use crate::ports::CatalogRepository;
use crate::{Error, Result};

use super::Backends;

/// An event with its venue, as purchases need them.
#[derive(Debug)]
pub(crate) struct EventInfo {
    /// The event.
    pub(crate) event: Event,
    /// Its venue.
    pub(crate) venue: Venue,
    /// Capacity of each general-admission zone.
    pub(crate) capacities: HashMap<ZoneCode, u32>,
}

/// Events and venues never change once created, so every service keeps them in memory: a purchase
/// reads no catalog row from the database after the first one per event.
#[derive(Default)]
pub(crate) struct EventCache {
    events: RwLock<HashMap<EventId, Arc<EventInfo>>>,
}

impl EventCache {
    /// The event with its venue, from the cache or else from `catalog`.
    pub(crate) async fn get(
        &self,
        catalog: &dyn CatalogRepository,
        id: EventId,
    ) -> Result<Arc<EventInfo>> {
        if let Some(info) = self
            .events
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(info.clone());
        }
        let event = catalog
            .event(id)
            .await?
            .ok_or_else(|| Error::not_found("event", id))?;
        let venue = catalog
            .venue(event.venue_id())
            .await?
            .ok_or_else(|| Error::internal(format!("event {id} names a missing venue")))?;
        let capacities = venue
            .zones()
            .iter()
            .filter_map(|zone| match zone.kind {
                ZoneKind::GeneralAdmission { capacity } => Some((zone.code.clone(), capacity)),
                ZoneKind::Seated { .. } => None,
            })
            .collect();
        let info = Arc::new(EventInfo {
            event,
            venue,
            capacities,
        });
        self.events
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, info.clone());
        Ok(info)
    }
}

/// A voucher with the number of active orders (unpaid or paid) using it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherUses {
    /// The voucher.
    pub voucher: Voucher,
    /// Active orders using it: never above its `max_uses`.
    pub uses: u32,
}

/// Creates venues, events and vouchers (the admin side).
#[derive(Clone)]
pub struct CatalogService {
    backends: Backends,
    limits: VenueLimits,
}

impl CatalogService {
    /// A catalog service over `backends` that creates venues within the default [`VenueLimits`].
    pub fn new(backends: Backends) -> Self {
        Self {
            backends,
            limits: VenueLimits::default(),
        }
    }

    /// The same service, creating venues within `limits` instead.
    #[must_use]
    pub fn with_limits(mut self, limits: VenueLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Creates a venue with a new id after checking its layout and its size
    /// ([`VenueLimits::check`]: [`Error::InvalidRequest`] naming the cap it exceeds).
    pub async fn create_venue(&self, name: &str, zones: Vec<Zone>) -> Result<Venue> {
        let venue = Venue::new(self.backends.ids.venue_id(), name, zones)?;
        self.limits.check(&venue)?;
        self.backends.catalog.insert_venue(&venue).await?;
        Ok(venue)
    }

    /// Creates an event with a new id after checking it against its venue.
    pub async fn create_event(&self, spec: EventSpec) -> Result<Event> {
        self.create_event_with_hidden_zones(spec, Vec::new()).await
    }

    /// Creates an event whose `hidden_zones` are sold only with a voucher that opens them
    /// ([`Event::with_hidden_zones`]).
    pub async fn create_event_with_hidden_zones(
        &self,
        spec: EventSpec,
        hidden_zones: Vec<ZoneCode>,
    ) -> Result<Event> {
        self.create_event_with_price_tiers(spec, hidden_zones, BTreeMap::new())
            .await
    }

    /// Creates an event with `hidden_zones` and count-based `price_tiers` for some zones
    /// ([`Event::with_price_tiers`]).
    pub async fn create_event_with_price_tiers(
        &self,
        spec: EventSpec,
        hidden_zones: Vec<ZoneCode>,
        price_tiers: BTreeMap<ZoneCode, Vec<PriceTier>>,
    ) -> Result<Event> {
        let venue = self
            .backends
            .catalog
            .venue(spec.venue_id)
            .await?
            .ok_or_else(|| Error::not_found("venue", spec.venue_id))?;
        let event = Event::new(self.backends.ids.event_id(), spec, &venue)?
            .with_hidden_zones(hidden_zones)?
            .with_price_tiers(price_tiers)?;
        self.backends.catalog.insert_event(&event).await?;
        Ok(event)
    }

    /// Creates a voucher of `event` after checking it against the event ([`Voucher::new`]).
    pub async fn create_voucher(&self, event: EventId, spec: VoucherSpec) -> Result<Voucher> {
        let event = self.event(event).await?;
        let voucher = Voucher::new(&event, spec)?;
        self.backends.catalog.insert_voucher(&voucher).await?;
        Ok(voucher)
    }

    /// Every voucher of `event`, by code, with its active uses.
    pub async fn vouchers(&self, event: EventId) -> Result<Vec<VoucherUses>> {
        self.event(event).await?;
        let vouchers = self.backends.catalog.vouchers(event).await?;
        let uses: HashMap<_, _> = self
            .backends
            .tickets
            .voucher_uses(event)
            .await?
            .into_iter()
            .collect();
        Ok(vouchers
            .into_iter()
            .map(|voucher| VoucherUses {
                uses: uses.get(voucher.code()).copied().unwrap_or(0),
                voucher,
            })
            .collect())
    }

    /// Creates a sales channel of `event` keeping `seats` back from the public
    /// ([`Channel::new`]: 1 to [`MAX_CHANNEL_SEATS`](crate::domain::MAX_CHANNEL_SEATS) seats
    /// of the venue in priced zones, none kept for another channel of the event). Returns the
    /// channel and its new random key: the only time the key is seen, as only its hash is
    /// stored. Seats with an active ticket stay that ticket's; the reservation takes them from
    /// the public from then on.
    pub async fn create_channel(
        &self,
        event: EventId,
        code: ChannelCode,
        seats: Vec<SeatRef>,
    ) -> Result<(Channel, ChannelKey)> {
        let event = self.event(event).await?;
        let venue = self.venue(event.venue_id()).await?;
        let key = ChannelKey::generate();
        let channel = Channel::new(&event, &venue, code, &key, seats)?;
        self.backends.tickets.insert_channel(&channel).await?;
        Ok((channel, key))
    }

    /// Every sales channel of `event` with its reserved and released seats, by code.
    pub async fn channels(&self, event: EventId) -> Result<Vec<Channel>> {
        self.event(event).await?;
        self.backends.tickets.channels(event).await
    }

    /// Gives `seats` of `channel` (every seat it still keeps when `None`) to the public, at
    /// once, with one `ChannelSeatsReleased` outbox event; returns the seats newly released.
    /// Seats released before are no error and write no second event. A list of more than
    /// [`MAX_CHANNEL_SEATS`](crate::domain::MAX_CHANNEL_SEATS) seats or a seat the channel never
    /// kept is [`Error::InvalidRequest`]; an unknown channel [`Error::NotFound`].
    pub async fn release_channel_seats(
        &self,
        event: EventId,
        channel: ChannelCode,
        seats: Option<Vec<SeatRef>>,
    ) -> Result<Vec<SeatRef>> {
        if seats
            .as_ref()
            .is_some_and(|s| s.is_empty() || s.len() > MAX_CHANNEL_SEATS)
        {
            return Err(Error::invalid(
                "seats",
                format!("release 1 to {MAX_CHANNEL_SEATS} seats, or leave them out for all"),
            ));
        }
        let event = self.event(event).await?;
        let release = ChannelRelease {
            event: event.id(),
            channel,
            seats,
            id: self.backends.ids.order_id(),
            venue: event.venue_id(),
            currency: event.currency(),
            at: self.backends.now(),
        };
        self.backends.tickets.release_channel_seats(&release).await
    }

    /// A venue by id.
    pub async fn venue(&self, id: VenueId) -> Result<Venue> {
        self.backends
            .catalog
            .venue(id)
            .await?
            .ok_or_else(|| Error::not_found("venue", id))
    }

    /// An event by id.
    pub async fn event(&self, id: EventId) -> Result<Event> {
        self.backends
            .catalog
            .event(id)
            .await?
            .ok_or_else(|| Error::not_found("event", id))
    }
}
