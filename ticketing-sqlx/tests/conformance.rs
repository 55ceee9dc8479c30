//! The core conformance suite on MySQL: `MySqlTicketRepository`, `MySqlCatalog` and
//! `MySqlSeatLock`, each test on its own database.

mod support;

use ticketing_core::testkit::Harness;
use ticketing_sqlx::MySqlTicketRepository;

async fn harness() -> Harness {
    support::sql_lock_harness(MySqlTicketRepository::new).await
}

ticketing_core::conformance_suite!(harness);
