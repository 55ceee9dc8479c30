//! Shared helpers of the integration tests: a per-test key prefix on the shared Redis (deleted on
//! drop), private `redis-server` processes, fixtures and a counting hold source.
//!
//! The shared server's URL comes from `TICKETING_REDIS_URL` (default `redis://127.0.0.1:6379`); a
//! test fails, never skips, when it cannot be reached.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use ticketing_core::domain::{EventId, OrderId, SeatRef, ZoneCode};
use ticketing_core::ports::{ActiveHold, HoldItem, HoldOutcome, HoldRequest, HoldSource, SeatLock};
use ticketing_core::{Error, Result};
use ticketing_redis::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ticketing_redis::redis::{self, AsyncCommands};
use ticketing_redis::{RedisSeatLock, RedisSeatLockConfig};
use uuid::Uuid;

/// The shared server's URL.
pub fn redis_url() -> String {
    std::env::var("TICKETING_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Connection settings for tests: fail fast instead of retrying for long.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(Duration::from_millis(200))
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)))
}

/// A new reconnecting connection to `url`; panics naming `TICKETING_REDIS_URL` when unreachable.
pub async fn connect(url: &str) -> ConnectionManager {
    let client = redis::Client::open(url)
        .unwrap_or_else(|e| panic!("bad Redis URL {url} (from TICKETING_REDIS_URL): {e}"));
    ConnectionManager::new_with_config(client, manager_config())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach Redis at {url}: {e}. Start Redis or point TICKETING_REDIS_URL at one."
            )
        })
}

/// Deletes every key starting with `prefix` (SCAN + DEL).
pub async fn delete_prefix(conn: &mut ConnectionManager, prefix: &str) {
    let keys = keys_with_prefix(conn, prefix).await;
    if !keys.is_empty() {
        let _: () = conn.del(keys).await.expect("DEL test keys");
    }
}

/// Every key starting with `prefix`.
pub async fn keys_with_prefix(conn: &mut ConnectionManager, prefix: &str) -> Vec<String> {
    let mut cursor = 0u64;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// A random key prefix on one Redis server; its keys are deleted when this is dropped (also when
/// the test panicked).
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    /// A fresh prefix on the shared server.
    pub fn shared() -> Self {
        Self::on(redis_url())
    }

    /// A fresh prefix on the server at `url`.
    pub fn on(url: String) -> Self {
        Self {
            url,
            prefix: format!("test:{}:", Uuid::new_v4()),
        }
    }

    pub fn config(&self) -> RedisSeatLockConfig {
        RedisSeatLockConfig {
            key_prefix: self.prefix.clone(),
            ..Default::default()
        }
    }

    /// A new lock on its own connection.
    pub async fn lock(&self) -> RedisSeatLock {
        self.lock_with(self.config()).await
    }

    /// A new lock on its own connection, with `config` (its prefix should be this one's).
    pub async fn lock_with(&self, config: RedisSeatLockConfig) -> RedisSeatLock {
        RedisSeatLock::new(connect(&self.url).await, config).expect("valid config")
    }

    /// A raw connection, for looking at and damaging the keys.
    pub async fn raw(&self) -> ConnectionManager {
        connect(&self.url).await
    }

    /// The keys under this prefix.
    pub async fn keys(&self) -> Vec<String> {
        keys_with_prefix(&mut self.raw().await, &self.prefix).await
    }

    /// Simulates a data loss of this test's keys.
    pub async fn wipe(&self) {
        delete_prefix(&mut self.raw().await, &self.prefix).await;
    }

    /// The name of one of an event's keys (see the crate README's layout).
    pub fn key(&self, event: EventId, part: &str) -> String {
        format!("{}{{ev:{event}}}:{part}", self.prefix)
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // Synchronous, so it also runs while a failed test unwinds.
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let pattern = format!("{}*", self.prefix);
        let mut cursor = 0u64;
        loop {
            let Ok((next, keys)) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query::<(u64, Vec<String>)>(&mut conn)
            else {
                return;
            };
            if !keys.is_empty() {
                let _ = redis::cmd("DEL").arg(keys).query::<i64>(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

/// A `redis-server` of this test alone, on a free port, without persistence. Killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let port = free_port();
        let mut server = Self { port, child: None };
        server.spawn().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (needed by the private-server tests)");
        self.child = Some(child);
        // Wait (bounded) until it answers.
        let client = redis::Client::open(self.url()).expect("url");
        for _ in 0..200 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("private redis-server on port {} did not start", self.port);
    }

    /// Kills the server (like a crash: nothing is saved).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A fixed instant in the future, far from any real clock, as every test's "now".
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_900_000_000_000).expect("valid time")
}

pub fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

pub fn event() -> EventId {
    EventId::from_uuid(Uuid::now_v7())
}

pub fn order() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

pub fn seat(key: &str) -> SeatRef {
    key.parse().expect("seat key")
}

pub fn zone(code: &str) -> ZoneCode {
    code.parse().expect("zone code")
}

pub fn seats(keys: &[&str]) -> Vec<HoldItem> {
    keys.iter().map(|k| HoldItem::Seat(seat(k))).collect()
}

pub fn general(code: &str, quantity: u32, capacity: u32) -> HoldItem {
    HoldItem::General {
        zone: zone(code),
        quantity,
        capacity,
    }
}

pub fn request(
    event: EventId,
    order: OrderId,
    items: Vec<HoldItem>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> HoldRequest {
    HoldRequest {
        event,
        order,
        items,
        now,
        until,
    }
}

/// Holds and expects a definite answer.
pub async fn hold(
    lock: &dyn SeatLock,
    event: EventId,
    order: OrderId,
    items: Vec<HoldItem>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> HoldOutcome {
    lock.hold(&request(event, order, items, now, until))
        .await
        .expect("hold")
}

/// Marks `event` loaded with no holds.
pub async fn load_empty(lock: &dyn SeatLock, event: EventId) {
    lock.rebuild(event, Arc::new(CountingSource::new(vec![])))
        .await
        .expect("rebuild");
}

/// A hold source with fixed holds that counts how often it was read.
pub struct CountingSource {
    holds: Vec<ActiveHold>,
    calls: AtomicUsize,
    delay: Duration,
    fail: bool,
}

impl CountingSource {
    pub fn new(holds: Vec<ActiveHold>) -> Self {
        Self {
            holds,
            calls: AtomicUsize::new(0),
            delay: Duration::ZERO,
            fail: false,
        }
    }

    /// Reading takes `delay` (a slow database).
    pub fn slow(holds: Vec<ActiveHold>, delay: Duration) -> Self {
        Self {
            delay,
            ..Self::new(holds)
        }
    }

    /// Reading fails with `Unavailable` (the database is down).
    pub fn failing() -> Self {
        Self {
            fail: true,
            ..Self::new(vec![])
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl HoldSource for CountingSource {
    async fn active_holds(&self, _event: EventId) -> Result<Vec<ActiveHold>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.fail {
            return Err(Error::unavailable("mysql", "test database is down"));
        }
        Ok(self.holds.clone())
    }
}
