//! Test support on PostgreSQL (features `postgres` and `testing`): a throw-away database per
//! test, so tests run in parallel against one server and leave nothing behind.
//!
//! The server comes from the environment variable [`URL_VAR`] (default [`DEFAULT_URL`]). An
//! unreachable server is an error that names the variable: tests fail, they never skip.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};
use ticketing_core::{Error, Result};
use uuid::Uuid;

use super::ADAPTER;

/// The environment variable naming the test server.
pub const URL_VAR: &str = "TICKETING_POSTGRES_URL";

/// The test server when [`URL_VAR`] is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test server's URL: [`URL_VAR`], or [`DEFAULT_URL`].
pub fn server_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A database created for one test, migrated, and dropped by [`TestDatabase::drop_database`]
/// (or, if the test panicked first, when the value is dropped).
#[derive(Debug)]
pub struct TestDatabase {
    pool: PgPool,
    name: String,
    server: PgConnectOptions,
    dropped: bool,
}

impl TestDatabase {
    /// Creates `t_<random>` on the test server, runs the migrations and opens a pool of at most
    /// `max_connections` connections to it.
    pub async fn create(max_connections: u32) -> Result<Self> {
        Self::create_on(&server_url(), max_connections).await
    }

    /// Like [`TestDatabase::create`], on the server at `url`.
    pub async fn create_on(url: &str, max_connections: u32) -> Result<Self> {
        let unreachable = |e: sqlx::Error| {
            Error::unavailable(
                ADAPTER,
                format!("test PostgreSQL at {url} (set {URL_VAR}) is not usable: {e}"),
            )
        };
        let server: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| Error::config(URL_VAR, e.to_string()))?;
        let name = format!("t_{}", Uuid::new_v4().simple());
        let mut admin = server.connect().await.map_err(unreachable)?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .map_err(unreachable)?;
        admin.close().await.map_err(unreachable)?;
        let this = Self {
            pool: PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(server.clone().database(&name))
                .await
                .map_err(unreachable)?,
            name,
            server,
            dropped: false,
        };
        super::migrate(&this.pool).await?;
        Ok(this)
    }

    /// The pool on the test database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The test database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connect options of the test database (for connections outside the pool).
    pub fn options(&self) -> PgConnectOptions {
        self.server.clone().database(&self.name)
    }

    /// Closes the pool and drops the database.
    pub async fn drop_database(mut self) -> Result<()> {
        self.dropped = true;
        self.pool.close().await;
        drop_now(&self.server, &self.name).await
    }
}

async fn drop_now(server: &PgConnectOptions, name: &str) -> Result<()> {
    let mut admin = server
        .connect()
        .await
        .map_err(|e| Error::unavailable(ADAPTER, e))?;
    // FORCE ends the sessions a test left behind (a connection killed mid-test, a leaked one).
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .map_err(|e| Error::unavailable(ADAPTER, e))?;
    admin
        .close()
        .await
        .map_err(|e| Error::unavailable(ADAPTER, e))
}

impl Drop for TestDatabase {
    /// The safety net for a test that panicked before [`TestDatabase::drop_database`]: drops the
    /// database from a helper thread with its own runtime (a destructor cannot await).
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (server, name) = (self.server.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => {
                    if let Err(e) = runtime.block_on(drop_now(&server, &name)) {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("could not drop test database {name}: {e}"),
            }
        });
        let _ = cleanup.join();
    }
}
