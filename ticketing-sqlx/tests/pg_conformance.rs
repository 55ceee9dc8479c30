//! The core conformance suite on PostgreSQL: `PgTicketRepository` and `PgCatalog` behind each
//! seat lock that runs without another service (the in-memory one and `PgSeatLock`), each test
//! on its own database. The pairing with the Redis seat lock is in `tests/` of the workspace.

mod pg_support;

mod memory_lock {
    use ticketing_core::testkit::Harness;

    async fn harness() -> Harness {
        super::pg_support::memory_lock_harness().await
    }

    ticketing_core::conformance_suite!(harness);
}

mod sql_lock {
    use ticketing_core::testkit::Harness;

    async fn harness() -> Harness {
        super::pg_support::sql_lock_harness().await
    }

    ticketing_core::conformance_suite!(harness);
}
