use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::domain::OutboxEntry;
use crate::ports::EventSink;
use crate::{Error, Result};

/// An [`EventSink`] that records what it was given, like a log with ids: an entry whose sequence
/// number is not above the highest recorded one is a duplicate and dropped (counted in
/// [`duplicates`](Self::duplicates)), as Redis Streams drops an `XADD` with an id not above the
/// stream's top.
///
/// For tests: [`set_available`](Self::set_available) makes it fail like a sink that is down, and
/// [`lose_everything`](Self::lose_everything) like one that lost its data.
#[derive(Debug, Default)]
pub struct InMemoryEventSink {
    state: Mutex<SinkState>,
}

#[derive(Debug, Default)]
struct SinkState {
    entries: Vec<OutboxEntry>,
    duplicates: u64,
    refused_calls: u64,
    down: bool,
}

impl InMemoryEventSink {
    /// An empty, available sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The recorded entries, in publication order (increasing sequence numbers).
    pub fn entries(&self) -> Vec<OutboxEntry> {
        lock(&self.state).entries.clone()
    }

    /// How many published entries were dropped as duplicates.
    pub fn duplicates(&self) -> u64 {
        lock(&self.state).duplicates
    }

    /// How many calls failed because the sink was down.
    pub fn refused_calls(&self) -> u64 {
        lock(&self.state).refused_calls
    }

    /// `false`: every call fails with [`Error::Unavailable`] until set back to `true`.
    pub fn set_available(&self, available: bool) {
        lock(&self.state).down = !available;
    }

    /// Forgets every recorded entry, like a sink that lost its data.
    pub fn lose_everything(&self) {
        lock(&self.state).entries.clear();
    }
}

fn down() -> Error {
    Error::unavailable("memory-sink", "the in-memory sink is set unavailable")
}

#[async_trait]
impl EventSink for InMemoryEventSink {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<()> {
        let mut state = lock(&self.state);
        if state.down {
            state.refused_calls += 1;
            return Err(down());
        }
        for entry in entries {
            let top = state.entries.last().map_or(0, |e| e.seq);
            if entry.seq <= top {
                state.duplicates += 1;
            } else {
                state.entries.push(entry.clone());
            }
        }
        Ok(())
    }

    async fn high_water_mark(&self) -> Result<Option<u64>> {
        let mut state = lock(&self.state);
        if state.down {
            state.refused_calls += 1;
            return Err(down());
        }
        Ok(Some(state.entries.last().map_or(0, |e| e.seq)))
    }
}
