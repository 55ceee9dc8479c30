//! The event stream end to end on real PostgreSQL + Redis: outbox → relay → Redis stream →
//! projection, the checks of `event_stream.rs` (relay and consumer crashes, two relays at once,
//! injected duplicates, Redis going down) on the PostgreSQL repository. Each test has its own
//! database and its own Redis key prefix (or its own redis-server).

use ticketing_core::ports::CatalogRepository;
use ticketing_core::ports::WaitingList;
use ticketing_sqlx::postgres::testing::{TestDatabase, URL_VAR};
use ticketing_sqlx::postgres::{PgCatalog, PgTicketRepository, PgWaitingList};

/// The repository under test.
type Repo = PgTicketRepository;
/// The test database.
type Db = TestDatabase;

/// A fresh database with the repository and the catalog on it.
async fn backend() -> (Db, Arc<Repo>, Arc<dyn CatalogRepository>) {
    let db = TestDatabase::create(24)
        .await
        .unwrap_or_else(|e| panic!("a test database (set {URL_VAR}): {e}"));
    let repo = Arc::new(PgTicketRepository::new(db.pool().clone()));
    let catalog = Arc::new(PgCatalog::new(db.pool().clone()));
    (db, repo, catalog)
}

/// The waiting list on the test database (the harness needs one; these checks use none).
fn waiting_list(db: &Db) -> Arc<dyn WaitingList> {
    Arc::new(PgWaitingList::new(db.pool().clone()))
}

include!("event_stream/checks.rs");
