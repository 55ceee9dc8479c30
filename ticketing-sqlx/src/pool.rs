//! Connecting, and starting transactions the way every adapter here expects.

use std::time::Duration;

use sqlx::mysql::MySqlQueryResult;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{MySql, MySqlPool, Transaction};
use ticketing_core::{Error, Result};

/// Prepared statements each connection keeps (sqlx's default is 100).
///
/// The write batching and the outbox build statements for many row counts. Once a connection
/// holds more distinct statements than this, sqlx closes the least recently used with a
/// `COM_STMT_CLOSE`, which has no reply; sqlx's sockets have Nagle's algorithm on, so the next
/// statement written behind it waits for the server's delayed ACK, up to 200 ms. With 100
/// statements that stalled about one purchase in ten on a batching server. At 512 per connection
/// a pool of 16 keeps at most 8,192 statements on the server, half of MariaDB's default
/// `max_prepared_stmt_count` (16,382). Pools built by the caller should raise it too
/// ([`MySqlConnectOptions::statement_cache_capacity`]).
pub const STATEMENT_CACHE_CAPACITY: usize = 512;

/// Opens a pool of at most `max_connections` connections to `url`
/// (`mysql://user:password@host:port/database`), each keeping up to
/// [`STATEMENT_CACHE_CAPACITY`] prepared statements.
///
/// A malformed URL is [`Error::Config`]; an unreachable server is [`Error::Unavailable`]; a
/// server that refuses the connection for good (wrong password, unknown database) is
/// [`Error::Backend`].
/// The adapters also work on a pool built by the caller.
pub async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool> {
    let options: MySqlConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| Error::config("mysql_url", e.to_string()))?;
    MySqlPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.statement_cache_capacity(STATEMENT_CACHE_CAPACITY))
        .await
        .map_err(crate::error::classify)
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

/// What the shared flows need to know about MySQL beyond its SQL.
impl crate::dialect::Dialect for MySql {
    type Error = crate::error::StoreError;
    type Count = u32;
    type Shard = u16;

    fn count(n: u32) -> u32 {
        n
    }

    fn shard(shard: u16) -> u16 {
        shard
    }

    async fn begin(pool: &MySqlPool) -> Result<Transaction<'static, MySql>, sqlx::Error> {
        begin(pool).await
    }

    fn rows_affected(done: &MySqlQueryResult) -> u64 {
        done.rows_affected()
    }

    fn seat_conflict() -> crate::error::StoreError {
        crate::error::StoreError::SeatConflict
    }

    fn is_seat_conflict(e: &crate::error::StoreError) -> bool {
        matches!(e, crate::error::StoreError::SeatConflict)
    }

    fn violates_unique_key(e: &sqlx::Error, key: &str) -> bool {
        crate::error::violates_unique_key(e, key)
    }
}
