//! The adapter conformance suite: one check per invariant of DESIGN.md, run against every adapter.
//!
//! An adapter crate enables the `testkit` feature as a dev-dependency, writes one async function
//! that builds a fresh [`Harness`] (its own database, its own key prefix), and expands
//! [`conformance_suite!`](crate::conformance_suite) with it:
//!
//! ```ignore
//! async fn harness() -> ticketing_core::testkit::Harness { /* … */ }
//! ticketing_core::conformance_suite!(harness);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::ports::{CatalogRepository, SeatLock, TicketRepository};

/// A boxed future, as harness hooks return.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The adapters under test, freshly created and isolated from every other test.
pub struct Harness {
    /// The seat lock under test.
    pub seat_lock: Arc<dyn SeatLock>,
    /// The ticket repository under test.
    pub tickets: Arc<dyn TicketRepository>,
    /// The catalog repository under test.
    pub catalog: Arc<dyn CatalogRepository>,
    /// Wipes every bit of seat-lock state, as a Redis restart without persistence would.
    pub wipe_seat_lock: Arc<dyn Fn() -> BoxFuture + Send + Sync>,
    /// Run once when the check passed: drops the test database, deletes the key prefix.
    pub teardown: Option<BoxFuture>,
}
