//! The core conformance suite on MySQL with write batching on: `MySqlTicketRepository` built
//! with [`MySqlTicketRepository::with_batching`] behind `MySqlSeatLock`, each test on its own
//! database. A short `max_wait` makes concurrent checks really share transactions.

mod support;

use std::time::Duration;

use ticketing_core::testkit::Harness;
use ticketing_sqlx::{BatchConfig, MySqlTicketRepository};

async fn harness() -> Harness {
    support::sql_lock_harness(|pool| {
        let batching = BatchConfig {
            max_orders: 16,
            max_wait: Duration::from_millis(5),
            max_in_flight: 2,
        };
        MySqlTicketRepository::with_batching(pool, batching)
    })
    .await
}

ticketing_core::conformance_suite!(harness);
