//! Test support (feature `testing`): a key prefix per test on a shared Redis, deleted on drop, and
//! private `redis-server` processes for tests that flush or restart Redis.
//!
//! The shared server's URL comes from [`URL_VAR`] (default [`DEFAULT_URL`]); a test fails, never
//! skips, when it cannot be reached. [`PrivateCluster`] starts a Redis Cluster of a test alone.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ticketing_core::domain::EventId;
use uuid::Uuid;

use crate::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use crate::redis::{self, AsyncCommands};
use crate::{RedisSeatLock, RedisSeatLockConfig};

mod cluster;

pub use cluster::{PRIMARIES, PrivateCluster};

/// The environment variable naming the shared test server.
pub const URL_VAR: &str = "TICKETING_REDIS_URL";

/// The shared test server when [`URL_VAR`] is not set.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The shared server's URL.
pub fn redis_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.into())
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
    let client = crate::connection::open_client(url)
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
pub async fn delete_prefix(conn: &mut (impl ConnectionLike + Send + Sync), prefix: &str) {
    let keys = keys_with_prefix(conn, prefix).await;
    if !keys.is_empty() {
        let _: () = conn.del(keys).await.expect("DEL test keys");
    }
}

/// Every key starting with `prefix`.
pub async fn keys_with_prefix(
    conn: &mut (impl ConnectionLike + Send + Sync),
    prefix: &str,
) -> Vec<String> {
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
    /// The server.
    pub url: String,
    /// The prefix, `test:<uuid>:`.
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

    /// A lock configuration with this prefix.
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
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts `redis-server` on a free port and waits until it answers.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts `redis-server` on a free port with extra command-line settings (e.g.
    /// `["--rename-command", "CONFIG", ""]`) and waits until it answers.
    pub async fn start_with(args: &[&str]) -> Self {
        let port = free_port();
        let mut server = Self {
            port,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        server.spawn().await;
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(&self.args)
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

/// A port that is free now and outside Linux' ephemeral range (32768–60999), so that no
/// outgoing connection of the tests takes it as its source port while its server is down between
/// a kill and a restart on the same port.
fn free_port() -> u16 {
    loop {
        let port = 20_000 + (Uuid::new_v4().as_u128() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
