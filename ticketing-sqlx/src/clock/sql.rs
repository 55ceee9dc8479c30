//! The database clock's statements, one per database.

/// MySQL / MariaDB: the server's time in UTC with microseconds, whatever the session's time zone.
#[cfg(feature = "mysql")]
pub(super) const MYSQL_NOW: &str = "SELECT UTC_TIMESTAMP(6)";

/// PostgreSQL: the server's time when the statement reads it, as an instant (microseconds).
#[cfg(feature = "postgres")]
pub(super) const POSTGRES_NOW: &str = "SELECT clock_timestamp()";
