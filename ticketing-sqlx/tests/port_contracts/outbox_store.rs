//! The `OutboxStore` contract of ticketing-core's testkit, one test per check, on the outbox of
//! the including test binary's ticket repository (`crate::backend`). Each test has its own
//! database.

use std::sync::Arc;

use crate::backend::{Repository, TestDatabase, database};
use ticketing_core::testkit::contracts::outbox_store::{self, OutboxStoreContext, ReservationFeed};

/// A fresh database and the repository's outbox on it.
async fn context() -> (OutboxStoreContext, TestDatabase) {
    let db = database(20).await;
    let repo = Arc::new(Repository::new(db.pool().clone()));
    let context = OutboxStoreContext {
        store: repo.clone(),
        feed: Arc::new(ReservationFeed::new(repo)),
    };
    (context, db)
}

macro_rules! checks {
    (store: $($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let (context, db) = context().await;
            outbox_store::$check(context.store.as_ref()).await;
            db.drop_database().await.expect("drop the test database");
        }
    )*};
    (fed: $($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let (context, db) = context().await;
            outbox_store::$check(context.store.as_ref(), context.feed.as_ref()).await;
            db.drop_database().await.expect("drop the test database");
        }
    )*};
}

checks!(store:
    the_lease_is_exclusive_until_it_lapses,
    the_holder_renews_its_lease,
    only_the_holder_releases_the_lease,
);
checks!(fed:
    only_the_lease_holder_moves_the_cursor,
    mark_sent_never_moves_the_cursor_back,
    rewind_moves_the_cursor_back_only,
    unsent_reads_after_the_cursor_in_sequence_order,
    unsent_returns_at_most_the_batch_limit,
    prune_deletes_only_published_entries_before_the_cut_off,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_relays_take_the_lease_once() {
    let (context, db) = context().await;
    outbox_store::concurrent_relays_take_the_lease_once(&context.store).await;
    db.drop_database().await.expect("drop the test database");
}
