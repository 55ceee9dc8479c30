//! Connecting, and starting transactions the way every adapter here expects.

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{MySql, MySqlPool, Transaction};
use ticketing_core::{Error, Result};

use crate::ADAPTER;

/// Opens a pool of at most `max_connections` connections to `url`
/// (`mysql://user:password@host:port/database`).
///
/// A malformed URL is [`Error::InvalidRequest`]; an unreachable server is [`Error::Unavailable`].
/// The adapters also work on a pool built by the caller.
pub async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool> {
    let options: MySqlConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| Error::invalid("mysql_url", e.to_string()))?;
    MySqlPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| Error::unavailable(ADAPTER, e))
}

/// Starts a READ COMMITTED transaction, in one round trip.
///
/// Every decision in this crate is taken on locking reads and compare-and-set updates, which see
/// the latest committed rows at any isolation level. READ COMMITTED only spares us InnoDB's gap
/// locks, which under REPEATABLE READ would make concurrent purchases and sweeps block each other
/// (and deadlock) on index ranges they do not really share.
pub(crate) async fn begin(pool: &MySqlPool) -> Result<Transaction<'static, MySql>, sqlx::Error> {
    pool.begin_with(BEGIN_READ_COMMITTED).await
}

/// The statement [`begin`] starts a transaction with.
pub(crate) const BEGIN_READ_COMMITTED: &str =
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION";
