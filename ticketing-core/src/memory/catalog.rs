use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::domain::{Event, EventId, Venue, VenueId};
use crate::ports::CatalogRepository;
use crate::{Error, Result};

/// Venues and events in memory.
#[derive(Debug, Default)]
pub struct InMemoryCatalog {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    venues: HashMap<VenueId, Venue>,
    events: HashMap<EventId, Event>,
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
}
