//! The event stream end to end on real MariaDB + Redis: outbox → relay → Redis stream →
//! projection, through a concurrent sale with relay and consumer crashes, two relays at once,
//! injected duplicates, and Redis going down. Each test has its own database and its own Redis
//! key prefix (or its own redis-server).

use ticketing_core::ports::CatalogRepository;
use ticketing_core::ports::WaitingList;
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{MySqlCatalog, MySqlTicketRepository, MySqlWaitingList};

/// The repository under test.
type Repo = MySqlTicketRepository;
/// The test database.
type Db = TestDatabase;

/// A fresh database with the repository and the catalog on it.
async fn backend() -> (Db, Arc<Repo>, Arc<dyn CatalogRepository>) {
    let db = TestDatabase::create(24)
        .await
        .unwrap_or_else(|e| panic!("a test database (set TICKETING_MYSQL_URL): {e}"));
    let repo = Arc::new(MySqlTicketRepository::new(db.pool().clone()));
    let catalog = Arc::new(MySqlCatalog::new(db.pool().clone()));
    (db, repo, catalog)
}

/// The waiting list on the test database (the harness needs one; these checks use none).
fn waiting_list(db: &Db) -> Arc<dyn WaitingList> {
    Arc::new(MySqlWaitingList::new(db.pool().clone()))
}

include!("event_stream/checks.rs");
