//! The adapter's private error, converted into core's [`Error`] at the port boundary.

use sqlx::mysql::MySqlDatabaseError;
use ticketing_core::Error;

use crate::ADAPTER;

/// MySQL/MariaDB error numbers this crate reacts to that sqlx has no [`sqlx::error::ErrorKind`]
/// for (duplicate keys and missing parents are [`is_unique_violation`] and
/// [`is_foreign_key_violation`](crate::dialect::is_foreign_key_violation)).
pub(crate) mod code {
    /// `ER_LOCK_WAIT_TIMEOUT` (also what `NOWAIT` answers when the row is locked).
    pub(crate) const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// `ER_LOCK_DEADLOCK`: InnoDB picked this transaction as the deadlock victim.
    pub(crate) const DEADLOCK: u16 = 1213;
    /// `ER_CHECKREAD`: the record changed since it was read (snapshot isolation in MariaDB 11.6+).
    pub(crate) const RECORD_CHANGED: u16 = 1020;
    /// `ER_CON_COUNT_ERROR`: the server has no connection slot left right now.
    pub(crate) const TOO_MANY_CONNECTIONS: u16 = 1040;
    /// `ER_SERVER_SHUTDOWN`: the server is shutting down.
    pub(crate) const SERVER_SHUTDOWN: u16 = 1053;
    /// `ER_QUERY_INTERRUPTED`: the statement was killed (`KILL QUERY`).
    pub(crate) const QUERY_INTERRUPTED: u16 = 1317;
    /// `ER_CONNECTION_KILLED` (MariaDB): the connection was killed (`KILL CONNECTION`).
    pub(crate) const CONNECTION_KILLED: u16 = 1927;
    /// `ER_STATEMENT_TIMEOUT` (MariaDB): the statement ran past `max_statement_time`.
    pub(crate) const STATEMENT_TIMEOUT: u16 = 1969;
    /// `ER_UNKNOWN_COM_ERROR`, which a Galera node answers while it is not part of the primary
    /// component ("WSREP has not yet prepared node for application use"): a node that lost its
    /// quorum or is still joining. Another node, or this one shortly, takes the write.
    pub(crate) const WSREP_NOT_READY: u16 = 1047;
    /// `CR_SERVER_GONE_ERROR`: the server went away.
    pub(crate) const SERVER_GONE: u16 = 2006;
    /// `CR_SERVER_LOST`: the connection was lost during a query.
    pub(crate) const SERVER_LOST: u16 = 2013;
    /// `ER_QUERY_TIMEOUT` (MySQL): the statement ran past `max_execution_time`.
    pub(crate) const QUERY_TIMEOUT: u16 = 3024;

    /// Server errors after which the same statement may well succeed: lost lock races, a killed
    /// or lost connection, a server restarting or out of connection slots, a statement timeout.
    /// `ER_DUP_ENTRY` and the like are answers, never transient.
    pub(crate) const TRANSIENT: &[u16] = &[
        LOCK_WAIT_TIMEOUT,
        DEADLOCK,
        RECORD_CHANGED,
        TOO_MANY_CONNECTIONS,
        SERVER_SHUTDOWN,
        QUERY_INTERRUPTED,
        CONNECTION_KILLED,
        STATEMENT_TIMEOUT,
        WSREP_NOT_READY,
        SERVER_GONE,
        SERVER_LOST,
        QUERY_TIMEOUT,
    ];

    /// Whether a server error number is in [`TRANSIENT`].
    pub(crate) fn is_transient(number: u16) -> bool {
        TRANSIENT.contains(&number)
    }
}

/// What can go wrong inside the adapter before it answers through a port.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// The driver failed: connection, protocol, or a server error.
    Sql(sqlx::Error),
    /// A domain answer, already in core's terms (`SeatsTaken`, `LimitExceeded`, …).
    Domain(Error),
    /// An inserted ticket hit `uq_tickets_active_seat`: some seat of the order has an active
    /// ticket. Which seats is found out after the rollback, outside the failed transaction.
    SeatConflict,
}

impl StoreError {
    /// The server's error number, when the server answered with an error.
    pub(crate) fn number(&self) -> Option<u16> {
        match self {
            StoreError::Sql(e) => number(e),
            StoreError::Domain(_) | StoreError::SeatConflict => None,
        }
    }
}

impl crate::retry::Transient for StoreError {
    /// A deadlock or lock-wait timeout: the whole transaction may simply run again.
    fn is_transient(&self) -> bool {
        matches!(
            self.number(),
            Some(code::DEADLOCK | code::LOCK_WAIT_TIMEOUT | code::RECORD_CHANGED)
        )
    }
}

/// The server's error number of a driver error, if it is a server error.
pub(crate) fn number(e: &sqlx::Error) -> Option<u16> {
    e.as_database_error()?
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number)
}

/// A UNIQUE or PRIMARY key would be duplicated.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// A duplicate on the unique key named `key` (the server names the key in the message), as
/// opposed to another unique key of the same table.
pub(crate) fn violates_unique_key(e: &sqlx::Error, key: &str) -> bool {
    is_unique_violation(e)
        && e.as_database_error()
            .is_some_and(|d| d.message().contains(key))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Sql(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        StoreError::Domain(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(e) => e,
            // Normally resolved into the seats by the purchase code before it gets here.
            StoreError::SeatConflict => Error::SeatsTaken { seats: Vec::new() },
            StoreError::Sql(e) => classify(e),
        }
    }
}

/// Core's error for a driver error, by whether trying again can help.
///
/// - Rows that do not decode are broken stored data or a bug here: [`Error::Internal`].
/// - The connection or the server failed for now — I/O, a pool timeout or a closed pool, a
///   crashed connection worker, or a server error in [`code::TRANSIENT`] (a deadlock, a lock-wait
///   timeout, a killed connection, a server going away or shutting down):
///   [`Error::Unavailable`], which callers retry.
/// - Everything else (a missing table, a denied permission, a syntax error, a constraint this
///   crate does not turn into a domain answer): [`Error::Backend`]. Retrying cannot cure it, so
///   it must not be offered as retryable: a payment provider would retry a webhook forever.
pub(crate) fn classify(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => Error::internal(format!("{ADAPTER}: {e}")),
        _ if is_transient(&e) => Error::unavailable(ADAPTER, e),
        _ => Error::backend(ADAPTER, e),
    }
}

/// Whether the same statement may succeed when simply tried again (see [`classify`]).
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(_) => number(e).is_some_and(code::is_transient),
        _ => false,
    }
}

/// Short for a result with the private error.
pub(crate) type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::{AssertSqlSafe, Connection, Executor, MySqlConnection, Row};

    use super::*;
    use crate::testing::TestDatabase;

    fn is_unavailable(e: &Error) -> bool {
        matches!(
            e,
            Error::Unavailable {
                adapter: ADAPTER,
                ..
            }
        )
    }

    fn is_backend(e: &Error) -> bool {
        matches!(
            e,
            Error::Backend {
                adapter: ADAPTER,
                ..
            }
        )
    }

    #[test]
    fn connection_and_pool_failures_are_unavailable() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        for e in [
            sqlx::Error::Io(io),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
        ] {
            let text = e.to_string();
            let classified = classify(e);
            assert!(is_unavailable(&classified), "{text}: {classified:?}");
            assert!(classified.is_retryable());
        }
    }

    #[test]
    fn other_driver_failures_are_backend_and_undecodable_rows_internal() {
        for e in [
            sqlx::Error::Protocol("unexpected packet".into()),
            sqlx::Error::Configuration("bad option".into()),
            sqlx::Error::RowNotFound,
            sqlx::Error::BeginFailed,
        ] {
            let text = e.to_string();
            let classified = classify(e);
            assert!(is_backend(&classified), "{text}: {classified:?}");
            assert!(!classified.is_retryable());
            assert_eq!(classified.code(), "BACKEND_FAILED");
        }
        let decode = classify(sqlx::Error::Decode("not a uuid".into()));
        assert!(matches!(decode, Error::Internal { .. }), "{decode:?}");
    }

    #[test]
    fn transient_server_error_numbers() {
        for number in [
            1205, 1213, 1020, 1040, 1053, 1317, 1927, 1969, 2006, 2013, 3024,
        ] {
            assert!(code::is_transient(number), "{number} is transient");
        }
        // Duplicate key, missing table, syntax, access denied, unknown column, FK violation.
        for number in [1062, 1146, 1064, 1045, 1054, 1452] {
            assert!(!code::is_transient(number), "{number} is not transient");
        }
    }

    /// Real server errors from MariaDB, classified as the adapters see them.
    #[tokio::test]
    async fn real_server_errors_are_classified_by_whether_a_retry_can_help() {
        let db = TestDatabase::create(4).await.expect("test database");
        let pool = db.pool();

        // A missing table (1146) and a syntax error (1064): no retry will fix them.
        let missing = sqlx::query("SELECT * FROM no_such_table")
            .fetch_all(pool)
            .await
            .expect_err("no such table");
        assert_eq!(number(&missing), Some(1146));
        assert!(is_backend(&classify(missing)));
        let syntax = sqlx::query("SELEKT 1")
            .fetch_all(pool)
            .await
            .expect_err("syntax");
        assert!(is_backend(&classify(syntax)));

        // A lock-wait timeout (1205): the holder may let go.
        pool.execute("CREATE TABLE contended (id INT PRIMARY KEY)")
            .await
            .expect("create");
        pool.execute("INSERT INTO contended VALUES (1)")
            .await
            .expect("insert");
        let mut holder = pool.begin().await.expect("begin");
        sqlx::query("SELECT id FROM contended WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *holder)
            .await
            .expect("lock the row");
        let mut waiter = pool.acquire().await.expect("a second connection");
        waiter
            .execute("SET SESSION innodb_lock_wait_timeout = 1")
            .await
            .expect("short lock wait");
        let mut waiting = waiter.begin().await.expect("begin");
        let timed_out = sqlx::query("SELECT id FROM contended WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *waiting)
            .await
            .expect_err("lock wait timeout");
        assert_eq!(number(&timed_out), Some(code::LOCK_WAIT_TIMEOUT));
        assert!(is_unavailable(&classify(timed_out)));
        // Ended explicitly: an open transaction keeps its metadata lock on the table, and the
        // test database could not be dropped.
        waiting.rollback().await.expect("rollback");
        drop(waiter);
        holder.rollback().await.expect("rollback");

        // A connection killed during a query (as the chaos test does): the query fails, however
        // the driver sees it (`ER_CONNECTION_KILLED` or the socket closing).
        let url = std::env::var(crate::testing::URL_VAR)
            .unwrap_or_else(|_| crate::testing::DEFAULT_URL.to_owned());
        let mut victim = MySqlConnection::connect(&url).await.expect("victim");
        let id: u64 = sqlx::query("SELECT CONNECTION_ID() AS id")
            .fetch_one(&mut victim)
            .await
            .expect("connection id")
            .get("id");
        let query = tokio::spawn(async move {
            sqlx::query("SELECT SLEEP(10)")
                .fetch_one(&mut victim)
                .await
                .map(drop)
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        pool.execute(AssertSqlSafe(format!("KILL CONNECTION {id}")))
            .await
            .expect("kill");
        let killed = tokio::time::timeout(Duration::from_secs(5), query)
            .await
            .expect("the killed query ends")
            .expect("no panic")
            .expect_err("the connection was killed");
        let text = killed.to_string();
        let classified = classify(killed);
        assert!(is_unavailable(&classified), "{text}: {classified:?}");

        db.drop_database().await.expect("drop the test database");
    }
}
