//! Building what a run sells through: its own database (created and dropped), its own Redis key
//! prefix, the adapters of the chosen lock and repository, and a venue with one zone (numbered
//! seats or general admission). The venue and event shapes are shared with `--target` runs,
//! which create them through the server's admin API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use clap::ValueEnum;
use serde::Serialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, MySqlPool, PgPool};
use ticketing_core::domain::{
    Currency, EventId, EventSpec, Money, Row, SeatRef, VenueId, Zone, ZoneCode, ZoneKind,
};
use ticketing_core::memory::{InMemoryCatalog, InMemorySeatLock, InMemoryTicketRepository};
use ticketing_core::ports::{CatalogRepository, SeatLock, TicketRepository};
use ticketing_core::service::{Backends, CatalogService, ServiceConfig, TicketService};
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};
use ticketing_sqlx::postgres::{PgCatalog, PgSeatLock, PgTicketRepository};
use ticketing_sqlx::{BatchConfig, MySqlCatalog, MySqlSeatLock, MySqlTicketRepository};
use uuid::Uuid;

use crate::BenchError;
use crate::counting::{CallCounts, CountingRepository};
use crate::scenario::Goods;

/// Seats per row of the venue (the last row may be shorter).
pub const SEATS_PER_ROW: u32 = 100;

/// The zone every seat is in.
pub const ZONE: &str = "A";

/// The general-admission zone of a `--places` sale.
pub const GENERAL_ZONE: &str = "GA";

/// The payment window of the event: longer than any run, so no order expires before the audit.
pub const HOLD_TIME: TimeDelta = TimeDelta::hours(6);

/// What the event sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleKind {
    /// This many numbered seats in rows of [`SEATS_PER_ROW`], in zone [`ZONE`].
    Seats(u32),
    /// This many places in the general-admission zone [`GENERAL_ZONE`].
    General(u32),
}

impl SaleKind {
    /// Seats or places on sale.
    pub fn capacity(&self) -> u64 {
        match self {
            SaleKind::Seats(n) | SaleKind::General(n) => u64::from(*n),
        }
    }

    /// `seats` or `general`, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            SaleKind::Seats(_) => "seats",
            SaleKind::General(_) => "general",
        }
    }
}

/// The venue's one zone for `kind`, and what buyers choose from in it.
pub fn sale_zone(kind: SaleKind) -> Result<(Zone, Goods), BenchError> {
    match kind {
        SaleKind::Seats(count) => {
            let mut rows = Vec::new();
            let mut seats: Vec<SeatRef> = Vec::new();
            let mut left = count.max(1);
            let mut row = 1;
            while left > 0 {
                let in_row = left.min(SEATS_PER_ROW);
                rows.push(Row {
                    label: row.to_string().parse()?,
                    seats: in_row,
                });
                for number in 1..=in_row {
                    seats.push(format!("{ZONE}:{row}:{number}").parse()?);
                }
                left -= in_row;
                row += 1;
            }
            let zone = Zone {
                code: ZONE.parse()?,
                name: "Arena".into(),
                kind: ZoneKind::Seated { rows },
            };
            Ok((zone, Goods::Seats(seats.into())))
        }
        SaleKind::General(capacity) => {
            let code: ZoneCode = GENERAL_ZONE.parse()?;
            let zone = Zone {
                code: code.clone(),
                name: "Standing".into(),
                kind: ZoneKind::GeneralAdmission { capacity },
            };
            Ok((
                zone,
                Goods::General {
                    zone: code,
                    capacity,
                },
            ))
        }
    }
}

/// The price of every ticket of a run: EUR 50 (what its payments carry, times the places).
pub fn ticket_price() -> Money {
    Money::new(
        5_000,
        Currency::new("EUR").unwrap_or_else(|_| unreachable!("EUR is a currency")),
    )
}

/// The event of a run at `venue`: `zone` priced at [`ticket_price`], on sale from five minutes ago for a
/// day, payment window [`HOLD_TIME`].
pub fn sale_event(
    venue: VenueId,
    zone: &ZoneCode,
    per_customer_limit: u32,
) -> Result<EventSpec, BenchError> {
    let now = Utc::now();
    Ok(EventSpec {
        name: "Flash sale".into(),
        venue_id: venue,
        sale_opens: now - TimeDelta::minutes(5),
        sale_closes: now + TimeDelta::days(1),
        prices: BTreeMap::from([(zone.clone(), ticket_price())]),
        hold_time: HOLD_TIME,
        per_customer_limit,
    })
}

/// The seat lock in front of the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// `RedisSeatLock`: one Lua call per hold.
    Redis,
    /// The SQL seat lock of the repository's database (`MySqlSeatLock`, or `PgSeatLock` with
    /// `--repo postgres`): `SELECT … FOR UPDATE` on seat rows (the database-lock baseline).
    Sql,
    /// `InMemorySeatLock`: one mutex.
    Memory,
}

/// Where the tickets are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoKind {
    /// `MySqlTicketRepository` (optionally with write batching).
    Mysql,
    /// `PgTicketRepository` (each purchase its own transaction).
    Postgres,
    /// `InMemoryTicketRepository`.
    Memory,
}

/// What to build for one run.
#[derive(Debug, Clone)]
pub struct SetupSpec {
    /// The seat lock.
    pub lock: LockKind,
    /// The repository.
    pub repo: RepoKind,
    /// Write batching of the MySQL repository; `None` writes each order alone.
    pub batching: Option<BatchConfig>,
    /// What the event sells.
    pub sale: SaleKind,
    /// Most tickets per customer (at least the seats per order).
    pub per_customer_limit: u32,
    /// Connections of the MySQL pool.
    pub pool_size: u32,
}

/// A run's own database on a MySQL/MariaDB server, dropped by [`RunDatabase::drop_database`].
pub struct RunDatabase {
    /// The pool on the run's database.
    pub pool: MySqlPool,
    /// The database's name.
    pub name: String,
    server: MySqlConnectOptions,
}

impl RunDatabase {
    /// Creates `bench_<random>` on the server of `url`, migrates it and opens a pool of
    /// `pool_size` connections; `origin` (the variable or flag `url` came from) is named in
    /// errors.
    pub async fn create(url: &str, origin: &str, pool_size: u32) -> Result<Self, BenchError> {
        let server: MySqlConnectOptions = url
            .parse()
            .map_err(|e| format!("{origin} {url} is not a MySQL URL: {e}"))?;
        let name = format!("bench_{}", Uuid::new_v4().simple());
        let mut admin = server
            .connect()
            .await
            .map_err(|e| format!("cannot reach MySQL/MariaDB at {url} ({origin}): {e}"))?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let pool = MySqlPoolOptions::new()
            .max_connections(pool_size.max(1))
            .min_connections(pool_size.max(1))
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(
                server
                    .clone()
                    .database(&name)
                    .statement_cache_capacity(ticketing_sqlx::STATEMENT_CACHE_CAPACITY),
            )
            .await?;
        ticketing_sqlx::migrate(&pool).await?;
        Ok(Self { pool, name, server })
    }

    /// The URL of the run's database (to start a server on it, or to give it as
    /// `--database-url`).
    pub fn url(&self) -> String {
        self.server
            .clone()
            .database(&self.name)
            .to_url_lossy()
            .to_string()
    }

    /// Closes the pool and drops the database.
    pub async fn drop_database(self) -> Result<(), BenchError> {
        self.pool.close().await;
        let mut admin = self.server.connect().await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SET SESSION lock_wait_timeout = 30; DROP DATABASE IF EXISTS `{}`",
            self.name
        )))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        Ok(())
    }
}

/// A run's own database on a PostgreSQL server, dropped by [`PgRunDatabase::drop_database`].
pub struct PgRunDatabase {
    /// The pool on the run's database.
    pub pool: PgPool,
    /// The database's name.
    pub name: String,
    server: PgConnectOptions,
}

impl PgRunDatabase {
    /// Creates `bench_<random>` on the server of `url`, migrates it and opens a pool of
    /// `pool_size` connections; `origin` (the variable `url` came from) is named in errors.
    pub async fn create(url: &str, origin: &str, pool_size: u32) -> Result<Self, BenchError> {
        let server: PgConnectOptions = url
            .parse()
            .map_err(|e| format!("{origin} {url} is not a PostgreSQL URL: {e}"))?;
        let name = format!("bench_{}", Uuid::new_v4().simple());
        let mut admin = server
            .connect()
            .await
            .map_err(|e| format!("cannot reach PostgreSQL at {url} ({origin}): {e}"))?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .min_connections(pool_size.max(1))
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(server.clone().database(&name))
            .await?;
        ticketing_sqlx::postgres::migrate(&pool).await?;
        Ok(Self { pool, name, server })
    }

    /// Closes the pool and drops the database.
    pub async fn drop_database(self) -> Result<(), BenchError> {
        self.pool.close().await;
        let mut admin = self.server.connect().await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        Ok(())
    }
}

/// Everything one run sells through.
pub struct Rig {
    /// The adapters, the repository wrapped in a call counter.
    pub backends: Backends,
    /// Calls that reached the repository.
    pub calls: Arc<CallCounts>,
    /// The run's database, when the repository or the lock is on MySQL.
    pub database: Option<RunDatabase>,
    /// The run's database, when the repository is on PostgreSQL.
    pub postgres: Option<PgRunDatabase>,
    /// The Redis lock (to delete its keys at the end), when the lock is Redis.
    pub redis: Option<Arc<RedisSeatLock>>,
    /// The event on sale.
    pub event: EventId,
    /// What buyers choose from.
    pub goods: Goods,
}

impl Rig {
    /// Builds the adapters of `spec` and an event selling `spec.sale` now.
    pub async fn build(spec: &SetupSpec) -> Result<Self, BenchError> {
        let on_postgres = spec.repo == RepoKind::Postgres;
        let needs_db = spec.repo == RepoKind::Mysql || (spec.lock == LockKind::Sql && !on_postgres);
        let database = if needs_db {
            Some(
                RunDatabase::create(&crate::mysql_url(), "TICKETING_MYSQL_URL", spec.pool_size)
                    .await?,
            )
        } else {
            None
        };
        let postgres = if on_postgres {
            Some(
                PgRunDatabase::create(
                    &crate::postgres_url(),
                    "TICKETING_POSTGRES_URL",
                    spec.pool_size,
                )
                .await?,
            )
        } else {
            None
        };
        let pool = database.as_ref().map(|d| d.pool.clone());
        let pg_pool = postgres.as_ref().map(|d| d.pool.clone());
        let (tickets, catalog): (Arc<dyn TicketRepository>, Arc<dyn CatalogRepository>) =
            match (spec.repo, &pool, &pg_pool) {
                (RepoKind::Mysql, Some(pool), _) => (
                    match spec.batching {
                        Some(config) => {
                            Arc::new(MySqlTicketRepository::with_batching(pool.clone(), config))
                        }
                        None => Arc::new(MySqlTicketRepository::new(pool.clone())),
                    },
                    Arc::new(MySqlCatalog::new(pool.clone())),
                ),
                (RepoKind::Postgres, _, Some(pool)) => (
                    Arc::new(PgTicketRepository::new(pool.clone())),
                    Arc::new(PgCatalog::new(pool.clone())),
                ),
                _ => (
                    Arc::new(InMemoryTicketRepository::new()),
                    Arc::new(InMemoryCatalog::new()),
                ),
            };
        let mut redis = None;
        let seat_lock: Arc<dyn SeatLock> = match (spec.lock, &pool, &pg_pool) {
            (LockKind::Redis, _, _) => {
                let config = RedisSeatLockConfig {
                    key_prefix: format!("bench-{}:", Uuid::new_v4().simple()),
                    ..RedisSeatLockConfig::default()
                };
                let url = crate::redis_url();
                let lock = Arc::new(RedisSeatLock::connect(&url, config).await.map_err(|e| {
                    format!("cannot reach Redis at {url} (TICKETING_REDIS_URL): {e}")
                })?);
                redis = Some(lock.clone());
                lock
            }
            (LockKind::Sql, _, Some(pool)) => Arc::new(PgSeatLock::new(pool.clone())),
            (LockKind::Sql, Some(pool), None) => Arc::new(MySqlSeatLock::new(pool.clone())),
            _ => Arc::new(InMemorySeatLock::new()),
        };
        let (counting, calls) = CountingRepository::new(tickets);
        let backends = Backends::builder()
            .catalog(catalog)
            .tickets(Arc::new(counting))
            .seat_lock(seat_lock)
            .build()?;
        let (event, goods) = create_event(&backends, spec).await?;
        Ok(Self {
            backends,
            calls,
            database,
            postgres,
            redis,
            event,
            goods,
        })
    }

    /// Before the clock starts: loads the event into the seat lock from the repository, as the
    /// service would on its first hold, so the run measures the sale, not the set-up.
    pub async fn warm_up(&self) -> Result<(), BenchError> {
        TicketService::new(self.backends.clone(), ServiceConfig::default())
            .load_seat_lock(self.event)
            .await?;
        Ok(())
    }

    /// Deletes the run's Redis keys and drops its database.
    pub async fn tear_down(self) -> Result<(), BenchError> {
        if let Some(lock) = &self.redis {
            lock.forget(self.event).await?;
        }
        if let Some(db) = self.database {
            db.drop_database().await?;
        }
        if let Some(db) = self.postgres {
            db.drop_database().await?;
        }
        Ok(())
    }
}

/// The venue of `spec.sale` and its event, through the catalog service.
async fn create_event(
    backends: &Backends,
    spec: &SetupSpec,
) -> Result<(EventId, Goods), BenchError> {
    let catalog = CatalogService::new(backends.clone());
    let (zone, goods) = sale_zone(spec.sale)?;
    let code = zone.code.clone();
    let venue = catalog.create_venue("Flash-sale arena", vec![zone]).await?;
    let event = catalog
        .create_event(sale_event(venue.id(), &code, spec.per_customer_limit)?)
        .await?;
    Ok((event.id(), goods))
}
