//! [`DatabaseClock`]: the database's time as every server's [`Clock`], so that all servers of a
//! deployment judge deadlines and leases by one clock.
//!
//! Each server compares its local clock with the database's (`UTC_TIMESTAMP(6)` on MySQL,
//! `clock_timestamp()` on PostgreSQL) now and then, keeps the offset and answers local time plus
//! offset. Reading the time costs no round trip; a sync costs a few.

mod sql;

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use ticketing_core::ports::{Clock, SystemClock};
use ticketing_core::{Error, Result};

/// The database a [`DatabaseClock`] follows: a pool of either database (`From` each pool type).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClockDatabase {
    /// MySQL / MariaDB: `UTC_TIMESTAMP(6)`.
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    MySql(sqlx::MySqlPool),
    /// PostgreSQL: `clock_timestamp()`, the time the statement reads it (`now()` is the start of
    /// the transaction, which for one statement is the same instant give or take its parsing).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(sqlx::PgPool),
}

#[cfg(feature = "mysql")]
impl From<sqlx::MySqlPool> for ClockDatabase {
    fn from(pool: sqlx::MySqlPool) -> Self {
        ClockDatabase::MySql(pool)
    }
}

#[cfg(feature = "postgres")]
impl From<sqlx::PgPool> for ClockDatabase {
    fn from(pool: sqlx::PgPool) -> Self {
        ClockDatabase::Postgres(pool)
    }
}

impl ClockDatabase {
    /// `samples` reads of the database's time, one connection for all, each with the local
    /// clock before it and the round trip's length.
    async fn read_times(
        &self,
        local: &dyn Clock,
        samples: u32,
    ) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>, TimeDelta)>> {
        let mut times = Vec::with_capacity(samples as usize);
        match self {
            #[cfg(feature = "mysql")]
            ClockDatabase::MySql(pool) => {
                use crate::error::classify;
                let mut conn = pool.acquire().await.map_err(classify)?;
                for _ in 0..samples {
                    let sent = local.now();
                    let started = Instant::now();
                    let database: chrono::NaiveDateTime = sqlx::query_scalar(sql::MYSQL_NOW)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(classify)?;
                    times.push((sent, database.and_utc(), elapsed(started)));
                }
            }
            #[cfg(feature = "postgres")]
            ClockDatabase::Postgres(pool) => {
                use crate::postgres::classify;
                let mut conn = pool.acquire().await.map_err(classify)?;
                for _ in 0..samples {
                    let sent = local.now();
                    let started = Instant::now();
                    let database: DateTime<Utc> = sqlx::query_scalar(sql::POSTGRES_NOW)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(classify)?;
                    times.push((sent, database, elapsed(started)));
                }
            }
        }
        Ok(times)
    }
}

fn elapsed(started: Instant) -> TimeDelta {
    TimeDelta::from_std(started.elapsed()).unwrap_or(TimeDelta::MAX)
}

/// How a [`DatabaseClock`] samples the database. `Default` gives production values.
#[derive(Clone)]
pub struct DatabaseClockConfig {
    /// How often the offset to the database is measured again, in the background. Between two
    /// syncs the clock runs at the local clock's rate, so this bounds how long a local clock
    /// that drifts or is stepped (by NTP, by hand) can lead the reading astray.
    pub refresh: Duration,
    /// Round trips per sync; the one with the shortest round trip is kept, since its midpoint
    /// is the best guess of when the database read its clock. 0 is taken as 1.
    pub samples: u32,
    /// The local clock the offset is added to. The default reads the system clock once and
    /// moves on with the monotonic clock, so a step of the system clock (NTP, by hand) does not
    /// move the reading between syncs; tests put a skewed clock here.
    pub local: Arc<dyn Clock>,
}

impl Default for DatabaseClockConfig {
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(10),
            samples: 3,
            local: Arc::new(SteadyClock::new()),
        }
    }
}

/// The system clock as read once, moved on by the monotonic clock: it never jumps.
struct SteadyClock {
    anchor: DateTime<Utc>,
    started: Instant,
}

impl SteadyClock {
    fn new() -> Self {
        Self {
            anchor: SystemClock.now(),
            started: Instant::now(),
        }
    }
}

impl Clock for SteadyClock {
    fn now(&self) -> DateTime<Utc> {
        self.anchor + TimeDelta::from_std(self.started.elapsed()).unwrap_or(TimeDelta::MAX)
    }
}

impl fmt::Debug for DatabaseClockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseClockConfig")
            .field("refresh", &self.refresh)
            .field("samples", &self.samples)
            .finish_non_exhaustive()
    }
}

/// One comparison of the local clock with the database's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSample {
    /// Database time minus local time.
    pub offset: TimeDelta,
    /// Half the round trip of the query: the database read its clock within this much of the
    /// midpoint the offset assumes, so readings are off the database by at most this (plus
    /// the local clock's drift since the sample).
    pub uncertainty: TimeDelta,
}

/// A [`Clock`] that follows the database server's clock.
///
/// Deadlines (`expires_at`), the sweep, payment arrival times, seat-lock holds and the outbox
/// relay's lease are all judged by the services' `now`; with this clock that `now` is the
/// database's on every server, so servers whose own clocks disagree by a minute still agree on
/// it within the sampling error ([`uncertainty`](Self::uncertainty), typically well under a
/// millisecond on a LAN). The reading never goes backwards: when a sync (or a local clock
/// stepped back) would move it back, it stands still until time catches up.
///
/// Made with [`DatabaseClock::start`], which syncs once (failing if the database cannot be
/// reached) and then keeps syncing every [`refresh`](DatabaseClockConfig::refresh) in a Tokio
/// task that ends when the clock is dropped. A failed background sync is logged and the last
/// offset kept.
pub struct DatabaseClock {
    database: ClockDatabase,
    local: Arc<dyn Clock>,
    samples: u32,
    /// Database minus local, in microseconds.
    offset_us: AtomicI64,
    /// Half the best round trip of the last sync, in microseconds.
    uncertainty_us: AtomicI64,
    /// The latest reading handed out, in microseconds since the epoch: the monotonic guard.
    last_us: AtomicI64,
}

impl fmt::Debug for DatabaseClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseClock")
            .field("offset", &self.offset())
            .field("uncertainty", &self.uncertainty())
            .finish_non_exhaustive()
    }
}

impl DatabaseClock {
    /// A clock synced with the database behind `pool` (a `MySqlPool` or a `PgPool`), kept in
    /// sync in the background.
    ///
    /// [`Error::Unavailable`] when the first sync cannot reach the database; a zero
    /// `refresh` is [`Error::Config`]. Must be called within a Tokio runtime.
    pub async fn start(
        pool: impl Into<ClockDatabase>,
        config: DatabaseClockConfig,
    ) -> Result<Arc<Self>> {
        if config.refresh.is_zero() {
            return Err(Error::config(
                "refresh",
                "the database clock needs a positive refresh interval",
            ));
        }
        let clock = Arc::new(Self {
            database: pool.into(),
            local: config.local,
            samples: config.samples.max(1),
            offset_us: AtomicI64::new(0),
            uncertainty_us: AtomicI64::new(0),
            last_us: AtomicI64::new(i64::MIN),
        });
        clock.sync().await?;
        tokio::spawn(keep_in_sync(Arc::downgrade(&clock), config.refresh));
        Ok(clock)
    }

    /// Measures the offset to the database again, now, and uses it from here on.
    pub async fn sync(&self) -> Result<ClockSample> {
        let times = self
            .database
            .read_times(self.local.as_ref(), self.samples)
            .await?;
        // The round trip with the shortest time: its midpoint is the best guess of when the
        // database read its clock.
        let best = times
            .into_iter()
            .map(|(sent, database, round_trip)| {
                let half = round_trip / 2;
                ClockSample {
                    offset: database - (sent + half),
                    uncertainty: half,
                }
            })
            .min_by_key(|sample| sample.uncertainty)
            .ok_or_else(|| Error::internal("a clock sync took no sample"))?;
        self.offset_us.store(micros(best.offset), Ordering::Release);
        self.uncertainty_us
            .store(micros(best.uncertainty), Ordering::Release);
        Ok(best)
    }

    /// Database time minus local time, as of the last sync.
    pub fn offset(&self) -> TimeDelta {
        TimeDelta::microseconds(self.offset_us.load(Ordering::Acquire))
    }

    /// How far the last sync may be off the database: half its round trip.
    pub fn uncertainty(&self) -> TimeDelta {
        TimeDelta::microseconds(self.uncertainty_us.load(Ordering::Acquire))
    }
}

impl Clock for DatabaseClock {
    fn now(&self) -> DateTime<Utc> {
        let local = self.local.now().timestamp_micros();
        let reading = local.saturating_add(self.offset_us.load(Ordering::Acquire));
        let previous = self.last_us.fetch_max(reading, Ordering::AcqRel);
        let now = reading.max(previous);
        DateTime::from_timestamp_micros(now).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Syncs `clock` every `refresh` until it is dropped.
async fn keep_in_sync(clock: Weak<DatabaseClock>, refresh: Duration) {
    loop {
        tokio::time::sleep(refresh).await;
        let Some(clock) = clock.upgrade() else {
            return;
        };
        if let Err(error) = clock.sync().await {
            tracing::warn!(%error, offset = %clock.offset(), "database clock sync failed; keeping the last offset");
        }
    }
}

/// A span in whole microseconds, saturating.
fn micros(span: TimeDelta) -> i64 {
    span.num_microseconds()
        .unwrap_or(if span < TimeDelta::zero() {
            i64::MIN
        } else {
            i64::MAX
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steady_clock_starts_at_the_system_time_and_never_goes_back() {
        let before = SystemClock.now();
        let steady = SteadyClock::new();
        let mut last = steady.now();
        assert!(last >= before && last <= SystemClock.now());
        for _ in 0..1_000 {
            let now = steady.now();
            assert!(now >= last);
            last = now;
        }
    }
}
