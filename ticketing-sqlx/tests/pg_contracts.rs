//! The port contracts on PostgreSQL: `PgSeatLock` for `SeatLock`, and the outbox of
//! `PgTicketRepository` for `OutboxStore`. The checks are in `port_contracts/`, shared with
//! `contracts.rs`; this file says which adapters they run on.

mod pg_support;

/// The adapters the shared checks run on.
mod backend {
    pub(crate) use super::pg_support::database;
    pub(crate) use ticketing_sqlx::postgres::PgSeatLock as SeatLockAdapter;
    pub(crate) use ticketing_sqlx::postgres::PgTicketRepository as Repository;
    pub(crate) use ticketing_sqlx::postgres::testing::TestDatabase;
}

#[path = "port_contracts/seat_lock.rs"]
mod seat_lock;

#[path = "port_contracts/outbox_store.rs"]
mod outbox_store;
