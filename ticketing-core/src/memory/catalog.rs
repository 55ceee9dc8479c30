use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::lock;
use crate::domain::{Event, EventId, Venue, VenueId, Voucher, VoucherCode};
use crate::ports::CatalogRepository;
use crate::{Error, Result};

/// Venues, events and vouchers in memory.
#[derive(Debug, Default)]
pub struct InMemoryCatalog {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    venues: HashMap<VenueId, Venue>,
    events: HashMap<EventId, Event>,
    vouchers: HashMap<EventId, BTreeMap<VoucherCode, Voucher>>,
}

impl InMemoryCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CatalogRepository for InMemoryCatalog {
    async fn insert_venue(&self, venue: &Venue) -> Result<()> {
        let mut state = lock(&self.state);
        if state.venues.contains_key(&venue.id()) {
            return Err(Error::invalid("venue_id", "a venue with this id exists"));
        }
        state.venues.insert(venue.id(), venue.clone());
        Ok(())
    }

    async fn venue(&self, id: VenueId) -> Result<Option<Venue>> {
        Ok(lock(&self.state).venues.get(&id).cloned())
    }

    async fn insert_event(&self, event: &Event) -> Result<()> {
        let mut state = lock(&self.state);
        if !state.venues.contains_key(&event.venue_id()) {
            return Err(Error::not_found("venue", event.venue_id()));
        }
        if state.events.contains_key(&event.id()) {
            return Err(Error::invalid("event_id", "an event with this id exists"));
        }
        state.events.insert(event.id(), event.clone());
        Ok(())
    }

    async fn event(&self, id: EventId) -> Result<Option<Event>> {
        Ok(lock(&self.state).events.get(&id).cloned())
    }

    async fn insert_voucher(&self, voucher: &Voucher) -> Result<()> {
        let mut state = lock(&self.state);
        if !state.events.contains_key(&voucher.event()) {
            return Err(Error::not_found("event", voucher.event()));
        }
        let vouchers = state.vouchers.entry(voucher.event()).or_default();
        if vouchers.contains_key(voucher.code()) {
            return Err(Error::invalid(
                "code",
                "the event has a voucher with this code",
            ));
        }
        vouchers.insert(voucher.code().clone(), voucher.clone());
        Ok(())
    }

    async fn voucher(&self, event: EventId, code: &VoucherCode) -> Result<Option<Voucher>> {
        Ok(lock(&self.state)
            .vouchers
            .get(&event)
            .and_then(|v| v.get(code))
            .cloned())
    }

    async fn vouchers(&self, event: EventId) -> Result<Vec<Voucher>> {
        Ok(lock(&self.state)
            .vouchers
            .get(&event)
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default())
    }

    /// A scan of every event: catalogs hold few events, and this runs once a minute or so.
    async fn events_closed(
        &self,
        after: Option<(DateTime<Utc>, EventId)>,
        closed_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<EventId>> {
        let state = lock(&self.state);
        let mut closed: Vec<(DateTime<Utc>, EventId)> = state
            .events
            .values()
            .map(|e| (e.sale_closes(), e.id()))
            .filter(|key| key.0 <= closed_by && after.is_none_or(|after| *key > after))
            .collect();
        closed.sort();
        Ok(closed
            .into_iter()
            .take(limit as usize)
            .map(|(_, id)| id)
            .collect())
    }
}
