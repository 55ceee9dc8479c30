//! Building what a run sells through: its own database (created and dropped), its own Redis key
//! prefix, the adapters of the chosen lock and repository, and a venue with one zone: seated, or
//! general admission.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use clap::ValueEnum;
use serde::Serialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, MySqlPool};
use ticketing_core::domain::{
    Currency, EventId, EventSpec, Money, Row, SeatRef, Zone, ZoneCode, ZoneKind,
};
use ticketing_core::memory::{InMemoryCatalog, InMemorySeatLock, InMemoryTicketRepository};
use ticketing_core::ports::{
    CatalogRepository, SeatLock, SystemClock, TicketRepository, UuidV7Ids,
};
use ticketing_core::service::{Backends, CatalogService, RepositoryHolds, ServiceConfig};
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};
use ticketing_sqlx::{BatchConfig, MySqlCatalog, MySqlTicketRepository, SqlSeatLock};
use uuid::Uuid;

use crate::BenchError;
use crate::counting::{CallCounts, CountingRepository};

/// Seats per row of the venue (the last row may be shorter).
pub const SEATS_PER_ROW: u32 = 100;

/// The zone every seat is in.
pub const ZONE: &str = "A";

/// The seat lock in front of the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// `RedisSeatLock`: one Lua call per hold.
    Redis,
    /// `SqlSeatLock`: `SELECT … FOR UPDATE` on seat rows (the database-lock baseline).
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
    /// Seats of the event (places, for general admission).
    pub seats: u32,
    /// Sell places of one general-admission zone instead of numbered seats.
    pub general: bool,
    /// Most tickets per customer (at least the seats per order).
    pub per_customer_limit: u32,
    /// Connections of the MySQL pool.
    pub pool_size: u32,
}

/// A run's own database on the server of `TICKETING_MYSQL_URL`, dropped by
/// [`RunDatabase::drop_database`].
pub struct RunDatabase {
    /// The pool on the run's database.
    pub pool: MySqlPool,
    /// The database's name.
    pub name: String,
    server: MySqlConnectOptions,
}

impl RunDatabase {
    /// Creates `bench_<random>`, migrates it and opens a pool of `pool_size` connections.
    pub async fn create(url: &str, pool_size: u32) -> Result<Self, BenchError> {
        let server: MySqlConnectOptions = url
            .parse()
            .map_err(|e| format!("TICKETING_MYSQL_URL {url} is not a MySQL URL: {e}"))?;
        let name = format!("bench_{}", Uuid::new_v4().simple());
        let mut admin = server.connect().await.map_err(|e| {
            format!("cannot reach MySQL/MariaDB at {url} (TICKETING_MYSQL_URL): {e}")
        })?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let pool = MySqlPoolOptions::new()
            .max_connections(pool_size.max(1))
            .min_connections(pool_size.max(1))
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(server.clone().database(&name))
            .await?;
        ticketing_sqlx::migrations().run(&pool).await?;
        Ok(Self { pool, name, server })
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

/// Everything one run sells through.
pub struct Rig {
    /// The adapters, the repository wrapped in a call counter.
    pub backends: Backends,
    /// Calls that reached the repository.
    pub calls: Arc<CallCounts>,
    /// The run's database, when the repository or the lock is on MySQL.
    pub database: Option<RunDatabase>,
    /// The Redis lock (to delete its keys at the end), when the lock is Redis.
    pub redis: Option<Arc<RedisSeatLock>>,
    /// The event on sale.
    pub event: EventId,
    /// Every seat of the venue, in order (front rows first); empty for general admission.
    pub seats: Vec<SeatRef>,
    /// The general-admission zone, when the venue has one instead of seats.
    pub general_zone: Option<ZoneCode>,
}

impl Rig {
    /// Builds the adapters of `spec` and an event of `spec.seats` seats on sale now.
    pub async fn build(spec: &SetupSpec) -> Result<Self, BenchError> {
        let needs_db = spec.repo == RepoKind::Mysql || spec.lock == LockKind::Sql;
        let database = if needs_db {
            Some(RunDatabase::create(&crate::mysql_url(), spec.pool_size).await?)
        } else {
            None
        };
        let pool = database.as_ref().map(|d| d.pool.clone());
        let (tickets, catalog): (Arc<dyn TicketRepository>, Arc<dyn CatalogRepository>) =
            match (spec.repo, &pool) {
                (RepoKind::Mysql, Some(pool)) => (
                    match spec.batching {
                        Some(config) => {
                            Arc::new(MySqlTicketRepository::with_batching(pool.clone(), config))
                        }
                        None => Arc::new(MySqlTicketRepository::new(pool.clone())),
                    },
                    Arc::new(MySqlCatalog::new(pool.clone())),
                ),
                _ => (
                    Arc::new(InMemoryTicketRepository::new()),
                    Arc::new(InMemoryCatalog::new()),
                ),
            };
        let mut redis = None;
        let seat_lock: Arc<dyn SeatLock> = match (spec.lock, &pool) {
            (LockKind::Redis, _) => {
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
            (LockKind::Sql, Some(pool)) => Arc::new(SqlSeatLock::new(pool.clone())),
            _ => Arc::new(InMemorySeatLock::new()),
        };
        let (counting, calls) = CountingRepository::new(tickets);
        let backends = Backends {
            catalog,
            tickets: Arc::new(counting),
            seat_lock,
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
        };
        let (event, seats) = create_event(&backends, spec).await?;
        Ok(Self {
            backends,
            calls,
            database,
            redis,
            event,
            seats,
            general_zone: spec.general.then(|| ZONE.parse()).transpose()?,
        })
    }

    /// Before the clock starts: loads the event into the seat lock from the repository, as the
    /// service would on its first hold, so the run measures the sale, not the set-up.
    pub async fn warm_up(&self) -> Result<(), BenchError> {
        let source = Arc::new(RepositoryHolds::new(
            self.backends.tickets.clone(),
            ServiceConfig::default().hold_grace,
            HashMap::new(),
        ));
        self.backends.seat_lock.rebuild(self.event, source).await?;
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
        Ok(())
    }
}

/// A venue with one zone, seated (`spec.seats` seats in rows of [`SEATS_PER_ROW`]) or general
/// admission (`spec.seats` places), and an event on sale from now for a day. Returns the seats
/// (none for general admission).
async fn create_event(
    backends: &Backends,
    spec: &SetupSpec,
) -> Result<(EventId, Vec<SeatRef>), BenchError> {
    let catalog = CatalogService::new(backends.clone());
    let (kind, seats) = if spec.general {
        let capacity = spec.seats.max(1);
        (ZoneKind::GeneralAdmission { capacity }, Vec::new())
    } else {
        seated_zone(spec.seats)?
    };
    let zone = Zone {
        code: ZONE.parse()?,
        name: "Arena".into(),
        kind,
    };
    let venue = catalog.create_venue("Flash-sale arena", vec![zone]).await?;
    let now = Utc::now();
    let event = catalog
        .create_event(EventSpec {
            name: "Flash sale".into(),
            venue_id: venue.id(),
            sale_opens: now - TimeDelta::minutes(1),
            sale_closes: now + TimeDelta::days(1),
            prices: BTreeMap::from([(ZONE.parse()?, Money::new(5_000, Currency::new("EUR")?))]),
            hold_time: TimeDelta::minutes(10),
            per_customer_limit: spec.per_customer_limit,
        })
        .await?;
    Ok((event.id(), seats))
}

/// A seated zone of `seats` seats in rows of [`SEATS_PER_ROW`], and its seats in order.
fn seated_zone(seats: u32) -> Result<(ZoneKind, Vec<SeatRef>), BenchError> {
    let mut rows = Vec::new();
    let mut refs = Vec::new();
    let mut left = seats.max(1);
    let mut row = 1;
    while left > 0 {
        let in_row = left.min(SEATS_PER_ROW);
        rows.push(Row {
            label: row.to_string().parse()?,
            seats: in_row,
        });
        for number in 1..=in_row {
            refs.push(format!("{ZONE}:{row}:{number}").parse()?);
        }
        left -= in_row;
        row += 1;
    }
    Ok((ZoneKind::Seated { rows }, refs))
}
