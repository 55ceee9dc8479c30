//! An idle projection is quiet: its blocked reads (`XREADGROUP … BLOCK`) wait longer than
//! redis-rs' default 500 ms response timeout, so on a default connection every idle round failed
//! as "timed out" and was logged about once a second. Checked without the fix: with
//! `ConnectionManager::new` in `RedisProjection::connect` this test counts 4 failed rounds.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ticketing_redis::{ProjectionConfig, RedisProjection};

#[tokio::test]
async fn an_idle_projection_has_no_failed_rounds() {
    let redis = TestRedis::shared();
    // The default settings the server runs with: a 1 s blocked read.
    let config = ProjectionConfig {
        key_prefix: redis.prefix.clone(),
        ..ProjectionConfig::default()
    };
    assert_eq!(config.block, Duration::from_millis(1000));
    let projection = Arc::new(
        RedisProjection::connect(&redis.url, config)
            .await
            .expect("connect"),
    );
    projection.ensure_group().await.expect("group");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = projection.clone();
    let task = tokio::spawn(async move {
        running
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let _ = stop.send(());
    task.await.expect("the projection stops");
    assert_eq!(projection.failed_rounds(), 0, "idle rounds failed");
    // And it is still reading: nothing applied, nothing broken.
    assert_eq!(projection.last_applied().await.expect("last applied"), 0);
}
