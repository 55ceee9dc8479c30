//! [`PrivateCluster`]: a Redis Cluster of this test alone (3 primaries, 3 replicas) on free
//! loopback ports, without persistence, stopped and deleted on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::free_port;
use crate::redis::{self, AsyncCommands};
use crate::{RedisConnection, RedisConnectionConfig};

/// Primaries of a [`PrivateCluster`]; each has one replica.
pub const PRIMARIES: usize = 3;

/// How long a node may be unreachable before its replica is promoted. Short, so a failover
/// test takes seconds, not the 15 s default.
const NODE_TIMEOUT_MS: u64 = 1_000;

/// The longest a cluster may take to form or to heal after a kill.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);

/// One cluster at a time per test process: six nodes per cluster on two cores would otherwise
/// starve each other's heartbeats into spurious failovers.
static ONE_AT_A_TIME: std::sync::LazyLock<std::sync::Arc<Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(Semaphore::new(1)));

/// One `redis-server --cluster-enabled yes` process.
struct Node {
    port: u16,
    bus_port: u16,
    child: Option<Child>,
}

/// A private Redis Cluster: [`PRIMARIES`] primaries and as many replicas, each a `redis-server`
/// on free loopback ports with its cluster state in a temporary directory. Every process is killed
/// and the directory deleted when this is dropped, also when a test panics.
pub struct PrivateCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
    _turn: OwnedSemaphorePermit,
}

impl PrivateCluster {
    /// Starts six nodes, creates the cluster with `redis-cli --cluster create` and waits until
    /// every slot is served and every replica is in sync. Panics, naming what failed, when
    /// `redis-server`/`redis-cli` are missing or the cluster does not form within a minute.
    pub async fn start() -> Self {
        let turn = ONE_AT_A_TIME
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let dir = std::env::temp_dir().join(format!("ticketing-cluster-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the cluster's temporary directory");
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
            _turn: turn,
        };
        for _ in 0..PRIMARIES * 2 {
            let (port, bus_port) = (free_port(), free_port());
            let child = cluster.spawn_node(port, bus_port);
            cluster.nodes.push(Node {
                port,
                bus_port,
                child: Some(child),
            });
        }
        for node in &cluster.nodes {
            cluster.wait_for_ping(node.port).await;
        }
        cluster.create().await;
        cluster.wait_until_healthy().await;
        cluster
    }

    /// Starts the node on `port`; its cluster state lives in `nodes-<port>.conf`, so a restarted
    /// node rejoins the cluster under its old identity.
    fn spawn_node(&self, port: u16, bus_port: u16) -> Child {
        let config_file = self.dir.join(format!("nodes-{port}.conf"));
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-port", &bus_port.to_string()])
            .arg("--cluster-config-file")
            .arg(&config_file)
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--logfile")
            .arg(self.dir.join(format!("node-{port}.log")))
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (needed by the Redis Cluster tests)")
    }

    /// `redis-cli --cluster create … --cluster-replicas 1`, bounded in time.
    async fn create(&self) {
        let addresses: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let run = tokio::task::spawn_blocking(move || {
            Command::new("redis-cli")
                .arg("--cluster")
                .arg("create")
                .args(&addresses)
                .args(["--cluster-replicas", "1", "--cluster-yes"])
                .output()
        });
        let output = tokio::time::timeout(FORM_TIMEOUT, run)
            .await
            .expect("redis-cli --cluster create did not finish within a minute")
            .expect("the redis-cli task")
            .expect("redis-cli on PATH (needed by the Redis Cluster tests)");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The seed list for [`RedisConnection::connect`]: every node, comma-separated.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A cluster connection with short timeouts, as tests want them.
    pub async fn connect(&self) -> RedisConnection {
        RedisConnection::connect(&self.seeds(), RedisConnectionConfig::default())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the private cluster: {e}"))
    }

    /// The port of the live primary that serves `key`'s slot now. Panics if none does.
    pub async fn primary_for(&self, key: &str) -> u16 {
        match self.live_primary_for(key).await {
            Some(port) => port,
            None => panic!("no live primary serves the slot of {key}"),
        }
    }

    async fn live_primary_for(&self, key: &str) -> Option<u16> {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut self.any_live_node().await)
            .await
            .expect("CLUSTER KEYSLOT");
        self.topology()
            .await
            .into_iter()
            .find_map(|(port, role, slots)| {
                let serves = slots.iter().any(|(lo, hi)| (*lo..=*hi).contains(&slot));
                (role == "master" && serves).then_some(port)
            })
    }

    /// Kills the primary serving `key`'s slot and waits (at most a minute) until its replica
    /// has taken the slot over and the cluster is healthy again. Returns (killed, promoted).
    pub async fn fail_over(&mut self, key: &str) -> (u16, u16) {
        let killed = self.primary_for(key).await;
        self.kill(killed);
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            if let Some(promoted) = self.live_primary_for(key).await
                && self.is_healthy().await
            {
                return (killed, promoted);
            }
            assert!(
                Instant::now() < deadline,
                "no replica took over the slot of {key} within a minute"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the node on `port` like a crash (nothing is saved; it is not restarted).
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port)
            && let Some(mut child) = node.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts the killed node on `port`, empty: it rejoins the cluster and becomes a replica of
    /// the primary that took its slots over. Waits until the cluster is healthy again.
    pub async fn restart(&mut self, port: u16) {
        let node = self
            .nodes
            .iter()
            .position(|n| n.port == port && n.child.is_none())
            .unwrap_or_else(|| panic!("no killed node on port {port}"));
        let child = self.spawn_node(port, self.nodes[node].bus_port);
        self.nodes[node].child = Some(child);
        self.wait_for_ping(port).await;
        self.wait_until_healthy().await;
    }

    /// Waits (at most a minute) until every live node reports `cluster_state:ok` and every live
    /// replica's link to its primary is up. Panics otherwise.
    pub async fn wait_until_healthy(&self) {
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            if self.is_healthy().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the private cluster did not become healthy within a minute"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn is_healthy(&self) -> bool {
        for port in self.live_ports() {
            let Ok(mut conn) = node_connection(port).await else {
                return false;
            };
            let info: String = match redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
            {
                Ok(info) => info,
                Err(_) => return false,
            };
            if !info.contains("cluster_state:ok") {
                return false;
            }
            let replication: String = match redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut conn)
                .await
            {
                Ok(info) => info,
                Err(_) => return false,
            };
            if replication.contains("role:slave") && !replication.contains("master_link_status:up")
            {
                return false;
            }
        }
        true
    }

    /// Deletes every key starting with `prefix` on every primary (SCAN + DEL per node: a
    /// cluster's SCAN sees one node only).
    pub async fn delete_prefix(&self, prefix: &str) {
        for (port, role, _) in self.topology().await {
            if role != "master" {
                continue;
            }
            let mut conn = node_connection(port).await.expect("connect to a primary");
            let keys = super::keys_with_prefix(&mut conn, prefix).await;
            for key in keys {
                let _: i64 = conn.del(key).await.expect("DEL test key");
            }
        }
    }

    /// Waits (at most 20 s) until the node on `port` answers; panics with the end of its log.
    async fn wait_for_ping(&self, port: u16) {
        for _ in 0..800 {
            if let Ok(mut conn) = node_connection(port).await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let log =
            std::fs::read_to_string(self.dir.join(format!("node-{port}.log"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        panic!(
            "cluster node on port {port} did not start; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    async fn any_live_node(&self) -> redis::aio::MultiplexedConnection {
        for port in self.live_ports() {
            if let Ok(conn) = node_connection(port).await {
                return conn;
            }
        }
        panic!("no node of the private cluster answers");
    }

    /// Every live node as (port, `master`/`slave`, slot ranges), from `CLUSTER NODES`.
    async fn topology(&self) -> Vec<NodeView> {
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut self.any_live_node().await)
            .await
            .expect("CLUSTER NODES");
        let live = self.live_ports();
        text.lines()
            .filter_map(parse_node_line)
            .filter(|(port, _, _)| live.contains(port))
            .collect()
    }
}

/// A node as `CLUSTER NODES` shows it: port, `master`/`slave`, the slot ranges it serves.
type NodeView = (u16, String, Vec<(i64, i64)>);

/// One `CLUSTER NODES` line: `<id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link>
/// <slot ranges…>`. Failed nodes are left out.
fn parse_node_line(line: &str) -> Option<NodeView> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let address = fields.get(1)?;
    let port = address
        .split('@')
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let flags = fields.get(2)?;
    if flags.contains("fail") {
        return None;
    }
    let role = if flags.contains("master") {
        "master"
    } else {
        "slave"
    };
    let slots = fields
        .iter()
        .skip(8)
        .filter(|s| !s.starts_with('['))
        .filter_map(|range| {
            let mut ends = range.split('-');
            let lo: i64 = ends.next()?.parse().ok()?;
            let hi = ends.next().map_or(Some(lo), |hi| hi.parse().ok())?;
            Some((lo, hi))
        })
        .collect();
    Some((port, role.to_owned(), slots))
}

async fn node_connection(port: u16) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lines_are_parsed() {
        let primary = "07c3 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 7000";
        assert_eq!(
            parse_node_line(primary),
            Some((30001, "master".into(), vec![(0, 5460), (7000, 7000)]))
        );
        let replica = "e7d1 127.0.0.1:30004@40004 slave 07c3 0 1426238316232 1 connected";
        assert_eq!(
            parse_node_line(replica),
            Some((30004, "slave".into(), vec![]))
        );
        let failed = "a1b2 127.0.0.1:30002@40002 master,fail - 0 0 2 disconnected 5461-10922";
        assert_eq!(parse_node_line(failed), None);
    }
}
