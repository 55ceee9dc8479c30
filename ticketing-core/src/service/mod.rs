//! Services: the use cases. They own time and ids, validate input, and drive the ports in the
//! order DESIGN.md prescribes. HTTP handlers and other hosts call these, nothing below them.

mod catalog;
mod holds;
mod lock_sync;
mod purchase;
mod query;
mod relay;
mod tickets;

use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

pub use catalog::{CatalogService, EventCache};
pub use holds::RepositoryHolds;
pub use lock_sync::{FanOutSink, SeatLockSync};
pub use purchase::{PurchaseRequest, Selection};
pub use query::{GeneralAvailability, QueryService, SeatAvailability, SeatMap, SeatView};
pub use relay::{OutboxRelay, RelayConfig, RelayRound, RelayStats};
pub use tickets::TicketService;

use crate::ports::{CatalogRepository, Clock, IdGenerator, SeatLock, TicketRepository};

/// The adapters a service works with. Cheap to clone; share one between all services.
#[derive(Clone)]
pub struct Backends {
    /// Venues and events.
    pub catalog: Arc<dyn CatalogRepository>,
    /// Tickets: the source of truth.
    pub tickets: Arc<dyn TicketRepository>,
    /// The admission filter in front of the repository.
    pub seat_lock: Arc<dyn SeatLock>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Ids.
    pub ids: Arc<dyn IdGenerator>,
}

impl Backends {
    /// All in-memory adapters with the system clock and UUID v7 ids: the embedded default.
    pub fn in_memory() -> Self {
        Self {
            catalog: Arc::new(crate::memory::InMemoryCatalog::new()),
            tickets: Arc::new(crate::memory::InMemoryTicketRepository::new()),
            seat_lock: Arc::new(crate::memory::InMemorySeatLock::new()),
            clock: Arc::new(crate::ports::SystemClock),
            ids: Arc::new(crate::ports::UuidV7Ids),
        }
    }

    /// Now, truncated to whole milliseconds: the precision every backend stores, so a time
    /// written and read back compares equal.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        now.duration_trunc(TimeDelta::milliseconds(1))
            .unwrap_or(now)
    }
}

/// Tuning knobs of the services. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Extra time a seat hold outlives the payment deadline, so the sweeper expires the ticket
    /// before the hold lapses (invariant 4: hold time + grace).
    pub hold_grace: TimeDelta,
    /// How often a purchase rebuilds a seat lock that lost its state before giving up with
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    pub rebuild_attempts: u32,
    /// Orders expired per repository call in the sweep.
    pub sweep_batch: u32,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            hold_grace: TimeDelta::seconds(30),
            rebuild_attempts: 3,
            sweep_batch: 500,
        }
    }
}

#[cfg(test)]
mod failure_tests;
