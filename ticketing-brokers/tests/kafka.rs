//! Kafka against librdkafka's mock cluster (no Kafka broker is installable here; see the crate
//! README for what the mock covers): the `EventSink` contract on `KafkaEventSink`, and
//! `KafkaProjection` keeping the read model through a republish, a restarted consumer and a model
//! that lost its data. Every test has a cluster and a topic of its own.

#![cfg(feature = "kafka")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::kafka::MockKafka;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use ticketing_brokers::Backoff;
use ticketing_brokers::kafka::{
    KafkaEventSink, KafkaProjection, KafkaProjectionConfig, KafkaTopicConfig, SEQ_HEADER,
};
use ticketing_core::domain::{EventId, EventTotals, OutboxEntry, OutboxKind};
use ticketing_core::memory::InMemorySalesReadModel;
use ticketing_core::ports::{Applied, EventSink, SalesReadModel};
use ticketing_core::testkit::contracts::event_sink::{EventSinkCapabilities, SinkLog, entries};

/// The sink leaves out what the partition holds.
const CAPABILITIES: EventSinkCapabilities = EventSinkCapabilities {
    drops_duplicates: true,
};

/// Every record of the partition from its start, as entries (repeats included), with the
/// record keys.
fn read_topic(config: &KafkaTopicConfig) -> Vec<(String, OutboxEntry)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        // Required by librdkafka to assign partitions; no group is joined and nothing committed.
        .set("group.id", "test.read-back")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let (_, high) = consumer
        .fetch_watermarks(&config.topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&config.topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut held = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut next = 0;
    while next < high {
        assert!(
            std::time::Instant::now() < deadline,
            "read {next} of {high} records"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("a record");
        next = message.offset() + 1;
        let seq: u64 = {
            use rdkafka::message::Headers;
            let headers = message.headers().expect("headers");
            let value = headers
                .iter()
                .find(|h| h.key == SEQ_HEADER)
                .and_then(|h| h.value)
                .expect("a seq header");
            std::str::from_utf8(value)
                .expect("ascii")
                .parse()
                .expect("the seq header is the outbox seq")
        };
        let key = String::from_utf8(message.key().expect("a key").to_vec()).expect("utf-8 key");
        held.push((
            key,
            OutboxEntry {
                seq,
                event: serde_json::from_slice(message.payload().expect("a payload"))
                    .expect("an outbox event"),
            },
        ));
    }
    held
}

/// The partition read back, and the loss of the cluster's log.
struct TopicLog(MockKafka);

#[async_trait]
impl SinkLog for TopicLog {
    async fn held(&self) -> Vec<OutboxEntry> {
        let config = self.0.topic_config();
        let held = tokio::task::spawn_blocking(move || read_topic(&config))
            .await
            .expect("read the topic");
        for (key, entry) in &held {
            assert_eq!(*key, entry.event.order_id.to_string(), "key = order id");
        }
        held.into_iter().map(|(_, entry)| entry).collect()
    }

    async fn lose_everything(&self) {
        self.0.lose_everything();
    }

    /// The cluster goes with the log.
    async fn remove(&self) {}
}

async fn fresh() -> (Arc<dyn EventSink>, TopicLog) {
    let kafka = MockKafka::start().await;
    let sink = KafkaEventSink::connect(kafka.topic_config())
        .await
        .expect("a sink of the mock cluster");
    (Arc::new(sink), TopicLog(kafka))
}

mod contract {
    use super::*;
    ticketing_core::event_sink_contract!(fresh, CAPABILITIES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_and_a_missing_or_split_topic_are_refused() {
    let kafka = MockKafka::start().await;
    for (config, setting) in [
        (
            KafkaTopicConfig {
                brokers: " ".into(),
                ..kafka.topic_config()
            },
            "brokers",
        ),
        (
            KafkaTopicConfig {
                topic: "a/b".into(),
                ..kafka.topic_config()
            },
            "topic",
        ),
        (
            KafkaTopicConfig {
                timeout: Duration::from_millis(10),
                ..kafka.topic_config()
            },
            "timeout",
        ),
    ] {
        match KafkaEventSink::new(config) {
            Err(ticketing_core::Error::Config { setting: s, .. }) => assert_eq!(s, setting),
            other => panic!("{setting}: {other:?}"),
        }
    }
    let missing = KafkaTopicConfig {
        topic: format!("{}.missing", kafka.topic),
        ..kafka.topic_config()
    };
    match KafkaEventSink::connect(missing).await {
        Err(ticketing_core::Error::Unavailable { source, .. }) => {
            assert!(source.to_string().contains("does not exist"), "{source}");
        }
        other => panic!("a missing topic: {other:?}"),
    }
    let split = KafkaTopicConfig {
        topic: format!("{}.split", kafka.topic),
        ..kafka.topic_config()
    };
    kafka.create_topic(&split.topic, 4);
    match KafkaEventSink::connect(split).await {
        Err(ticketing_core::Error::Config { setting, reason }) => {
            assert_eq!(setting, "topic");
            assert!(reason.contains("4 partitions"), "{reason}");
        }
        other => panic!("a topic of four partitions: {other:?}"),
    }
}

/// A sale's entries: `orders` reservations of two tickets, then a payment of every other order
/// and a cancellation of every third of the rest.
fn sale(orders: u64) -> Vec<OutboxEntry> {
    let mut all = entries(1..=orders);
    let mut seq = orders;
    for i in 0..orders as usize {
        let kind = match i % 3 {
            0 | 1 if i % 2 == 0 => OutboxKind::TicketPaid,
            2 => OutboxKind::TicketCancelled,
            _ => continue,
        };
        seq += 1;
        let mut change = all[i].clone();
        change.seq = seq;
        change.event.kind = kind;
        all.push(change);
    }
    all
}

async fn reference(entries: &[OutboxEntry]) -> InMemorySalesReadModel {
    let model = InMemorySalesReadModel::new();
    for entry in entries {
        model.apply(entry).await.expect("apply");
    }
    model
}

fn projection_config(topic: KafkaTopicConfig) -> KafkaProjectionConfig {
    KafkaProjectionConfig {
        topic,
        batch_size: 16,
        fetch_wait: Duration::from_millis(300),
        retry: Backoff {
            min: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        replay_after: Duration::from_millis(300),
    }
}

/// Rounds until the model applied `top`; the round totals.
async fn catch_up(projection: &KafkaProjection, top: u64) -> (u64, u64, bool) {
    let (mut applied, mut duplicates, mut replayed) = (0, 0, false);
    tokio::time::timeout(Duration::from_secs(60), async {
        while projection.model().last_applied().await.expect("last") < top {
            let round = projection.run_once().await.expect("a round");
            applied += round.applied;
            duplicates += round.duplicates;
            replayed |= round.replayed;
            if round.gap {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the projection did not reach seq {top}"));
    (applied, duplicates, replayed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_model_is_what_was_published_also_after_a_republish_and_a_restart() {
    let kafka = MockKafka::start().await;
    let sink = KafkaEventSink::connect(kafka.topic_config())
        .await
        .expect("sink");
    let published = sale(30);
    let top = published.last().expect("entries").seq;
    let half = published.len() / 2;
    sink.publish(&published[..half]).await.expect("publish");
    // The relay crashed before marking: the same batch again (from a new sink, as after a
    // restart: a new producer), then the rest.
    let restarted = KafkaEventSink::connect(kafka.topic_config())
        .await
        .expect("sink");
    restarted
        .publish(&published[..half])
        .await
        .expect("republish");
    restarted
        .publish(&published[half..])
        .await
        .expect("publish");
    assert_eq!(
        restarted.watermarks().await.expect("watermarks"),
        (0, top as i64),
        "one record per entry"
    );

    let model = Arc::new(InMemorySalesReadModel::new());
    let first = KafkaProjection::new(model.clone(), projection_config(kafka.topic_config()))
        .expect("config");
    let (applied, duplicates, replayed) = catch_up(&first, top).await;
    assert_eq!(applied, top, "each entry applied once");
    assert_eq!(duplicates, 0);
    assert!(!replayed);
    let event = published[0].event.event_id;
    let expected = reference(&published)
        .await
        .totals(event)
        .await
        .expect("totals");
    let totals = first.totals(event).await.expect("totals");
    assert_eq!(totals, expected);
    assert!(
        totals.sold > 0 && totals.cancelled > 0 && totals.pending > 0,
        "{totals:?}"
    );

    // A restarted consumer on the same model reads the partition again from its start:
    // everything is a duplicate, nothing changes.
    let again = KafkaProjection::new(model.clone(), projection_config(kafka.topic_config()))
        .expect("config");
    let round = again.run_once().await.expect("a round");
    assert_eq!(round.applied, 0, "nothing applied twice");
    assert!(round.duplicates > 0);
    assert_eq!(again.totals(event).await.expect("totals"), expected);
}

/// A read model that can lose everything, as a Redis without persistence does on a restart.
#[derive(Default)]
struct Forgetful(std::sync::Mutex<Arc<InMemorySalesReadModel>>);

impl Forgetful {
    fn current(&self) -> Arc<InMemorySalesReadModel> {
        self.0.lock().unwrap().clone()
    }

    fn lose_everything(&self) {
        *self.0.lock().unwrap() = Arc::new(InMemorySalesReadModel::new());
    }
}

#[async_trait]
impl SalesReadModel for Forgetful {
    async fn apply(&self, entry: &OutboxEntry) -> ticketing_core::Result<Applied> {
        self.current().apply(entry).await
    }

    async fn last_applied(&self) -> ticketing_core::Result<u64> {
        self.current().last_applied().await
    }

    async fn totals(&self, event: EventId) -> ticketing_core::Result<EventTotals> {
        self.current().totals(event).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_lost_its_data_is_replayed_from_the_start() {
    let kafka = MockKafka::start().await;
    let sink = KafkaEventSink::connect(kafka.topic_config())
        .await
        .expect("sink");
    let published = sale(12);
    let top = published.last().expect("entries").seq;
    sink.publish(&published[..10]).await.expect("publish");
    let model = Arc::new(Forgetful::default());
    let projection = KafkaProjection::new(model.clone(), projection_config(kafka.topic_config()))
        .expect("config");
    let (_, _, replayed) = catch_up(&projection, 10).await;
    assert!(!replayed);

    // The model forgets; the consumer reads on after offset 10, so the next entry is a gap
    // until the gap outlasts `replay_after` and the consumer goes back to the start.
    model.lose_everything();
    sink.publish(&published[10..])
        .await
        .expect("publish the rest");
    let (_, _, replayed) = catch_up(&projection, top).await;
    assert!(replayed, "caught up by reading the partition again");
    let event = published[0].event.event_id;
    assert_eq!(
        projection.totals(event).await.expect("totals"),
        reference(&published)
            .await
            .totals(event)
            .await
            .expect("totals")
    );
}
