//! Chaos on Kafka, against librdkafka's mock cluster: its broker goes down mid-sale (connections
//! closed, new ones refused) and comes back later with its log, once within the producer's
//! delivery timeout and once beyond it; the relay and the projection ride it out, and the read
//! model ends equal to the repository, with one record per outbox entry.

#![cfg(feature = "kafka")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::kafka::MockKafka;
use common::*;
use ticketing_brokers::Backoff;
use ticketing_brokers::kafka::{KafkaEventSink, KafkaProjection, KafkaProjectionConfig};
use ticketing_core::memory::InMemorySalesReadModel;
use ticketing_core::ports::{OutboxStore, SalesReadModel};

/// A sale with the broker down for `outage` in its middle; the relay's failed rounds.
async fn a_sale_with_an_outage(outage: Duration) -> u64 {
    let kafka = MockKafka::start().await;
    let w = world().await;
    let sink = Arc::new(
        KafkaEventSink::connect(kafka.topic_config())
            .await
            .expect("sink"),
    );
    let model = Arc::new(InMemorySalesReadModel::new());
    let projection = Arc::new(
        KafkaProjection::new(
            model.clone(),
            KafkaProjectionConfig {
                topic: kafka.topic_config(),
                batch_size: 16,
                fetch_wait: Duration::from_millis(100),
                retry: Backoff {
                    min: Duration::from_millis(20),
                    max: Duration::from_millis(500),
                },
                replay_after: Duration::from_secs(600),
            },
        )
        .expect("projection"),
    );
    let relay = relay(&w.repo, sink.clone());
    let consumer = {
        let projection = projection.clone();
        spawn(|stopped| async move {
            projection
                .run(async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    let relaying = run_relay(&relay);

    let mut orders = sale(&w.fixture, 0, 4, 10).await;
    let sent_at_down;
    // The broker goes down while the sale goes on, and comes back a moment later.
    let second_half = {
        let fixture_orders = sale(&w.fixture, 1, 4, 10);
        let outage = async {
            // Once the relay published part of the sale.
            let sent = tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    let sent = w.repo.sent_up_to().await.expect("cursor");
                    if sent > 0 {
                        return sent;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .expect("the relay publishes");
            kafka.broker_down();
            tokio::time::sleep(outage).await;
            kafka.broker_up();
            sent
        };
        let (orders, sent) = tokio::join!(fixture_orders, outage);
        sent_at_down = sent;
        orders
    };
    orders.extend(second_half);
    orders.extend(sale(&w.fixture, 2, 4, 10).await);

    let top = converge(&w.repo, model.as_ref()).await;
    relaying.stop().await;
    consumer.stop().await;
    assert!(
        0 < sent_at_down && sent_at_down < top,
        "down mid-stream: {sent_at_down} of {top} entries sent"
    );
    eprintln!(
        "relay {:?}, projection failed rounds {}",
        relay.stats(),
        projection.failed_rounds()
    );
    assert_eq!(
        sink.watermarks().await.expect("watermarks"),
        (0, top as i64),
        "one record per outbox entry"
    );
    assert_eq!(model.last_applied().await.expect("last"), top);
    assert_eq!(
        model.totals(w.fixture.event.id()).await.expect("totals"),
        repository_totals(&w.fixture, &w.repo, &orders).await,
        "read model vs repository"
    );
    relay.stats().failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_outage_is_ridden_out() {
    // Shorter than the delivery timeout (5 s): librdkafka holds the records and sends them
    // when the broker is back; a batch may just take longer.
    a_sale_with_an_outage(Duration::from_millis(1500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_long_outage_the_relay_publishes_again_without_repeats() {
    // Longer than the delivery timeout: batches fail (some of their records may be stored,
    // some not), the relay publishes them again, and the sink leaves out what the partition
    // holds.
    let failures = a_sale_with_an_outage(Duration::from_secs(8)).await;
    assert!(failures > 0, "the outage failed publishes");
}
