//! Test support (feature `testing`): a throw-away database per test, so tests run in parallel
//! against one server and leave nothing behind.
//!
//! The server comes from the environment variable [`URL_VAR`] (default [`DEFAULT_URL`]). An
//! unreachable server is an error that names the variable: tests fail, they never skip.

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, MySqlPool};
use ticketing_core::{Error, Result};
use uuid::Uuid;

use crate::ADAPTER;

mod galera;

pub use galera::{NODES, PrivateGalera};

/// The environment variable naming the test server.
pub const URL_VAR: &str = "TICKETING_MYSQL_URL";

/// The test server when [`URL_VAR`] is not set.
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// A database created for one test, migrated, and dropped by [`TestDatabase::drop_database`]
/// (or, if the test panicked first, when the value is dropped).
#[derive(Debug)]
pub struct TestDatabase {
    pool: MySqlPool,
    name: String,
    server: MySqlConnectOptions,
    dropped: bool,
}

impl TestDatabase {
    /// Creates `t_<random>` on the test server, runs the migrations and opens a pool of at most
    /// `max_connections` connections to it.
    pub async fn create(max_connections: u32) -> Result<Self> {
        let url = std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned());
        Self::create_on(&url, max_connections).await
    }

    /// Like [`TestDatabase::create`], on the server at `url` (a private server of the test).
    pub async fn create_on(url: &str, max_connections: u32) -> Result<Self> {
        let unreachable = |e: sqlx::Error| {
            Error::unavailable(
                ADAPTER,
                format!("test MySQL/MariaDB at {url} (set {URL_VAR}) is not usable: {e}"),
            )
        };
        let server: MySqlConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| Error::config("TICKETING_MYSQL_URL", e.to_string()))?;
        let name = format!("t_{}", Uuid::new_v4().simple());
        let mut admin = server.connect().await.map_err(unreachable)?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&mut admin)
            .await
            .map_err(unreachable)?;
        admin.close().await.map_err(unreachable)?;
        let this = Self {
            pool: MySqlPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(
                    server
                        .clone()
                        .database(&name)
                        .statement_cache_capacity(crate::STATEMENT_CACHE_CAPACITY),
                )
                .await
                .map_err(unreachable)?,
            name,
            server,
            dropped: false,
        };
        crate::migrate(&this.pool).await?;
        Ok(this)
    }

    /// The pool on the test database.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// The test database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the pool and drops the database.
    pub async fn drop_database(mut self) -> Result<()> {
        self.dropped = true;
        self.pool.close().await;
        drop_now(&self.server, &self.name).await
    }
}

async fn drop_now(server: &MySqlConnectOptions, name: &str) -> Result<()> {
    let mut admin = server
        .connect()
        .await
        .map_err(|e| Error::unavailable(ADAPTER, e))?;
    // Do not hang for a year on a metadata lock if a connection is still inside a transaction.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET SESSION lock_wait_timeout = 30; DROP DATABASE IF EXISTS `{name}`"
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
