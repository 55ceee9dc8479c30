//! The core conformance suite on MySQL: `MySqlTicketRepository`, `MySqlCatalog` and
//! `SqlSeatLock`, each test on its own database.

use std::sync::Arc;

use ticketing_core::testkit::{BoxFuture, Harness};
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{MySqlCatalog, MySqlTicketRepository, SqlSeatLock};

async fn harness() -> Harness {
    let db = TestDatabase::create(16)
        .await
        .expect("a test database (see TICKETING_MYSQL_URL)");
    let pool = db.pool().clone();
    let seat_lock = Arc::new(SqlSeatLock::new(pool.clone()));
    let wiped = seat_lock.clone();
    Harness {
        seat_lock,
        tickets: Arc::new(MySqlTicketRepository::new(pool.clone())),
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
