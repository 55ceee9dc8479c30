//! Connecting to PostgreSQL and starting transactions the way the adapters here expect.

use std::time::Duration;

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
