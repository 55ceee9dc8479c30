//! The core conformance suite on MySQL with write batching on: `MySqlTicketRepository` built
//! with [`MySqlTicketRepository::with_batching`] behind `SqlSeatLock`, each test on its own
//! database. A short `max_wait` makes concurrent checks really share transactions.

use std::sync::Arc;
use std::time::Duration;

use ticketing_core::testkit::{BoxFuture, Harness};
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{BatchConfig, MySqlCatalog, MySqlTicketRepository, SqlSeatLock};

async fn harness() -> Harness {
    let db = TestDatabase::create(16)
        .await
        .expect("a test database (see TICKETING_MYSQL_URL)");
    let pool = db.pool().clone();
    let seat_lock = Arc::new(SqlSeatLock::new(pool.clone()));
    let wiped = seat_lock.clone();
    let batching = BatchConfig {
        max_orders: 16,
        max_wait: Duration::from_millis(5),
        max_in_flight: 2,
    };
    Harness {
        seat_lock,
        tickets: Arc::new(MySqlTicketRepository::with_batching(pool.clone(), batching)),
        catalog: Arc::new(MySqlCatalog::new(pool)),
        wipe_seat_lock: Arc::new(move || -> BoxFuture {
            let lock = wiped.clone();
            Box::pin(async move { lock.forget_all().await.expect("wipe the SQL seat lock") })
        }),
        teardown: Some(Box::pin(async move {
            db.drop_database().await.expect("drop the test database");
        })),
    }
}

ticketing_core::conformance_suite!(harness);
