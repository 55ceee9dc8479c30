//! The PostgreSQL adapters' private error, converted into core's [`Error`] at the port boundary.

use std::future::Future;

use sqlx::postgres::PgDatabaseError;
use ticketing_core::Error;

use super::ADAPTER;
use crate::retry::{Transient, retry};

/// SQLSTATE codes the adapters react to beyond sqlx's [`sqlx::error::ErrorKind`].
pub(super) mod code {
    /// `serialization_failure`: a concurrent update made this transaction's work invalid.
    pub(in crate::postgres) const SERIALIZATION_FAILURE: &str = "40001";
    /// `deadlock_detected`: this transaction was picked as the deadlock victim.
    pub(in crate::postgres) const DEADLOCK_DETECTED: &str = "40P01";
    /// `lock_not_available`: `NOWAIT` or `lock_timeout` found the row locked.
    pub(in crate::postgres) const LOCK_NOT_AVAILABLE: &str = "55P03";
    /// `query_canceled`: `pg_cancel_backend` or `statement_timeout`.
    pub(in crate::postgres) const QUERY_CANCELED: &str = "57014";
    /// `admin_shutdown`: `pg_terminate_backend`, or the server shutting down.
    pub(in crate::postgres) const ADMIN_SHUTDOWN: &str = "57P01";
    /// `crash_shutdown`: another backend crashed and the server restarts.
    pub(in crate::postgres) const CRASH_SHUTDOWN: &str = "57P02";
    /// `cannot_connect_now`: the server is starting up or in recovery.
    pub(in crate::postgres) const CANNOT_CONNECT_NOW: &str = "57P03";
    /// `too_many_connections`: no connection slot left right now.
    pub(in crate::postgres) const TOO_MANY_CONNECTIONS: &str = "53300";
    /// `idle_in_transaction_session_timeout`: the session was ended for idling in a transaction.
    pub(in crate::postgres) const IDLE_IN_TRANSACTION_TIMEOUT: &str = "25P03";

    /// Lost lock races: the whole transaction may simply run again.
    pub(in crate::postgres) const LOCK_RACES: &[&str] =
        &[SERIALIZATION_FAILURE, DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE];

    /// Server errors after which the same statement may well succeed: lost lock races, a
    /// cancelled statement, a terminated or lost connection, a server restarting or out of
    /// connection slots. Class 08 (connection exception) is transient too.
    pub(in crate::postgres) fn is_transient(sqlstate: &str) -> bool {
        LOCK_RACES.contains(&sqlstate)
            || [
                QUERY_CANCELED,
                ADMIN_SHUTDOWN,
                CRASH_SHUTDOWN,
                CANNOT_CONNECT_NOW,
                TOO_MANY_CONNECTIONS,
                IDLE_IN_TRANSACTION_TIMEOUT,
            ]
            .contains(&sqlstate)
            || sqlstate.starts_with("08")
    }
}

/// What can go wrong inside the adapters before they answer through a port.
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

impl Transient for StoreError {
    /// A serialization failure, deadlock or lock timeout: the transaction may run again.
    fn is_transient(&self) -> bool {
        match self {
            StoreError::Sql(e) => sqlstate(e).is_some_and(|s| code::LOCK_RACES.contains(&s)),
            StoreError::Domain(_) | StoreError::SeatConflict => false,
        }
    }
}

/// [`retry`] with this error (named, so closures need no annotation).
pub(super) async fn with_retry<T, F, Fut>(operation: &'static str, attempt: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    retry(operation, attempt).await
}

/// The SQLSTATE of a driver error, if it is a server error.
pub(super) fn sqlstate(e: &sqlx::Error) -> Option<&str> {
    e.as_database_error()?
        .try_downcast_ref::<PgDatabaseError>()
        .map(PgDatabaseError::code)
}

/// A UNIQUE or PRIMARY key would be duplicated.
pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// A duplicate on the unique index or constraint named `key`, as opposed to another one of the
/// same table (the server names it in the error's `constraint` field).
pub(super) fn violates_unique_key(e: &sqlx::Error, key: &str) -> bool {
    is_unique_violation(e)
        && e.as_database_error()
            .is_some_and(|d| d.constraint() == Some(key))
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

/// Core's error for a driver error, by whether trying again can help: undecodable rows are
/// [`Error::Internal`]; I/O, pool and transient server errors ([`code::is_transient`]) are
/// [`Error::Unavailable`]; everything else (a missing table, a syntax error, a denied
/// permission) is [`Error::Backend`], which retrying cannot cure.
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
pub(super) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(_) => sqlstate(e).is_some_and(code::is_transient),
        _ => false,
    }
}

/// Short for a result with the private error.
pub(crate) type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_sqlstates() {
        for state in [
            "40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300", "08006",
            "08003",
        ] {
            assert!(code::is_transient(state), "{state} is transient");
        }
        // Unique and foreign-key violations, undefined table, syntax error, insufficient privilege.
        for state in ["23505", "23503", "42P01", "42601", "42501"] {
            assert!(!code::is_transient(state), "{state} is not transient");
        }
    }

    #[test]
    fn pool_failures_are_unavailable_and_other_driver_failures_backend() {
        let classified = classify(sqlx::Error::PoolTimedOut);
        assert!(classified.is_retryable(), "{classified:?}");
        let classified = classify(sqlx::Error::Protocol("unexpected message".into()));
        assert!(
            matches!(
                classified,
                Error::Backend {
                    adapter: ADAPTER,
                    ..
                }
            ),
            "{classified:?}"
        );
        let decode = classify(sqlx::Error::Decode("not a uuid".into()));
        assert!(matches!(decode, Error::Internal { .. }), "{decode:?}");
    }
}
