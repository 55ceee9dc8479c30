//! [`InMemoryWaitingList`]: the waiting lists in one process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{InMemoryTicketRepository, lock};
use crate::Result;
use crate::domain::{
    CustomerId, EventId, Order, OrderId, OutboxEvent, WaitingEntry, WaitingEntryId, WaitingState,
};
use crate::ports::{Joined, WaitingList};

/// The [`WaitingList`] in memory, behind one mutex. Its offer events go to the outbox of the
/// in-memory ticket repository it was made with, appended under the same mutex as the entry's
/// change.
#[derive(Debug)]
pub struct InMemoryWaitingList {
    tickets: Arc<InMemoryTicketRepository>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<WaitingEntryId, WaitingEntry>,
    /// (event, joined_at, id): the lists in join order.
    order: BTreeMap<(EventId, DateTime<Utc>, WaitingEntryId), ()>,
    /// The entry of each offer's order.
    offers: HashMap<OrderId, WaitingEntryId>,
    /// The open entry of each (event, customer): the unique key of the databases.
    open: HashMap<(EventId, CustomerId), WaitingEntryId>,
}

impl InMemoryWaitingList {
    /// An empty waiting list whose offer events go to `tickets`' outbox.
    pub fn new(tickets: Arc<InMemoryTicketRepository>) -> Self {
        Self {
            tickets,
            state: Mutex::default(),
        }
    }
}

#[async_trait]
impl WaitingList for InMemoryWaitingList {
    async fn join(&self, entry: &WaitingEntry) -> Result<Joined> {
        let mut state = lock(&self.state);
        let key = (entry.event, entry.customer.clone());
        if let Some(open) = state.open.get(&key).and_then(|id| state.entries.get(id)) {
            return Ok(Joined::AlreadyOpen(open.clone()));
        }
        state.open.insert(key, entry.id);
        let mut added = entry.clone();
        added.state = WaitingState::Waiting;
        added.offer = None;
        added.offers = 0;
        state
            .order
            .insert((added.event, added.joined_at, added.id), ());
        state.entries.insert(added.id, added.clone());
        Ok(Joined::Added(added))
    }

    async fn entry(&self, id: WaitingEntryId) -> Result<Option<WaitingEntry>> {
        Ok(lock(&self.state).entries.get(&id).cloned())
    }

    async fn leave(&self, id: WaitingEntryId) -> Result<Option<WaitingEntry>> {
        let mut state = lock(&self.state);
        let Some(entry) = state.entries.get_mut(&id) else {
            return Ok(None);
        };
        if entry.state.is_open() {
            entry.state = WaitingState::Left;
            let (key, left) = ((entry.event, entry.customer.clone()), entry.clone());
            state.open.remove(&key);
            return Ok(Some(left));
        }
        Ok(Some(entry.clone()))
    }

    async fn waiting(&self, event: EventId, limit: u32) -> Result<Vec<WaitingEntry>> {
        let state = lock(&self.state);
        let from = (
            event,
            DateTime::<Utc>::MIN_UTC,
            WaitingEntryId::from_uuid(uuid::Uuid::nil()),
        );
        Ok(state
            .order
            .range(from..)
            .take_while(|((e, _, _), _)| *e == event)
            .filter_map(|((_, _, id), _)| state.entries.get(id))
            .filter(|e| e.state == WaitingState::Waiting)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn record_offer(
        &self,
        entry: WaitingEntryId,
        order: &Order,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut state = lock(&self.state);
        let Some(waiting) = state
            .entries
            .get_mut(&entry)
            .filter(|e| e.state == WaitingState::Waiting)
        else {
            return Ok(false);
        };
        waiting.state = WaitingState::Offered;
        waiting.offer = Some(order.id);
        waiting.offers += 1;
        let number = waiting.offers;
        state.offers.insert(order.id, entry);
        self.tickets
            .append_outbox(OutboxEvent::for_offer(order, entry, number, at));
        Ok(true)
    }

    async fn settle_offer(
        &self,
        order: OrderId,
        outcome: WaitingState,
    ) -> Result<Option<WaitingEntry>> {
        crate::service::settled_state(outcome)?;
        let mut state = lock(&self.state);
        let Some(id) = state.offers.get(&order).copied() else {
            return Ok(None);
        };
        let Some(entry) = state
            .entries
            .get_mut(&id)
            .filter(|e| e.state == WaitingState::Offered && e.offer == Some(order))
        else {
            return Ok(None);
        };
        entry.state = outcome;
        let (key, settled) = ((entry.event, entry.customer.clone()), entry.clone());
        state.open.remove(&key);
        Ok(Some(settled))
    }
}
