//! The waiting list in a MySQL/MariaDB table (`MySqlWaitingList`).

mod sql;

use sqlx::{MySql, MySqlPool};

use crate::flows::waiting_list::waiting_list_adapter;

/// The [`WaitingList`](ticketing_core::ports::WaitingList) in MySQL/MariaDB (migrated with
/// [`crate::migrations`]), on the pool of the ticket repository whose outbox relays its offer
/// events: an offer's entry change and its `WaitingListOffered` outbox row commit in one
/// transaction. One open entry per customer and
/// event is a unique key, every change a conditional `UPDATE`.
#[derive(Debug, Clone)]
pub struct MySqlWaitingList {
    pool: MySqlPool,
}

impl MySqlWaitingList {
    /// A waiting list on `pool` (the ticket repository's database).
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }
}

waiting_list_adapter!(MySqlWaitingList, MySql, crate::retry::with_retry);
