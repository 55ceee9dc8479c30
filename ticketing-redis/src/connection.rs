//! [`RedisConnection`]: one Redis server or a Redis Cluster, behind one handle.
//!
//! Every key this crate builds carries a hash tag (`{ev:<event>}` for a seat lock, `{events}`
//! for the event stream), so every script and every multi-key command touches one cluster slot.
//! That is what lets the same code run on one server and on a cluster: redis-rs' cluster
//! connection routes each command to the primary owning its slot and follows `MOVED`/`ASK`
//! redirections and failovers by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};
use ticketing_core::{Error, Result};

use crate::error::RedisLockError;

/// Timeouts of a [`RedisConnection`]. `Default`: 1 s to connect, 500 ms per response (redis-rs'
/// own defaults for one server), 3 s per command on a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisConnectionConfig {
    /// Longest wait for a TCP connection (and its handshake) to one node.
    pub connection_timeout: Duration,
    /// Longest wait for one reply. A consumer that blocks on `XREADGROUP … BLOCK` needs more than
    /// its block time.
    pub response_timeout: Duration,
    /// Cluster only: the longest a command may take in all, across its retries while the
    /// cluster fails over (a replica is promoted after `cluster-node-timeout`). A buyer is
    /// better served by a quick `Unavailable` (and a retry) than by a long wait.
    pub cluster_overall_timeout: Duration,
}

impl Default for RedisConnectionConfig {
    fn default() -> Self {
        Self {
            connection_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
            cluster_overall_timeout: Duration::from_secs(3),
        }
    }
}

/// A reconnecting, multiplexed connection to one Redis server or to a Redis Cluster.
///
/// Cheap to clone: clones share the underlying connections. Build it with
/// [`RedisConnection::connect`], or wrap a connection you configured yourself with `From`.
#[derive(Clone)]
pub struct RedisConnection(Inner);

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    /// Built by us: renewed from its client when a node is lost.
    Cluster(Arc<ClusterHandle>),
    /// Given to us ready-made: used as it is.
    GivenCluster(ClusterConnection),
}

/// A cluster connection that is replaced by a fresh one (new topology from the seeds) when
/// commands fail for lack of a node, at most once per [`RENEW_INTERVAL`].
///
/// redis-rs (1.8) refreshes its slot map on `MOVED` replies. When the primary of a slot dies,
/// no node answers `MOVED` for that slot until a command reaches the promoted replica, and under
/// load the client kept routing the slot to the dead node: every command waited for its
/// ceiling, also after the failover (docs/DESIGN.md, "What the code taught us").
struct ClusterHandle {
    client: ClusterClient,
    current: std::sync::RwLock<ClusterConnection>,
    renewed: std::sync::Mutex<Instant>,
}

/// The shortest time between two renewals of a cluster connection.
const RENEW_INTERVAL: Duration = Duration::from_millis(500);

impl ClusterHandle {
    fn connection(&self) -> ClusterConnection {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Opens a new connection and makes it the current one, unless another renewal ran less
    /// than [`RENEW_INTERVAL`] ago. A failed attempt leaves the current connection in place.
    async fn renew(&self) {
        {
            let mut renewed = self.renewed.lock().unwrap_or_else(|e| e.into_inner());
            if renewed.elapsed() < RENEW_INTERVAL {
                return;
            }
            *renewed = Instant::now();
        }
        match self.client.get_async_connection().await {
            Ok(fresh) => {
                tracing::info!("renewed the Redis Cluster connection after a node failure");
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the Redis Cluster connection"),
        }
    }
}

/// Whether `e` says a node is gone (so the slot map may be stale), not that a command failed.
fn node_lost(e: &RedisError) -> bool {
    e.is_timeout()
        || e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_cluster() {
            "cluster"
        } else {
            "single"
        };
        f.debug_tuple("RedisConnection").field(&kind).finish()
    }
}

impl RedisConnection {
    /// Connects to `nodes`: one URL (`redis://127.0.0.1:6379`) is one server; several URLs
    /// separated by commas (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`) are seed nodes of a
    /// Redis Cluster, whose other nodes are discovered. Use [`RedisConnection::connect_cluster`]
    /// for a cluster known by a single seed.
    ///
    /// A malformed URL is [`Error::Config`]; an unreachable server is
    /// [`Error::Unavailable`].
    pub async fn connect(nodes: &str, config: RedisConnectionConfig) -> Result<Self> {
        let urls = split_nodes(nodes)?;
        match urls.as_slice() {
            [single] => Self::connect_single(single, config).await,
            _ => Self::connect_cluster(&urls, config).await,
        }
    }

    /// Connects to one Redis server at `url`.
    pub async fn connect_single(url: &str, config: RedisConnectionConfig) -> Result<Self> {
        let client = open_client(url)?;
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connection_timeout))
            .set_response_timeout(Some(config.response_timeout));
        let conn = ConnectionManager::new_with_config(client, settings)
            .await
            .map_err(RedisLockError::from)?;
        Ok(Self(Inner::Single(conn)))
    }

    /// Connects to the Redis Cluster that `seeds` belong to (one reachable seed is enough).
    pub async fn connect_cluster(seeds: &[&str], config: RedisConnectionConfig) -> Result<Self> {
        let infos = seeds
            .iter()
            .map(|url| node_info(url))
            .collect::<Result<Vec<_>>>()?;
        // redis-rs retries up to 16 times with waits growing to minutes by default; a buyer
        // wants an answer within a failover, so the waits stay short and the total is bounded.
        let client = ClusterClientBuilder::new(infos)
            .connection_timeout(config.connection_timeout)
            .response_timeout(config.response_timeout)
            .overall_response_timeout(Some(config.cluster_overall_timeout))
            .retries(12)
            .min_retry_wait(50)
            .max_retry_wait(1_000)
            .tcp_settings(TcpSettings::default().set_nodelay(true))
            .build()
            .map_err(|e| Error::config("redis_url", e.to_string()))?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(RedisLockError::from)?;
        Ok(Self(Inner::Cluster(Arc::new(ClusterHandle {
            client,
            current: std::sync::RwLock::new(conn),
            renewed: std::sync::Mutex::new(Instant::now()),
        }))))
    }

    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.0, Inner::Cluster(_) | Inner::GivenCluster(_))
    }
}

/// The URLs of a comma-separated node list; an empty list or entry is [`Error::Config`].
fn split_nodes(nodes: &str) -> Result<Vec<&str>> {
    let urls: Vec<&str> = nodes.split(',').map(str::trim).collect();
    if urls.iter().any(|url| url.is_empty()) {
        return Err(Error::config(
            "redis_url",
            "expected one URL, or several separated by commas, none empty",
        ));
    }
    Ok(urls)
}

/// One node's connection info, sending each command at once (`TCP_NODELAY`).
///
/// Our connections multiplex the commands of many tasks. With Nagle's algorithm on (redis-rs'
/// default), a command written while an earlier one is unacknowledged waits for that ACK, which
/// the peer may delay by up to 200 ms: on loopback this made about one purchase in ten take
/// 200 ms. A malformed URL is [`Error::Config`].
fn node_info(url: &str) -> Result<redis::ConnectionInfo> {
    Ok(url
        .into_connection_info()
        .map_err(|e| Error::config("redis_url", e.to_string()))?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true)))
}

/// A client for one node at `url`, with `TCP_NODELAY` (see [`node_info`]).
pub(crate) fn open_client(url: &str) -> Result<redis::Client> {
    redis::Client::open(node_info(url)?).map_err(|e| Error::config("redis_url", e.to_string()))
}

impl From<ConnectionManager> for RedisConnection {
    fn from(conn: ConnectionManager) -> Self {
        Self(Inner::Single(conn))
    }
}

impl From<ClusterConnection> for RedisConnection {
    fn from(conn: ClusterConnection) -> Self {
        Self(Inner::GivenCluster(conn))
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Single(conn) => conn.req_packed_command(cmd),
            Inner::GivenCluster(conn) => conn.req_packed_command(cmd),
            Inner::Cluster(handle) => {
                let handle = handle.clone();
                Box::pin(async move {
                    let reply = handle.connection().req_packed_command(cmd).await;
                    if let Err(e) = &reply
                        && node_lost(e)
                    {
                        handle.renew().await;
                    }
                    reply
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::GivenCluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(handle) => {
                let handle = handle.clone();
                Box::pin(async move {
                    let mut conn = handle.connection();
                    let reply = conn.req_packed_commands(pipeline, offset, count).await;
                    if let Err(e) = &reply
                        && node_lost(e)
                    {
                        handle.renew().await;
                    }
                    reply
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Single(conn) => conn.get_db(),
            Inner::GivenCluster(conn) => conn.get_db(),
            Inner::Cluster(handle) => handle.connection().get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_list_is_split_on_commas_and_refuses_empty_entries() {
        assert_eq!(split_nodes("redis://a:1").unwrap(), vec!["redis://a:1"]);
        assert_eq!(
            split_nodes("redis://a:1, redis://b:2").unwrap(),
            vec!["redis://a:1", "redis://b:2"]
        );
        for bad in ["", "redis://a:1,", ",redis://a:1"] {
            assert!(
                matches!(
                    split_nodes(bad),
                    Err(Error::Config {
                        setting: "redis_url",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_malformed_url_is_a_config_error() {
        assert!(matches!(
            node_info("http://nope"),
            Err(Error::Config { .. })
        ));
    }
}
