//! The waiting room over HTTP (test (b) of issue 16): a purchase on an event with a waiting room
//! needs the customer's live admission token; a missing, malformed, tampered, expired, replayed,
//! another customer's or another event's token is refused with `403 NOT_ADMITTED` (`400` when the
//! header breaks its documented shape). Run on the in-memory waiting room, on MySQL
//! (`TICKETING_MYSQL_URL`), PostgreSQL (`TICKETING_POSTGRES_URL`) and on Redis (`TICKETING_REDIS_URL`, a key prefix per test).

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use chrono::TimeDelta;
use common::{ADMIN, TestApp, bearer, purchase};
use serde_json::{Value, json};
use ticketing_core::ports::Clock;
use ticketing_core::service::Backends;
use ticketing_redis::RedisWaitingRoom;
use ticketing_redis::testing::{TestRedis, connect};
use ticketing_sqlx::MySqlWaitingRoom;
use ticketing_sqlx::testing::TestDatabase;

fn room_path(event: &str) -> String {
    format!("/api/events/{event}/waiting-room")
}

async fn set_room(app: &TestApp, event: &str, policy: &Value) -> common::Answer {
    let auth = format!("Bearer {ADMIN}");
    app.call(
        Method::PUT,
        &format!("/api/admin/events/{event}/waiting-room"),
        Some(policy),
        &[("authorization", &auth)],
    )
    .await
}

async fn join(app: &TestApp, customer: &str, event: &str) -> Value {
    let auth = bearer(customer);
    let answer = app
        .call(
            Method::POST,
            &room_path(event),
            None,
            &[("authorization", &auth)],
        )
        .await;
    answer.expect(StatusCode::OK, None);
    answer.body
}

/// Buys `seat` of `event` as `customer`, showing `token` (if any) as `Admission-Token`.
async fn buy(
    app: &TestApp,
    customer: &str,
    event: &str,
    seat: &str,
    token: Option<&str>,
) -> common::Answer {
    let auth = bearer(customer);
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(token) = token {
        headers.push(("admission-token", token));
    }
    app.call(
        Method::POST,
        "/api/tickets",
        Some(&purchase(event.to_owned(), &[seat])),
        &headers,
    )
    .await
}

#[track_caller]
fn refused(answer: &common::Answer, reason: &str) {
    answer.expect(StatusCode::FORBIDDEN, Some("NOT_ADMITTED"));
    assert_eq!(
        answer.body["details"]["reason"],
        reason,
        "{}",
        answer.text()
    );
}

fn token_of(status: &Value) -> String {
    assert_eq!(status["state"], "admitted", "{status}");
    status["admissionToken"]
        .as_str()
        .expect("an admitted status carries the token")
        .to_owned()
}

/// A second on-sale event at the demo venue, through the admin API.
async fn second_event(app: &TestApp) -> String {
    let now = app.clock.now();
    let answer = app
        .admin_post(
            "/api/admin/events",
            &json!({
                "venueId": app.demo.venue.to_string(), "name": "Second night",
                "saleOpens": now - TimeDelta::hours(1), "saleCloses": now + TimeDelta::days(1),
                "prices": [{"zone": "STALLS", "amountMinor": 100, "currency": "EUR"}],
                "holdTimeSeconds": 600, "perCustomerLimit": 4,
            }),
        )
        .await;
    answer.expect(StatusCode::CREATED, None);
    answer.body["id"].as_str().expect("an event id").to_owned()
}

async fn bad_tokens_are_refused(app: TestApp) {
    let event = app.demo.event.to_string();
    let other = second_event(&app).await;
    let policy = json!({"mode": "concurrent", "limit": 1, "order": "fifo", "windowSeconds": 60});
    set_room(&app, &event, &policy)
        .await
        .expect(StatusCode::OK, None);
    set_room(&app, &other, &policy)
        .await
        .expect(StatusCode::OK, None);

    // Missing, or sent empty: no token either way.
    refused(
        &buy(&app, "ann", &event, "STALLS:A:1", None).await,
        "missing",
    );
    refused(
        &buy(&app, "ann", &event, "STALLS:A:1", Some("")).await,
        "missing",
    );

    // Ann is admitted at once (the cap is free); Bob waits behind her.
    let ann = token_of(&join(&app, "ann", &event).await);
    assert_eq!(
        token_of(&join(&app, "ann", &event).await),
        ann,
        "joining again keeps it"
    );
    let bob = join(&app, "bob", &event).await;
    assert_eq!(bob["state"], "waiting");
    assert_eq!(bob["position"], 1);
    assert_eq!(bob["estimatedWaitSeconds"], 60);

    // Another customer's token, another event's token, a tampered and a malformed one.
    refused(
        &buy(&app, "bob", &event, "STALLS:A:2", Some(&ann)).await,
        "foreign",
    );
    let ann_other = token_of(&join(&app, "ann", &other).await);
    refused(
        &buy(&app, "ann", &event, "STALLS:A:2", Some(&ann_other)).await,
        "foreign",
    );
    let last = ann.chars().last().unwrap();
    let tampered = format!(
        "{}{}",
        &ann[..ann.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    refused(
        &buy(&app, "ann", &event, "STALLS:A:2", Some(&tampered)).await,
        "foreign",
    );
    buy(&app, "ann", &event, "STALLS:A:2", Some("not-a-token"))
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));

    // Her own token buys, once; the replay is refused and her place under the cap goes to Bob.
    buy(&app, "ann", &event, "STALLS:A:2", Some(&ann))
        .await
        .expect(StatusCode::CREATED, None);
    refused(
        &buy(&app, "ann", &event, "STALLS:A:3", Some(&ann)).await,
        "not_admitted",
    );
    let ann_place = app.get_as("ann", &room_path(&event)).await;
    ann_place.expect(StatusCode::OK, None);
    assert_eq!(ann_place.body["state"], "notQueued");
    let bob_place = app.get_as("bob", &room_path(&event)).await;
    bob_place.expect(StatusCode::OK, None);
    let bob = token_of(&bob_place.body);

    // Expired: the window is over.
    app.clock.advance(TimeDelta::seconds(61));
    refused(
        &buy(&app, "bob", &event, "STALLS:A:4", Some(&bob)).await,
        "expired",
    );

    // Without a waiting room anyone buys again, token or not.
    let auth = format!("Bearer {ADMIN}");
    app.call(
        Method::DELETE,
        &format!("/api/admin/events/{event}/waiting-room"),
        None,
        &[("authorization", &auth)],
    )
    .await
    .expect(StatusCode::NO_CONTENT, None);
    buy(&app, "carol", &event, "STALLS:A:5", None)
        .await
        .expect(StatusCode::CREATED, None);
    assert_eq!(join(&app, "carol", &event).await["state"], "notRequired");
}

#[tokio::test]
async fn in_memory() {
    bad_tokens_are_refused(TestApp::in_memory().await).await;
}

#[tokio::test]
async fn on_mysql() {
    let database = TestDatabase::create(8)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database (set TICKETING_MYSQL_URL): {e}"));
    let room = Arc::new(MySqlWaitingRoom::new(database.pool().clone()));
    let backends = Backends::in_memory()
        .to_builder()
        .waiting_room(room)
        .build()
        .unwrap();
    bad_tokens_are_refused(TestApp::new(backends, Some(Box::new(database))).await).await;
}

#[tokio::test]
async fn on_postgres() {
    let database = ticketing_sqlx::postgres::testing::TestDatabase::create(8)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot create a test database (set TICKETING_POSTGRES_URL): {e}")
        });
    let room = Arc::new(ticketing_sqlx::postgres::PgWaitingRoom::new(
        database.pool().clone(),
    ));
    let backends = Backends::in_memory()
        .to_builder()
        .waiting_room(room)
        .build()
        .unwrap();
    bad_tokens_are_refused(TestApp::new(backends, Some(Box::new(database))).await).await;
}

#[tokio::test]
async fn on_redis() {
    let redis = TestRedis::shared();
    let room = RedisWaitingRoom::new(connect(&redis.url).await, redis.prefix.clone())
        .expect("a prefix without braces");
    let backends = Backends::in_memory()
        .to_builder()
        .waiting_room(Arc::new(room))
        .build()
        .unwrap();
    bad_tokens_are_refused(TestApp::new(backends, Some(Box::new(redis))).await).await;
}

#[tokio::test]
async fn the_policy_is_checked_and_needs_an_existing_event() {
    let app = TestApp::in_memory().await;
    let event = app.demo.event.to_string();
    let bad = json!({"mode": "concurrent", "limit": 0, "order": "fifo", "windowSeconds": 60});
    set_room(&app, &event, &bad)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    let bad = json!({"mode": "rate", "limit": 5, "order": "fifo", "windowSeconds": 0});
    set_room(&app, &event, &bad)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    let good = json!({"mode": "rate", "limit": 5, "order": "random", "windowSeconds": 60});
    set_room(&app, &uuid::Uuid::now_v7().to_string(), &good)
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    let answer = set_room(&app, &event, &good).await;
    answer.expect(StatusCode::OK, None);
    assert_eq!(answer.body, good);
    app.post(&room_path(&event), &json!({}))
        .await
        .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
}
