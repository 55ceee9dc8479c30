//! The core conformance suite on PostgreSQL: `PgTicketRepository` and `PgCatalog` behind the
//! in-memory seat lock, each test on its own database.

mod pg_support;

use ticketing_core::testkit::Harness;

async fn harness() -> Harness {
    pg_support::memory_lock_harness().await
}

ticketing_core::conformance_suite!(harness);
