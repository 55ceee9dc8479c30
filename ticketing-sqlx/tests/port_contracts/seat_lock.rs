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

macro_rules! checks {
    (lock: $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let (context, db) = context().await;
            seat_lock::$check(context.lock.as_ref()).await;
            db.drop_database().await.expect("drop the test database");
        }
    )*};
    (open: $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let (context, db) = context().await;
            seat_lock::$check(&context.open).await;
            db.drop_database().await.expect("drop the test database");
        }
    )*};
}

checks!(lock:
    an_event_not_loaded_answers_not_loaded_and_writes_nothing,
    holds_are_all_or_nothing_and_name_every_conflict,
    release_is_fenced_by_the_order,
    re_holding_extends_the_hold,
    a_hold_lapses_exactly_at_its_deadline,
    mark_sold_overwrites_any_holder_and_never_lapses,
    mark_sold_leaves_free_seats_and_other_orders_zones_alone,
    a_bought_seat_stays_sold_when_its_buyer_holds_it_again,
    general_admission_counts_other_orders_and_replaces_the_own_hold,
    sold_places_stay_sold_and_never_lapse,
    zone_snapshots_show_one_zone_of_a_large_event,
    best_available_chooses_an_orphan_free_block_and_holds_it,
    best_available_counts_lapsed_and_own_holds_free_and_sold_seats_taken,
    best_available_matches_the_reference_choice,
    rebuild_restores_every_active_hold,
    rebuilding_a_loaded_event_changes_nothing,
    a_failed_source_read_leaves_the_event_not_loaded,
    a_rebuild_in_pages_restores_what_one_page_does,
);
checks!(open:
    one_seat_many_buyers_exactly_one_wins,
    overlapping_multi_seat_holds_never_share_a_seat,
    general_admission_race_never_exceeds_capacity,
    concurrent_rebuilds_read_the_source_once,
    concurrent_best_available_never_holds_a_seat_twice,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_rebuilders_read_a_slow_paged_source_once() {
    let (context, db) = context().await;
    seat_lock::racing_rebuilders_read_a_slow_paged_source_once(
        &context.open,
        CAPABILITIES.rebuild_lease,
    )
    .await;
    db.drop_database().await.expect("drop the test database");
}

// `a_rebuilder_that_lost_its_lease_writes_nothing_more` does not apply: the lease cannot
// lapse while the rebuilder runs.

#[tokio::test]
async fn duplicate_items() {
    let (context, db) = context().await;
    seat_lock::duplicate_items(
        context.lock.as_ref(),
        context.capabilities.rejects_duplicate_items,
    )
    .await;
    db.drop_database().await.expect("drop the test database");
}

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
