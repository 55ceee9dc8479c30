//! The `SeatLock` contract of ticketing-core's testkit, one test per check, on the database
//! seat lock of the including test binary (`crate::backend`). Each test has its own database
//! (dropped when the check passed, by the guard's drop when it failed).

use std::sync::Arc;

use crate::backend::{SeatLockAdapter, TestDatabase, database};
use ticketing_core::ports::SeatLock;
use ticketing_core::testkit::contracts::seat_lock::{self, SeatLockCapabilities, SeatLockContext};

/// Hold, release and mark_sold reject a seat or zone listed twice (`Error::InvalidRequest`).
/// The rebuild lease is the marker's row lock, held by the rebuild's transaction: it ends
/// with the rebuilder (or its connection), never while it runs.
const CAPABILITIES: SeatLockCapabilities = SeatLockCapabilities {
    rejects_duplicate_items: true,
    rebuild_lease: None,
};

/// Rows per INSERT of a rebuild: tiny, so that every rebuild of the checks writes in chunks.
const REBUILD_CHUNK: usize = 2;

/// A fresh database and a context on it. Every handle `open` gives is another process's
/// lock: its own rebuild mutex, on the one pool (as many connections as the racers need).
async fn context() -> (SeatLockContext, TestDatabase) {
    let db = database(24).await;
    let pool = db.pool().clone();
    let lock = Arc::new(SeatLockAdapter::new(pool.clone()).with_rebuild_chunk(REBUILD_CHUNK));
    let forgetting = lock.clone();
    let context = SeatLockContext {
        lock,
        open: Arc::new(move || {
            let lock: Arc<dyn SeatLock> =
                Arc::new(SeatLockAdapter::new(pool.clone()).with_rebuild_chunk(REBUILD_CHUNK));
            Box::pin(async move { lock })
        }),
        forget: Some(Arc::new(move |event| {
            let lock = forgetting.clone();
            Box::pin(async move { lock.forget(event).await })
        })),
        capabilities: CAPABILITIES,
    };
    (context, db)
}

/// Drops the check's database.
async fn finish(db: TestDatabase) {
    db.drop_database().await.expect("drop the test database");
}

ticketing_core::seat_lock_contract!(context, finish);

// `a_rebuilder_that_lost_its_lease_writes_nothing_more` does not apply: the lease cannot
// lapse while the rebuilder runs.

#[tokio::test]
async fn forgetting_an_event_drops_only_that_event() {
    let (context, db) = context().await;
    let forget = context
        .forget
        .as_ref()
        .expect("the database seat lock forgets one event");
    seat_lock::forgetting_an_event_drops_only_that_event(context.lock.as_ref(), forget).await;
    db.drop_database().await.expect("drop the test database");
}
