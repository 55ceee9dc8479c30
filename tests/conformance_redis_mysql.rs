//! The core conformance suite, unchanged, on the production pairing: Redis seat lock in front of
//! the MySQL repositories.

ticketing_core::conformance_suite!(ticketing_tests::redis_mysql_harness);
