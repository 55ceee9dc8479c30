//! Shared fixtures for the PostgreSQL tests: a database per test, and the conformance harness
//! on it.

#![allow(dead_code)] // each test binary uses its own subset

use std::sync::Arc;

use ticketing_core::memory::InMemorySeatLock;
use ticketing_core::ports::SeatLock;
use ticketing_core::testkit::{BoxFuture, Harness};
use ticketing_sqlx::postgres::testing::{TestDatabase, URL_VAR};
use ticketing_sqlx::postgres::{PgCatalog, PgSeatLock, PgTicketRepository};

/// A fresh, migrated database; fails (naming TICKETING_POSTGRES_URL) when the server is
/// unreachable.
pub async fn database(max_connections: u32) -> TestDatabase {
    match TestDatabase::create(max_connections).await {
        Ok(db) => db,
        Err(e) => panic!("PostgreSQL tests need a server; set {URL_VAR}: {e}"),
    }
}

/// The conformance harness with the repository and catalog on PostgreSQL, and `seat_lock` (built
/// on the test database's pool) in front of them; `wipe` forgets everything the lock holds.
pub async fn harness_with<L>(
    seat_lock: impl FnOnce(sqlx::PgPool) -> Arc<L>,
    wipe: impl Fn(Arc<L>) -> BoxFuture + Send + Sync + 'static,
) -> Harness
where
    L: SeatLock + 'static,
{
    let db = database(16).await;
    let pool = db.pool().clone();
    let lock = seat_lock(pool.clone());
    let wiped = lock.clone();
    let tickets = Arc::new(PgTicketRepository::new(pool.clone()));
    Harness {
        seat_lock: lock,
        outbox: tickets.clone(),
        tickets,
        waiting_list: Arc::new(ticketing_sqlx::postgres::PgWaitingList::new(pool.clone())),
        catalog: Arc::new(PgCatalog::new(pool)),
        wipe_seat_lock: Arc::new(move || wipe(wiped.clone())),
        teardown: Some(Box::pin(async move {
            db.drop_database().await.expect("drop the test database");
        })),
    }
}

/// The conformance harness on PostgreSQL with the in-memory seat lock.
pub async fn memory_lock_harness() -> Harness {
    harness_with(
        |_| Arc::new(InMemorySeatLock::new()),
        |lock| {
            lock.wipe();
            Box::pin(async {})
        },
    )
    .await
}

/// The conformance harness on PostgreSQL alone: `PgSeatLock` in front of the repository.
pub async fn sql_lock_harness() -> Harness {
    harness_with(
        |pool| Arc::new(PgSeatLock::new(pool)),
        |lock| Box::pin(async move { lock.forget_all().await.expect("wipe the SQL seat lock") }),
    )
    .await
}
