//! Ports: the small, object-safe traits adapters implement (`Arc<dyn SeatLock>`, …).
//!
//! Core never imports an adapter; adapters depend on core.

mod catalog;
mod clock;
mod outbox;
mod read_model;
mod seat_lock;
mod tickets;
mod waiting_list;
mod waiting_room;

pub use catalog::CatalogRepository;
pub use clock::{Clock, IdGenerator, ManualClock, SystemClock, UuidV7Ids};
pub use outbox::{EventSink, OutboxStore};
pub use read_model::{Applied, SalesReadModel};
pub use seat_lock::{
    ActiveHold, BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldPage,
    HoldRequest, HoldSource, LockSnapshot, SeatLock, SeatState,
};
pub use tickets::{
    Extension, ExtensionOutcome, IdempotencyRecord, InsertOutcome, NewOrder, TicketRepository,
    TierClaim, Transition, VoucherClaim,
};
pub use waiting_list::{Joined, WaitingList};
pub use waiting_room::{Admission, Gate, Occupancy, Place, WaitingRoom};

#[cfg(test)]
pub(crate) use tickets::MockTicketRepository;
