//! Chaos on RabbitMQ: a private RabbitMQ node (its own node name, loopback ports, data in a
//! temporary directory) is restarted mid-sale; the relay and the projection ride it out, and
//! the read model ends equal to the repository. Never touches the shared broker.
//!
//! The restart is graceful (`rabbitmqctl stop`, then the node started again on the same data):
//! after a SIGKILL and a restart, RabbitMQ 3.10.8 refused every publish to and read of the
//! stream ("home node … is down or inaccessible") for the 400 s tried (see docs/DESIGN.md).

#![cfg(feature = "rabbitmq")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ticketing_brokers::Backoff;
use ticketing_brokers::rabbitmq::{RabbitEventSink, RabbitProjection, RabbitProjectionConfig};
use ticketing_brokers::testing::{PrivateRabbit, test_rabbit_stream};
use ticketing_core::memory::InMemorySalesReadModel;
use ticketing_core::ports::{OutboxStore, SalesReadModel};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_read_model_equals_the_repository_after_a_broker_restart_mid_sale() {
    tokio::time::timeout(Duration::from_secs(300), scenario())
        .await
        .expect("the chaos scenario ends within five minutes");
}

async fn scenario() {
    let mut broker = PrivateRabbit::start().await;
    let w = world().await;
    let stream = test_rabbit_stream();
    let sink = Arc::new(
        RabbitEventSink::connect(&broker.url(), stream.clone())
            .await
            .expect("sink"),
    );
    let model = Arc::new(InMemorySalesReadModel::new());
    let projection = Arc::new(
        RabbitProjection::new(
            &broker.url(),
            model.clone(),
            RabbitProjectionConfig {
                stream,
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
    let sent_at_stop;
    // Restart the broker while the sale goes on.
    let second_half = {
        let fixture_orders = sale(&w.fixture, 1, 4, 10);
        let restart = async {
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
            let at = std::time::Instant::now();
            broker.restart().await;
            eprintln!("the broker was back after {:?}", at.elapsed());
            sent
        };
        let (orders, sent) = tokio::join!(fixture_orders, restart);
        sent_at_stop = sent;
        orders
    };
    orders.extend(second_half);
    orders.extend(sale(&w.fixture, 2, 4, 10).await);

    let top = converge(&w.repo, model.as_ref()).await;
    relaying.stop().await;
    consumer.stop().await;
    assert!(
        0 < sent_at_stop && sent_at_stop < top,
        "restarted mid-stream: {sent_at_stop} of {top} entries sent"
    );
    eprintln!(
        "relay {:?}, projection failed rounds {}",
        relay.stats(),
        projection.failed_rounds()
    );
    assert!(
        relay.stats().failures > 0 || projection.failed_rounds() > 0,
        "the restart was noticed"
    );
    assert_eq!(model.last_applied().await.expect("last"), top);
    assert_eq!(
        model.totals(w.fixture.event.id()).await.expect("totals"),
        repository_totals(&w.fixture, &w.repo, &orders).await,
        "read model vs repository"
    );
}
