//! RabbitMQ on the shared broker (`TICKETING_RABBITMQ_URL`, default
//! amqp://guest:guest@127.0.0.1:5672/%2f): the `EventSink` contract on `RabbitEventSink`, and
//! `RabbitProjection` keeping the read model through a republish, a restarted consumer and a
//! model that lost its data. Every test has a stream of its own, deleted when it passed.

#![cfg(feature = "rabbitmq")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ticketing_brokers::Backoff;
use ticketing_brokers::rabbitmq::{
    RabbitEventSink, RabbitProjection, RabbitProjectionConfig, RabbitStreamConfig,
};
use ticketing_brokers::testing::{
    delete_rabbit_stream, rabbitmq_url, read_rabbit_stream, test_rabbit_stream,
};
use ticketing_core::domain::{EventId, EventTotals, OutboxEntry, OutboxKind};
use ticketing_core::memory::InMemorySalesReadModel;
use ticketing_core::ports::{Applied, EventSink, SalesReadModel};
use ticketing_core::testkit::contracts::event_sink::{EventSinkCapabilities, SinkLog, entries};

/// AMQP has no deduplication on publish: repeats are appended and consumers skip them by seq.
const CAPABILITIES: EventSinkCapabilities = EventSinkCapabilities {
    drops_duplicates: false,
};

/// Reads a test's stream from its start.
struct StreamLog {
    url: String,
    config: RabbitStreamConfig,
}

#[async_trait]
impl SinkLog for StreamLog {
    async fn held(&self) -> Vec<OutboxEntry> {
        read_rabbit_stream(&self.url, &self.config, Duration::from_millis(400)).await
    }

    async fn lose_everything(&self) {
        delete_rabbit_stream(&self.url, &self.config).await;
    }

    async fn remove(&self) {
        delete_rabbit_stream(&self.url, &self.config).await;
    }
}

async fn fresh() -> (Arc<dyn EventSink>, StreamLog) {
    let (url, config) = (rabbitmq_url(), test_rabbit_stream());
    let sink = RabbitEventSink::connect(&url, config.clone())
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ at {url} (set TICKETING_RABBITMQ_URL): {e}"));
    (Arc::new(sink), StreamLog { url, config })
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

async fn reference(entries: &[OutboxEntry]) -> InMemorySalesReadModel {
    let model = InMemorySalesReadModel::new();
    for entry in entries {
        model.apply(entry).await.expect("apply");
    }
    model
}

fn projection_config(stream: &RabbitStreamConfig) -> RabbitProjectionConfig {
    RabbitProjectionConfig {
        stream: stream.clone(),
        batch_size: 16,
        fetch_wait: Duration::from_millis(200),
        retry: Backoff {
            min: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        replay_after: Duration::from_millis(300),
    }
}

/// Rounds until the model applied `top`; the round totals.
async fn catch_up(projection: &RabbitProjection, top: u64) -> (u64, u64, bool) {
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
    let (url, stream) = (rabbitmq_url(), test_rabbit_stream());
    let sink = RabbitEventSink::connect(&url, stream.clone())
        .await
        .expect("sink");
    let published = sale(30);
    let top = published.last().expect("entries").seq;
    let half = published.len() / 2;
    sink.publish(&published[..half]).await.expect("publish");
    // The relay crashed before marking: the same batch again, then the rest.
    sink.publish(&published[..half]).await.expect("republish");
    sink.publish(&published[half..]).await.expect("publish");

    let model = Arc::new(InMemorySalesReadModel::new());
    let first =
        RabbitProjection::new(&url, model.clone(), projection_config(&stream)).expect("config");
    let (applied, duplicates, replayed) = catch_up(&first, top).await;
    assert_eq!(applied, top, "each entry applied once");
    assert_eq!(duplicates, half as u64, "the republished batch skipped");
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

    // A restarted consumer on the same model reads the stream again from its start: everything
    // is a duplicate, nothing changes.
    let restarted =
        RabbitProjection::new(&url, model.clone(), projection_config(&stream)).expect("config");
    let round = restarted.run_once().await.expect("a round");
    assert_eq!(round.applied, 0, "nothing applied twice");
    assert!(round.duplicates > 0);
    assert_eq!(restarted.totals(event).await.expect("totals"), expected);
    delete_rabbit_stream(&url, &stream).await;
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
    let (url, stream) = (rabbitmq_url(), test_rabbit_stream());
    let sink = RabbitEventSink::connect(&url, stream.clone())
        .await
        .expect("sink");
    let published = sale(12);
    let top = published.last().expect("entries").seq;
    sink.publish(&published[..10]).await.expect("publish");
    let model = Arc::new(Forgetful::default());
    let projection =
        RabbitProjection::new(&url, model.clone(), projection_config(&stream)).expect("config");
    let (_, _, replayed) = catch_up(&projection, 10).await;
    assert!(!replayed);

    // The model forgets; the consumer reads on after offset 10, so the next entry is a gap
    // until the gap outlasts `replay_after` and the consumer goes back to the start.
    model.lose_everything();
    sink.publish(&published[10..])
        .await
        .expect("publish the rest");
    let (_, _, replayed) = catch_up(&projection, top).await;
    assert!(replayed, "caught up by reading the stream again");
    let event = published[0].event.event_id;
    assert_eq!(
        projection.totals(event).await.expect("totals"),
        reference(&published)
            .await
            .totals(event)
            .await
            .expect("totals")
    );
    delete_rabbit_stream(&url, &stream).await;
}
