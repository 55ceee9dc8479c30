//! A Kafka "broker" for tests: librdkafka's mock cluster (a Kafka-protocol broker inside
//! librdkafka, on a loopback port), behind a TCP proxy of the test's own so that the cluster can
//! be replaced by an empty one, as a broker that lost its data would be.
//!
//! The mock cluster advertises its broker at the proxy's address (librdkafka's
//! `rd_kafka_mock_broker_set_host_port`, which `rdkafka`'s safe `MockCluster` does not offer:
//! hence the two `unsafe` calls below), so every client connection goes through the proxy, and
//! [`MockKafka::lose_everything`] points the proxy at a new, empty cluster and cuts the open
//! connections.

use std::ffi::CString;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer};
use ticketing_brokers::kafka::KafkaTopicConfig;
use ticketing_brokers::testing::unique;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The only broker of every mock cluster here.
const BROKER: i32 = 1;

/// One mock cluster, kept alive by the client that owns it.
struct Cluster {
    owner: BaseProducer,
    /// Where the mock broker really listens.
    listens: SocketAddr,
}

impl Cluster {
    /// A one-broker mock cluster advertising its broker at `advertised`, with `topic` (one
    /// partition) created.
    fn start(advertised: SocketAddr, topic: &str) -> Self {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("log_level", "3")
            .create()
            .expect("a client owning a mock cluster");
        let listens = {
            let mock = owner
                .client()
                .mock_cluster()
                .expect("the client's mock cluster");
            mock.create_topic(topic, 1, 1)
                .expect("a topic of one partition");
            mock.bootstrap_servers()
                .parse()
                .expect("the mock broker's address")
        };
        let host = CString::new(advertised.ip().to_string()).expect("an address");
        // SAFETY: the mock cluster belongs to `owner`, which is alive (and kept alive in the
        // returned value); set_host_port only copies `host` and takes the cluster's lock.
        unsafe {
            let cluster =
                rdkafka::bindings::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
            assert!(!cluster.is_null(), "the client has a mock cluster");
            rdkafka::bindings::rd_kafka_mock_broker_set_host_port(
                cluster,
                BROKER,
                host.as_ptr(),
                i32::from(advertised.port()),
            );
        }
        Self { owner, listens }
    }

    fn mock(&self) -> MockCluster<'_, DefaultProducerContext> {
        self.owner
            .client()
            .mock_cluster()
            .expect("the client's mock cluster")
    }
}

/// A mock Kafka cluster of one broker behind a proxy, with one topic of one partition. Dropped,
/// it stops the proxy and the cluster.
pub struct MockKafka {
    /// The topic (one partition).
    pub topic: String,
    proxy: SocketAddr,
    cluster: Arc<Mutex<Cluster>>,
    connections: Arc<Mutex<JoinSet<()>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl MockKafka {
    /// A cluster with a topic of its own.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a proxy port");
        let proxy = listener.local_addr().expect("the proxy's address");
        let topic = unique("test.events.");
        let cluster = Arc::new(Mutex::new(Cluster::start(proxy, &topic)));
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let accepting = tokio::spawn(accept(listener, cluster.clone(), connections.clone()));
        Self {
            topic,
            proxy,
            cluster,
            connections,
            accepting,
        }
    }

    /// The bootstrap servers (the proxy).
    pub fn brokers(&self) -> String {
        self.proxy.to_string()
    }

    /// The topic's settings, with a short timeout.
    pub fn topic_config(&self) -> KafkaTopicConfig {
        KafkaTopicConfig {
            brokers: self.brokers(),
            topic: self.topic.clone(),
            timeout: std::time::Duration::from_secs(5),
        }
    }

    /// Replaces the cluster by an empty one (the topic created again, empty) and cuts every
    /// open connection, as a broker restarted without its log would.
    pub fn lose_everything(&self) {
        let fresh = Cluster::start(self.proxy, &self.topic);
        let old = std::mem::replace(&mut *self.cluster.lock().unwrap(), fresh);
        self.connections.lock().unwrap().abort_all();
        drop(old);
    }

    /// Creates another topic of `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.cluster
            .lock()
            .unwrap()
            .mock()
            .create_topic(topic, partitions, 1)
            .expect("a topic");
    }

    /// The broker stops answering: its connections are closed and new ones refused.
    pub fn broker_down(&self) {
        self.cluster
            .lock()
            .unwrap()
            .mock()
            .broker_down(BROKER)
            .expect("broker down");
    }

    /// The broker answers again, its log as it was.
    pub fn broker_up(&self) {
        self.cluster
            .lock()
            .unwrap()
            .mock()
            .broker_up(BROKER)
            .expect("broker up");
    }
}

impl Drop for MockKafka {
    fn drop(&mut self) {
        self.accepting.abort();
        self.connections.lock().unwrap().abort_all();
    }
}

async fn accept(
    listener: TcpListener,
    cluster: Arc<Mutex<Cluster>>,
    connections: Arc<Mutex<JoinSet<()>>>,
) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        let target = cluster.lock().unwrap().listens;
        let mut connections = connections.lock().unwrap();
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            if let Ok(mut broker) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
            }
        });
    }
}
