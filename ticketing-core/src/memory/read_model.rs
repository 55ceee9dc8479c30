use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::Result;
use crate::domain::{EventId, EventTotals, OutboxEntry, SalesChange};
use crate::ports::{Applied, SalesReadModel};

/// The [`SalesReadModel`] in one mutex: for tests, and for a single process that rebuilds its
/// model from the stream's start whenever it starts (it keeps nothing across restarts).
#[derive(Debug, Default)]
pub struct InMemorySalesReadModel {
    state: Mutex<ModelState>,
}

#[derive(Debug, Default)]
struct ModelState {
    last: u64,
    events: HashMap<EventId, EventTotals>,
}

impl InMemorySalesReadModel {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SalesReadModel for InMemorySalesReadModel {
    async fn apply(&self, entry: &OutboxEntry) -> Result<Applied> {
        let mut state = lock(&self.state);
        if entry.seq <= state.last {
            return Ok(Applied::Duplicate);
        }
        if entry.seq != state.last + 1 {
            return Ok(Applied::Gap {
                expected: state.last + 1,
            });
        }
        let change = SalesChange::of(&entry.event);
        state
            .events
            .entry(entry.event.event_id)
            .or_default()
            .apply(&change, entry.event.amount.currency.as_str());
        state.last = entry.seq;
        Ok(Applied::Applied)
    }

    async fn last_applied(&self) -> Result<u64> {
        Ok(lock(&self.state).last)
    }

    async fn totals(&self, event: EventId) -> Result<EventTotals> {
        Ok(lock(&self.state)
            .events
            .get(&event)
            .cloned()
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::contracts::sales_read_model;

    #[tokio::test]
    async fn keeps_the_read_model_contract() {
        sales_read_model::entries_apply_once_in_sequence_order(&InMemorySalesReadModel::new())
            .await;
    }
}
