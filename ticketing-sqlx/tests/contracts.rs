//! The port contracts on MySQL/MariaDB: `MySqlSeatLock` for `SeatLock`, and the outbox of
//! `MySqlTicketRepository` for `OutboxStore`. The checks are in `port_contracts/`, shared with
//! `pg_contracts.rs`; this file says which adapters they run on.

mod support;

/// The adapters the shared checks run on.
mod backend {
    pub(crate) use super::support::database;
    pub(crate) use ticketing_sqlx::MySqlSeatLock as SeatLockAdapter;
    pub(crate) use ticketing_sqlx::MySqlTicketRepository as Repository;
    pub(crate) use ticketing_sqlx::testing::TestDatabase;
}

#[path = "port_contracts/seat_lock.rs"]
mod seat_lock;

#[path = "port_contracts/outbox_store.rs"]
mod outbox_store;

/// The `WaitingRoom` contract on `MySqlWaitingRoom`, each check in its own database (dropped with
/// the guard).
mod waiting_room {
    use std::sync::Arc;

    use ticketing_core::ports::WaitingRoom;
    use ticketing_sqlx::MySqlWaitingRoom;
    use ticketing_sqlx::testing::TestDatabase;

    use super::support::database;

    async fn fresh() -> (Arc<dyn WaitingRoom>, TestDatabase) {
        let db = database(24).await;
        (Arc::new(MySqlWaitingRoom::new(db.pool().clone())), db)
    }

    ticketing_core::waiting_room_contract!(fresh);
}

/// The `WaitingList` contract on `MySqlWaitingList`, beside the repository and catalog of its
/// database, each check in its own database (dropped with the guard).
mod waiting_list {
    use std::sync::Arc;

    use ticketing_core::testkit::contracts::waiting_list::WaitingListContext;
    use ticketing_sqlx::testing::TestDatabase;
    use ticketing_sqlx::{MySqlCatalog, MySqlTicketRepository, MySqlWaitingList};

    use super::support::database;

    async fn fresh() -> (WaitingListContext, TestDatabase) {
        let db = database(24).await;
        let pool = db.pool().clone();
        let tickets = Arc::new(MySqlTicketRepository::new(pool.clone()));
        let ctx = WaitingListContext {
            list: Arc::new(MySqlWaitingList::new(pool.clone())),
            outbox: tickets.clone(),
            tickets,
            catalog: Arc::new(MySqlCatalog::new(pool)),
        };
        (ctx, db)
    }

    ticketing_core::waiting_list_contract!(fresh);
}
