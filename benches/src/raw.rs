//! The physical limits, re-measured in the same run: Redis `EVALSHA` of a one-seat hold script,
//! MariaDB single-row autocommit `INSERT`, and 50-row batched `INSERT`, each by 50 clients that
//! wait for every answer before sending again (no pipelining). Either side can be measured
//! alone (a `--target` run measures what it was given URLs for).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::MySqlPool;
use uuid::Uuid;

use crate::BenchError;

/// The one-seat hold script the Redis probe runs.
pub const RAW_HOLD_LUA: &str = include_str!("lua/raw_hold.lua");

/// Rows per statement of the batched-insert probe.
pub const BATCH_ROWS: usize = 50;

/// The measured limits; `None` for a side that was not measured.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RawLimits {
    /// Clients per probe.
    pub clients: usize,
    /// Redis `EVALSHA` calls per second of the one-seat hold script.
    pub evalsha_per_s: Option<f64>,
    /// Single-row autocommit `INSERT`s (= commits) per second.
    pub single_insert_per_s: Option<f64>,
    /// Rows per second inserted by 50-row autocommit `INSERT`s.
    pub batched_rows_per_s: Option<f64>,
}

impl RawLimits {
    /// The limits on one line, for the terminal.
    pub fn describe(&self) -> String {
        let rate = |v: Option<f64>| v.map_or_else(|| "not measured".into(), |v| format!("{v:.0}"));
        format!(
            "raw limits ({} clients, unpipelined): EVALSHA one-seat hold {}/s; single-row autocommit INSERT {}/s; {BATCH_ROWS}-row INSERT {} rows/s",
            self.clients,
            rate(self.evalsha_per_s),
            rate(self.single_insert_per_s),
            rate(self.batched_rows_per_s),
        )
    }
}

/// `value / limit`, when the limit was measured (and is not zero).
pub fn ratio(value: f64, limit: Option<f64>) -> Option<f64> {
    limit.filter(|l| *l > 0.0).map(|l| value / l)
}

/// Runs the probes of the sides given (Redis when `redis_url`, MariaDB when `pool`), `duration`
/// each, with `clients` clients. The MariaDB probes create and drop a table in `pool`'s
/// database.
pub async fn measure(
    pool: Option<&MySqlPool>,
    redis_url: Option<&str>,
    clients: usize,
    duration: Duration,
) -> Result<RawLimits, BenchError> {
    let mut limits = RawLimits {
        clients,
        ..RawLimits::default()
    };
    if let Some(url) = redis_url {
        limits.evalsha_per_s = Some(evalsha(url, clients, duration).await?);
    }
    if let Some(pool) = pool {
        let (single, batched) = insert_rates(pool, clients, duration).await?;
        limits.single_insert_per_s = Some(single);
        limits.batched_rows_per_s = Some(batched);
    }
    Ok(limits)
}

/// Single-row commits per second and rows per second of [`BATCH_ROWS`]-row statements.
async fn insert_rates(
    pool: &MySqlPool,
    clients: usize,
    duration: Duration,
) -> Result<(f64, f64), BenchError> {
    sqlx::query(
        "CREATE TABLE raw_insert (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         k BINARY(16) NOT NULL, v VARCHAR(64) NOT NULL) ENGINE = InnoDB",
    )
    .execute(pool)
    .await?;
    let single_insert_per_s = inserts(pool, clients, duration, 1).await?;
    let batched_rows_per_s = inserts(pool, clients, duration, BATCH_ROWS).await?;
    sqlx::query("DROP TABLE raw_insert").execute(pool).await?;
    Ok((single_insert_per_s, batched_rows_per_s))
}

/// Calls per second of [`RAW_HOLD_LUA`] by `clients` connections, each waiting for every reply.
async fn evalsha(url: &str, clients: usize, duration: Duration) -> Result<f64, BenchError> {
    let client = redis::Client::open(url)?;
    let key = format!("bench-raw-{}:{{ev:raw}}:seats", Uuid::new_v4().simple());
    let script = Arc::new(redis::Script::new(RAW_HOLD_LUA));
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        // One connection per client: nothing is multiplexed or pipelined.
        connections.push(client.get_multiplexed_async_connection().await?);
    }
    // Load once, so every call of the measurement is an EVALSHA.
    let _: i64 = script
        .key(&key)
        .arg("warm")
        .arg("o")
        .arg(0)
        .arg(1)
        .invoke_async(&mut connections[0])
        .await?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (c, mut conn) in connections.into_iter().enumerate() {
        let (script, key, done, stop) = (script.clone(), key.clone(), done.clone(), stop.clone());
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(c as u64);
            let order = format!("raw-{c}");
            while !stop.load(Ordering::Relaxed) {
                let now = chrono::Utc::now().timestamp_millis();
                let seat = format!("A:{}:{}", rng.u32(1..=100), rng.u32(1..=100));
                let held: redis::RedisResult<i64> = script
                    .key(&key)
                    .arg(seat)
                    .arg(&order)
                    .arg(now)
                    .arg(now + 60_000)
                    .invoke_async(&mut conn)
                    .await;
                held?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, redis::RedisError>(conn)
        });
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut last = None;
    while let Some(joined) = tasks.join_next().await {
        last = Some(joined??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(mut conn) = last {
        let _: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed)
}

/// Rows per second inserted by `clients` connections, `rows` rows per autocommit statement.
async fn inserts(
    pool: &MySqlPool,
    clients: usize,
    duration: Duration,
    rows: usize,
) -> Result<f64, BenchError> {
    let statement = format!(
        "INSERT INTO raw_insert (k, v) VALUES {}",
        vec!["(?, ?)"; rows].join(", ")
    );
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(pool.acquire().await?);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in connections {
        let (done, stop, statement) = (done.clone(), stop.clone(), statement.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut insert = sqlx::query(sqlx::AssertSqlSafe(statement.clone()));
                for _ in 0..rows {
                    insert = insert
                        .bind(Uuid::now_v7())
                        .bind("flash-sale raw insert probe");
                }
                insert.execute(&mut *conn).await?;
                done.fetch_add(rows as u64, Ordering::Relaxed);
            }
            Ok::<_, sqlx::Error>(())
        });
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
