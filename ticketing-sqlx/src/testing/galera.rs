//! [`PrivateGalera`]: a 3-node MariaDB Galera cluster of this test alone, on free loopback ports,
//! each node with its own data directory; every process is killed and every directory deleted on
//! drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Connection, MySqlConnection, MySqlPool, Row};
use uuid::Uuid;

use super::TestDatabase;

/// Nodes of a [`PrivateGalera`].
pub const NODES: usize = 3;

/// The Galera provider of Debian's `galera-4` package.
const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

/// The longest a node may take to start and join (state transfer included).
const JOIN_TIMEOUT: Duration = Duration::from_secs(90);

/// One `mariadbd --wsrep_on=ON` process.
struct Node {
    port: u16,
    group_port: u16,
    ist_port: u16,
    child: Option<Child>,
}

/// A private Galera cluster: [`NODES`] MariaDB servers replicating synchronously to each other
/// (multi-primary: every node takes writes). Nodes join one after the other, the later ones by a
/// `mysqldump` state transfer from the first. Root has no password.
pub struct PrivateGalera {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl PrivateGalera {
    /// Initialises three data directories, bootstraps the cluster on the first node and joins
    /// the others. Panics, naming what failed, when `mariadbd`, `mariadb-install-db` or the
    /// Galera provider (package `galera-4`) is missing, or a node does not join in time.
    pub async fn start() -> Self {
        assert!(
            Path::new(PROVIDER).exists(),
            "the Galera provider {PROVIDER} is missing (Debian package galera-4)"
        );
        let dir = std::env::temp_dir().join(format!("ticketing-galera-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the cluster's temporary directory");
        let mut cluster = Self {
            nodes: (0..NODES)
                .map(|_| Node {
                    port: listening_port(),
                    group_port: listening_port(),
                    ist_port: listening_port(),
                    child: None,
                })
                .collect(),
            dir,
        };
        for index in 0..NODES {
            cluster.install(index).await;
        }
        for index in 0..NODES {
            cluster.spawn(index, index == 0);
            cluster.wait_until_joined(index, index as u64 + 1).await;
        }
        cluster
    }

    /// `mysql://root@127.0.0.1:<port>/<database>` of node `index`.
    pub fn url(&self, index: usize, database: &str) -> String {
        format!(
            "mysql://root@127.0.0.1:{}/{database}",
            self.nodes[index].port
        )
    }

    /// A migrated test database created through node 0 (Galera replicates the DDL to every node)
    /// and a pool of `max_connections` on each node, in node order.
    pub async fn database(&self, max_connections: u32) -> (TestDatabase, Vec<MySqlPool>) {
        let db = TestDatabase::create_on(&self.url(0, "mysql"), max_connections)
            .await
            .unwrap_or_else(|e| panic!("a test database on the Galera cluster: {e}"));
        let mut pools = vec![db.pool().clone()];
        for index in 1..NODES {
            let options: MySqlConnectOptions = self
                .url(index, db.name())
                .parse()
                .expect("a valid node URL");
            let pool = MySqlPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.statement_cache_capacity(crate::STATEMENT_CACHE_CAPACITY))
                .await
                .unwrap_or_else(|e| panic!("a pool on Galera node {index}: {e}"));
            wait_for_schema(&pool, index).await;
            pools.push(pool);
        }
        (db, pools)
    }

    /// Kills node `index` like a crash (`SIGKILL`; it is not restarted).
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `wsrep_cluster_size` as node `index` sees it.
    pub async fn cluster_size(&self, index: usize) -> Option<u64> {
        let mut conn = MySqlConnection::connect(&self.url(index, "mysql"))
            .await
            .ok()?;
        let row = sqlx::query("SHOW STATUS LIKE 'wsrep_cluster_size'")
            .fetch_one(&mut conn)
            .await
            .ok()?;
        row.try_get::<String, _>(1).ok()?.parse().ok()
    }

    async fn install(&self, index: usize) {
        let datadir = self.datadir(index);
        let tmpdir = self.tmpdir(index);
        let run = tokio::task::spawn_blocking(move || {
            // A temporary directory of the node's own: bootstrap servers of other clusters (other
            // test processes) sharing /tmp have collided on their temporary table names.
            std::fs::create_dir_all(&tmpdir)?;
            Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", datadir.display()))
                .arg(format!("--tmpdir={}", tmpdir.display()))
                .args([
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ])
                .output()
        });
        let output = run
            .await
            .expect("the install task")
            .expect("mariadb-install-db on PATH (needed by the Galera tests)");
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn datadir(&self, index: usize) -> PathBuf {
        self.dir.join(format!("node{index}"))
    }

    fn tmpdir(&self, index: usize) -> PathBuf {
        self.dir.join(format!("tmp{index}"))
    }

    /// Starts node `index`; the first one bootstraps a new cluster.
    fn spawn(&mut self, index: usize, bootstrap: bool) {
        let members: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.group_port))
            .collect();
        let node = &self.nodes[index];
        let base = self.dir.join(format!("node{index}"));
        let mut command = Command::new("/usr/sbin/mariadbd");
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", base.display()))
            .arg(format!("--tmpdir={}", self.tmpdir(index).display()))
            .arg(format!("--socket={}.sock", base.display()))
            .arg(format!("--pid-file={}.pid", base.display()))
            .arg(format!("--log-error={}.err", base.display()))
            .args(["--user=root", "--bind-address=127.0.0.1"])
            .arg(format!("--port={}", node.port))
            .args([
                "--binlog_format=ROW",
                "--default_storage_engine=InnoDB",
                "--innodb_autoinc_lock_mode=2",
                "--innodb_buffer_pool_size=64M",
                "--innodb_log_file_size=48M",
                "--max_connections=300",
                "--wsrep_on=ON",
                "--wsrep_cluster_name=ticketing-test",
                "--wsrep_node_address=127.0.0.1",
                "--wsrep_sst_method=mysqldump",
                "--wsrep_sst_auth=root:",
            ])
            .arg(format!("--wsrep_provider={PROVIDER}"))
            .arg(format!("--wsrep_node_name=node{index}"))
            .arg(format!("--wsrep_cluster_address=gcomm://{}", members.join(",")))
            .arg(format!(
                "--wsrep_provider_options=gmcast.listen_addr=tcp://127.0.0.1:{};ist.recv_addr=127.0.0.1:{};gcache.size=32M",
                node.group_port, node.ist_port
            ))
            .arg(format!("--wsrep_sst_receive_address=127.0.0.1:{}", node.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if bootstrap {
            command.arg("--wsrep-new-cluster");
        }
        let child = command
            .spawn()
            .expect("/usr/sbin/mariadbd (needed by the Galera tests)");
        self.nodes[index].child = Some(child);
    }

    /// Waits until node `index` is synced in a cluster of `size` nodes; panics with the end of
    /// its error log otherwise.
    async fn wait_until_joined(&self, index: usize, size: u64) {
        let deadline = Instant::now() + JOIN_TIMEOUT;
        while Instant::now() < deadline {
            if self.cluster_size(index).await == Some(size) && self.synced(index).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let log =
            std::fs::read_to_string(self.dir.join(format!("node{index}.err"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        panic!(
            "Galera node {index} did not join a cluster of {size} within {JOIN_TIMEOUT:?}; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    async fn synced(&self, index: usize) -> bool {
        let Ok(mut conn) = MySqlConnection::connect(&self.url(index, "mysql")).await else {
            return false;
        };
        let state = sqlx::query("SHOW STATUS LIKE 'wsrep_local_state_comment'")
            .fetch_one(&mut conn)
            .await
            .ok()
            .and_then(|row| row.try_get::<String, _>(1).ok());
        state.as_deref() == Some("Synced")
    }
}

impl Drop for PrivateGalera {
    fn drop(&mut self) {
        for index in 0..NODES {
            self.kill(index);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port that is free now and outside Linux' ephemeral range (32768–60999), so that no outgoing
/// connection of the tests takes it as its source port before its node listens on it.
fn listening_port() -> u16 {
    loop {
        let port = 20_000 + (Uuid::new_v4().as_u128() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Waits until node `index` has applied the migrations node 0 committed. Galera certifies a
/// commit on every node but applies it on the others a little later, so a write sent to another
/// node right after the migration met a table without its newest column. A causal read
/// (`wsrep_sync_wait`) waits for the node to catch up with the cluster first.
async fn wait_for_schema(pool: &MySqlPool, index: usize) {
    let mut conn = pool
        .acquire()
        .await
        .unwrap_or_else(|e| panic!("a connection to Galera node {index}: {e}"));
    for statement in [
        "SET SESSION wsrep_sync_wait = 1",
        "SELECT COUNT(*) FROM _sqlx_migrations",
        "SET SESSION wsrep_sync_wait = 0",
    ] {
        sqlx::query(statement)
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("waiting for the schema on Galera node {index}: {e}"));
    }
}
