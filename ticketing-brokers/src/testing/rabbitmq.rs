//! RabbitMQ test support: the shared broker, a stream per test, reading a stream back, a private
//! RabbitMQ node.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use ticketing_core::domain::OutboxEntry;

use super::{free_port, unique};
use crate::rabbitmq::RabbitStreamConfig;

/// The environment variable naming the shared RabbitMQ broker.
pub const RABBITMQ_URL_VAR: &str = "TICKETING_RABBITMQ_URL";

/// The shared broker when [`RABBITMQ_URL_VAR`] is not set.
pub const RABBITMQ_DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The shared broker's URL.
pub fn rabbitmq_url() -> String {
    std::env::var(RABBITMQ_URL_VAR).unwrap_or_else(|_| RABBITMQ_DEFAULT_URL.into())
}

/// A connection to `url`; panics naming [`RABBITMQ_URL_VAR`] when the broker cannot be reached.
pub async fn rabbitmq_connection(url: &str) -> Connection {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach RabbitMQ at {url}: {e}. Start rabbitmq-server or point {RABBITMQ_URL_VAR} at one."
            )
        })
}

/// A stream of one test alone.
pub fn test_rabbit_stream() -> RabbitStreamConfig {
    RabbitStreamConfig {
        stream: unique("test.events."),
        max_length_bytes: None,
    }
}

/// Deletes the stream and its high-water queue (missing ones are fine).
pub async fn delete_rabbit_stream(url: &str, config: &RabbitStreamConfig) {
    let conn = rabbitmq_connection(url).await;
    for queue in [config.stream.clone(), config.high_water_queue()] {
        let channel = conn.create_channel().await.expect("a channel");
        // A missing queue closes the channel; the next name gets a new one.
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = conn.close(0, "done".into()).await;
}

/// Every message of the stream from its start, as entries, repeats included: read until none
/// came for `idle`.
pub async fn read_rabbit_stream(
    url: &str,
    config: &RabbitStreamConfig,
    idle: Duration,
) -> Vec<OutboxEntry> {
    let conn = rabbitmq_connection(url).await;
    let channel = conn.create_channel().await.expect("a channel");
    channel
        .basic_qos(1000, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-stream-offset".into(),
        AMQPValue::LongString("first".into()),
    );
    let mut consumer = channel
        .basic_consume(
            config.stream.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            arguments,
        )
        .await
        .expect("consume the stream");
    let mut held = Vec::new();
    while let Ok(Some(delivery)) = tokio::time::timeout(idle, consumer.next()).await {
        let delivery = delivery.expect("a delivery");
        let seq = delivery
            .properties
            .message_id()
            .as_ref()
            .expect("a message id")
            .as_str()
            .parse()
            .expect("the message id is the outbox seq");
        held.push(OutboxEntry {
            seq,
            event: serde_json::from_slice(&delivery.data).expect("an outbox event"),
        });
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    let _ = conn.close(0, "done".into()).await;
    held
}

/// A RabbitMQ node of one test alone: its own node name, AMQP and distribution ports on
/// loopback, data and logs in a temporary directory, no plugins, the machine's configuration
/// files left out. It registers with the machine's `epmd` (which RabbitMQ's own node started;
/// none is left behind). Stopped and its directory removed on drop.
pub struct PrivateRabbit {
    /// The AMQP port (127.0.0.1).
    pub port: u16,
    /// The Erlang node name, `<name>@localhost`.
    pub node: String,
    dist_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// Where Debian installs RabbitMQ's scripts (the ones in `/usr/sbin` switch to the `rabbitmq`
/// user, which cannot write the test's directory).
const RABBITMQ_BIN: &str = "/usr/lib/rabbitmq/bin";

impl PrivateRabbit {
    /// Starts a node and waits until it accepts AMQP connections (at most two minutes).
    pub async fn start() -> Self {
        let name = unique("ticketing");
        let dir = std::env::temp_dir().join(&name);
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("a temporary node directory");
        }
        std::fs::write(dir.join("rabbitmq.conf"), "").expect("an empty config file");
        std::fs::write(dir.join("rabbitmq-env.conf"), "").expect("an empty env file");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("no plugins");
        let port = free_port();
        let mut node = Self {
            port,
            dist_port: std::iter::repeat_with(free_port)
                .find(|p| *p != port)
                .expect("a second free port"),
            node: format!("{name}@localhost"),
            dir,
            child: None,
        };
        node.spawn().await;
        node
    }

    /// Its AMQP URL (guest/guest, the default vhost).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(format!("{RABBITMQ_BIN}/{program}"));
        let dir = &self.dir;
        command
            .env("HOME", dir)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    async fn spawn(&mut self) {
        let child = self
            .command("rabbitmq-server")
            .spawn()
            .expect("rabbitmq-server (needed by the RabbitMQ chaos tests)");
        self.child = Some(child);
        self.await_amqp().await;
    }

    async fn await_amqp(&self) {
        let mut last_error = String::new();
        for _ in 0..1200 {
            match Connection::connect(&self.url(), ConnectionProperties::default()).await {
                Ok(conn) => {
                    let _ = conn.close(0, "ready".into()).await;
                    return;
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "private RabbitMQ node {} did not accept AMQP on port {}: {last_error} (logs in {})",
            self.node,
            self.port,
            self.dir.join("log").display()
        );
    }

    /// Runs `rabbitmqctl -n <node> <args>` and waits for it (at most a minute).
    async fn ctl(&self, args: &[&str]) {
        let mut command = tokio::process::Command::from(self.command("rabbitmqctl"));
        command.arg("-n").arg(&self.node).args(args);
        let status = tokio::time::timeout(Duration::from_secs(60), command.status())
            .await
            .unwrap_or_else(|_| panic!("rabbitmqctl {args:?} took over a minute"))
            .expect("rabbitmqctl");
        assert!(status.success(), "rabbitmqctl {args:?}: {status}");
    }

    /// Stops the node gracefully (`rabbitmqctl stop`: queues and streams written out) and
    /// starts it again on the same ports with the same data.
    pub async fn restart(&mut self) {
        self.ctl(&["stop"]).await;
        if let Some(mut child) = self.child.take() {
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
        let _ = std::fs::remove_file(self.dir.join("pid"));
        self.spawn().await;
    }

    /// Kills the node (SIGKILL to the Erlang VM): the last resort when it does not stop. Not a
    /// chaos step: RabbitMQ 3.10 keeps a stream of a killed single node unavailable after its
    /// restart ("home node … down", for over 400 s when tried).
    fn kill(&mut self) {
        // `rabbitmq-server` runs the VM as a child of its own and writes the VM's pid to the
        // pid file; killing only the script would leave the VM running.
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
            let _ = Command::new("kill")
                .args(["-KILL", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_file(self.dir.join("pid"));
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A graceful stop first, so that the VM's helper processes go too; a kill if that
            // failed.
            let stopped = self
                .command("rabbitmqctl")
                .arg("-n")
                .arg(&self.node)
                .arg("stop")
                .status()
                .is_ok_and(|status| status.success());
            if stopped {
                let _ = child.wait();
            } else {
                self.child = Some(child);
                self.kill();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
