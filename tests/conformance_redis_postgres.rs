//! The core conformance suite, unchanged, on Redis seat lock in front of the PostgreSQL
//! repositories.

ticketing_core::conformance_suite!(ticketing_tests::redis_postgres_harness);
