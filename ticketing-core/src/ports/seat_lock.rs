//! The seat lock: a fast admission filter in front of the database.
//!
//! It answers "can this order have these seats?" in one round trip and keeps losers away from the
//! database. It is never the source of truth: it may lose all its state at any moment (answering
//! [`HoldOutcome::NotLoaded`] afterwards), and every guarantee is finally enforced by the
//! [`TicketRepository`](super::TicketRepository).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use crate::domain::{
    EventId, OrderId, Row, RowLabel, RowOccupancy, SeatRef, TicketId, Zone, ZoneCode, choose_block,
};

/// One thing an order holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HoldItem {
    /// A numbered seat.
    Seat(SeatRef),
    /// `quantity` places in a general-admission zone of `capacity` places.
    General {
        /// The zone.
        zone: ZoneCode,
        /// Places wanted by this order.
        quantity: u32,
        /// The zone's capacity (the lock itself knows no venue layout).
        capacity: u32,
    },
}

/// Hold `items` for `order` until `until`, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    /// The event.
    pub event: EventId,
    /// The holder: only this order can release the holds or mark them sold.
    pub order: OrderId,
    /// What to hold. A seat appears at most once; a zone at most once.
    pub items: Vec<HoldItem>,
    /// The caller's current time; a hold whose `until` is at or before `now` counts as free.
    pub now: DateTime<Utc>,
    /// When the holds lapse by themselves (payment deadline + grace).
    pub until: DateTime<Utc>,
}

/// The answer to a [`SeatLock::hold`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Every item is now held by the order.
    Held,
    /// Nothing was held: these seats and zones are held or sold by other orders.
    Taken {
        /// Seats held or sold by another order.
        seats: Vec<SeatRef>,
        /// General-admission zones without enough free places.
        zones: Vec<ZoneCode>,
    },
    /// The lock has no state for this event (first use, or data loss). Call
    /// [`SeatLock::rebuild`], then try again.
    NotLoaded,
}

/// Hold the best `quantity` adjacent seats of one seated zone for `order`, chosen by the lock in
/// the same atomic step as the hold (see [`choose_block`] for what "best" means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestAvailableRequest {
    /// The event.
    pub event: EventId,
    /// The holder, as in [`HoldRequest::order`].
    pub order: OrderId,
    /// The seated zone.
    pub zone: ZoneCode,
    /// The rows to choose from, best first, a buyer's row range already applied: the lock knows
    /// no layout, so the request brings it (as [`SeatLock::zone_snapshot`] gets the zone).
    pub rows: Vec<Row>,
    /// How many seats, side by side in one row; at least 1.
    pub quantity: u32,
    /// Seats of the zone to treat as taken whatever the lock holds: those kept back for a sales
    /// channel the buyer does not belong to (docs/DESIGN.md, "Channel reservations"). Sorted;
    /// usually empty.
    pub excluded: Vec<SeatRef>,
    /// The caller's current time; a hold whose `until` is at or before `now` counts as free.
    pub now: DateTime<Utc>,
    /// When the new holds lapse by themselves (payment deadline + grace).
    pub until: DateTime<Utc>,
}

impl BestAvailableRequest {
    /// The seats [`choose_block`] picks when `taken` are the seats not free for this order; `None`
    /// when no row has `quantity` free seats side by side. Taken seats of other zones or rows
    /// are ignored; the request's [`excluded`](Self::excluded) seats are taken too. For
    /// adapters that run the choice in Rust (in memory, SQL).
    pub fn choose<'a>(&self, taken: impl IntoIterator<Item = &'a SeatRef>) -> Option<Vec<SeatRef>> {
        let mut by_row: HashMap<&RowLabel, HashSet<u32>> = HashMap::new();
        for seat in taken {
            if seat.zone == self.zone {
                by_row.entry(&seat.row).or_default().insert(seat.number);
            }
        }
        for seat in &self.excluded {
            if seat.zone == self.zone {
                by_row.entry(&seat.row).or_default().insert(seat.number);
            }
        }
        let rows: Vec<RowOccupancy> = self
            .rows
            .iter()
            .map(|row| RowOccupancy {
                seats: row.seats,
                taken: by_row.remove(&row.label).unwrap_or_default(),
            })
            .collect();
        let placement = choose_block(&rows, self.quantity)?;
        let row = &self.rows[placement.row];
        Some(
            (placement.first..placement.first + self.quantity)
                .map(|number| SeatRef {
                    zone: self.zone.clone(),
                    row: row.label.clone(),
                    number,
                })
                .collect(),
        )
    }
}

/// The answer to a [`SeatLock::hold_best_available`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BestAvailableOutcome {
    /// These seats (adjacent, in one row, in seat order) are now held by the order.
    Held {
        /// The chosen seats.
        seats: Vec<SeatRef>,
    },
    /// No row has `quantity` free seats side by side; nothing was held.
    NoBlock,
    /// The lock has no state for this event: rebuild, then try again (as for
    /// [`HoldOutcome::NotLoaded`]).
    NotLoaded,
}

/// The state of one seat in the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatState {
    /// Held by an order until a deadline.
    Held {
        /// The holder.
        order: OrderId,
        /// When the hold lapses.
        until: DateTime<Utc>,
    },
    /// Sold to an order; never lapses.
    Sold {
        /// The buyer's order.
        order: OrderId,
    },
}

/// What the lock knows of one event: the seats that are not free and the taken places per
/// general-admission zone. Lapsed holds are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockSnapshot {
    /// Held or sold seats; every other seat is free.
    pub seats: HashMap<SeatRef, SeatState>,
    /// Held or sold places per general-admission zone.
    pub general: HashMap<ZoneCode, u32>,
}

/// One active hold to restore in [`SeatLock::rebuild`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveHold {
    /// The holder.
    pub order: OrderId,
    /// The seat or the general-admission places.
    pub item: HoldItem,
    /// `Some(deadline)` for an unpaid order, `None` for a sold one.
    pub until: Option<DateTime<Utc>>,
}

/// One page of an event's active holds, as a [`HoldSource`] reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldPage {
    /// The holds of the page's tickets.
    pub holds: Vec<ActiveHold>,
    /// The last ticket of the page, to read the next page after; `None` when this is the last
    /// page.
    pub next: Option<TicketId>,
}

impl HoldPage {
    /// The last page, holding `holds`.
    pub fn last(holds: Vec<ActiveHold>) -> Self {
        Self { holds, next: None }
    }
}

/// Where a rebuild reads the active holds of an event from: the repository's active tickets, in
/// pages of a bounded number of tickets ordered by ticket id (keyset pagination), so that no read
/// and no lock write of a rebuild grows with the event.
#[async_trait]
pub trait HoldSource: Send + Sync {
    /// The active holds of the page of `event`'s active tickets that starts after ticket `after`
    /// (at the first ticket when `None`). A read from the first page starts a new pass over the
    /// event.
    ///
    /// An order may be listed several times for one zone (one hold per ticket), on one page or
    /// on several: a rebuild adds its places up, sold if any of them is, else held until the
    /// latest deadline.
    async fn active_holds(&self, event: EventId, after: Option<TicketId>) -> Result<HoldPage>;
}

/// The seat-lock port. Implementations: in memory, Redis (Lua), SQL (`SELECT … FOR UPDATE`).
///
/// Every method is safe to call from many tasks and many processes at once.
#[async_trait]
pub trait SeatLock: Send + Sync {
    /// Holds all items for `request.order`, or none of them.
    ///
    /// A seat is free when nobody holds it, when its hold lapsed (`until <= now`), or when
    /// `request.order` itself holds it (re-holding extends the hold; a seat this order already
    /// bought stays sold). A zone has room when the places held or sold by *other* orders plus
    /// `quantity` fit its capacity; the order's own earlier hold in the zone is replaced, and
    /// places the order already bought in the zone stay sold as they are.
    async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome>;

    /// Chooses the best `request.quantity` adjacent free seats of `request.rows` and holds them
    /// for `request.order`, in one atomic step: no other hold can take a chosen seat between the
    /// choice and the hold, so concurrent calls never hold one seat twice.
    ///
    /// A seat is free for the choice when nobody holds it, when its hold lapsed (`until <=
    /// now`), or when `request.order` itself holds it (so a retried purchase tends to pick its
    /// own seats again); a sold seat is taken, whoever bought it. The choice follows
    /// [`choose_block`]: a block that leaves no orphan seat whenever the rows have one. An
    /// adapter may read a large zone in bounded chunks of whole rows, each chunk chosen from and
    /// held atomically, chunk by chunk in row order, first without orphans, then with the fewest
    /// the chunks showed; the choice is then exact for a zone that does not change meanwhile.
    async fn hold_best_available(
        &self,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome>;

    /// Frees what `order` holds of `items`, fenced: a seat held or sold by another order is left
    /// alone. Releasing something not held, or an event not loaded, is not an error.
    async fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()>;

    /// Marks `items` sold to `order` (no deadline), after the database recorded the payment.
    /// Overwrites any other holder of a seat: the database, which is the truth, says this order
    /// paid. A free seat (nobody's entry) and a zone without this order's entry are left alone: a
    /// release that overtook this mark (a refund committed right after the payment) must win, and
    /// the next rebuild reads sold seats from the repository. On an event that is not loaded it
    /// writes nothing.
    async fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()>;

    /// Everything held or sold for `event` at `now`; `None` when not loaded.
    ///
    /// It need not be one atomic read: an adapter may read a large event in bounded chunks (so
    /// one seat map does not stall every buyer), and a seat that changes during the read may show
    /// its state before or after the change.
    async fn snapshot(&self, event: EventId, now: DateTime<Utc>) -> Result<Option<LockSnapshot>>;

    /// What [`snapshot`](SeatLock::snapshot) shows of one zone of `event`: the held or sold seats
    /// of a seated `zone`, or the taken places of a general-admission one (nothing of other
    /// zones); `None` when not loaded. It reads only that zone's entries (the lock knows no
    /// layout, so the zone brings its rows), so a one-zone seat map costs what the zone holds,
    /// not what the event holds.
    async fn zone_snapshot(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>>;

    /// Loads the event from the holds read from `source` and marks it loaded, if it is not
    /// loaded; an event that is loaded already is left as it is (replacing it would drop the holds
    /// made since the first rebuild).
    ///
    /// Many callers may ask at once (after a data loss every buyer sees `NotLoaded`): the
    /// implementation reads `source` once per event under a rebuild lease and lets the others
    /// wait for that rebuild instead of repeating it. A waiter that gives up returns
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    ///
    /// The rebuild works in chunks, whatever the size of the event: it reads `source` page by
    /// page, writes each page in calls of a bounded size (the adapter's chunk setting), renews its
    /// lease between chunks, and marks the event loaded only after the last one. Until then the
    /// event stays not loaded (holds answer `NotLoaded`; a forced reload keeps the old state in
    /// use). A rebuilder that lost its lease (it stalled for longer than the lease, and another
    /// one took over) writes nothing more: its next chunk is refused, and it waits for the other
    /// rebuild like any caller, so two rebuilders never interleave their chunks.
    async fn rebuild(&self, event: EventId, source: &dyn HoldSource) -> Result<()>;

    /// Drops every entry of `event`, loaded or not, so an event that is over stops taking room
    /// (the Redis keys carry no TTL). Afterwards the event is not loaded: a later hold or
    /// snapshot rebuilds it from the repository, which is the truth. Forgetting an event that
    /// is not loaded is not an error.
    async fn forget(&self, event: EventId) -> Result<()>;
}
