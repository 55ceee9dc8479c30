//! The whole server as `ticketing-server --database-url postgres://…` runs it
//! (`ticketing_server::run`, real flags, a real listener): the PostgreSQL adapters, the database
//! clock, and the outbox relay repairing the SQL seat lock without Redis. A fresh database per
//! test, from `TICKETING_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

mod common;
mod process;

/// The PostgreSQL adapters the shared checks run on.
mod backend {
    pub(crate) use ticketing_sqlx::postgres::PgTicketRepository as Repository;
    pub(crate) use ticketing_sqlx::postgres::testing::{TestDatabase, URL_VAR, server_url};
}

/// On PostgreSQL: a purchase over HTTP holds the seat, and a change committed behind the seat
/// lock's back (as when a process dies between the commit and its lock call) reaches the SQL
/// seat lock through the outbox relay that `run` starts, without Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_server_sells_and_the_relay_repairs_its_sql_seat_lock() {
    process::the_relay_repairs_the_sql_seat_lock(|backends| {
        backends.starts_with("PostgreSQL tickets and catalog, SQL seat lock")
    })
    .await;
}
