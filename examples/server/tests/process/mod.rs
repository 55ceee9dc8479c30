//! The server-process checks both databases share, included by `server_process.rs` (MySQL) and
//! `server_process_postgres.rs` (PostgreSQL), each of which names its repository, test database
//! and server URL in a `backend` module.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use ticketing_core::domain::{OrderId, TicketAction};
use ticketing_core::ports::{TicketRepository, Transition};
use ticketing_server::config::Args;
use uuid::Uuid;

use crate::backend::{Repository, TestDatabase, URL_VAR, server_url};
use crate::common::{self, free_port};

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The URL of the test database `name` on the test server.
pub(crate) fn database_url(name: &str) -> String {
    let server = server_url();
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// `method url` with `body` as JSON; the status and the JSON answer (`Null` when none).
pub(crate) async fn call(
    client: &HttpClient,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call_as(client, None, method, url, body).await
}

/// [`call`] with `Authorization: Bearer <customer's token>` when `customer` is given.
pub(crate) async fn call_as(
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

/// The state of `STALLS:A:<number>` in the seat map of `event`.
pub(crate) async fn seat_state(
    client: &HttpClient,
    base: &str,
    event: Uuid,
    number: u64,
) -> String {
    let (status, map) = call(
        client,
        Method::GET,
        &format!("{base}/api/events/{event}/seats"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{map}");
    let row = &map["seated"][0]["rows"][0];
    assert_eq!(
        (&map["seated"][0]["zone"], &row["row"]),
        (&"STALLS".into(), &"A".into())
    );
    let within = |list: &str| {
        row[list]
            .as_array()
            .expect("ranges")
            .iter()
            .any(|r| (r[0].as_u64().unwrap()..=r[1].as_u64().unwrap()).contains(&number))
    };
    match (within("free"), within("sold")) {
        (true, _) => "free",
        (_, true) => "sold",
        _ => "held",
    }
    .to_owned()
}

/// A purchase over HTTP holds the seat, and a change committed behind the seat lock's back (as
/// when a process dies between the commit and its lock call) reaches the SQL seat lock through
/// the outbox relay that `run` starts, without Redis. `backends_as_expected` checks the server's
/// description of its backends.
pub(crate) async fn the_relay_repairs_the_sql_seat_lock(backends_as_expected: fn(&str) -> bool) {
    let database = TestDatabase::create(4)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database (set {URL_VAR}): {e}"));
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let url = database_url(database.name());
    let args = Args::from_flags([
        "ticketing-server",
        "--listen",
        &address.to_string(),
        "--database-url",
        &url,
        "--demo",
        "true",
        "--admin-token",
        "admin",
        "--webhook-secret",
        "whsec_test",
        "--jwt-hs256-secret",
        common::JWT_SECRET,
    ]);
    let backends = args.describe_backends();
    assert!(backends_as_expected(&backends), "{backends}");
    assert!(args.describe_backends().contains("database clock"));
    assert!(args.demo_mode() && !args.demo_payments());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ticketing_server::run(args, async move {
        let _ = stopped.await;
    }));

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{address}");
    let mut up = false;
    for _ in 0..200 {
        let request = Request::get(format!("{base}/health"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        if client
            .request(request)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not come up on {address}");
    let event: Uuid = sqlx::query_scalar("SELECT id FROM events")
        .fetch_one(database.pool())
        .await
        .expect("the demo event");

    let seat = json!([{"zone": "STALLS", "row": "A", "number": 1}]);
    let (status, order) = call_as(
        &client,
        Some("first"),
        Method::POST,
        &format!("{base}/api/tickets"),
        Some(json!({"eventId": event, "seats": seat})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(seat_state(&client, &base, event, 1).await, "held");

    // Demo mode on a real database: the page and its tokens are served, but not the simulated
    // payment, which would let anyone pay for nothing.
    let order_uuid = order["id"].as_str().unwrap().to_owned();
    let (status, _) = call(&client, Method::GET, &format!("{base}/"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, token) = call(
        &client,
        Method::POST,
        &format!("{base}/demo/token"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    for customer in [Some("first"), None] {
        let (status, refused) = call_as(
            &client,
            customer,
            Method::POST,
            &format!("{base}/demo/orders/{order_uuid}/pay"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    }
    let (_, doc) = call(&client, Method::GET, &format!("{base}/openapi.json"), None).await;
    assert!(doc["paths"]["/demo/token"].is_object());
    assert!(doc["paths"].get("/demo/orders/{orderId}/pay").is_none());

    // Cancel in the database only: the seat lock is not told.
    let order_id = OrderId::from_uuid(order["id"].as_str().unwrap().parse().unwrap());
    let repository = Repository::new(database.pool().clone());
    let cancel = Transition {
        order: order_id,
        action: TicketAction::Cancel,
        now: chrono::Utc::now(),
        payment_ref: None,
    };
    assert!(repository.transition(&cancel).await.unwrap());

    // The relay (polling every 200 ms) mirrors the cancellation into the lock; without it the
    // seat would stay held for the demo's 10-minute hold time.
    let mut state = String::new();
    for _ in 0..100 {
        state = seat_state(&client, &base, event, 1).await;
        if state == "free" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "free", "the relay did not repair the seat lock");
    let (status, again) = call_as(
        &client,
        Some("second"),
        Method::POST,
        &format!("{base}/api/tickets"),
        Some(json!({"eventId": event, "seats": seat})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops")
        .expect("the server task")
        .expect("the server ran without error");
    database.drop_database().await.unwrap();
}
