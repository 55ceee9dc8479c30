//! The waiting list in a PostgreSQL table (`PgWaitingList`).

mod sql;

use sqlx::{PgPool, Postgres};

use crate::flows::waiting_list::waiting_list_adapter;

/// The [`WaitingList`](ticketing_core::ports::WaitingList) in PostgreSQL (migrated with
/// [`migrate`](super::migrate)), on the pool of the ticket repository whose outbox relays its
/// offer events: an offer's entry change and its `WaitingListOffered` outbox row commit in one
/// transaction. One open entry per customer and
/// event is a unique key, every change a conditional `UPDATE`.
#[derive(Debug, Clone)]
pub struct PgWaitingList {
    pool: PgPool,
}

impl PgWaitingList {
    /// A waiting list on `pool` (the ticket repository's database).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

waiting_list_adapter!(PgWaitingList, Postgres, super::error::with_retry);
