//! What the stores hold: Redis memory, keys and stream length, and rows and bytes of the tables,
//! measured the same way by the library-level soak (`tests/soak_growth.rs`) and the server soak
//! (`soak`), so their figures compare.

use sqlx::{MySqlPool, Row as _};

use crate::BenchError;

/// The tables measured: the pruned ones (outbox, idempotency keys) and the truth (orders,
/// tickets, payments), which grows with the sales.
pub const TABLES: [&str; 5] = [
    "outbox",
    "idempotency_keys",
    "orders",
    "tickets",
    "payments",
];

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Redis `used_memory`, bytes.
    pub used_memory: u64,
    /// Keys in the Redis database.
    pub redis_keys: u64,
    /// Keys of the seat lock (`<prefix>{ev:<id>}…`); the rest are the stream and the
    /// projection's read model, two hashes per event (sales totals: data, like the orders).
    pub lock_keys: u64,
    /// Entries of the event stream.
    pub stream_len: u64,
    /// (rows, data + index bytes after `ANALYZE`) per table of [`TABLES`].
    pub tables: [(i64, i64); 5],
}

impl Sizes {
    /// The header of [`row`](Self::row).
    pub fn header() -> String {
        let tables: Vec<String> = TABLES.iter().map(|t| format!("{t} rows/MB")).collect();
        format!("redis MB | keys (lock) | stream | {}", tables.join(" | "))
    }

    /// One line of figures.
    pub fn row(&self) -> String {
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|(rows, bytes)| format!("{rows} / {:.1}", *bytes as f64 / 1e6))
            .collect();
        format!(
            "{:.1} | {} ({}) | {} | {}",
            self.used_memory as f64 / 1e6,
            self.redis_keys,
            self.lock_keys,
            self.stream_len,
            tables.join(" | ")
        )
    }
}

/// Measures Redis (keys under `prefix`; the stream `<prefix>{events}:stream`) and the tables of
/// the database of `pool`.
pub async fn measure(
    pool: &MySqlPool,
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
) -> Result<Sizes, BenchError> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(redis).await?;
    let used_memory = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("INFO memory has no used_memory")?;
    let redis_keys = count_keys(redis, &format!("{prefix}*")).await?;
    let lock_keys = count_keys(redis, &format!("{prefix}{{ev:*")).await?;
    let stream_len: u64 = redis::cmd("XLEN")
        .arg(format!("{prefix}{{events}}:stream"))
        .query_async(redis)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ANALYZE TABLE {}",
        TABLES.join(", ")
    )))
    .fetch_all(pool)
    .await?;
    let mut tables = [(0, 0); 5];
    for (size, table) in tables.iter_mut().zip(TABLES) {
        let rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(pool)
                .await?;
        let bytes = sqlx::query(
            "SELECT CAST(data_length + index_length AS SIGNED) AS b FROM information_schema.TABLES \
             WHERE table_schema = DATABASE() AND table_name = ?",
        )
        .bind(table)
        .fetch_one(pool)
        .await?
        .get::<i64, _>("b");
        *size = (rows, bytes);
    }
    Ok(Sizes {
        used_memory,
        redis_keys,
        lock_keys,
        stream_len,
        tables,
    })
}

/// Keys matching `pattern`, counted with `SCAN` (never one blocking `KEYS`).
async fn count_keys(
    redis: &mut redis::aio::ConnectionManager,
    pattern: &str,
) -> Result<u64, BenchError> {
    let mut cursor = 0u64;
    let mut count = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(redis)
            .await?;
        count += keys.len() as u64;
        if next == 0 {
            return Ok(count);
        }
        cursor = next;
    }
}
