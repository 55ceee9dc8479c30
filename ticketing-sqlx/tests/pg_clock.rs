//! `DatabaseClock` on PostgreSQL: it follows the server's `clock_timestamp()`.

mod pg_support;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ticketing_core::ports::{Clock, ManualClock};
use ticketing_sqlx::{DatabaseClock, DatabaseClockConfig};

/// A host whose clock runs an hour behind reads the database's time, not its own; and the
/// reading never goes backwards.
#[tokio::test]
async fn a_host_an_hour_behind_reads_the_database_time() {
    let db = pg_support::database(2).await;
    let behind = Utc::now() - TimeDelta::hours(1);
    let local = Arc::new(ManualClock::new(behind));
    let clock = DatabaseClock::start(
        db.pool().clone(),
        DatabaseClockConfig {
            local: local.clone(),
            ..DatabaseClockConfig::default()
        },
    )
    .await
    .expect("the first sync");
    let database: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(db.pool())
        .await
        .expect("the server's time");
    let reading = clock.now();
    let off = (reading - database).abs();
    assert!(
        off < TimeDelta::seconds(2),
        "{reading} vs the database's {database}"
    );
    assert!(
        (clock.offset() - TimeDelta::hours(1)).abs() < TimeDelta::seconds(2),
        "{:?}",
        clock.offset()
    );
    local.set(behind - TimeDelta::minutes(5));
    assert!(clock.now() >= reading, "never backwards");
    db.drop_database().await.expect("drop the test database");
}
