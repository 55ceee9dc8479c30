//! In-memory adapters for every port: the embedded default of the demo server and the reference
//! model for tests. Each keeps its state behind one mutex, so every call is atomic under real
//! parallelism; they keep nothing across restarts.

mod catalog;
mod general_zone;
mod read_model;
mod seat_lock;
mod sink;
mod tickets;
mod waiting_list;
mod waiting_room;

pub use catalog::InMemoryCatalog;
pub use read_model::InMemorySalesReadModel;
pub use seat_lock::InMemorySeatLock;
pub use sink::InMemoryEventSink;
pub use tickets::InMemoryTicketRepository;
pub use waiting_list::InMemoryWaitingList;
pub use waiting_room::InMemoryWaitingRoom;

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, ignoring poisoning: every critical section here leaves the state consistent
/// before anything that could panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
