//! Services: the use cases. They own time and ids, validate input, and drive the ports in the
//! order DESIGN.md prescribes. HTTP handlers and other hosts call these, nothing below them.

mod catalog;
mod channels;
mod closed_events;
mod extension;
mod holds;
mod lock_sync;
mod payments;
mod purchase;
mod query;
mod relay;
mod retention;
mod seat_changes;
mod seat_map;
mod shared_reads;
mod tickets;
mod waiting_list;
mod waiting_room;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

pub use catalog::{CatalogService, VoucherUses};
pub use closed_events::ClosedEventSweep;
pub use extension::ExtendedHold;
pub use holds::RepositoryHolds;
pub use lock_sync::{FanOutSink, SeatLockSync};
pub use purchase::{BestAvailable, PurchaseRequest, RowRange, Selection};
pub use query::{QueryService, TierStanding};
pub use relay::{OutboxRelay, RelayConfig, RelayRound, RelayStats};
pub use retention::{DEFAULT_RETENTION, HistoryPruner, Pruned, RetentionConfig};
pub use seat_changes::{
    DEFAULT_RETAINED_CHANGES, SeatChange, SeatChangeFeed, SeatChangeFeedConfig, SeatChangeItem,
    SeatChangeSubscription,
};
pub use seat_map::{
    GeneralAvailability, RowAvailability, SeatAvailability, SeatMap, SeatRange, SeatView,
    SeatedAvailability,
};
pub use tickets::TicketService;
pub use waiting_list::{WaitingListConfig, WaitingListOffers, WaitingListService, settled_state};
pub use waiting_room::{DEFAULT_POLICY_MAX_AGE, QueueStatus, WaitingRoomService};

use crate::domain::{HoldExtension, LatePaymentPolicy, VenueLimits};
use crate::ports::{
    CatalogRepository, Clock, IdGenerator, SeatLock, TicketRepository, WaitingList, WaitingRoom,
};

/// The adapters a service works with. Cheap to clone; share one between all services.
///
/// Made with [`Backends::builder`] (or [`Backends::in_memory`] for the embedded default), so a
/// port added later gets a builder method instead of breaking every caller.
#[derive(Clone)]
pub struct Backends {
    pub(crate) catalog: Arc<dyn CatalogRepository>,
    pub(crate) tickets: Arc<dyn TicketRepository>,
    pub(crate) seat_lock: Arc<dyn SeatLock>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGenerator>,
    pub(crate) waiting_room: Arc<dyn WaitingRoom>,
    pub(crate) waiting_list: Option<Arc<dyn WaitingList>>,
}

impl Backends {
    /// All in-memory adapters with the system clock and UUID v7 ids: the embedded default.
    pub fn in_memory() -> Self {
        let tickets = Arc::new(crate::memory::InMemoryTicketRepository::new());
        Self {
            catalog: Arc::new(crate::memory::InMemoryCatalog::new()),
            waiting_list: Some(Arc::new(crate::memory::InMemoryWaitingList::new(
                tickets.clone(),
            ))),
            tickets,
            seat_lock: Arc::new(crate::memory::InMemorySeatLock::new()),
            clock: Arc::new(crate::ports::SystemClock),
            ids: Arc::new(crate::ports::UuidV7Ids),
            waiting_room: Arc::new(crate::memory::InMemoryWaitingRoom::new()),
        }
    }

    /// A builder that needs the catalog, the ticket repository and the seat lock; the clock
    /// and the ids default to the system clock and UUID v7.
    pub fn builder() -> BackendsBuilder {
        BackendsBuilder::default()
    }

    /// A builder that starts from these adapters, to replace some of them (a test's clock, a
    /// wrapper that counts calls).
    pub fn to_builder(&self) -> BackendsBuilder {
        BackendsBuilder {
            catalog: Some(self.catalog.clone()),
            tickets: Some(self.tickets.clone()),
            seat_lock: Some(self.seat_lock.clone()),
            clock: Some(self.clock.clone()),
            ids: Some(self.ids.clone()),
            waiting_room: Some(self.waiting_room.clone()),
            waiting_list: self.waiting_list.clone(),
        }
    }

    /// Venues and events.
    pub fn catalog(&self) -> &Arc<dyn CatalogRepository> {
        &self.catalog
    }

    /// Tickets: the source of truth.
    pub fn tickets(&self) -> &Arc<dyn TicketRepository> {
        &self.tickets
    }

    /// The admission filter in front of the repository.
    pub fn seat_lock(&self) -> &Arc<dyn SeatLock> {
        &self.seat_lock
    }

    /// Time.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Ids.
    pub fn ids(&self) -> &Arc<dyn IdGenerator> {
        &self.ids
    }

    /// The waiting rooms of events that require admission.
    pub fn waiting_room(&self) -> &Arc<dyn WaitingRoom> {
        &self.waiting_room
    }

    /// The waiting lists of sold-out events, when the backends have one (it writes its offer
    /// events to the outbox of [`tickets`](Self::tickets), so it belongs to that store).
    pub fn waiting_list(&self) -> Option<&Arc<dyn WaitingList>> {
        self.waiting_list.as_ref()
    }

    /// Now, truncated to whole milliseconds: the precision every backend stores, so a time
    /// written and read back compares equal.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        now.duration_trunc(TimeDelta::milliseconds(1))
            .unwrap_or(now)
    }
}

/// Collects the adapters of [`Backends`]; [`BackendsBuilder::build`] says which one is missing.
#[derive(Default, Clone)]
#[must_use]
pub struct BackendsBuilder {
    catalog: Option<Arc<dyn CatalogRepository>>,
    tickets: Option<Arc<dyn TicketRepository>>,
    seat_lock: Option<Arc<dyn SeatLock>>,
    clock: Option<Arc<dyn Clock>>,
    ids: Option<Arc<dyn IdGenerator>>,
    waiting_room: Option<Arc<dyn WaitingRoom>>,
    waiting_list: Option<Arc<dyn WaitingList>>,
}

impl BackendsBuilder {
    /// Venues and events.
    pub fn catalog(mut self, catalog: Arc<dyn CatalogRepository>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Tickets: the source of truth. Drops a waiting list given before: it wrote its offer
    /// events to the outbox of the tickets it replaces; give the new store's after this.
    pub fn tickets(mut self, tickets: Arc<dyn TicketRepository>) -> Self {
        self.tickets = Some(tickets);
        self.waiting_list = None;
        self
    }

    /// The waiting lists; none when not set. It must write its offer events to the outbox of
    /// the [`tickets`](Self::tickets) store (the same database, or the same in-memory
    /// repository), so set it after that.
    pub fn waiting_list(mut self, waiting_list: Arc<dyn WaitingList>) -> Self {
        self.waiting_list = Some(waiting_list);
        self
    }

    /// The admission filter in front of the repository.
    pub fn seat_lock(mut self, seat_lock: Arc<dyn SeatLock>) -> Self {
        self.seat_lock = Some(seat_lock);
        self
    }

    /// Time; the system clock when not set.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Ids; UUID v7 when not set.
    pub fn ids(mut self, ids: Arc<dyn IdGenerator>) -> Self {
        self.ids = Some(ids);
        self
    }

    /// The waiting rooms; in memory when not set, which is right for one process only: servers
    /// that share a sale must share the waiting room too, or each admits up to the cap.
    pub fn waiting_room(mut self, waiting_room: Arc<dyn WaitingRoom>) -> Self {
        self.waiting_room = Some(waiting_room);
        self
    }

    /// The backends, or [`Error::Config`](crate::Error::Config) naming the adapter that was
    /// not given: the stores have no default, because an in-memory store standing in for a
    /// forgotten database would lose every sale on restart.
    pub fn build(self) -> crate::Result<Backends> {
        let missing = |setting| crate::Error::config(setting, "no adapter was given");
        Ok(Backends {
            catalog: self.catalog.ok_or_else(|| missing("catalog"))?,
            tickets: self.tickets.ok_or_else(|| missing("tickets"))?,
            seat_lock: self.seat_lock.ok_or_else(|| missing("seat_lock"))?,
            clock: self
                .clock
                .unwrap_or_else(|| Arc::new(crate::ports::SystemClock)),
            ids: self
                .ids
                .unwrap_or_else(|| Arc::new(crate::ports::UuidV7Ids)),
            waiting_room: self
                .waiting_room
                .unwrap_or_else(|| Arc::new(crate::memory::InMemoryWaitingRoom::new())),
            waiting_list: self.waiting_list,
        })
    }
}

/// Tuning knobs of the services. `Default` gives production values.
///
/// Like every configuration struct of the workspace, it gives spans as [`std::time::Duration`];
/// chrono types are kept for domain values (deadlines, an event's hold time).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Extra time a seat hold outlives the payment deadline, so the sweeper expires the ticket
    /// before the hold lapses (invariant 4: hold time + grace). At most [`MAX_HOLD_GRACE`]; a
    /// longer grace is taken as that.
    pub hold_grace: Duration,
    /// How often a purchase rebuilds a seat lock that lost its state before giving up with
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    pub rebuild_attempts: u32,
    /// Orders expired per repository call in the sweep.
    pub sweep_batch: u32,
    /// What a payment that arrives after its order's deadline does.
    pub late_payment: LatePaymentPolicy,
    /// How long after its deadline an unpaid order is left for the sweep, so that a payment
    /// that arrived in time (the deadline is judged by arrival) is not expired while it is being
    /// applied. At most [`hold_grace`](Self::hold_grace), so the seat lock still holds the seats
    /// until the sweep expires the order; a longer one is taken as that.
    pub payment_grace: Duration,
    /// Active tickets a seat-lock rebuild reads per repository call (a keyset page by ticket id).
    /// The lock writes each page in calls of its own bounded size and renews its rebuild lease
    /// between them, so the lease has to outlast the read of one page. 0 is taken as 1.
    pub rebuild_page: u32,
    /// Keys the order id of a purchase with an idempotency key
    /// ([`OrderId::for_idempotency_key`](crate::domain::OrderId::for_idempotency_key)). Every
    /// server of one deployment must share it, so that a retry on another server derives the
    /// same order id; the default is public (see [`OrderIdSecret`](crate::domain::OrderIdSecret)).
    pub order_id_secret: crate::domain::OrderIdSecret,
    /// How long a seat map may be reused: concurrent [`QueryService::seat_map`] calls for one
    /// event (or one zone) within this time of a read's start share that read instead of each
    /// snapshotting the seat lock, so a crowd refreshing the map costs one snapshot per period.
    /// Zero (the default) reads for every call: exact, but a crowd of readers then costs one
    /// snapshot each. The example server uses one second.
    pub seat_map_max_age: Duration,
    /// How far and how often the holder of a pending order may move its payment deadline
    /// ([`TicketService::extend_hold`]); by default twice, by the event's hold time, within 30
    /// minutes of the purchase.
    pub hold_extension: HoldExtension,
    /// Size caps of the venues a [`CatalogService`] built with
    /// [`with_limits`](CatalogService::with_limits)`(config.venue_limits)` creates.
    pub venue_limits: VenueLimits,
    /// How long purchases share one read of an event's channel reservations (docs/DESIGN.md,
    /// "Channel reservations"); one second by default, so a crowd of buyers costs one read per
    /// event per second and a loser still no database work. A shared read can only refuse more
    /// than a fresh one would: a seat reserved since is refused by the repository, and a
    /// refusal of named seats is read again before it stands; only best available may pass over
    /// a just-released seat for this long. Zero reads for every purchase.
    pub channel_max_age: Duration,
}

/// The default [`ServiceConfig::rebuild_page`]: a page of this many tickets reads in tens of
/// milliseconds on MariaDB, far within the rebuild lease of the seat locks.
pub const DEFAULT_REBUILD_PAGE: u32 = 10_000;

/// Longest [`ServiceConfig::hold_grace`] honoured: a day, like the longest hold time, so a
/// deadline plus grace always stays a representable instant.
pub const MAX_HOLD_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

impl ServiceConfig {
    /// The grace as the domain's time span, capped at [`MAX_HOLD_GRACE`].
    pub(crate) fn grace(&self) -> TimeDelta {
        grace_span(self.hold_grace)
    }

    /// The payment grace as the domain's time span, capped at the hold grace.
    pub(crate) fn payment_grace(&self) -> TimeDelta {
        grace_span(self.payment_grace.min(self.hold_grace))
    }
}

/// A hold grace as the domain's time span, capped at [`MAX_HOLD_GRACE`].
pub(crate) fn grace_span(grace: Duration) -> TimeDelta {
    TimeDelta::from_std(grace.min(MAX_HOLD_GRACE)).unwrap_or(TimeDelta::days(1))
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            hold_grace: Duration::from_secs(30),
            rebuild_attempts: 3,
            sweep_batch: 500,
            late_payment: LatePaymentPolicy::Reject,
            payment_grace: Duration::from_secs(10),
            rebuild_page: DEFAULT_REBUILD_PAGE,
            order_id_secret: Default::default(),
            seat_map_max_age: Duration::ZERO,
            venue_limits: VenueLimits::default(),
            hold_extension: HoldExtension::default(),
            channel_max_age: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod failure_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn a_builder_without_a_store_names_the_missing_one() {
        let memory = Backends::in_memory();
        let result = Backends::builder()
            .catalog(memory.catalog().clone())
            .seat_lock(memory.seat_lock().clone())
            .build();
        assert!(
            matches!(
                result,
                Err(Error::Config {
                    setting: "tickets",
                    ..
                })
            ),
            "got {:?}",
            result.err()
        );
    }

    #[test]
    fn a_builder_keeps_what_it_was_given_and_defaults_only_time_and_ids() {
        let memory = Backends::in_memory();
        let backends = Backends::builder()
            .catalog(memory.catalog().clone())
            .tickets(memory.tickets().clone())
            .seat_lock(memory.seat_lock().clone())
            .build()
            .expect("complete");
        assert!(Arc::ptr_eq(backends.tickets(), memory.tickets()));
        assert!(Arc::ptr_eq(backends.seat_lock(), memory.seat_lock()));
        let clock = Arc::new(crate::ports::ManualClock::new(chrono::DateTime::UNIX_EPOCH));
        let replaced = backends.to_builder().clock(clock.clone()).build().unwrap();
        assert_eq!(replaced.clock().now(), chrono::DateTime::UNIX_EPOCH);
        assert!(Arc::ptr_eq(replaced.catalog(), memory.catalog()));
    }
}
