//! 1,000 concurrent best-available purchases on the production pairing (Redis seat lock, MySQL
//! repository), for 800 seats: no seat sold twice, counted in the database's active tickets; and
//! no orphan that the reference choice could have avoided, every lock decision checked.

use std::sync::Arc;

use ticketing_core::testkit::{Fixture, Layout, best_available_stampede, observed};
use ticketing_tests::redis_mysql_harness;

const BUYERS: usize = 1_000;

fn layout() -> Layout {
    Layout {
        rows: 40,
        seats_per_row: 20,
        limit: 4,
        ..Layout::default()
    }
}

/// The lock's own concurrency: 1,000 buyers at once, nothing serialised in front of Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_buyers_never_share_a_seat() {
    let harness = redis_mysql_harness().await;
    let f = Arc::new(Fixture::new(&harness, layout()).await);
    let report = best_available_stampede(&f, BUYERS).await;
    eprintln!("{report:?}");
    assert!(report.seats > 700, "the zone nearly sells out: {report:?}");
    assert!(report.no_block > 0, "{report:?}");
    harness.finish().await;
}

/// The same stampede with every Redis decision compared, one at a time, with the reference on
/// the zone as it was just before: orphan-free whenever any block was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_buyers_leave_no_avoidable_orphan() {
    let (harness, observer) = observed(redis_mysql_harness().await);
    let f = Arc::new(Fixture::new(&harness, layout()).await);
    let report = best_available_stampede(&f, BUYERS).await;
    let decisions = observer.assert_every_decision_was_the_reference();
    eprintln!("{report:?}, {decisions} decisions checked");
    assert!(decisions >= BUYERS, "{decisions} decisions checked");
    harness.finish().await;
}
