//! The whole server (`ticketing_server::run`, real flags) with `--event-sink nats`,
//! `--event-sink rabbitmq` and `--event-sink kafka`: a purchase over HTTP reaches the broker through the relay, and the
//! broker's projection keeps the read model in Redis (`--redis-url`), where the Redis stream's
//! projection keeps it. In-memory tickets; the shared NATS (`TICKETING_NATS_URL`), RabbitMQ
//! (`TICKETING_RABBITMQ_URL`) and Redis (`TICKETING_REDIS_URL`), librdkafka's mock Kafka
//! cluster, each test under a stream (topic) and key prefix of its own.

#![cfg(all(feature = "nats", feature = "rabbitmq"))]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode};
use common::free_port;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use ticketing_brokers::nats::NatsEventSink;
use ticketing_brokers::rabbitmq::RabbitEventSink;
use ticketing_brokers::testing::{
    delete_rabbit_stream, nats_client, nats_url, rabbitmq_url, test_rabbit_stream, test_stream,
};
use ticketing_core::domain::EventId;
use ticketing_core::ports::{EventSink, SalesReadModel};
use ticketing_redis::RedisSalesReadModel;
use ticketing_redis::testing::{TestRedis, connect};
use ticketing_server::config::Args;
use uuid::Uuid;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn call_as(
    client: &HttpClient,
    customer: Option<&str>,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(url);
    if let Some(customer) = customer {
        request = request.header("authorization", common::bearer(customer));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let response = client
        .request(request.body(Full::new(body)).unwrap())
        .await
        .expect("the server answers");
    let status = response.status();
    let raw = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&raw).unwrap_or(Value::Null))
}

/// Runs the server with `sink_flags` in demo mode, buys two seats of the demo event, and waits
/// until `sink` holds the purchase and the read model in Redis counts it.
async fn a_purchase_reaches_the_read_model(sink_flags: &[&str], sink: &dyn EventSink) {
    let redis = TestRedis::shared();
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut flags = vec![
        "ticketing-server".to_owned(),
        "--listen".into(),
        address.to_string(),
        "--demo".into(),
        "true".into(),
        "--redis-url".into(),
        redis.url.clone(),
        "--redis-key-prefix".into(),
        redis.prefix.clone(),
        "--jwt-hs256-secret".into(),
        common::JWT_SECRET.into(),
    ];
    flags.extend(sink_flags.iter().map(|f| (*f).to_owned()));
    let args = Args::from_flags(flags);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ticketing_server::run(args, async move {
        let _ = stopped.await;
    }));

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{address}");
    let mut config = Value::Null;
    for _ in 0..200 {
        if let Ok(response) = client
            .request(
                Request::get(format!("{base}/demo/config"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            && response.status().is_success()
        {
            let raw = response.into_body().collect().await.unwrap().to_bytes();
            config = serde_json::from_slice(&raw).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let event: Uuid = config["event"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the server did not come up on {address}"))
        .parse()
        .unwrap();
    let seats = json!([
        {"zone": "STALLS", "row": "A", "number": 1},
        {"zone": "STALLS", "row": "A", "number": 2},
    ]);
    let (status, order) = call_as(
        &client,
        Some("buyer"),
        Method::POST,
        &format!("{base}/api/tickets"),
        Some(json!({"eventId": event, "seats": seats})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");

    let model = RedisSalesReadModel::new(connect(&redis.url).await, &redis.prefix).unwrap();
    let event = EventId::from_uuid(event);
    let reached = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let published = sink.high_water_mark().await.ok().flatten().unwrap_or(0);
            let totals = model.totals(event).await.expect("totals");
            if published >= 1 && totals.pending == 2 {
                return totals;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the purchase reaches the broker and the read model");
    assert_eq!(reached.zones.len(), 1, "{reached:?}");
    let _ = stop.send(());
    server.await.expect("server task").expect("server ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_carries_the_event_stream_of_the_server() {
    let (url, stream) = (nats_url(), test_stream());
    let sink = NatsEventSink::new(nats_client(&url).await, stream.clone()).expect("sink");
    a_purchase_reaches_the_read_model(
        &[
            "--event-sink",
            "nats",
            "--nats-url",
            &url,
            "--nats-stream",
            &stream.stream,
            "--nats-subject",
            &stream.subject,
        ],
        &sink,
    )
    .await;
    sink.delete_stream().await.expect("delete the stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_carries_the_event_stream_of_the_server() {
    let (url, stream) = (rabbitmq_url(), test_rabbit_stream());
    let sink = RabbitEventSink::new(&url, stream.clone()).expect("sink");
    a_purchase_reaches_the_read_model(
        &[
            "--event-sink",
            "rabbitmq",
            "--rabbitmq-url",
            &url,
            "--rabbitmq-stream",
            &stream.stream,
        ],
        &sink,
    )
    .await;
    delete_rabbit_stream(&url, &stream).await;
}

/// Against librdkafka's mock cluster (no Kafka broker is installable here).
#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_carries_the_event_stream_of_the_server() {
    use ticketing_brokers::kafka::KafkaEventSink;
    use ticketing_brokers::testing::KafkaMock;

    let kafka = KafkaMock::start();
    let sink = KafkaEventSink::new(kafka.topic_config()).expect("sink");
    a_purchase_reaches_the_read_model(
        &[
            "--event-sink",
            "kafka",
            "--kafka-brokers",
            &kafka.brokers(),
            "--kafka-topic",
            &kafka.topic,
        ],
        &sink,
    )
    .await;
}
