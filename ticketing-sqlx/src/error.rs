//! The adapter's private error, converted into core's [`Error`] at the port boundary.

use sqlx::mysql::MySqlDatabaseError;
use ticketing_core::Error;

use crate::ADAPTER;

/// MySQL/MariaDB error numbers this crate reacts to that sqlx has no [`sqlx::error::ErrorKind`]
/// for (duplicate keys and missing parents are [`is_unique_violation`] and
/// [`is_foreign_key_violation`]).
pub(crate) mod code {
    /// `ER_LOCK_WAIT_TIMEOUT` (also what `NOWAIT` answers when the row is locked).
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// `ER_LOCK_DEADLOCK`: InnoDB picked this transaction as the deadlock victim.
    pub const DEADLOCK: u16 = 1213;
    /// `ER_CHECKREAD`: the record changed since it was read (snapshot isolation in MariaDB 11.6+).
    pub const RECORD_CHANGED: u16 = 1020;
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

    /// A deadlock or lock-wait timeout: the whole transaction may simply run again.
    pub(crate) fn is_transient(&self) -> bool {
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

/// A foreign key would point at nothing (or a referenced row would be orphaned).
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_foreign_key_violation())
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
            // Rows that do not decode are broken stored data or a bug here: not retryable.
            StoreError::Sql(
                e @ (sqlx::Error::Decode(_)
                | sqlx::Error::ColumnDecode { .. }
                | sqlx::Error::ColumnNotFound(_)
                | sqlx::Error::ColumnIndexOutOfBounds { .. }
                | sqlx::Error::TypeNotFound { .. }),
            ) => Error::internal(format!("{ADAPTER}: {e}")),
            StoreError::Sql(e) => Error::unavailable(ADAPTER, e),
        }
    }
}

/// Short for a result with the private error.
pub(crate) type StoreResult<T> = Result<T, StoreError>;
