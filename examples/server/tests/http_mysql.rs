//! The HTTP suite on MySQL/MariaDB alone: repository, catalog and the SQL seat lock (what the
//! server uses with `--database-url` and no `--redis-url`). A fresh database per test, from
//! `TICKETING_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`).

mod common;

use std::sync::Arc;

use common::TestApp;
use ticketing_core::service::Backends;
use ticketing_sqlx::testing::TestDatabase;
use ticketing_sqlx::{MySqlCatalog, MySqlSeatLock, MySqlTicketRepository};

async fn mysql() -> TestApp {
    let database = TestDatabase::create(8)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database (set TICKETING_MYSQL_URL): {e}"));
    let pool = database.pool().clone();
    let backends = Backends::builder()
        .tickets(Arc::new(MySqlTicketRepository::new(pool.clone())))
        .catalog(Arc::new(MySqlCatalog::new(pool.clone())))
        .seat_lock(Arc::new(MySqlSeatLock::new(pool)))
        .build()
        .expect("every adapter given");
    TestApp::new(backends, Some(Box::new(database))).await
}

http_suite!(mysql());
