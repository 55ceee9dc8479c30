//! Chaos on NATS: a private `nats-server` (JetStream, file store in a temporary directory, a free
//! loopback port) is killed mid-sale and started again; the relay and the projection ride it
//! out, and the read model ends equal to the repository. Never touches the shared server.

#![cfg(feature = "nats")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ticketing_brokers::Backoff;
use ticketing_brokers::nats::{NatsEventSink, NatsProjection, NatsProjectionConfig};
use ticketing_brokers::testing::{PrivateNats, nats_client, test_stream};
use ticketing_core::memory::InMemorySalesReadModel;
use ticketing_core::ports::{OutboxStore, SalesReadModel};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_read_model_equals_the_repository_after_a_server_restart_mid_sale() {
    let mut server = PrivateNats::start().await;
    let w = world().await;
    let stream = test_stream();
    let sink = Arc::new(
        NatsEventSink::new(nats_client(&server.url()).await, stream.clone()).expect("sink"),
    );
    let model = Arc::new(InMemorySalesReadModel::new());
    let projection = Arc::new(
        NatsProjection::new(
            nats_client(&server.url()).await,
            model.clone(),
            NatsProjectionConfig {
                stream,
                durable: "sales".into(),
                batch_size: 16,
                fetch_wait: Duration::from_millis(100),
                ack_wait: Duration::from_secs(2),
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
    let sent_at_kill;
    // Kill the server while the sale goes on; start it again with its store a moment later.
    let second_half = {
        let fixture_orders = sale(&w.fixture, 1, 4, 10);
        let restart = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let sent = w.repo.sent_up_to().await.expect("cursor");
            server.kill();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            server.restart().await;
            sent
        };
        let (orders, sent) = tokio::join!(fixture_orders, restart);
        sent_at_kill = sent;
        orders
    };
    orders.extend(second_half);
    orders.extend(sale(&w.fixture, 2, 4, 10).await);

    let top = converge(&w.repo, model.as_ref()).await;
    relaying.stop().await;
    consumer.stop().await;
    assert!(
        0 < sent_at_kill && sent_at_kill < top,
        "killed mid-stream: {sent_at_kill} of {top} entries sent"
    );
    // The client buffers while it reconnects, so a short outage may cost no failed round.
    eprintln!(
        "relay {:?}, projection failed rounds {}",
        relay.stats(),
        projection.failed_rounds()
    );
    let state = sink.stream_state().await.expect("stream state");
    assert_eq!(state.messages, top, "one message per outbox entry");
    assert_eq!(model.last_applied().await.expect("last"), top);
    assert_eq!(
        model.totals(w.fixture.event.id()).await.expect("totals"),
        repository_totals(&w.fixture, &w.repo, &orders).await,
        "read model vs repository"
    );
}
