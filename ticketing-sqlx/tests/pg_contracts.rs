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

/// The `WaitingRoom` contract on `PgWaitingRoom`, each check in its own database (dropped with
/// the guard).
mod waiting_room {
    use std::sync::Arc;

    use ticketing_core::ports::WaitingRoom;
    use ticketing_sqlx::postgres::PgWaitingRoom;
    use ticketing_sqlx::postgres::testing::TestDatabase;

    use super::pg_support::database;

    async fn fresh() -> (Arc<dyn WaitingRoom>, TestDatabase) {
        let db = database(24).await;
        (Arc::new(PgWaitingRoom::new(db.pool().clone())), db)
    }

    ticketing_core::waiting_room_contract!(fresh);
}

/// The `WaitingList` contract on `PgWaitingList`, beside the repository and catalog of its
/// database, each check in its own database (dropped with the guard).
mod waiting_list {
    use std::sync::Arc;

    use ticketing_core::testkit::contracts::waiting_list::WaitingListContext;
    use ticketing_sqlx::postgres::testing::TestDatabase;
    use ticketing_sqlx::postgres::{PgCatalog, PgTicketRepository, PgWaitingList};

    use super::pg_support::database;

    async fn fresh() -> (WaitingListContext, TestDatabase) {
        let db = database(24).await;
        let pool = db.pool().clone();
        let tickets = Arc::new(PgTicketRepository::new(pool.clone()));
        let ctx = WaitingListContext {
            list: Arc::new(PgWaitingList::new(pool.clone())),
            outbox: tickets.clone(),
            tickets,
            catalog: Arc::new(PgCatalog::new(pool)),
        };
        (ctx, db)
    }

    ticketing_core::waiting_list_contract!(fresh);
}
