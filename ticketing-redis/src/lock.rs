//! [`RedisSeatLock`]: the [`SeatLock`] port on Redis.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{ErrorKind, Script, ScriptInvocation, ServerErrorKind, Value};
use ticketing_core::domain::{EventId, OrderId, SeatRef, Zone, ZoneCode};
use ticketing_core::ports::{
    BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldRequest, HoldSource,
    LockSnapshot, SeatLock,
};
use ticketing_core::{Error, Result};
use uuid::Uuid;

use crate::config::RedisSeatLockConfig;
use crate::connection::{RedisConnection, RedisConnectionConfig};
use crate::error::RedisLockError;
use crate::keys::EventKeys;
use crate::scripts::Scripts;
use crate::values::{self, millis};

/// The seat lock on Redis: one Lua script per operation, run atomically by Redis.
///
/// Cheap to share (`Arc<dyn SeatLock>`); every call clones the reconnecting
/// [`RedisConnection`], which multiplexes all calls over one connection per node and reconnects
/// by itself after Redis restarts or, on a cluster, a failover.
pub struct RedisSeatLock {
    pub(crate) conn: RedisConnection,
    pub(crate) config: RedisSeatLockConfig,
    pub(crate) scripts: Scripts,
    /// The keys of the event used last: a sale hammers one event, and building its six key
    /// strings on every call was a measurable share of a hold's client time.
    last_keys: Mutex<Option<Arc<EventKeys>>>,
}

impl std::fmt::Debug for RedisSeatLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSeatLock")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisSeatLock {
    /// A seat lock over an existing connection (a [`RedisConnection`], or a redis-rs
    /// `ConnectionManager` or cluster connection). Fails with [`Error::Config`] when `config` is
    /// unusable (see [`RedisSeatLockConfig`]).
    ///
    /// Unlike [`RedisSeatLock::connect`], it does not look at the server: call
    /// [`check_eviction_policy`](crate::check_eviction_policy) on the connection first.
    pub fn new(conn: impl Into<RedisConnection>, config: RedisSeatLockConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            conn: conn.into(),
            config,
            scripts: Scripts::new(),
            last_keys: Mutex::new(None),
        })
    }

    /// Connects to `nodes` (see [`RedisConnection::connect`]: `redis://127.0.0.1:6379`, or a
    /// comma-separated list of a cluster's seed nodes) with default timeouts, and checks the
    /// server's eviction policy ([`check_eviction_policy`](crate::check_eviction_policy)). An
    /// unreachable server is [`Error::Unavailable`]; a malformed URL, or a server whose
    /// `maxmemory-policy` may evict the lock's keys (`allkeys-*`), is [`Error::Config`].
    pub async fn connect(nodes: &str, config: RedisSeatLockConfig) -> Result<Self> {
        config.validate()?;
        let conn = RedisConnection::connect(nodes, RedisConnectionConfig::default()).await?;
        crate::check_eviction_policy(&conn).await?;
        Self::new(conn, config)
    }

    /// Deletes every key of `event` (one `DEL`; all keys share the event's slot). For the host
    /// to call once an event is over: keys carry no Redis TTL. Afterwards the event is not
    /// loaded, so using it again only costs a rebuild.
    pub async fn forget(&self, event: EventId) -> Result<()> {
        let keys = self.keys(event);
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(&keys.state()[..])
            .arg(&keys.rebuild_lock)
            .arg(&keys.staging[..])
            .query_async(&mut conn)
            .await
            .map_err(RedisLockError::from)?;
        Ok(())
    }

    /// The settings this lock was built with.
    pub fn config(&self) -> &RedisSeatLockConfig {
        &self.config
    }

    pub(crate) fn keys(&self, event: EventId) -> Arc<EventKeys> {
        let mut last = self.last_keys.lock().unwrap_or_else(|e| e.into_inner());
        match &*last {
            Some(keys) if keys.event == event => keys.clone(),
            _ => {
                let keys = Arc::new(EventKeys::new(&self.config.key_prefix, event));
                *last = Some(keys.clone());
                keys
            }
        }
    }

    /// Runs a prepared script (EVALSHA, reloading on NOSCRIPT) and returns its raw reply.
    ///
    /// [`ScriptInvocation::invoke_async`] loads the script once on NOSCRIPT; if the cache is
    /// emptied again between that load and the retried EVALSHA (a second `SCRIPT FLUSH`, a
    /// failover), the whole invocation is tried again, a bounded number of times.
    pub(crate) async fn run(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<Value, RedisLockError> {
        const ATTEMPTS: u32 = 3;
        let mut conn = self.conn.clone();
        let mut attempt = 1;
        loop {
            match invocation.invoke_async(&mut conn).await {
                Err(e)
                    if attempt < ATTEMPTS
                        && e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) =>
                {
                    attempt += 1;
                }
                result => return Ok(result?),
            }
        }
    }

    /// A script invocation with the event's five state keys.
    fn with_state_keys<'s>(script: &'s Script, keys: &EventKeys) -> ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        for key in keys.state() {
            invocation.key(key);
        }
        invocation
    }
}

/// Seats and general-admission zones of a request, split and checked for duplicates.
struct Items<'a> {
    seats: Vec<&'a SeatRef>,
    zones: Vec<(&'a ZoneCode, u32, u32)>,
}

impl<'a> Items<'a> {
    fn split(items: &'a [HoldItem]) -> Result<Self> {
        let mut seats = Vec::new();
        let mut zones = Vec::new();
        let mut seen_seats = HashSet::new();
        let mut seen_zones = HashSet::new();
        for item in items {
            match item {
                HoldItem::Seat(seat) => {
                    if !seen_seats.insert(seat) {
                        return Err(Error::invalid(
                            "items",
                            format!("seat {seat} appears twice"),
                        ));
                    }
                    seats.push(seat);
                }
                HoldItem::General {
                    zone,
                    quantity,
                    capacity,
                } => {
                    if !seen_zones.insert(zone) {
                        return Err(Error::invalid(
                            "items",
                            format!("zone {zone} appears twice"),
                        ));
                    }
                    zones.push((zone, *quantity, *capacity));
                }
            }
        }
        Ok(Self { seats, zones })
    }
}

#[async_trait]
impl SeatLock for RedisSeatLock {
    async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome> {
        let items = Items::split(&request.items)?;
        let keys = self.keys(request.event);
        let mut invocation = Self::with_state_keys(&self.scripts.hold, &keys);
        invocation
            .arg(request.order.to_string())
            .arg(millis(request.now))
            .arg(millis(request.until))
            .arg(items.seats.len());
        for seat in &items.seats {
            invocation.arg(seat.key());
        }
        for (zone, quantity, capacity) in &items.zones {
            invocation.arg(zone.as_str()).arg(*quantity).arg(*capacity);
        }
        let reply = self.run(&invocation).await?;
        Ok(hold_outcome(&reply, &items)?)
    }

    /// `best_available.lua`, one chunk of whole rows of about
    /// [`SNAPSHOT_CHUNK`](crate::SNAPSHOT_CHUNK) seats per call (see the module
    /// `best_available`).
    async fn hold_best_available(
        &self,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome> {
        if request.quantity == 0 {
            return Err(Error::invalid("quantity", "must be at least 1"));
        }
        Ok(self.hold_best_available_in_chunks(request).await?)
    }

    async fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        let items = Items::split(items)?;
        let keys = self.keys(event);
        let mut invocation = Self::with_state_keys(&self.scripts.release, &keys);
        invocation.arg(order.to_string()).arg(items.seats.len());
        for seat in &items.seats {
            invocation.arg(seat.key());
        }
        for (zone, _, _) in &items.zones {
            invocation.arg(zone.as_str());
        }
        let freed = values::int("release", &self.run(&invocation).await?)?;
        tracing::debug!(%event, %order, freed, "released seat-lock holds");
        Ok(())
    }

    async fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        let items = Items::split(items)?;
        let keys = self.keys(event);
        let mut invocation = Self::with_state_keys(&self.scripts.mark_sold, &keys);
        invocation.arg(order.to_string()).arg(items.seats.len());
        for seat in &items.seats {
            invocation.arg(seat.key());
        }
        for (zone, quantity, _) in &items.zones {
            invocation.arg(zone.as_str()).arg(*quantity);
        }
        if values::int("mark_sold", &self.run(&invocation).await?)? == 0 {
            tracing::debug!(%event, %order, "event not loaded; the next rebuild reads the sale");
        }
        Ok(())
    }

    /// Reads the seat hash in `HSCAN` chunks of about [`SNAPSHOT_CHUNK`](crate::SNAPSHOT_CHUNK) entries, never in one
    /// call, so a large event's snapshot does not stall the other clients of Redis.
    async fn snapshot(&self, event: EventId, now: DateTime<Utc>) -> Result<Option<LockSnapshot>> {
        Ok(self.read_snapshot(event, now).await?)
    }

    /// Reads a seated zone's seats by key, [`SNAPSHOT_CHUNK`](crate::SNAPSHOT_CHUNK) per script call.
    async fn zone_snapshot(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        Ok(self.read_zone_snapshot(event, zone, now).await?)
    }

    async fn rebuild(&self, event: EventId, source: &dyn HoldSource) -> Result<()> {
        self.rebuild_event(event, source, false).await
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        RedisSeatLock::forget(self, event).await
    }
}

/// Reads the hold script's reply, mapping keys and zones back to the request's own values.
fn hold_outcome(reply: &Value, items: &Items<'_>) -> Result<HoldOutcome, RedisLockError> {
    const SCRIPT: &str = "hold";
    let parts = values::array(SCRIPT, reply)?;
    let status = parts.first().map(|v| values::text(SCRIPT, v)).transpose()?;
    match (status.as_deref(), parts.len()) {
        (Some("held"), 1) => Ok(HoldOutcome::Held),
        (Some("not_loaded"), 1) => Ok(HoldOutcome::NotLoaded),
        (Some("taken"), 3) => {
            let seat_by_key: HashMap<String, &SeatRef> =
                items.seats.iter().map(|s| (s.key(), *s)).collect();
            let seats = values::texts(SCRIPT, &parts[1])?
                .into_iter()
                .map(|key| {
                    seat_by_key.get(&key).map(|s| (*s).clone()).ok_or_else(|| {
                        RedisLockError::reply(SCRIPT, format!("seat {key} was not asked for"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let zones = values::texts(SCRIPT, &parts[2])?
                .into_iter()
                .map(|code| {
                    items
                        .zones
                        .iter()
                        .find(|(z, _, _)| z.as_str() == code)
                        .map(|(z, _, _)| (*z).clone())
                        .ok_or_else(|| {
                            RedisLockError::reply(SCRIPT, format!("zone {code} was not asked for"))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(HoldOutcome::Taken { seats, zones })
        }
        _ => Err(RedisLockError::reply(SCRIPT, format!("{reply:?}"))),
    }
}

/// A fresh random token, for the rebuild lock and health checks.
pub(crate) fn random_token() -> String {
    Uuid::new_v4().to_string()
}
