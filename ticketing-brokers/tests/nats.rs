//! NATS JetStream on the shared server (`TICKETING_NATS_URL`, default nats://127.0.0.1:4222):
//! the `EventSink` contract on `NatsEventSink`, and `NatsProjection` keeping the read model
//! through redeliveries, a replay and a model that lost its data. Every test has a stream of
//! its own, deleted when it passed.

#![cfg(feature = "nats")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ticketing_brokers::Backoff;
use ticketing_brokers::nats::{
    NatsEventSink, NatsProjection, NatsProjectionConfig, NatsStreamConfig,
};
use ticketing_brokers::testing::{nats_client, nats_url, test_stream};
use ticketing_core::domain::{OutboxEntry, OutboxKind};
use ticketing_core::memory::InMemorySalesReadModel;
use ticketing_core::ports::{EventSink, SalesReadModel};
use ticketing_core::testkit::contracts::event_sink::{EventSinkCapabilities, SinkLog, entries};

/// The sink leaves out what the stream holds and chains publishes by expected sequence, so a
/// repeat is never stored.
const CAPABILITIES: EventSinkCapabilities = EventSinkCapabilities {
    drops_duplicates: true,
};

/// Reads a test's stream message by message.
struct StreamLog {
    client: async_nats::Client,
    sink: Arc<NatsEventSink>,
}

/// Every message of `config`'s stream, as entries, in stream order.
async fn read_stream(client: &async_nats::Client, config: &NatsStreamConfig) -> Vec<OutboxEntry> {
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream(&config.stream).await.expect("the stream");
    let state = stream.info().await.expect("stream info").state.clone();
    let mut held = Vec::new();
    if state.messages == 0 {
        return held;
    }
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(message) = stream.get_raw_message(seq).await else {
            continue;
        };
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .expect("every message has a Nats-Msg-Id")
            .as_str()
            .parse()
            .expect("the id is the outbox seq");
        held.push(OutboxEntry {
            seq: id,
            event: serde_json::from_slice(&message.payload).expect("an outbox event"),
        });
    }
    held
}

#[async_trait]
impl SinkLog for StreamLog {
    async fn held(&self) -> Vec<OutboxEntry> {
        read_stream(&self.client, self.sink.config()).await
    }

    async fn lose_everything(&self) {
        self.sink.delete_stream().await.expect("delete the stream");
    }

    async fn remove(&self) {
        self.sink.delete_stream().await.expect("delete the stream");
    }
}

async fn fresh() -> (Arc<dyn EventSink>, StreamLog) {
    let client = nats_client(&nats_url()).await;
    let sink = Arc::new(NatsEventSink::new(client.clone(), test_stream()).expect("sink config"));
    (sink.clone(), StreamLog { client, sink })
}

mod contract {
    use super::*;
    ticketing_core::event_sink_contract!(fresh, CAPABILITIES);
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

/// The model a consumer should end with: `entries` applied once, in order.
async fn reference(entries: &[OutboxEntry]) -> InMemorySalesReadModel {
    let model = InMemorySalesReadModel::new();
    for entry in entries {
        model.apply(entry).await.expect("apply");
    }
    model
}

fn projection_config(stream: &NatsStreamConfig) -> NatsProjectionConfig {
    NatsProjectionConfig {
        stream: stream.clone(),
        durable: "sales".into(),
        batch_size: 16,
        fetch_wait: Duration::from_millis(100),
        ack_wait: Duration::from_secs(1),
        retry: Backoff {
            min: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        replay_after: Duration::from_millis(300),
    }
}

/// Runs rounds until the model applied `top` (bounded, so a stuck consumer fails the test).
async fn catch_up(projection: &NatsProjection, top: u64) -> (u64, u64) {
    let (mut applied, mut duplicates) = (0, 0);
    let mut replayed = false;
    tokio::time::timeout(Duration::from_secs(60), async {
        while projection.model().last_applied().await.expect("last") < top {
            let round = projection.run_once().await.expect("a round");
            applied += round.applied;
            duplicates += round.duplicates;
            replayed |= round.replayed;
            if round.gap {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the projection did not reach seq {top}"));
    assert!(!replayed, "caught up without a replay");
    (applied, duplicates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_model_is_what_was_published_also_after_redelivery() {
    let client = nats_client(&nats_url()).await;
    let stream = test_stream();
    let sink = NatsEventSink::new(client.clone(), stream.clone()).expect("sink");
    let published = sale(30);
    let top = published.last().expect("entries").seq;
    sink.publish(&published).await.expect("publish");

    // A consumer of the same durable takes the first batch and dies without acknowledging it.
    let crashed = NatsProjection::new(
        client.clone(),
        Arc::new(InMemorySalesReadModel::new()),
        projection_config(&stream),
    )
    .expect("config");
    let consumer = crashed.ensure_consumer().await.expect("consumer");
    let mut taken = consumer
        .batch()
        .max_messages(10)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .expect("fetch");
    let mut held_by_the_dead = 0;
    while let Some(message) = futures::StreamExt::next(&mut taken).await {
        message.expect("a message");
        held_by_the_dead += 1;
    }
    assert_eq!(held_by_the_dead, 10);

    // The survivor gets them once their ack wait passed (it hands the later entries back
    // meanwhile), then everything after, in order; no replay (that would hide a redelivery).
    let projection = NatsProjection::new(
        client.clone(),
        Arc::new(InMemorySalesReadModel::new()),
        NatsProjectionConfig {
            replay_after: Duration::from_secs(600),
            ..projection_config(&stream)
        },
    )
    .expect("config");
    let started = std::time::Instant::now();
    let (applied, _) = catch_up(&projection, top).await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the dead consumer's entries came back after their ack wait, not before"
    );
    assert_eq!(applied, top, "each entry applied once");
    let expected = reference(&published).await;
    let event = published[0].event.event_id;
    let model = projection.totals(event).await.expect("totals");
    assert_eq!(model, expected.totals(event).await.expect("totals"));
    assert!(
        model.sold > 0 && model.cancelled > 0 && model.pending > 0,
        "{model:?}"
    );

    // Everything delivered again (a replay) and published again: nothing changes.
    sink.publish(&published).await.expect("republish");
    projection.replay().await.expect("replay");
    let mut duplicates = 0;
    while duplicates < top {
        let round = projection.run_once().await.expect("a round");
        assert_eq!(round.applied, 0, "nothing applied twice");
        duplicates += round.duplicates;
    }
    assert_eq!(duplicates, top, "one delivery per stored message");
    assert_eq!(projection.totals(event).await.expect("totals"), model);
    sink.delete_stream().await.expect("delete the stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_lost_its_data_is_replayed_from_the_start() {
    let client = nats_client(&nats_url()).await;
    let stream = test_stream();
    let sink = NatsEventSink::new(client.clone(), stream.clone()).expect("sink");
    let published = sale(12);
    let top = published.last().expect("entries").seq;
    sink.publish(&published[..10]).await.expect("publish");
    let first = NatsProjection::new(
        client.clone(),
        Arc::new(InMemorySalesReadModel::new()),
        projection_config(&stream),
    )
    .expect("config");
    catch_up(&first, 10).await;

    // The model is gone (a new, empty one under the same durable consumer, which has
    // acknowledged ten entries): the next entry is a gap until the consumer replays.
    let fresh = NatsProjection::new(
        client.clone(),
        Arc::new(InMemorySalesReadModel::new()),
        projection_config(&stream),
    )
    .expect("config");
    sink.publish(&published[10..])
        .await
        .expect("publish the rest");
    let mut replayed = false;
    tokio::time::timeout(Duration::from_secs(30), async {
        while fresh.model().last_applied().await.expect("last") < top {
            let round = fresh.run_once().await.expect("a round");
            replayed |= round.replayed;
            if round.gap {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await
    .expect("the projection replays and catches up");
    assert!(replayed, "caught up by a replay");
    let event = published[0].event.event_id;
    assert_eq!(
        fresh.totals(event).await.expect("totals"),
        reference(&published)
            .await
            .totals(event)
            .await
            .expect("totals")
    );
    sink.delete_stream().await.expect("delete the stream");
}
