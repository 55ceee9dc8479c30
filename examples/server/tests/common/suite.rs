//! The HTTP suite every backend combination runs: each function is one test.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use chrono::TimeDelta;
use serde_json::{Value, json};
use ticketing_core::ports::Clock;

use super::{ADMIN, TestApp, assert_error_shape, purchase};

fn order_id(answer: &super::Answer) -> String {
    answer.body["id"].as_str().expect("an order id").to_owned()
}

/// The state of `seat` (`ZONE:ROW:NUMBER`) on a seat map of free and sold ranges per row.
fn seat_state(map: &Value, seat: &str) -> String {
    let mut parts = seat.split(':');
    let (zone, row, number) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
    );
    let row = map["seated"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|z| z["zone"] == zone)
        .flat_map(|z| z["rows"].as_array().unwrap())
        .find(|r| r["row"] == row)
        .unwrap_or_else(|| panic!("row of {seat} not on the map"));
    assert!(
        number >= 1 && number <= row["seats"].as_u64().unwrap(),
        "seat {seat} not on the map"
    );
    let within = |list: &str| {
        row[list]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| (r[0].as_u64().unwrap()..=r[1].as_u64().unwrap()).contains(&number))
    };
    if within("free") {
        "free"
    } else if within("sold") {
        "sold"
    } else {
        "held"
    }
    .to_owned()
}

/// Purchase → 201 with a PENDING_PAYMENT order; the ticket and order read back; the seat is held.
pub async fn purchase_creates_a_pending_order(app: TestApp) {
    let answer = app.buy("alice", &["STALLS:A:1", "STALLS:A:2"]).await;
    answer.expect(StatusCode::CREATED, None);
    let order = &answer.body;
    assert_eq!(order["status"], "PENDING_PAYMENT");
    assert_eq!(order["customerId"], "alice");
    assert_eq!(
        order["total"],
        json!({"amountMinor": 9000, "currency": "EUR"})
    );
    assert_eq!(order["tickets"].as_array().unwrap().len(), 2);
    assert!(order["expiresAt"].is_string());
    assert!(answer.headers.contains_key("x-request-id"));

    let ticket_id = order["tickets"][0]["id"].as_str().unwrap();
    let ticket = app
        .get_as("alice", &format!("/api/tickets/{ticket_id}"))
        .await;
    ticket.expect(StatusCode::OK, None);
    assert_eq!(ticket.body["orderId"], order["id"]);
    assert_eq!(
        ticket.body["seat"],
        json!({"zone": "STALLS", "row": "A", "number": 1})
    );
    assert_eq!(ticket.body["price"]["amountMinor"], 4500);

    let read = app
        .get_as("alice", &format!("/api/orders/{}", order_id(&answer)))
        .await;
    read.expect(StatusCode::OK, None);
    assert_eq!(read.body["id"], order["id"]);

    let map = app
        .get(&format!("/api/events/{}/seats", app.demo.event))
        .await;
    map.expect(StatusCode::OK, None);
    assert_eq!(seat_state(&map.body, "STALLS:A:1"), "held");
    assert_eq!(seat_state(&map.body, "STALLS:A:3"), "free");
    assert_eq!(map.body["generalAdmission"][0]["zone"], "FLOOR");
    assert_eq!(map.body["generalAdmission"][0]["remaining"], 40);
}

/// General admission: places count down; asking for more than is left is 409 SOLD_OUT.
pub async fn general_admission_sells_out(app: TestApp) {
    let event = app.demo.event.to_string();
    for i in 0..8 {
        let body = json!({"eventId": event,
            "generalAdmission": {"zone": "FLOOR", "quantity": 5}});
        app.post_as(&format!("fan{i}"), "/api/tickets", &body)
            .await
            .expect(StatusCode::CREATED, None);
    }
    let map = app.get(&format!("/api/events/{event}/seats")).await;
    assert_eq!(map.body["generalAdmission"][0]["remaining"], 0);
    let body = json!({"eventId": event,
        "generalAdmission": {"zone": "FLOOR", "quantity": 1}});
    app.post_as("late", "/api/tickets", &body)
        .await
        .expect(StatusCode::CONFLICT, Some("SOLD_OUT"));
}

/// The same seat twice → 409 SEATS_TAKEN naming the seat.
pub async fn taken_seat_is_409(app: TestApp) {
    app.buy("alice", &["STALLS:B:5"])
        .await
        .expect(StatusCode::CREATED, None);
    let answer = app.buy("bob", &["STALLS:B:4", "STALLS:B:5"]).await;
    answer.expect(StatusCode::CONFLICT, Some("SEATS_TAKEN"));
    assert_eq!(
        answer.body["details"]["seats"],
        json!([{"zone": "STALLS", "row": "B", "number": 5}])
    );
    // All or nothing: B:4 stayed free.
    app.buy("carol", &["STALLS:B:4"])
        .await
        .expect(StatusCode::CREATED, None);
}

/// Refusals of a purchase map to 400 (breaks the schema), 404, 409 and 422.
pub async fn purchase_refusals(app: TestApp) {
    // More than the per-customer limit (6) → 422.
    let seats: Vec<String> = (1..=7).map(|n| format!("STALLS:C:{n}")).collect();
    let seats: Vec<&str> = seats.iter().map(String::as_str).collect();
    app.buy("greedy", &seats)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY, Some("LIMIT_EXCEEDED"));
    // A seat the venue does not have → 422 (the request is well formed).
    let answer = app.buy("alice", &["STALLS:Z:1"]).await;
    answer.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("INCONSISTENT_REQUEST"),
    );
    assert_eq!(answer.body["details"]["field"], "seats");
    // Seats and general admission at once → 400.
    let mut body = purchase(app.demo.event.to_string(), &["STALLS:C:1"]);
    body["generalAdmission"] = json!({"zone": "FLOOR", "quantity": 1});
    app.post_as("alice", "/api/tickets", &body)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    // A customer id in the body is not the client's to choose → 400.
    let mut body = purchase(app.demo.event.to_string(), &["STALLS:C:1"]);
    body["customerId"] = json!("bob");
    app.post_as("alice", "/api/tickets", &body)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    // An unknown event → 404.
    let body = purchase(uuid::Uuid::now_v7().to_string(), &["STALLS:C:1"]);
    app.post_as("alice", "/api/tickets", &body)
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    // An event whose sale has not opened → 409 NOT_ON_SALE.
    let now = app.clock.now();
    let event = app
        .admin_post(
            "/api/admin/events",
            &json!({"venueId": app.demo.venue.to_string(), "name": "Later",
                "saleOpens": now + TimeDelta::days(1), "saleCloses": now + TimeDelta::days(2),
                "prices": [{"zone": "STALLS", "amountMinor": 100, "currency": "EUR"}],
                "holdTimeSeconds": 60, "perCustomerLimit": 2}),
        )
        .await;
    event.expect(StatusCode::CREATED, None);
    let body = purchase(event.body["id"].as_str().unwrap().into(), &["STALLS:A:1"]);
    app.post_as("alice", "/api/tickets", &body)
        .await
        .expect(StatusCode::CONFLICT, Some("NOT_ON_SALE"));
}

/// Best available: the middle of the row range, sold as one order; a keyed retry returns it; no
/// block → 409 NO_ADJACENT_SEATS; bad quantities, zones and ranges → 400 or 422.
pub async fn best_available_over_http(app: TestApp) {
    let event = app.demo.event.to_string();
    let best = |quantity: u32, rows: Value| {
        json!({"eventId": event, "bestAvailable":
            {"zone": "STALLS", "quantity": quantity, "rows": rows}})
    };
    let row_e = json!({"first": "E", "last": "E"});
    let auth = super::bearer("alice");
    let key = [("idempotency-key", "best-1"), ("authorization", &auth)];
    // The purchase, then its keyed retry.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let body = best(3, row_e.clone());
        let answer = app
            .call(Method::POST, "/api/tickets", Some(&body), &key)
            .await;
        answer.expect(StatusCode::CREATED, None);
        answers.push(answer);
    }
    let (first, again) = (&answers[0], &answers[1]);
    let mut numbers: Vec<(String, u64)> = first.body["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| {
            (
                t["seat"]["row"].as_str().unwrap().to_string(),
                t["seat"]["number"].as_u64().unwrap(),
            )
        })
        .collect();
    numbers.sort();
    assert_eq!(
        numbers,
        vec![("E".into(), 5), ("E".into(), 6), ("E".into(), 7)],
        "the middle of row E"
    );
    assert_eq!(first.body["id"], again.body["id"], "a keyed retry");
    app.call(
        Method::POST,
        "/api/tickets",
        Some(&best(2, row_e.clone())),
        &key,
    )
    .await
    .expect(StatusCode::CONFLICT, Some("IDEMPOTENCY_CONFLICT"));
    // Row E has 4 and 5 seats free side by side.
    app.post_as("bob", "/api/tickets", &best(6, row_e.clone()))
        .await
        .expect(StatusCode::CONFLICT, Some("NO_ADJACENT_SEATS"));
    app.post_as("bob", "/api/tickets", &best(0, row_e.clone()))
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    app.post_as("bob", "/api/tickets", &best(7, row_e.clone()))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY, Some("LIMIT_EXCEEDED"));
    for rows in [
        json!({"first": "E", "last": "A"}),
        json!({"first": "Z", "last": "E"}),
    ] {
        app.post_as("bob", "/api/tickets", &best(2, rows))
            .await
            .expect(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("INCONSISTENT_REQUEST"),
            );
    }
    for zone in ["FLOOR", "NOPE"] {
        let body = json!({"eventId": event, "bestAvailable": {"zone": zone, "quantity": 2}});
        app.post_as("bob", "/api/tickets", &body).await.expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INCONSISTENT_REQUEST"),
        );
    }
    let mut both = best(2, row_e);
    both["seats"] = json!([{"zone": "STALLS", "row": "A", "number": 1}]);
    app.post_as("bob", "/api/tickets", &both)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    let cheap = json!({"eventId": event, "bestAvailable":
        {"zone": "STALLS", "quantity": 2, "maxPrice": {"amountMinor": 100, "currency": "EUR"}}});
    app.post_as("bob", "/api/tickets", &cheap).await.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("INCONSISTENT_REQUEST"),
    );
}

/// Same Idempotency-Key + same request → the same order; another request → 409.
pub async fn idempotency_key_replays_and_conflicts(app: TestApp) {
    let body = purchase(app.demo.event.to_string(), &["STALLS:D:1"]);
    let auth = super::bearer("alice");
    let key = [("idempotency-key", "order-123"), ("authorization", &auth)];
    let first = app
        .call(Method::POST, "/api/tickets", Some(&body), &key)
        .await;
    first.expect(StatusCode::CREATED, None);
    let again = app
        .call(Method::POST, "/api/tickets", Some(&body), &key)
        .await;
    again.expect(StatusCode::CREATED, None);
    assert_eq!(first.body["id"], again.body["id"]);
    let other = purchase(app.demo.event.to_string(), &["STALLS:D:2"]);
    app.call(Method::POST, "/api/tickets", Some(&other), &key)
        .await
        .expect(StatusCode::CONFLICT, Some("IDEMPOTENCY_CONFLICT"));
    app.call(
        Method::POST,
        "/api/tickets",
        Some(&other),
        &[("idempotency-key", "bad key!"), ("authorization", &auth)],
    )
    .await
    .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
}

/// The whole sale: purchase → signed webhook → sold count, revenue and seat map; a replayed
/// webhook gets the same answer without a second effect.
pub async fn webhook_pays_and_replays(app: TestApp) {
    let bought = app.buy("alice", &["STALLS:E:1", "STALLS:E:2"]).await;
    bought.expect(StatusCode::CREATED, None);
    let order = order_id(&bought);
    let paid = app.webhook("evt_1", &order, "pi_1").await;
    paid.expect(StatusCode::OK, None);
    assert_eq!(paid.body["webhookId"], "evt_1");
    assert_eq!(paid.body["order"]["status"], "PAID");
    assert_eq!(paid.body["order"]["tickets"][0]["paymentReference"], "pi_1");
    assert!(!paid.headers.contains_key("x-webhook-replayed"));

    let replay = app.webhook("evt_1", &order, "pi_1").await;
    replay.expect(StatusCode::OK, None);
    assert_eq!(replay.body, paid.body, "a replay gets the same answer");
    assert_eq!(replay.headers["x-webhook-replayed"], "true");
    // The provider's retry under a new id with the same reference: same order, no change.
    let retry = app.webhook("evt_2", &order, "pi_1").await;
    retry.expect(StatusCode::OK, None);
    assert_eq!(retry.body["order"], paid.body["order"]);
    // Another reference for a paid order is a conflict.
    app.webhook("evt_3", &order, "pi_other")
        .await
        .expect(StatusCode::CONFLICT, Some("INVALID_TRANSITION"));

    let sold = app
        .get(&format!("/api/events/{}/sold-count", app.demo.event))
        .await;
    sold.expect(StatusCode::OK, None);
    assert_eq!(sold.body["soldCount"], 2);
    let revenue = app
        .get(&format!(
            "/api/venues/{}/events/{}/revenue",
            app.demo.venue, app.demo.event
        ))
        .await;
    revenue.expect(StatusCode::OK, None);
    assert_eq!(
        revenue.body["revenue"],
        json!({"amountMinor": 9000, "currency": "EUR"})
    );
    let map = app
        .get(&format!("/api/events/{}/seats", app.demo.event))
        .await;
    assert_eq!(seat_state(&map.body, "STALLS:E:1"), "sold");
    // Revenue of the event at another venue → 404.
    app.get(&format!(
        "/api/venues/{}/events/{}/revenue",
        uuid::Uuid::now_v7(),
        app.demo.event
    ))
    .await
    .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
}

/// Bad, stale and missing signatures → 401; a payment after the deadline → 409
/// PAYMENT_TOO_LATE; an unknown order → 404; a signed but malformed body → 400.
pub async fn webhook_refusals(app: TestApp) {
    let bought = app.buy("alice", &["STALLS:A:7"]).await;
    let order = order_id(&bought);
    let body = json!({
        "id": "evt_x", "orderId": order, "paymentReference": "pi_x",
        "amountMinor": bought.body["total"]["amountMinor"], "currency": "EUR",
    })
    .to_string();
    let now = app.clock.now().timestamp();
    let secret = ticketing_server::webhook::WebhookSecret::new(super::SECRET);
    let wrong = ticketing_server::webhook::WebhookSecret::new("not-the-secret");
    for signature in [
        wrong.sign(now, body.as_bytes()),
        secret.sign(now - 301, body.as_bytes()),
        secret.sign(now + 301, body.as_bytes()),
        secret.sign(now, b"another body"),
        format!("t={now}"),
        "garbage".to_owned(),
    ] {
        app.signed_webhook(body.clone(), &signature)
            .await
            .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
    }
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/payments/webhook")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.clone()))
        .unwrap();
    app.send(request)
        .await
        .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
    // Within tolerance is fine: the order is still pending, so nothing was paid by the refusals.
    let check = app.get_as("alice", &format!("/api/orders/{order}")).await;
    assert_eq!(check.body["status"], "PENDING_PAYMENT");

    let signed_garbage = r#"{"id":"evt_y","orderId":"nope","paymentReference":"pi"}"#.to_owned();
    let sig = secret.sign(now, signed_garbage.as_bytes());
    app.signed_webhook(signed_garbage, &sig)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    // The same fields as an array, in order: serde would read it; the contract says object.
    let as_array = json!([
        "evt_a",
        order,
        "pi_a",
        bought.body["total"]["amountMinor"],
        "EUR"
    ])
    .to_string();
    let sig = secret.sign(now, as_array.as_bytes());
    app.signed_webhook(as_array, &sig)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    app.webhook("evt_z", &uuid::Uuid::now_v7().to_string(), "pi_z")
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));

    // The payment window is 10 minutes.
    app.clock.advance(TimeDelta::minutes(11));
    let late = app.webhook("evt_late", &order, "pi_late").await;
    late.expect(StatusCode::CONFLICT, Some("PAYMENT_TOO_LATE"));
    assert!(late.body["details"]["deadline"].is_string());
    // Replaying the late webhook gets the same refusal.
    let again = app.webhook("evt_late", &order, "pi_late").await;
    again.expect(StatusCode::CONFLICT, Some("PAYMENT_TOO_LATE"));
    assert_eq!(again.headers["x-webhook-replayed"], "true");
}

/// A webhook with the wrong amount is refused (409 PAYMENT_MISMATCH) and listed as a refund due;
/// the order's payments show every notification; reporting the refund sent takes it off the
/// list, once.
pub async fn payments_ledger_over_http(app: TestApp) {
    let bought = app.buy("alice", &["STALLS:B:3"]).await;
    let order = order_id(&bought);
    let total = bought.body["total"]["amountMinor"].as_i64().expect("total");
    app.webhook_paying("evt_short", &order, "pi_short", total - 1, "EUR")
        .await
        .expect(StatusCode::CONFLICT, Some("PAYMENT_MISMATCH"));
    let still = app.get_as("alice", &format!("/api/orders/{order}")).await;
    assert_eq!(still.body["status"], "PENDING_PAYMENT");
    app.clock.advance(TimeDelta::seconds(1));
    app.webhook("evt_ok", &order, "pi_ok")
        .await
        .expect(StatusCode::OK, None);

    let due = app.admin_get("/api/admin/refunds-due").await;
    due.expect(StatusCode::OK, None);
    let due = due.body.as_array().expect("a list").clone();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0]["reference"], "pi_short");
    assert_eq!(due[0]["outcome"], "AMOUNT_MISMATCH");
    assert_eq!(due[0]["refundDue"], true);
    assert_eq!(due[0]["amount"]["amountMinor"], total - 1);

    let payments = app
        .admin_get(&format!("/api/admin/orders/{order}/payments"))
        .await;
    payments.expect(StatusCode::OK, None);
    let outcomes: Vec<&str> = payments
        .body
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, vec!["AMOUNT_MISMATCH", "PAID"]);

    let refunded = app
        .admin_post("/api/admin/payments/pi_short/refunded", &json!({}))
        .await;
    refunded.expect(StatusCode::OK, None);
    assert!(refunded.body["refundedAt"].is_string());
    app.admin_post("/api/admin/payments/pi_short/refunded", &json!({}))
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    app.admin_post("/api/admin/payments/pi_ok/refunded", &json!({}))
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    let none = app.admin_get("/api/admin/refunds-due").await;
    assert_eq!(none.body, json!([]));
    app.get("/api/admin/refunds-due")
        .await
        .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
}

/// A provider's notification carries more than the fields this server reads (event types, flags,
/// nested objects): the payment goes through all the same.
pub async fn webhook_accepts_unknown_fields(app: TestApp) {
    let bought = app.buy("alice", &["STALLS:A:9"]).await;
    let order = order_id(&bought);
    let body = json!({
        "id": "evt_extra",
        "orderId": order,
        "paymentReference": "pi_extra",
        "amountMinor": bought.body["total"]["amountMinor"],
        "currency": bought.body["total"]["currency"],
        "type": "payment_intent.succeeded",
        "livemode": false,
        "created": 1_900_000_000,
        "data": {"object": {"amount": 4500, "currency": "eur"}}
    })
    .to_string();
    let signature = ticketing_server::webhook::WebhookSecret::new(super::SECRET)
        .sign(app.clock.now().timestamp(), body.as_bytes());
    let paid = app.signed_webhook(body, &signature).await;
    paid.expect(StatusCode::OK, None);
    assert_eq!(paid.body["order"]["status"], "PAID", "{}", paid.text());
}

/// Cancel frees the seats; cancelling a paid order is 409 INVALID_TRANSITION; refund (admin)
/// frees a paid order's seats.
pub async fn cancel_and_refund(app: TestApp) {
    let bought = app.buy("alice", &["STALLS:D:9"]).await;
    let order = order_id(&bought);
    let cancelled = app
        .post_as("alice", &format!("/api/orders/{order}/cancel"), &json!({}))
        .await;
    cancelled.expect(StatusCode::OK, None);
    assert_eq!(cancelled.body["status"], "CANCELLED");
    let map = app
        .get(&format!("/api/events/{}/seats", app.demo.event))
        .await;
    assert_eq!(seat_state(&map.body, "STALLS:D:9"), "free");
    app.call(
        Method::POST,
        &format!("/api/orders/{order}/cancel"),
        None,
        &[("authorization", &super::bearer("alice"))],
    )
    .await
    .expect(StatusCode::OK, None);

    let bought = app.buy("bob", &["STALLS:D:9"]).await;
    bought.expect(StatusCode::CREATED, None);
    let order = order_id(&bought);
    app.webhook("evt_pay", &order, "pi_pay")
        .await
        .expect(StatusCode::OK, None);
    app.call(
        Method::POST,
        &format!("/api/orders/{order}/cancel"),
        None,
        &[("authorization", &super::bearer("bob"))],
    )
    .await
    .expect(StatusCode::CONFLICT, Some("INVALID_TRANSITION"));
    app.call(
        Method::POST,
        &format!("/api/admin/orders/{order}/refund"),
        None,
        &[],
    )
    .await
    .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
    let auth = format!("Bearer {ADMIN}");
    let refunded = app
        .call(
            Method::POST,
            &format!("/api/admin/orders/{order}/refund"),
            None,
            &[("authorization", &auth)],
        )
        .await;
    refunded.expect(StatusCode::OK, None);
    assert_eq!(refunded.body["status"], "REFUNDED");
    let map = app
        .get(&format!("/api/events/{}/seats", app.demo.event))
        .await;
    assert_eq!(seat_state(&map.body, "STALLS:D:9"), "free");
    app.post_as(
        "bob",
        &format!("/api/orders/{}/cancel", uuid::Uuid::now_v7()),
        &json!({}),
    )
    .await
    .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
}

/// A customer extends an unpaid order's deadline by the event's hold time, twice within the
/// 30-minute cap, then gets 409 HOLD_NOT_EXTENDED with the reason; another customer's order is
/// 404; the sweep leaves the order alone until its new deadline; an expired or a paid order is
/// refused.
pub async fn extend_hold_over_http(app: TestApp) {
    let bought = app.buy("alice", &["STALLS:C:11"]).await;
    bought.expect(StatusCode::CREATED, None);
    let order = order_id(&bought);
    let deadline = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a deadline"))
            .expect("RFC 3339")
            .with_timezone(&chrono::Utc)
    };
    let first_deadline = deadline(&bought.body["expiresAt"]);
    let path = format!("/api/orders/{order}/extend");
    let first = app.post_as("alice", &path, &json!({})).await;
    first.expect(StatusCode::OK, None);
    assert_eq!(first.body["extensions"], 1, "{}", first.text());
    assert_eq!(first.body["extensionsLeft"], 1);
    let extended = deadline(&first.body["expiresAt"]);
    assert_eq!(extended, first_deadline + TimeDelta::minutes(10));
    assert_eq!(deadline(&first.body["order"]["expiresAt"]), extended);
    app.post_as("bob", &path, &json!({}))
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));

    // Past the old deadline the sweep leaves it alone; the order is still the customer's.
    app.clock.advance(TimeDelta::minutes(11));
    assert_eq!(app.state.tickets().expire_due().await.unwrap(), 0);
    let second = app.post_as("alice", &path, &json!({})).await;
    second.expect(StatusCode::OK, None);
    assert_eq!(second.body["extensions"], 2);
    assert_eq!(second.body["extensionsLeft"], 0);
    let capped = app.post_as("alice", &path, &json!({})).await;
    capped.expect(StatusCode::CONFLICT, Some("HOLD_NOT_EXTENDED"));
    assert_eq!(
        capped.body["details"]["reason"],
        "cap_reached",
        "{}",
        capped.text()
    );
    let map = app
        .get(&format!("/api/events/{}/seats", app.demo.event))
        .await;
    assert_eq!(seat_state(&map.body, "STALLS:C:11"), "held");

    // At the new deadline it is refused as expired, before and after the sweep.
    app.clock.advance(TimeDelta::minutes(20));
    let expired = app.post_as("alice", &path, &json!({})).await;
    expired.expect(StatusCode::CONFLICT, Some("HOLD_NOT_EXTENDED"));
    assert_eq!(expired.body["details"]["reason"], "expired");
    assert_eq!(app.state.tickets().expire_due().await.unwrap(), 1);
    let swept = app.post_as("alice", &path, &json!({})).await;
    assert_eq!(
        swept.body["details"]["reason"],
        "expired",
        "{}",
        swept.text()
    );

    // A paid order has no deadline to move.
    let bought = app.buy("carol", &["STALLS:C:12"]).await;
    let paid = order_id(&bought);
    app.webhook("evt_extend_paid", &paid, "pi_extend_paid")
        .await
        .expect(StatusCode::OK, None);
    let refused = app
        .post_as("carol", &format!("/api/orders/{paid}/extend"), &json!({}))
        .await;
    refused.expect(StatusCode::CONFLICT, Some("HOLD_NOT_EXTENDED"));
    assert_eq!(refused.body["details"]["reason"], "not_pending");
    app.post_as(
        "carol",
        &format!("/api/orders/{}/extend", uuid::Uuid::now_v7()),
        &json!({}),
    )
    .await
    .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
}

/// The expiry sweep expires unpaid orders after their deadline and frees the seats.
pub async fn sweep_expires_unpaid_orders(app: TestApp) {
    let bought = app.buy("alice", &["STALLS:E:12"]).await;
    let order = order_id(&bought);
    app.clock.advance(TimeDelta::minutes(11));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(ticketing_server::app::sweep(
        app.state.clone(),
        std::time::Duration::from_millis(20),
        stopped,
    ));
    let mut status = Value::Null;
    for _ in 0..200 {
        status = app
            .get_as("alice", &format!("/api/orders/{order}"))
            .await
            .body["status"]
            .clone();
        if status == "EXPIRED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    sweeper.await.unwrap();
    assert_eq!(status, "EXPIRED");
    let map = app
        .get(&format!("/api/events/{}/seats", app.demo.event))
        .await;
    assert_eq!(seat_state(&map.body, "STALLS:E:12"), "free");
    let metrics = app.get("/metrics").await;
    assert!(
        metrics
            .text()
            .contains("ticketing_expiry_sweeps_total{result=\"ok\"}")
    );
    assert!(metrics.text().contains("ticketing_expired_orders_total 1"));
}

/// Admin routes need the bearer token; they create venues and events and refuse bad layouts.
pub async fn admin_routes(app: TestApp) {
    let venue = json!({"name": "Club", "zones": [
        {"code": "MAIN", "name": "Main", "kind": "seated", "rows": [{"label": "1", "seats": 3}]},
        {"code": "PIT", "name": "Pit", "kind": "generalAdmission", "capacity": 10}]});
    app.post("/api/admin/venues", &venue)
        .await
        .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
    app.call(
        Method::POST,
        "/api/admin/venues",
        Some(&venue),
        &[("authorization", "Bearer nope")],
    )
    .await
    .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
    let created = app.admin_post("/api/admin/venues", &venue).await;
    created.expect(StatusCode::CREATED, None);
    assert_eq!(created.body["zones"][1]["capacity"], 10);
    let venue_id = created.body["id"].as_str().unwrap().to_owned();
    app.get(&format!("/api/venues/{venue_id}"))
        .await
        .expect(StatusCode::OK, None);

    let now = app.clock.now();
    let event = json!({"venueId": venue_id, "name": "Gig",
        "saleOpens": now - TimeDelta::minutes(1), "saleCloses": now + TimeDelta::days(1),
        "prices": [{"zone": "MAIN", "amountMinor": 3000, "currency": "EUR"},
                   {"zone": "PIT", "amountMinor": 2000, "currency": "EUR"}],
        "holdTimeSeconds": 300, "perCustomerLimit": 4});
    let created = app.admin_post("/api/admin/events", &event).await;
    created.expect(StatusCode::CREATED, None);
    let event_id = created.body["id"].as_str().unwrap().to_owned();
    let read = app.get(&format!("/api/events/{event_id}")).await;
    read.expect(StatusCode::OK, None);
    assert_eq!(read.body["holdTimeSeconds"], 300);
    let body = purchase(event_id.clone(), &["MAIN:1:3"]);
    app.post_as("dora", "/api/tickets", &body)
        .await
        .expect(StatusCode::CREATED, None);

    // A seated zone without rows breaks the schema (400); a zone priced twice is a rule no
    // schema states (422); an unknown venue is 404.
    let bad = json!({"name": "Bad", "zones": [{"code": "X", "name": "X", "kind": "seated"}]});
    app.admin_post("/api/admin/venues", &bad)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    let mut twice = event.clone();
    twice["prices"] = json!([{"zone": "MAIN", "amountMinor": 1, "currency": "EUR"},
                             {"zone": "MAIN", "amountMinor": 2, "currency": "EUR"}]);
    app.admin_post("/api/admin/events", &twice).await.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("INCONSISTENT_REQUEST"),
    );
    let mut elsewhere = event.clone();
    elsewhere["venueId"] = json!(uuid::Uuid::now_v7().to_string());
    app.admin_post("/api/admin/events", &elsewhere)
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
}

/// One relay pass over what the outbox holds after `cursor`, through the sinks the server's relay
/// runs after its event sink (seat-lock repair, then the waiting list's offers).
async fn relay_pass(app: &TestApp, cursor: &mut u64) {
    use ticketing_core::ports::EventSink;
    let backends = app.state.backends();
    let entries = backends
        .tickets()
        .outbox_after(*cursor, 10_000)
        .await
        .expect("outbox");
    let sinks = ticketing_server::event_stream::repair_sinks(
        backends,
        &ticketing_core::service::ServiceConfig::default(),
        ticketing_core::service::WaitingListConfig::default(),
    )
    .expect("sinks");
    assert_eq!(sinks.len(), 2, "the app has a waiting list");
    ticketing_core::service::FanOutSink::new(sinks)
        .publish(&entries)
        .await
        .expect("relay pass");
    *cursor = entries.last().map_or(*cursor, |e| e.seq);
}

/// The waiting list over HTTP: bounds on the body (400), a zone the event does not sell (422),
/// join (201) and join again (200, the same entry), another customer's entry is 404; a paid
/// ticket is refunded, one relay pass offers a seat of its zone to the entry (GET shows the
/// offer's order, pending, with its seat and deadline), the customer pays it with the usual
/// webhook and the next pass marks the entry SERVED; leaving a waiting entry makes it LEFT.
pub async fn waiting_list_over_http(app: TestApp) {
    let event = app.demo.event;
    let join = format!("/api/events/{event}/waiting-list");
    let mut cursor = app
        .state
        .backends()
        .tickets()
        .outbox_head()
        .await
        .expect("outbox head")
        .unwrap_or(0);
    for body in [
        json!({"partySize": 0}),
        json!({"partySize": 101}),
        json!({"partySize": 1.5}),
        json!({"zone": "", "partySize": 1}),
        json!({"partySize": 1, "extra": true}),
    ] {
        let answer = app.post_as("carol", &join, &body).await;
        answer.expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
        assert_error_shape(&answer);
    }
    app.post_as("carol", &join, &json!({"zone": "NOPE", "partySize": 1}))
        .await
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INCONSISTENT_REQUEST"),
        );
    let joined = app
        .post_as("carol", &join, &json!({"zone": "STALLS", "partySize": 1}))
        .await;
    joined.expect(StatusCode::CREATED, None);
    assert_eq!(joined.body["state"], "WAITING");
    assert_eq!(joined.body["partySize"], 1);
    let entry = joined.body["id"].as_str().expect("entry id").to_owned();
    let again = app.post_as("carol", &join, &json!({"partySize": 2})).await;
    again.expect(StatusCode::OK, None);
    assert_eq!(
        again.body["id"],
        entry.as_str(),
        "one open entry per customer"
    );
    app.get_as("dave", &format!("/api/waiting-list/{entry}"))
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    let dave = app
        .post_as("dave", &join, &json!({"zone": "STALLS", "partySize": 1}))
        .await;
    dave.expect(StatusCode::CREATED, None);
    let dave = dave.body["id"].as_str().unwrap().to_owned();
    let left = app
        .call(
            Method::DELETE,
            &format!("/api/waiting-list/{dave}"),
            None,
            &[("authorization", &super::bearer("dave"))],
        )
        .await;
    left.expect(StatusCode::OK, None);
    assert_eq!(left.body["state"], "LEFT");

    let bought = app.buy("bob", &["STALLS:E:5"]).await;
    bought.expect(StatusCode::CREATED, None);
    let order = order_id(&bought);
    app.webhook("evt_wl_pay", &order, "pi_wl_pay")
        .await
        .expect(StatusCode::OK, None);
    relay_pass(&app, &mut cursor).await;
    let auth = format!("Bearer {ADMIN}");
    app.call(
        Method::POST,
        &format!("/api/admin/orders/{order}/refund"),
        None,
        &[("authorization", &auth)],
    )
    .await
    .expect(StatusCode::OK, None);
    relay_pass(&app, &mut cursor).await;
    let offered = app
        .get_as("carol", &format!("/api/waiting-list/{entry}"))
        .await;
    offered.expect(StatusCode::OK, None);
    assert_eq!(offered.body["state"], "OFFERED", "{}", offered.text());
    let offer = &offered.body["offer"];
    assert_eq!(offer["status"], "PENDING_PAYMENT");
    assert_eq!(offer["customerId"], "carol");
    assert_eq!(offer["tickets"].as_array().map(Vec::len), Some(1));
    assert_eq!(offer["tickets"][0]["zone"], "STALLS");
    assert!(offer["expiresAt"].is_string());
    let offer_id = offer["id"].as_str().unwrap().to_owned();
    app.webhook("evt_wl_offer", &offer_id, "pi_wl_offer")
        .await
        .expect(StatusCode::OK, None);
    relay_pass(&app, &mut cursor).await;
    let served = app
        .get_as("carol", &format!("/api/waiting-list/{entry}"))
        .await;
    assert_eq!(served.body["state"], "SERVED", "{}", served.text());
    assert_eq!(served.body["offer"]["status"], "PAID");
    assert_eq!(
        app.get_as("dave", &format!("/api/waiting-list/{dave}"))
            .await
            .body["state"],
        "LEFT",
        "who left is offered nothing"
    );
}

/// Vouchers over HTTP: an admin creates a percent voucher of one use; a purchase with it pays
/// half, a second buyer is `409 VOUCHER_USED_UP`, the list shows the use, a cancellation gives
/// it back, the discounted total pays; unknown codes and malformed bodies are refused; a hidden
/// zone is off the public event and map and sold with a zone-access voucher.
pub async fn vouchers_over_http(app: TestApp) {
    let now = app.clock.now();
    let event = app.demo.event.to_string();
    let vouchers = format!("/api/admin/events/{event}/vouchers");
    let half = json!({"code": "HALF", "kind": "PERCENT", "basisPoints": 5000,
        "maxUses": 1, "maxPerCustomer": 1,
        "validFrom": now - TimeDelta::minutes(1), "validUntil": now + TimeDelta::days(1)});
    app.post(&vouchers, &half)
        .await
        .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
    let created = app.admin_post(&vouchers, &half).await;
    created.expect(StatusCode::CREATED, None);
    assert_eq!(created.body["uses"], 0);
    assert_eq!(created.body["kind"], "PERCENT");
    app.admin_post(&vouchers, &half).await.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("INCONSISTENT_REQUEST"),
    );
    let mut mixed = half.clone();
    mixed["kind"] = json!("AMOUNT");
    app.admin_post(&vouchers, &mixed)
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));

    let with = |seat: &str, code: &str| {
        let mut body = purchase(event.clone(), &[seat]);
        body["voucher"] = json!(code);
        body
    };
    let bought = app
        .post_as("alice", "/api/tickets", &with("STALLS:E:1", "HALF"))
        .await;
    bought.expect(StatusCode::CREATED, None);
    assert_eq!(bought.body["total"]["amountMinor"], 2250, "half of 45.00");
    let alice_order = order_id(&bought);
    app.post_as("bob", "/api/tickets", &with("STALLS:E:2", "HALF"))
        .await
        .expect(StatusCode::CONFLICT, Some("VOUCHER_USED_UP"));
    app.post_as("bob", "/api/tickets", &with("STALLS:E:2", "NOPE"))
        .await
        .expect(StatusCode::CONFLICT, Some("VOUCHER_UNKNOWN"));
    let listed = app.admin_get(&vouchers).await;
    listed.expect(StatusCode::OK, None);
    assert_eq!(listed.body[0]["code"], "HALF");
    assert_eq!(listed.body[0]["uses"], 1);

    app.post_as(
        "alice",
        &format!("/api/orders/{alice_order}/cancel"),
        &json!({}),
    )
    .await
    .expect(StatusCode::OK, None);
    assert_eq!(app.admin_get(&vouchers).await.body[0]["uses"], 0);
    let bob = app
        .post_as("bob", "/api/tickets", &with("STALLS:E:2", "HALF"))
        .await;
    bob.expect(StatusCode::CREATED, None);
    let bob_order = order_id(&bob);
    app.webhook("evt_half", &bob_order, "pi_half")
        .await
        .expect(StatusCode::OK, None);
    let paid = app.get_as("bob", &format!("/api/orders/{bob_order}")).await;
    assert_eq!(paid.body["status"], "PAID", "the discounted total pays");

    // A hidden zone: off the public event and map, sold with a zone-access voucher.
    let venue = json!({"name": "Club", "zones": [
        {"code": "MAIN", "name": "Main", "kind": "seated", "rows": [{"label": "1", "seats": 3}]},
        {"code": "VIP", "name": "Vip", "kind": "seated", "rows": [{"label": "1", "seats": 2}]}]});
    let venue = app.admin_post("/api/admin/venues", &venue).await;
    let hidden = json!({"venueId": venue.body["id"], "name": "Presale",
        "saleOpens": now - TimeDelta::minutes(1), "saleCloses": now + TimeDelta::days(1),
        "prices": [{"zone": "MAIN", "amountMinor": 3000, "currency": "EUR"},
                   {"zone": "VIP", "amountMinor": 9000, "currency": "EUR"}],
        "holdTimeSeconds": 300, "perCustomerLimit": 4, "hiddenZones": ["VIP"]});
    let created = app.admin_post("/api/admin/events", &hidden).await;
    created.expect(StatusCode::CREATED, None);
    assert_eq!(created.body["hiddenZones"], json!(["VIP"]));
    let presale = created.body["id"].as_str().unwrap().to_owned();
    let public = app.get(&format!("/api/events/{presale}")).await;
    assert_eq!(public.body["prices"].as_array().unwrap().len(), 1);
    assert!(public.body.get("hiddenZones").is_none());
    let map = app.get(&format!("/api/events/{presale}/seats")).await;
    assert!(
        map.body["seated"]
            .as_array()
            .unwrap()
            .iter()
            .all(|z| z["zone"] != "VIP"),
        "a hidden zone is off the public map"
    );
    app.get(&format!("/api/events/{presale}/zones/VIP/seats"))
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    let access = json!({"code": "VIP-ACCESS", "kind": "ZONE_ACCESS", "zone": "VIP",
        "maxUses": 5, "maxPerCustomer": 1,
        "validFrom": now - TimeDelta::minutes(1), "validUntil": now + TimeDelta::days(1)});
    app.admin_post(&format!("/api/admin/events/{presale}/vouchers"), &access)
        .await
        .expect(StatusCode::CREATED, None);
    let mut vip = purchase(presale.clone(), &["VIP:1:1"]);
    app.post_as("carol", "/api/tickets", &vip).await.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("INCONSISTENT_REQUEST"),
    );
    vip["voucher"] = json!("VIP-ACCESS");
    let sold = app.post_as("carol", "/api/tickets", &vip).await;
    sold.expect(StatusCode::CREATED, None);
    assert_eq!(sold.body["total"]["amountMinor"], 9000);
}

/// Price tiers over HTTP: an event with two tiers on a general-admission zone; the public event
/// shows the places each tier has left; an order spanning the tiers pays each ticket's tier
/// price, and the zone's price after the last tier; a cancellation gives its places back; tiers
/// on an unpriced zone, in another currency or dearer than the zone are `422`, a tier of size 0
/// is `400`.
pub async fn price_tiers_over_http(app: TestApp) {
    let now = app.clock.now();
    let venue = json!({"name": "Field", "zones": [
        {"code": "LAWN", "name": "Lawn", "kind": "generalAdmission", "capacity": 50},
        {"code": "STAND", "name": "Stand", "kind": "seated", "rows": [{"label": "1", "seats": 3}]}]});
    let venue = app.admin_post("/api/admin/venues", &venue).await;
    venue.expect(StatusCode::CREATED, None);
    let event = |tiers: serde_json::Value| {
        json!({"venueId": venue.body["id"], "name": "Early birds",
            "saleOpens": now - TimeDelta::minutes(1), "saleCloses": now + TimeDelta::days(1),
            "prices": [{"zone": "LAWN", "amountMinor": 5000, "currency": "EUR"}],
            "holdTimeSeconds": 300, "perCustomerLimit": 10, "priceTiers": tiers})
    };
    let tiers = json!([{"zone": "LAWN", "tiers": [
        {"size": 2, "amountMinor": 3000, "currency": "EUR"},
        {"size": 2, "amountMinor": 4000, "currency": "EUR"}]}]);
    let created = app.admin_post("/api/admin/events", &event(tiers)).await;
    created.expect(StatusCode::CREATED, None);
    assert_eq!(created.body["priceTiers"][0]["placesLeft"], 2);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let places =
        |n: u32| json!({"eventId": id, "generalAdmission": {"zone": "LAWN", "quantity": n}});

    let bought = app.post_as("alice", "/api/tickets", &places(1)).await;
    bought.expect(StatusCode::CREATED, None);
    assert_eq!(bought.body["total"]["amountMinor"], 3000);
    let spanning = app.post_as("bob", "/api/tickets", &places(4)).await;
    spanning.expect(StatusCode::CREATED, None);
    assert_eq!(
        spanning.body["total"]["amountMinor"],
        3000 + 2 * 4000 + 5000,
        "1 at tier 1, 2 at tier 2, 1 at the zone's price"
    );
    let public = app.get(&format!("/api/events/{id}")).await;
    public.expect(StatusCode::OK, None);
    let left: Vec<_> = public.body["priceTiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tier"].clone(), t["placesLeft"].clone()))
        .collect();
    assert_eq!(left, vec![(json!(1), json!(0)), (json!(2), json!(0))]);

    app.post_as(
        "alice",
        &format!("/api/orders/{}/cancel", order_id(&bought)),
        &json!({}),
    )
    .await
    .expect(StatusCode::OK, None);
    let public = app.get(&format!("/api/events/{id}")).await;
    assert_eq!(public.body["priceTiers"][0]["placesLeft"], 1);
    let again = app.post_as("carol", "/api/tickets", &places(1)).await;
    again.expect(StatusCode::CREATED, None);
    assert_eq!(
        again.body["total"]["amountMinor"], 3000,
        "the place came back"
    );

    let unpriced = json!([{"zone": "STAND", "tiers": [
        {"size": 1, "amountMinor": 1000, "currency": "EUR"}]}]);
    app.admin_post("/api/admin/events", &event(unpriced))
        .await
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INCONSISTENT_REQUEST"),
        );
    let dollars = json!([{"zone": "LAWN", "tiers": [
        {"size": 1, "amountMinor": 1000, "currency": "USD"}]}]);
    app.admin_post("/api/admin/events", &event(dollars))
        .await
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INCONSISTENT_REQUEST"),
        );
    let dearer = json!([{"zone": "LAWN", "tiers": [
        {"size": 1, "amountMinor": 5001, "currency": "EUR"}]}]);
    app.admin_post("/api/admin/events", &event(dearer))
        .await
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INCONSISTENT_REQUEST"),
        );
    let empty = json!([{"zone": "LAWN", "tiers": [
        {"size": 0, "amountMinor": 1000, "currency": "EUR"}]}]);
    app.admin_post("/api/admin/events", &event(empty))
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
}

/// Channel-reserved seats over HTTP: an admin keeps three seats for `BOX` (the key is answered
/// once); the public is refused one (`409 SEATS_TAKEN`) and the map shows them taken; a wrong key
/// is `403 CHANNEL_KEY_INVALID`; the channel buys one with its key; a release of one seat lets the
/// public buy it, a repeat releases nothing, a release of the rest frees the last one; the list
/// counts; bad bodies and unknown channels are refused.
pub async fn channels_over_http(app: TestApp) {
    let event = app.demo.event.to_string();
    let channels = format!("/api/admin/events/{event}/channels");
    let release = format!("{channels}/BOX/release");
    let seat = |n: u32| json!({"zone": "STALLS", "row": "D", "number": n});
    let body = json!({"code": "BOX", "seats": [seat(1), seat(2), seat(3)]});
    app.post(&channels, &body)
        .await
        .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
    let created = app.admin_post(&channels, &body).await;
    created.expect(StatusCode::CREATED, None);
    assert_eq!(created.body["reserved"], 3);
    let key = created.body["key"].as_str().expect("the key").to_owned();
    app.admin_post(&channels, &body).await.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("INCONSISTENT_REQUEST"),
    );
    app.admin_post(&channels, &json!({"code": "EMPTY", "seats": []}))
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    app.admin_post(
        &channels,
        &json!({"code": "TWICE", "seats": [seat(5), seat(5)]}),
    )
    .await
    .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));

    app.buy("alice", &["STALLS:D:1"])
        .await
        .expect(StatusCode::CONFLICT, Some("SEATS_TAKEN"));
    let map = app
        .get(&format!("/api/events/{event}/zones/STALLS/seats"))
        .await;
    map.expect(StatusCode::OK, None);
    for kept in ["STALLS:D:1", "STALLS:D:2", "STALLS:D:3"] {
        assert_eq!(
            seat_state(&map.body, kept),
            "sold",
            "a kept seat is taken for the public"
        );
    }
    assert_eq!(seat_state(&map.body, "STALLS:D:4"), "free");
    let with = |seats: &[&str], code: &str, key: &str| {
        let mut body = purchase(event.clone(), seats);
        body["channel"] = json!({"code": code, "key": key});
        body
    };
    app.post_as(
        "bob",
        "/api/tickets",
        &with(&["STALLS:D:1"], "BOX", &"x".repeat(32)),
    )
    .await
    .expect(StatusCode::FORBIDDEN, Some("CHANNEL_KEY_INVALID"));
    app.post_as(
        "bob",
        "/api/tickets",
        &with(&["STALLS:D:1"], "BOX", "short"),
    )
    .await
    .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    app.post_as("bob", "/api/tickets", &with(&["STALLS:D:1"], "BOX", &key))
        .await
        .expect(StatusCode::CREATED, None);

    let released = app.admin_post(&release, &json!({"seats": [seat(2)]})).await;
    released.expect(StatusCode::OK, None);
    assert_eq!(released.body["released"], json!([seat(2)]));
    let again = app.admin_post(&release, &json!({"seats": [seat(2)]})).await;
    again.expect(StatusCode::OK, None);
    assert_eq!(again.body["released"], json!([]));
    app.buy("carol", &["STALLS:D:2"])
        .await
        .expect(StatusCode::CREATED, None);
    app.buy("dave", &["STALLS:D:3"])
        .await
        .expect(StatusCode::CONFLICT, Some("SEATS_TAKEN"));
    let rest = app.admin_post(&release, &json!({})).await;
    rest.expect(StatusCode::OK, None);
    assert_eq!(rest.body["released"], json!([seat(1), seat(3)]));
    app.buy("dave", &["STALLS:D:3"])
        .await
        .expect(StatusCode::CREATED, None);
    let listed = app.admin_get(&channels).await;
    listed.expect(StatusCode::OK, None);
    assert_eq!(
        listed.body,
        json!([{"code": "BOX", "reserved": 0, "released": 3}])
    );
    app.admin_post(&format!("{channels}/NOBODY/release"), &json!({}))
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    app.admin_post(&release, &json!({"seats": [seat(9)]}))
        .await
        .expect(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INCONSISTENT_REQUEST"),
        );
}

/// The seat map lists free and sold seats as ranges per row; one zone's map has that zone only;
/// a zone the event does not sell is 404, a malformed zone code 400.
pub async fn seat_maps_are_ranges_and_one_zone_at_a_time(app: TestApp) {
    app.buy("alice", &["STALLS:A:2", "STALLS:A:3"])
        .await
        .expect(StatusCode::CREATED, None);
    let event = app.demo.event;
    let map = app.get(&format!("/api/events/{event}/seats")).await;
    map.expect(StatusCode::OK, None);
    let row = &map.body["seated"][0]["rows"][0];
    assert_eq!(row["row"], "A");
    let seats = row["seats"].as_u64().unwrap();
    assert_eq!(row["free"], json!([[1, 1], [4, seats]]));
    assert_eq!(row["sold"], json!([]));

    let stalls = app
        .get(&format!("/api/events/{event}/zones/STALLS/seats"))
        .await;
    stalls.expect(StatusCode::OK, None);
    assert_eq!(stalls.body["seated"].as_array().unwrap().len(), 1);
    assert_eq!(stalls.body["seated"][0], map.body["seated"][0]);
    assert_eq!(stalls.body["generalAdmission"], json!([]));
    let floor = app
        .get(&format!("/api/events/{event}/zones/FLOOR/seats"))
        .await;
    floor.expect(StatusCode::OK, None);
    assert_eq!(floor.body["seated"], json!([]));
    assert_eq!(floor.body["generalAdmission"], map.body["generalAdmission"]);
    app.get(&format!("/api/events/{event}/zones/NOPE/seats"))
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    app.get(&format!("/api/events/{event}/zones/a%20b/seats"))
        .await
        .expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
}

/// A client that holds the current map gets `304` for its ETag, and the map again once a seat
/// changes; a client that accepts gzip gets the same map gzipped.
pub async fn seat_map_revalidates_with_its_etag(app: TestApp) {
    let path = format!("/api/events/{}/seats", app.demo.event);
    let first = app.get(&path).await;
    first.expect(StatusCode::OK, None);
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let unchanged = app
        .call(Method::GET, &path, None, &[("if-none-match", &etag)])
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert!(unchanged.raw.is_empty(), "a 304 has no body");
    assert_eq!(unchanged.headers["etag"], etag.as_str());

    app.buy("alice", &["STALLS:B:4"])
        .await
        .expect(StatusCode::CREATED, None);
    let changed = app
        .call(Method::GET, &path, None, &[("if-none-match", &etag)])
        .await;
    changed.expect(StatusCode::OK, None);
    assert_ne!(
        changed.headers["etag"],
        etag.as_str(),
        "a held seat is a new map"
    );
    assert_ne!(changed.body, first.body);

    let zipped = app
        .call(Method::GET, &path, None, &[("accept-encoding", "gzip, br")])
        .await;
    assert_eq!(zipped.status, StatusCode::OK);
    assert_eq!(zipped.headers["content-encoding"], "gzip");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped.raw[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&unzipped).unwrap(),
        changed.body
    );
}

/// A new venue keeps within the server's caps: more rows per zone or seats per row than the
/// document allows is 400, more seats in the venue than its cap 422; each names the cap.
pub async fn venues_keep_within_the_caps(app: TestApp) {
    let venue = |rows: usize, seats: u32, zones: usize| {
        let zones: Vec<Value> = (0..zones)
            .map(|z| {
                let rows: Vec<Value> = (0..rows)
                    .map(|r| json!({"label": format!("R{r}"), "seats": seats}))
                    .collect();
                json!({"code": format!("Z{z}"), "name": "Zone", "kind": "seated", "rows": rows})
            })
            .collect();
        json!({"name": "Arena", "zones": zones})
    };
    let refused = |answer: super::Answer, status: StatusCode, code: &str, cap: &str| {
        answer.expect(status, Some(code));
        let message = answer.body["message"].as_str().unwrap().to_owned();
        assert!(message.contains(cap), "{message:?} does not name {cap:?}");
    };
    refused(
        app.admin_post("/api/admin/venues", &venue(2_001, 1, 1))
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        "2000 rows per zone",
    );
    refused(
        app.admin_post("/api/admin/venues", &venue(1, 1_001, 1))
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        "1000 seats per row",
    );
    // 3 zones of 70 rows of 1,000 seats: 210,000 seats, each zone within the schema.
    refused(
        app.admin_post("/api/admin/venues", &venue(70, 1_000, 3))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INCONSISTENT_REQUEST",
        "200000 seats per venue",
    );
    app.admin_post("/api/admin/venues", &venue(66, 1_000, 3))
        .await
        .expect(StatusCode::CREATED, None);
}

/// Malformed input → 4xx JSON: bad JSON, wrong types, unknown fields, no content type, a body
/// over the limit, bad UUIDs, unknown routes and methods.
pub async fn malformed_requests_are_4xx_json(app: TestApp) {
    /// Method, path, body, content type, expected status.
    type Case<'a> = (
        Method,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        StatusCode,
    );
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/api/tickets",
            Some("{not json"),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tickets",
            Some(r#"{"eventId": 5}"#),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tickets",
            Some(r#"{"eventId": "x", "seats": []}"#),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tickets",
            Some(r#"{"extra": true}"#),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/tickets",
            Some("{}"),
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::GET,
            "/api/tickets/not-a-uuid",
            None,
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/tickets/%FF%FE",
            None,
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/events/123/seats",
            None,
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/venues/x/events/y/revenue",
            None,
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/orders/zzz/cancel",
            None,
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/nothing-here",
            None,
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/api/tickets",
            None,
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    // As a customer, so that the customer routes get as far as reading the request.
    let auth = super::bearer("alice");
    for (method, path, body, content_type, status) in cases {
        let mut builder = axum::http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header("authorization", &auth);
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        let body = body.map_or_else(axum::body::Body::empty, |b| {
            axum::body::Body::from(b.to_owned())
        });
        let answer = app.send(builder.body(body).unwrap()).await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.text());
        assert_error_shape(&answer);
        assert_eq!(answer.body["path"], path.split('?').next().unwrap());
    }
    let huge = format!(
        "{{\"eventId\": \"{}\"}}",
        "x".repeat(ticketing_server::app::BODY_LIMIT + 10)
    );
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/tickets")
        .header("content-type", "application/json")
        .header("authorization", &auth)
        .body(axum::body::Body::from(huge))
        .unwrap();
    app.send(request)
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE, Some("PAYLOAD_TOO_LARGE"));
}

/// Every answer carries x-request-id: generated when absent, kept when sane, replaced when odd.
pub async fn request_ids(app: TestApp) {
    let generated = app.get("/health").await;
    assert!(!generated.headers["x-request-id"].is_empty());
    let kept = app
        .call(
            Method::GET,
            "/api/tickets/bad",
            None,
            &[("x-request-id", "trace-abc.123")],
        )
        .await;
    assert_eq!(kept.headers["x-request-id"], "trace-abc.123");
    assert_eq!(kept.body["traceId"], "trace-abc.123");
    let odd = app
        .call(
            Method::GET,
            "/health",
            None,
            &[("x-request-id", "has spaces and \"quotes\"")],
        )
        .await;
    let replaced = odd.headers["x-request-id"].to_str().unwrap();
    assert!(!replaced.contains(' '));
    assert!(!replaced.is_empty());
}

/// Health checks both backends; metrics and the OpenAPI document are served.
pub async fn ops_routes(app: TestApp) {
    let health = app.get("/health").await;
    health.expect(StatusCode::OK, None);
    assert_eq!(
        health.body,
        json!({"status": "ok", "repository": "ok", "seatLock": "ok"})
    );

    app.buy("alice", &["STALLS:A:11"]).await;
    app.buy("bob", &["STALLS:A:11"]).await;
    let metrics = app.get("/metrics").await;
    metrics.expect(StatusCode::OK, None);
    let text = metrics.text();
    for needle in [
        "ticketing_purchases_total{outcome=\"ok\"} 1",
        "ticketing_purchases_total{outcome=\"seats_taken\"} 1",
        "ticketing_purchase_duration_seconds_bucket",
        "ticketing_seat_hold_duration_seconds_bucket{outcome=\"held\"",
        "ticketing_http_responses_total",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }

    let doc = app.get("/openapi.json").await;
    doc.expect(StatusCode::OK, None);
    let paths = doc.body["paths"].as_object().unwrap();
    for path in [
        "/api/tickets",
        "/api/tickets/{ticketId}",
        "/api/events/{eventId}/sold-count",
        "/api/venues/{venueId}/events/{eventId}/revenue",
        "/api/events/{eventId}/seats",
        "/api/orders/{orderId}/cancel",
        "/api/orders/{orderId}/extend",
        "/api/payments/webhook",
        "/api/admin/venues",
        "/api/admin/events",
        "/health",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "openapi lacks {path}");
    }
    assert!(doc.body["components"]["schemas"]["ErrorBody"].is_object());

    let page = app.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("Simulate payment"));
    let config = app.get("/demo/config").await;
    config.expect(StatusCode::OK, None);
    assert_eq!(config.body["event"]["id"], app.demo.event.to_string());
}

/// The demo's simulated payment goes through the webhook path and pays the order.
pub async fn demo_payment(app: TestApp) {
    let bought = app.buy("alice", &["STALLS:C:12"]).await;
    let order = order_id(&bought);
    // Only its customer may pay it (like reading it, another customer's order is not found).
    app.post_as("mallory", &format!("/demo/orders/{order}/pay"), &json!({}))
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    let paid = app
        .post_as("alice", &format!("/demo/orders/{order}/pay"), &json!({}))
        .await;
    paid.expect(StatusCode::OK, None);
    assert_eq!(paid.body["order"]["status"], "PAID");
    let metrics = app.get("/metrics").await.text();
    assert!(metrics.contains("ticketing_payments_total{outcome=\"paid\"} 1"));
}

/// Only an order's customer (or the admin) reads or cancels it and its tickets; anyone else gets
/// the very answer a missing id gets, so ids cannot be probed.
pub async fn another_customer_s_order_is_not_found(app: TestApp) {
    let bought = app.buy("alice", &["STALLS:B:10"]).await;
    bought.expect(StatusCode::CREATED, None);
    let order = order_id(&bought);
    let ticket = bought.body["tickets"][0]["id"].as_str().unwrap().to_owned();
    let missing = uuid::Uuid::now_v7();
    let strange = app.get_as("bob", &format!("/api/orders/{order}")).await;
    strange.expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    let absent = app.get_as("bob", &format!("/api/orders/{missing}")).await;
    absent.expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    assert_eq!(
        strange.body["message"]
            .as_str()
            .unwrap()
            .replace(&order, "<id>"),
        absent.body["message"]
            .as_str()
            .unwrap()
            .replace(&missing.to_string(), "<id>"),
        "another customer's order answers like a missing one"
    );
    app.get_as("bob", &format!("/api/tickets/{ticket}"))
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    app.post_as("bob", &format!("/api/orders/{order}/cancel"), &json!({}))
        .await
        .expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
    // Bob's cancel changed nothing: the order is still pending and the seat held.
    let mine = app.get_as("alice", &format!("/api/orders/{order}")).await;
    mine.expect(StatusCode::OK, None);
    assert_eq!(mine.body["status"], "PENDING_PAYMENT");
    app.get_as("alice", &format!("/api/tickets/{ticket}"))
        .await
        .expect(StatusCode::OK, None);
    // The admin reads and cancels any order.
    let read = app.admin_get(&format!("/api/orders/{order}")).await;
    read.expect(StatusCode::OK, None);
    assert_eq!(read.body["customerId"], "alice");
    app.admin_get(&format!("/api/tickets/{ticket}"))
        .await
        .expect(StatusCode::OK, None);
    let auth = format!("Bearer {ADMIN}");
    let cancelled = app
        .call(
            Method::POST,
            &format!("/api/orders/{order}/cancel"),
            None,
            &[("authorization", &auth)],
        )
        .await;
    cancelled.expect(StatusCode::OK, None);
    assert_eq!(cancelled.body["status"], "CANCELLED");
}

/// A customer route without a token, or with a malformed, forged or expired one, is `401` with
/// `WWW-Authenticate: Bearer`; the admin token names no customer, so it cannot buy.
pub async fn customer_routes_need_a_valid_token(app: TestApp) {
    use ticketing_server::auth::{LEEWAY_SECONDS, TokenMinter, TokenRules, unix_now};
    let bought = app.buy("alice", &["STALLS:B:11"]).await;
    bought.expect(StatusCode::CREATED, None);
    let order = order_id(&bought);
    let alice: ticketing_core::domain::CustomerId = "alice".parse().unwrap();
    let forger = TokenMinter::hs256(
        b"another-secret-of-at-least-32-bytes!",
        &TokenRules::default(),
    )
    .unwrap();
    let forged = forger.mint(&alice, unix_now() + 600);
    let real = TokenMinter::hs256(super::JWT_SECRET.as_bytes(), &TokenRules::default()).unwrap();
    let expired = real.mint(&alice, unix_now() - LEEWAY_SECONDS - 60);
    let body = purchase(app.demo.event.to_string(), &["STALLS:B:12"]);
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "Bearer"),
        (Some("Basic YWxpY2U6cHc=".into()), "Bearer"),
        (
            Some("Bearer not-a-jwt".into()),
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some(format!("Bearer {forged}")),
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some(format!("Bearer {expired}")),
            "Bearer error=\"invalid_token\"",
        ),
    ];
    for (authorization, challenge) in cases {
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        for (method, path, body) in [
            (Method::POST, "/api/tickets".to_owned(), Some(&body)),
            (Method::GET, format!("/api/orders/{order}"), None),
            (Method::POST, format!("/api/orders/{order}/cancel"), None),
            (
                Method::GET,
                format!(
                    "/api/tickets/{}",
                    bought.body["tickets"][0]["id"].as_str().unwrap()
                ),
                None,
            ),
        ] {
            let answer = app.call(method.clone(), &path, body, &headers).await;
            answer.expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
            assert_eq!(
                answer.headers["www-authenticate"], challenge,
                "{method} {path} with {authorization:?}"
            );
        }
    }
    let auth = format!("Bearer {ADMIN}");
    app.call(
        Method::POST,
        "/api/tickets",
        Some(&body),
        &[("authorization", &auth)],
    )
    .await
    .expect(StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"));
    // Nothing above touched the order.
    let mine = app.get_as("alice", &format!("/api/orders/{order}")).await;
    assert_eq!(mine.body["status"], "PENDING_PAYMENT");
}

/// Applies the `seats` events of the live seat map to `seats` (`ZONE:ROW:NUMBER` → state) and
/// `taken` (zone → places taken); returns the kinds in order. A reset fails the test: nothing
/// here falls behind.
fn apply_seat_changes(
    messages: &[super::SseMessage],
    seats: &mut BTreeMap<String, String>,
    taken: &mut BTreeMap<String, u64>,
) -> Vec<String> {
    let mut kinds = Vec::new();
    let mut last = 0;
    for message in messages {
        assert_eq!(message.event, "seats", "unexpected event: {message:?}");
        let seq = message.data["seq"].as_u64().unwrap();
        assert_eq!(message.id.as_deref(), Some(seq.to_string().as_str()));
        assert!(seq > last, "changes in order: {seq} after {last}");
        last = seq;
        kinds.push(message.data["kind"].as_str().unwrap().to_owned());
        for seat in message.data["seats"].as_array().unwrap() {
            let id = format!(
                "{}:{}:{}",
                seat["zone"].as_str().unwrap(),
                seat["row"].as_str().unwrap(),
                seat["number"]
            );
            seats.insert(id, seat["state"].as_str().unwrap().to_owned());
        }
        for place in message.data["places"].as_array().unwrap() {
            let zone = place["zone"].as_str().unwrap().to_owned();
            taken.insert(zone, place["taken"].as_u64().unwrap());
        }
    }
    kinds
}

/// Every seat of the demo's map (`ZONE:ROW:NUMBER` → state) and the places taken per zone.
fn map_state(map: &Value) -> (BTreeMap<String, String>, BTreeMap<String, u64>) {
    let mut seats = BTreeMap::new();
    for zone in map["seated"].as_array().unwrap() {
        for row in zone["rows"].as_array().unwrap() {
            for number in 1..=row["seats"].as_u64().unwrap() {
                let id = format!(
                    "{}:{}:{number}",
                    zone["zone"].as_str().unwrap(),
                    row["row"].as_str().unwrap()
                );
                let state = seat_state(map, &id);
                seats.insert(id, state);
            }
        }
    }
    let taken = map["generalAdmission"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["zone"].as_str().unwrap().to_owned(),
                g["taken"].as_u64().unwrap(),
            )
        })
        .collect();
    (seats, taken)
}

/// The database's answer: every seat's state from the active tickets, and the places taken.
async fn database_state(
    app: &TestApp,
    seats_of_map: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, BTreeMap<String, u64>) {
    let active = app
        .state
        .backends()
        .tickets()
        .active_tickets(app.demo.event)
        .await
        .unwrap();
    let mut seats: BTreeMap<String, String> = seats_of_map
        .keys()
        .map(|id| (id.clone(), "free".to_owned()))
        .collect();
    let mut taken: BTreeMap<String, u64> = BTreeMap::from([("FLOOR".to_owned(), 0)]);
    for ticket in active {
        let state = if ticket.status == ticketing_core::domain::TicketStatus::Paid {
            "sold"
        } else {
            "held"
        };
        match &ticket.seat {
            Some(seat) => {
                seats.insert(seat.to_string(), state.to_owned());
            }
            None => *taken.entry(ticket.zone.to_string()).or_default() += 1,
        }
    }
    (seats, taken)
}

/// The live seat map: the seat map read after subscribing, plus every change of the stream,
/// equals the database after a sale with many concurrent buyers of seats and places (then
/// cancellations and payments); one change per purchase, cancellation and payment.
pub async fn live_seat_map_plus_the_stream_equals_the_database(app: TestApp) {
    let event = app.demo.event.to_string();
    let mut stream = app.seat_changes(&event, None).await.expect("a stream");
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    // The feed's follower starts at the outbox's head when it first looks: a purchase written
    // before that look is history, not a change (a loaded CI machine lost one that way).
    app.live_seat_map_caught_up().await;
    let map = app.get(&format!("/api/events/{event}/seats")).await;
    map.expect(StatusCode::OK, None);
    let (mut seats, mut taken) = map_state(&map.body);

    // 80 buyers at once over the first three rows (36 seats, two each, overlapping) and the
    // floor (40 places, 1 to 3 each).
    const ROWS: [&str; 3] = ["A", "B", "C"];
    let buyers: Vec<_> = (0..80u32)
        .map(|n| {
            let body = if n % 4 == 0 {
                json!({"eventId": event, "generalAdmission": {"zone": "FLOOR", "quantity": 1 + n % 3}})
            } else {
                let seat = |k: u32| format!("STALLS:{}:{}", ROWS[(k % 36 / 12) as usize], k % 12 + 1);
                let (first, second) = (seat(n * 5), seat(n * 11 + 1));
                let picked: Vec<String> = if first == second { vec![first] } else { vec![first, second] };
                let picked: Vec<&str> = picked.iter().map(String::as_str).collect();
                purchase(event.clone(), &picked)
            };
            let request = axum::http::Request::post("/api/tickets")
                .header("content-type", "application/json")
                .header("authorization", super::bearer(&format!("buyer{n}")))
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            let router = app.router.clone();
            tokio::spawn(async move {
                use http_body_util::BodyExt;
                use tower::ServiceExt;
                let response = router.oneshot(request).await.unwrap();
                let status = response.status();
                let raw = response.into_body().collect().await.unwrap().to_bytes();
                (status, serde_json::from_slice::<Value>(&raw).unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut orders = Vec::new();
    for buyer in buyers {
        let (status, body) = buyer.await.unwrap();
        match status {
            StatusCode::CREATED => orders.push(body),
            StatusCode::CONFLICT => {}
            other => panic!("a purchase answered {other}: {body}"),
        }
    }
    assert!(
        orders.len() >= 20,
        "only {} purchases went through",
        orders.len()
    );
    assert!(
        orders.len() < 80,
        "no buyer lost: the seats did not compete"
    );
    // Some buyers cancel, some pay.
    let (mut cancelled, mut paid) = (0, 0);
    for (i, order) in orders.iter().enumerate() {
        let id = order["id"].as_str().unwrap();
        let customer = order["customerId"].as_str().unwrap();
        match i % 4 {
            0 => {
                app.post_as(customer, &format!("/api/orders/{id}/cancel"), &json!({}))
                    .await
                    .expect(StatusCode::OK, None);
                cancelled += 1;
            }
            1 => {
                app.webhook(&format!("evt_live_{i}"), id, &format!("pay_live_{i}"))
                    .await
                    .expect(StatusCode::OK, None);
                paid += 1;
            }
            _ => {}
        }
    }

    app.live_seat_map_caught_up().await;
    let messages = stream.drain(std::time::Duration::from_millis(500)).await;
    let kinds = apply_seat_changes(&messages, &mut seats, &mut taken);
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    assert_eq!(
        count("TicketReserved"),
        orders.len(),
        "one change per purchase"
    );
    assert_eq!(count("TicketCancelled"), cancelled);
    assert_eq!(count("TicketPaid"), paid);
    let (db_seats, db_taken) = database_state(&app, &seats).await;
    assert_eq!(
        seats, db_seats,
        "seats: the map plus the stream against the database"
    );
    assert_eq!(
        taken, db_taken,
        "places: the map plus the stream against the database"
    );
    assert!(db_seats.values().any(|s| s == "sold") && db_seats.values().any(|s| s == "held"));
}

/// The live seat map resumes after `Last-Event-ID` with exactly the changes the client missed,
/// then the live ones; a malformed id is 400, an unknown event 404.
pub async fn live_seat_map_resumes_after_the_last_event_id(app: TestApp) {
    let event = app.demo.event.to_string();
    let mut first = app.seat_changes(&event, None).await.expect("a stream");
    app.live_seat_map_caught_up().await;
    let alice = app.buy("alice", &["STALLS:D:1"]).await;
    alice.expect(StatusCode::CREATED, None);
    app.buy("bob", &["STALLS:D:2"])
        .await
        .expect(StatusCode::CREATED, None);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message = first
            .next_within(std::time::Duration::from_secs(10))
            .await
            .expect("the two purchases on the stream");
        seen.push(message);
    }
    assert_eq!(
        seen[0].data["seats"],
        json!([{"zone": "STALLS", "row": "D", "number": 1, "state": "held"}])
    );
    assert_eq!(seen[1].data["seats"][0]["number"], 2);
    let last_id = seen[1].id.clone().expect("an id");
    drop(first);

    // While the client is away: a purchase, a cancellation, places, another purchase.
    app.buy("carol", &["STALLS:D:3"])
        .await
        .expect(StatusCode::CREATED, None);
    app.post_as(
        "alice",
        &format!("/api/orders/{}/cancel", order_id(&alice)),
        &json!({}),
    )
    .await
    .expect(StatusCode::OK, None);
    app.post_as(
        "dave",
        "/api/tickets",
        &json!({"eventId": event, "generalAdmission": {"zone": "FLOOR", "quantity": 2}}),
    )
    .await
    .expect(StatusCode::CREATED, None);
    app.buy("erin", &["STALLS:D:4"])
        .await
        .expect(StatusCode::CREATED, None);
    app.live_seat_map_caught_up().await;

    let mut resumed = app
        .seat_changes(&event, Some(&last_id))
        .await
        .expect("a stream");
    let gap = resumed.drain(std::time::Duration::from_millis(300)).await;
    let last: u64 = last_id.parse().unwrap();
    let ids: Vec<u64> = gap
        .iter()
        .map(|m| m.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        ids,
        (last + 1..=last + 4).collect::<Vec<_>>(),
        "exactly the gap: {gap:?}"
    );
    let kinds: Vec<&str> = gap
        .iter()
        .map(|m| m.data["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "TicketReserved",
            "TicketCancelled",
            "TicketReserved",
            "TicketReserved"
        ]
    );
    assert_eq!(gap[0].data["seats"][0]["number"], 3);
    assert_eq!(
        gap[1].data["seats"],
        json!([{"zone": "STALLS", "row": "D", "number": 1, "state": "free"}])
    );
    assert_eq!(gap[2].data["seats"], json!([]));
    assert_eq!(
        gap[2].data["places"],
        json!([{"zone": "FLOOR", "capacity": 40, "taken": 2, "remaining": 38}])
    );
    assert_eq!(gap[3].data["seats"][0]["number"], 4);
    // Then the live changes.
    app.buy("frank", &["STALLS:D:5"])
        .await
        .expect(StatusCode::CREATED, None);
    let live = resumed
        .next_within(std::time::Duration::from_secs(10))
        .await
        .expect("the live change");
    assert_eq!(live.id, Some((last + 5).to_string()));
    assert_eq!(live.data["seats"][0]["number"], 5);

    let refused = app
        .seat_changes(&event, Some("12abc"))
        .await
        .err()
        .expect("a 400");
    refused.expect(StatusCode::BAD_REQUEST, Some("INVALID_REQUEST"));
    let unknown = uuid::Uuid::now_v7().to_string();
    let refused = app.seat_changes(&unknown, None).await.err().expect("a 404");
    refused.expect(StatusCode::NOT_FOUND, Some("NOT_FOUND"));
}

/// Expands one `#[tokio::test]` per suite function, each on a fresh app from `$make`.
#[macro_export]
macro_rules! http_suite {
    ($make:expr) => {
        $crate::http_suite!(@tests $make;
            purchase_creates_a_pending_order,
            general_admission_sells_out,
            taken_seat_is_409,
            purchase_refusals,
            idempotency_key_replays_and_conflicts,
            best_available_over_http,
            webhook_pays_and_replays,
            webhook_refusals,
            webhook_accepts_unknown_fields,
            payments_ledger_over_http,
            cancel_and_refund,
            extend_hold_over_http,
            sweep_expires_unpaid_orders,
            admin_routes,
            vouchers_over_http,
            price_tiers_over_http, channels_over_http, waiting_list_over_http,
            seat_maps_are_ranges_and_one_zone_at_a_time,
            seat_map_revalidates_with_its_etag,
            venues_keep_within_the_caps,
            malformed_requests_are_4xx_json,
            request_ids,
            ops_routes,
            demo_payment,
            another_customer_s_order_is_not_found,
            customer_routes_need_a_valid_token,
            live_seat_map_plus_the_stream_equals_the_database,
            live_seat_map_resumes_after_the_last_event_id,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                common::suite::$name($make.await).await;
            }
        )*
    };
}
