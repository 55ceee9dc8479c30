//! Connecting to PostgreSQL and starting transactions the way the adapters here expect.

use std::time::Duration;

use sqlx::postgres::PgQueryResult;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use ticketing_core::{Error, Result};

/// Opens a pool of at most `max_connections` connections to `url`
/// (`postgres://user:password@host:port/database`).
///
/// A malformed URL is [`Error::Config`]; an unreachable server is [`Error::Unavailable`]; a
/// server that refuses the connection for good (wrong password, unknown database) is
/// [`Error::Backend`]. The adapters also work on a pool built by the caller.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| Error::config("postgres_url", e.to_string()))?;
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(super::error::classify)
}

/// Starts a transaction at PostgreSQL's default, READ COMMITTED: every decision here is taken on
/// locking reads and compare-and-set updates, which see the latest committed row version (an
/// `UPDATE` that waited for a concurrent writer re-checks its `WHERE` on the new version).
pub(super) async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin().await
}

/// What the shared flows need to know about PostgreSQL beyond its SQL.
impl crate::dialect::Dialect for Postgres {
    type Error = super::error::StoreError;
    type Count = i64;
    type Shard = i16;

    fn count(n: u32) -> i64 {
        i64::from(n)
    }

    fn shard(shard: u16) -> i16 {
        i16::try_from(shard).unwrap_or(i16::MAX)
    }

    async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        begin(pool).await
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn seat_conflict() -> super::error::StoreError {
        super::error::StoreError::SeatConflict
    }

    fn is_seat_conflict(e: &super::error::StoreError) -> bool {
        matches!(e, super::error::StoreError::SeatConflict)
    }

    fn violates_unique_key(e: &sqlx::Error, key: &str) -> bool {
        super::error::violates_unique_key(e, key)
    }
}
