#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

// Shared by both databases: rows to domain values, the checks and plans that need no database,
// and the bounded retry of a transaction that lost a lock race. (Built without either database
// feature, the crate has nothing but the re-exported sqlx.)
#[cfg(any(feature = "mysql", feature = "postgres"))]
mod codec;
#[cfg(any(feature = "mysql", feature = "postgres"))]
mod dialect;
#[cfg(any(feature = "mysql", feature = "postgres"))]
mod flows;
#[cfg(any(feature = "mysql", feature = "postgres"))]
mod lock_state;
#[cfg(any(feature = "mysql", feature = "postgres"))]
mod retry;
#[cfg(any(feature = "mysql", feature = "postgres"))]
mod rules;
#[cfg(any(feature = "mysql", feature = "postgres"))]
mod shards;

// MySQL / MariaDB (feature `mysql`, on by default).
#[cfg(feature = "mysql")]
mod catalog;
#[cfg(any(feature = "mysql", feature = "postgres"))]
mod clock;
#[cfg(feature = "mysql")]
mod error;
#[cfg(feature = "mysql")]
mod migrate;
#[cfg(feature = "mysql")]
mod outbox;
#[cfg(feature = "mysql")]
mod pool;
#[cfg(feature = "mysql")]
mod seat_lock;
#[cfg(feature = "mysql")]
mod tickets;
#[cfg(feature = "mysql")]
mod waiting_list;
#[cfg(feature = "mysql")]
mod waiting_room;

#[cfg(all(feature = "mysql", feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "mysql", feature = "testing"))))]
pub mod testing;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;

#[cfg(feature = "mysql")]
pub use catalog::MySqlCatalog;
#[cfg(any(feature = "mysql", feature = "postgres"))]
pub use clock::{ClockDatabase, ClockSample, DatabaseClock, DatabaseClockConfig};
#[cfg(feature = "mysql")]
pub use migrate::migrate;
#[cfg(feature = "mysql")]
pub use pool::{STATEMENT_CACHE_CAPACITY, connect};
#[cfg(feature = "mysql")]
pub use seat_lock::MySqlSeatLock;
#[cfg(feature = "mysql")]
pub use tickets::{BatchConfig, MySqlTicketRepository};
#[cfg(feature = "mysql")]
pub use waiting_list::MySqlWaitingList;
#[cfg(feature = "mysql")]
pub use waiting_room::MySqlWaitingRoom;

#[cfg(feature = "postgres")]
pub use postgres::{PgCatalog, PgSeatLock, PgTicketRepository};

/// The sqlx this crate is built with, so that callers make their `MySqlPool` / `PgPool` with
/// the same version (a pool from another sqlx version is a different type).
pub use sqlx;

/// The adapter name in [`ticketing_core::Error::Unavailable`] of the MySQL adapters.
#[cfg(feature = "mysql")]
pub const ADAPTER: &str = "mysql";

/// The schema migrations of every table the MySQL adapters use, embedded at build time.
///
/// Run them with [`migrate`], which also serialises servers that start together; the
/// [`Migrator`](sqlx::migrate::Migrator) is here for tools that want it as it is.
#[cfg(feature = "mysql")]
pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations/mysql")
}
