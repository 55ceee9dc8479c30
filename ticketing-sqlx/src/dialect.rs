//! What the flows both databases share (`crate::flows`) need to know about a database beyond
//! its SQL text: its private error, how it binds the numbers PostgreSQL has no unsigned type
//! for, how it starts a transaction and how it names a violated unique key.
//!
//! Implemented for [`sqlx::MySql`] (in `crate::pool`) and [`sqlx::Postgres`] (in
//! `crate::postgres::pool`). A flow is a trait with the statements as associated constants (each
//! database's `sql.rs` gives the text) and the decisions as default methods written once; its
//! `where` clause says which Rust values the statements bind and read, which sqlx cannot state
//! once for every database.

use std::fmt::Debug;
use std::future::Future;

use sqlx::{Database, Encode, Pool, Transaction, Type};

use crate::retry::Transient;

/// A database the shared flows run on.
pub(crate) trait Dialect: Database {
    /// The adapters' private error on this database.
    type Error: From<sqlx::Error> + From<ticketing_core::Error> + Transient + Debug + Send + 'static;

    /// A count or limit as bound: `u32` on MySQL, `i64` on PostgreSQL (no unsigned types).
    type Count: for<'q> Encode<'q, Self> + Type<Self> + Send + 'static;

    /// A `zone_usage` shard number as bound: `u16` on MySQL, `i16` (`smallint`) on PostgreSQL.
    type Shard: for<'q> Encode<'q, Self> + Type<Self> + Send + 'static;

    /// A count or limit as this database binds it.
    fn count(n: u32) -> Self::Count;

    /// A shard number as this database binds it (shards are below
    /// [`crate::shards::MAX_SHARDS`]).
    fn shard(shard: u16) -> Self::Shard;

    /// Starts a transaction the way the adapters expect (READ COMMITTED).
    fn begin(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// The rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// The error of an inserted ticket that hit the unique key of invariant 1: some seat of
    /// the order has an active ticket. Which seats is found out after the rollback.
    fn seat_conflict() -> Self::Error;

    /// Whether `e` is [`Dialect::seat_conflict`].
    fn is_seat_conflict(e: &Self::Error) -> bool;

    /// A duplicate on the unique key or index named `key`, as opposed to another unique key of
    /// the same table (MySQL names it in the message, PostgreSQL in the error's constraint).
    fn violates_unique_key(e: &sqlx::Error, key: &str) -> bool;
}

/// A UNIQUE or PRIMARY key would be duplicated (on either database).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// A foreign key would point at nothing (on either database).
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_foreign_key_violation())
}
