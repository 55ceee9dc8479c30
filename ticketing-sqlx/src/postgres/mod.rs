//! The adapters on PostgreSQL (feature `postgres`): [`PgTicketRepository`] (with the outbox
//! store of the relay), [`PgCatalog`] and [`PgSeatLock`], on the schema of
//! `migrations/postgres/`.
//!
//! They keep the guarantees of the MySQL adapters the PostgreSQL way:
//! - invariant 1 is a partial unique index over the active seated tickets
//!   (`uq_tickets_active_seat … WHERE status IN ('PENDING_PAYMENT', 'PAID')`), no generated
//!   column;
//! - the expiry sweep and the general-admission shards lock rows with `FOR UPDATE SKIP LOCKED`;
//! - a transaction that loses a lock race (`40001` serialization failure, `40P01` deadlock,
//!   `55P03` lock not available) runs again, a bounded number of times;
//! - lists are bound as arrays (`= ANY($1)`), so every statement is one prepared statement
//!   whatever the list's length.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ticketing_core::Error> {
//! use ticketing_sqlx::postgres;
//! let pool = postgres::connect("postgres://postgres@127.0.0.1:5432/tickets", 16).await?;
//! postgres::migrate(&pool).await?;
//! let tickets = postgres::PgTicketRepository::new(pool.clone());
//! let catalog = postgres::PgCatalog::new(pool.clone());
//! let seat_lock = postgres::PgSeatLock::new(pool);
//! # let _ = (tickets, catalog, seat_lock);
//! # Ok(())
//! # }
//! ```

mod catalog;
mod error;
mod outbox;
mod pool;
mod seat_lock;
mod tickets;
mod waiting_list;
mod waiting_room;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(all(feature = "postgres", feature = "testing"))))]
pub mod testing;

pub use catalog::PgCatalog;
pub use pool::connect;
pub use seat_lock::PgSeatLock;
pub use tickets::PgTicketRepository;
pub use waiting_list::PgWaitingList;
pub use waiting_room::PgWaitingRoom;

use ticketing_core::{Error, Result};

pub(crate) use error::classify;

/// The adapter name in [`ticketing_core::Error::Unavailable`] of the PostgreSQL adapters.
pub const ADAPTER: &str = "postgres";

/// The schema migrations of every table the PostgreSQL adapters use, embedded at build time.
pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations/postgres")
}

/// Runs [`migrations`] on `pool`'s database. sqlx's migrator holds a PostgreSQL advisory lock
/// (`pg_advisory_lock`, which waits) while it migrates, so servers started together migrate one
/// after the other. A database that cannot be reached is [`Error::Unavailable`]; a failed
/// migration is [`Error::Backend`].
pub async fn migrate(pool: &sqlx::PgPool) -> Result<()> {
    migrations().run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => error::classify(e),
        other => Error::backend(ADAPTER, other),
    })
}
