//! The database clock's one statement.

/// The database server's time in UTC with microseconds, whatever the session's time zone.
pub(super) const DATABASE_NOW: &str = "SELECT UTC_TIMESTAMP(6)";
