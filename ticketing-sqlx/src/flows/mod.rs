//! The decision flows both databases share, written once.
//!
//! Each flow is a trait over a [`Dialect`], implemented for `sqlx::MySql` and `sqlx::Postgres`:
//! the statements it runs are associated constants, whose text each database gives in its
//! `sql.rs` (`impl Ledger for MySql { … }` in `tickets/sql.rs`, `impl Ledger for Postgres { … }`
//! in `postgres/tickets/sql.rs`), and the decisions between them are default methods. Where a
//! statement's shape differs between the databases (a list: an `IN (…)` or multi-row `VALUES`
//! built with `QueryBuilder` on MySQL, an array on PostgreSQL; or another order of binds), the
//! flow declares a required method that each database writes next to its SQL. The adapters
//! call the flow on their database (`MySql::record_once(pool, …)`, with the trait in scope).
//!
//! The `where` clause of a flow trait lists what its statements bind and read; Rust does not
//! carry such bounds from one trait to another, so each flow states its own.

pub(crate) mod catalog;
pub(crate) mod channel;
pub(crate) mod extension;
pub(crate) mod outbox;
pub(crate) mod payment;
pub(crate) mod purchase;
pub(crate) mod seat_lock;
pub(crate) mod tier;
pub(crate) mod voucher;
pub(crate) mod waiting_list;
pub(crate) mod waiting_room;

use std::future::Future;

use ticketing_core::domain::{EventId, Order, OrderId, ZoneCode};

use crate::dialect::Dialect;

/// The steps a flow shares with the purchase and the transitions, each database's own code.
pub(crate) trait OrderSteps: Dialect {
    /// The name of the unique key (MySQL) or partial unique index (PostgreSQL) behind
    /// invariant 1, one active ticket per seat, as the server names it in a violation.
    const ACTIVE_SEAT_KEY: &'static str;

    /// The order `id` with its tickets, read inside the transaction.
    fn load_order(
        conn: &mut Self::Connection,
        id: OrderId,
    ) -> impl Future<Output = Result<Order, Self::Error>> + Send;

    /// `n` places of a general-admission zone of `capacity`, from shards with room (scanning
    /// from `start`); the shard of each place, or `None` when the zone has no room for them.
    fn take_places(
        conn: &mut Self::Connection,
        event: EventId,
        zone: &ZoneCode,
        capacity: u32,
        n: u32,
        start: u32,
    ) -> impl Future<Output = Result<Option<Vec<u16>>, Self::Error>> + Send;

    /// Counts `count` more active tickets of `order`'s customer for its event, or
    /// `LimitExceeded` when that would pass `limit`.
    fn raise_usage_within(
        conn: &mut Self::Connection,
        order: &Order,
        count: u32,
        limit: u32,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}
