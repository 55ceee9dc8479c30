#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod catalog;
mod clock;
mod codec;
mod error;
mod migrate;
mod outbox;
mod pool;
mod retry;
mod seat_lock;
mod tickets;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use catalog::MySqlCatalog;
pub use clock::{ClockSample, DatabaseClock, DatabaseClockConfig};
pub use migrate::migrate;
pub use pool::{STATEMENT_CACHE_CAPACITY, connect};
pub use seat_lock::MySqlSeatLock;
pub use tickets::{BatchConfig, MySqlTicketRepository};

/// The sqlx this crate is built with, so that callers make their `MySqlPool` with the same
/// version (a pool from another sqlx version is a different type).
pub use sqlx;

/// The adapter name in [`ticketing_core::Error::Unavailable`].
pub const ADAPTER: &str = "mysql";

/// The schema migrations of every table this crate uses, embedded at build time.
///
/// Run them with [`migrate`], which also serialises servers that start together; the
/// [`Migrator`](sqlx::migrate::Migrator) is here for tools that want it as it is.
pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}
