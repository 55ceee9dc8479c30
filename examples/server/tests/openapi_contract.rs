//! The OpenAPI document states what a client relies on: typed path parameters, the bounds the
//! domain checks, the `oneOf` selection, every status each route answers, and the links between
//! operations; and the router answers within it. `scripts/api-contract` runs schemathesis against
//! the same document; this test keeps a regression from waiting for that run.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{ADMIN, TestApp, purchase};
use serde_json::{Value, json};
use ticketing_core::domain::{
    ChannelCode, IdempotencyKey, MAX_HOLD_TIME, MAX_NAME_CHARS, MAX_PER_CUSTOMER_LIMIT,
    MAX_PRICE_TIERS, MAX_ZONE_CAPACITY, PaymentRef, RowLabel, VenueLimits, ZoneCode,
};
use ticketing_server::dto::MAX_TIERED_ZONES;
use ticketing_server::openapi::{DemoRoutes, document, document_with_limits};

/// Every operation with the statuses it must document.
const STATUSES: &[(&str, &[u16])] = &[
    (
        "purchase",
        &[
            201, 400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 500, 503,
        ],
    ),
    ("getTicket", &[200, 400, 401, 404, 408, 500, 503]),
    ("getOrder", &[200, 400, 401, 404, 408, 500, 503]),
    (
        "cancelOrder",
        &[200, 400, 401, 404, 408, 409, 413, 500, 503],
    ),
    (
        "extendOrder",
        &[200, 400, 401, 404, 408, 409, 413, 500, 503],
    ),
    ("getEvent", &[200, 400, 404, 408, 500, 503]),
    ("getVenue", &[200, 400, 404, 408, 500, 503]),
    ("getSoldCount", &[200, 400, 404, 408, 500, 503]),
    ("getRevenue", &[200, 400, 404, 408, 500, 503]),
    ("getSeatMap", &[200, 304, 400, 404, 408, 500, 503]),
    ("getZoneSeatMap", &[200, 304, 400, 404, 408, 500, 503]),
    ("getSeatChanges", &[200, 400, 404, 408, 500, 503]),
    ("joinWaitingRoom", &[200, 400, 401, 408, 413, 500, 503]),
    ("getWaitingRoomPlace", &[200, 400, 401, 408, 500, 503]),
    (
        "setWaitingRoom",
        &[200, 400, 401, 404, 408, 413, 415, 500, 503],
    ),
    ("removeWaitingRoom", &[204, 400, 401, 404, 408, 500, 503]),
    (
        "joinWaitingList",
        &[200, 201, 400, 401, 404, 408, 409, 413, 415, 422, 500, 503],
    ),
    ("getWaitingListEntry", &[200, 400, 401, 404, 408, 500, 503]),
    ("leaveWaitingList", &[200, 400, 401, 404, 408, 500, 503]),
    (
        "createVoucher",
        &[201, 400, 401, 404, 408, 413, 415, 422, 500, 503],
    ),
    ("listVouchers", &[200, 400, 401, 404, 408, 500, 503]),
    (
        "createChannel",
        &[201, 400, 401, 404, 408, 413, 415, 422, 500, 503],
    ),
    ("listChannels", &[200, 400, 401, 404, 408, 500, 503]),
    (
        "releaseChannelSeats",
        &[200, 400, 401, 404, 408, 413, 415, 422, 500, 503],
    ),
    (
        "paymentWebhook",
        &[200, 400, 401, 404, 408, 409, 413, 500, 503],
    ),
    (
        "createVenue",
        &[201, 400, 401, 408, 413, 415, 422, 500, 503],
    ),
    (
        "createEvent",
        &[201, 400, 401, 404, 408, 413, 415, 422, 500, 503],
    ),
    (
        "refundOrder",
        &[200, 400, 401, 404, 408, 409, 413, 500, 503],
    ),
    ("refundsDue", &[200, 401, 408, 500, 503]),
    ("markRefunded", &[200, 400, 401, 404, 408, 413, 500, 503]),
    ("orderPayments", &[200, 400, 401, 408, 500, 503]),
    ("health", &[200, 500, 503]),
    ("metrics", &[200]),
    ("openapi", &[200]),
    ("demoPage", &[200]),
    ("demoConfig", &[200, 408, 500, 503]),
    ("demoToken", &[200, 400, 408, 413, 415, 500, 503]),
    ("demoPay", &[200, 400, 401, 404, 408, 409, 413, 500, 503]),
];

/// (path, method, operation) of every operation in `doc`.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((path.clone(), method.clone(), operation));
        }
    }
    found
}

fn operation<'a>(doc: &'a Value, id: &str) -> &'a Value {
    operations(doc)
        .into_iter()
        .find(|(_, _, op)| op["operationId"] == id)
        .unwrap_or_else(|| panic!("no operation {id}"))
        .2
}

fn statuses(operation: &Value) -> BTreeSet<u16> {
    operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|status| status.parse().unwrap())
        .collect()
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

/// Every path parameter is a hyphenated UUID, except a zone code, a payment reference and a
/// channel code, which are tokens.
#[test]
fn path_parameters_are_uuids_or_zone_codes() {
    let doc = document(DemoRoutes::PageAndPayments);
    let mut seen = 0;
    for (path, method, operation) in operations(&doc) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] != "path" {
                continue;
            }
            seen += 1;
            assert_eq!(parameter["required"], true, "{method} {path}");
            let expected = if parameter["name"] == "zone" {
                json!({"type": "string", "minLength": 1, "maxLength": ZoneCode::MAX_LEN,
                       "pattern": "^[A-Za-z0-9_.@+-]+$"})
            } else if parameter["name"] == "code" {
                json!({"type": "string", "minLength": 1, "maxLength": ChannelCode::MAX_LEN,
                       "pattern": "^[A-Za-z0-9_.@+-]+$"})
            } else if parameter["name"] == "paymentReference" {
                json!({"type": "string", "minLength": 1, "maxLength": PaymentRef::MAX_LEN,
                       "pattern": "^[A-Za-z0-9_.@+-]+$"})
            } else {
                json!({"type": "string", "format": "uuid"})
            };
            assert_eq!(
                parameter["schema"], expected,
                "{method} {path} {}",
                parameter["name"]
            );
        }
    }
    assert_eq!(seen, 30, "path parameters in the document");
}

#[test]
fn every_route_lists_every_status_it_answers() {
    let doc = document(DemoRoutes::PageAndPayments);
    let listed: BTreeMap<_, _> = operations(&doc)
        .into_iter()
        .map(|(_, _, op)| (op["operationId"].as_str().unwrap().to_owned(), op))
        .collect();
    let expected: BTreeSet<_> = STATUSES.iter().map(|(id, _)| (*id).to_owned()).collect();
    assert_eq!(
        listed.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "operations"
    );
    for (id, codes) in STATUSES {
        let operation = listed[*id];
        assert_eq!(
            statuses(operation),
            codes.iter().copied().collect(),
            "statuses of {id}"
        );
        for (status, response) in operation["responses"].as_object().unwrap() {
            assert!(
                response["headers"]["x-request-id"].is_object(),
                "{id} {status}: x-request-id"
            );
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{id} {status}"
                );
                let description = response["description"].as_str().unwrap();
                let code = description.split([' ', ':']).next().unwrap_or_default();
                assert!(
                    code.len() > 3 && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                    "{id} {status} starts with its error code: {description}"
                );
            }
        }
    }
}

/// The live seat map is documented as an event stream whose events' data have schemas.
#[test]
fn the_seat_change_stream_is_documented_as_server_sent_events() {
    let doc = document(DemoRoutes::Off);
    let ok = &operation(&doc, "getSeatChanges")["responses"]["200"];
    assert!(
        ok["content"]["text/event-stream"].is_object(),
        "200 is text/event-stream: {ok}"
    );
    let parameters = operation(&doc, "getSeatChanges")["parameters"]
        .as_array()
        .unwrap();
    assert!(
        parameters
            .iter()
            .any(|p| p["name"] == "Last-Event-ID" && p["in"] == "header"),
        "Last-Event-ID is a documented header"
    );
    for name in [
        "SeatChangeDto",
        "SeatResetDto",
        "SeatChangeSeatDto",
        "SeatStateDto",
    ] {
        assert!(schema(&doc, name).is_object(), "{name}");
    }
    assert_eq!(
        schema(&doc, "SeatStateDto")["enum"],
        json!(["free", "held", "sold"])
    );
}

#[test]
fn the_selection_is_exactly_one_of_seats_general_admission_or_best_available() {
    let doc = document(DemoRoutes::Off);
    let branches = schema(&doc, "PurchaseRequestDto")["oneOf"]
        .as_array()
        .expect("oneOf");
    assert_eq!(branches.len(), 3);
    for (branch, selection) in branches
        .iter()
        .zip(["seats", "generalAdmission", "bestAvailable"])
    {
        assert_eq!(branch["additionalProperties"], false, "{selection}");
        assert_eq!(branch["required"], json!(["eventId", selection]));
        assert_eq!(branch["properties"]["eventId"]["format"], "uuid");
    }
    let seats = &branches[0]["properties"]["seats"];
    assert_eq!(seats["minItems"], 1);
    assert_eq!(seats["maxItems"], MAX_PER_CUSTOMER_LIMIT);
    assert_eq!(seats["uniqueItems"], true);
    let best = schema(&doc, "BestAvailableDto");
    assert_eq!(best["additionalProperties"], false);
    assert_eq!(best["required"], json!(["zone", "quantity"]));
    assert_eq!(best["properties"]["quantity"]["minimum"], 1);
    assert_eq!(
        best["properties"]["quantity"]["maximum"],
        MAX_PER_CUSTOMER_LIMIT
    );
    for optional in ["rows", "maxPrice"] {
        assert!(
            best["properties"][optional]["$ref"].is_string(),
            "{optional} is an object or absent, never null: {}",
            best["properties"][optional]
        );
    }
    assert_eq!(
        schema(&doc, "RowRangeDto")["required"],
        json!(["first", "last"])
    );

    let zones = schema(&doc, "ZoneDto")["oneOf"].as_array().expect("oneOf");
    let kinds: Vec<_> = zones
        .iter()
        .map(|z| z["properties"]["kind"]["enum"].clone())
        .collect();
    assert_eq!(kinds, [json!(["seated"]), json!(["generalAdmission"])]);
    assert_eq!(zones[0]["required"][3], "rows");
    assert_eq!(zones[1]["required"][3], "capacity");
}

#[test]
fn bounds_are_the_domain_s() {
    let doc = document(DemoRoutes::Off);
    let token = |schema: &Value, max: usize| {
        assert_eq!(schema["minLength"], 1, "{schema}");
        assert_eq!(schema["maxLength"], max, "{schema}");
        assert_eq!(schema["pattern"], "^[A-Za-z0-9_.@+-]+$", "{schema}");
    };
    let purchase = &schema(&doc, "PurchaseRequestDto")["oneOf"][0]["properties"];
    assert!(
        purchase.get("customerId").is_none(),
        "the customer is the token's"
    );
    let seat = &schema(&doc, "SeatDto")["properties"];
    token(&seat["zone"], ZoneCode::MAX_LEN);
    token(&seat["row"], RowLabel::MAX_LEN);
    assert_eq!(seat["number"]["minimum"], 1);
    assert_eq!(seat["number"]["maximum"], u32::MAX);
    let ga = &schema(&doc, "GeneralAdmissionDto")["properties"];
    assert_eq!(ga["quantity"]["minimum"], 1);
    assert_eq!(ga["quantity"]["maximum"], MAX_PER_CUSTOMER_LIMIT);
    let row = &schema(&doc, "RowDto")["properties"];
    assert_eq!(
        row["seats"]["maximum"],
        VenueLimits::default().max_seats_per_row
    );
    let rows = &schema(&doc, "ZoneDto")["oneOf"][0]["properties"]["rows"];
    assert_eq!(rows["maxItems"], VenueLimits::default().max_rows_per_zone);
    let event = &schema(&doc, "CreateEventDto")["properties"];
    assert_eq!(event["name"]["maxLength"], MAX_NAME_CHARS);
    assert_eq!(
        event["holdTimeSeconds"]["maximum"],
        MAX_HOLD_TIME.num_seconds()
    );
    assert_eq!(event["perCustomerLimit"]["maximum"], MAX_PER_CUSTOMER_LIMIT);
    assert_eq!(event["prices"]["minItems"], 1);
    assert_eq!(event["priceTiers"]["maxItems"], MAX_TIERED_ZONES);
    let tiers = &schema(&doc, "ZoneTiersDto")["properties"]["tiers"];
    assert_eq!(tiers["minItems"], 1);
    assert_eq!(tiers["maxItems"], MAX_PRICE_TIERS);
    let tier = &schema(&doc, "PriceTierDto")["properties"];
    assert_eq!(tier["size"]["minimum"], 1);
    assert_eq!(tier["size"]["maximum"], MAX_ZONE_CAPACITY);
    assert_eq!(tier["amountMinor"]["minimum"], 0);
    let price = &schema(&doc, "PriceDto")["properties"];
    assert_eq!(price["amountMinor"]["minimum"], 0);
    assert_eq!(price["currency"]["pattern"], "^[A-Z]{3}$");
    let webhook = &schema(&doc, "PaymentWebhookDto")["properties"];
    token(&webhook["paymentReference"], PaymentRef::MAX_LEN);
    let key = &operation(&doc, "purchase")["parameters"][0];
    assert_eq!(key["name"], "Idempotency-Key");
    token(&key["schema"], IdempotencyKey::MAX_LEN);
}

#[test]
fn links_chain_venue_event_purchase_pay_read() {
    let doc = document(DemoRoutes::PageAndPayments);
    let link = |from: &str, status: &str, name: &str| -> Value {
        let link = operation(&doc, from)["responses"][status]["links"][name].clone();
        let target = link["operationId"].as_str().unwrap_or_default();
        operation(&doc, target); // resolves
        link
    };
    let event = link("createVenue", "201", "CreateEvent");
    assert_eq!(event["requestBody"]["venueId"], "$response.body#/id");
    let buy = link("createEvent", "201", "BuyPlaces");
    assert_eq!(buy["operationId"], "purchase");
    assert_eq!(buy["requestBody"]["eventId"], "$response.body#/id");
    let pay = link("purchase", "201", "PayInDemo");
    assert_eq!(pay["parameters"]["orderId"], "$response.body#/id");
    assert_eq!(
        link("purchase", "201", "Pay")["operationId"],
        "paymentWebhook"
    );
    let read = link("demoPay", "200", "GetOrder");
    assert_eq!(read["parameters"]["orderId"], "$response.body#/order/id");

    // Without the demo routes, no link points at them.
    let doc = document(DemoRoutes::Off);
    let text = doc.to_string();
    assert!(!text.contains("demoPay") && !text.contains("/demo/"));
    assert!(text.contains("\"operationId\":\"paymentWebhook\""));
}

#[test]
fn bearer_schemes_and_their_answers_are_documented() {
    let doc = document(DemoRoutes::PageAndPayments);
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["customer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": schemes["customer"]["description"]})
    );
    assert_eq!(schemes["admin"]["scheme"], "bearer");
    assert_eq!(
        operation(&doc, "purchase")["security"],
        json!([{"customer": []}])
    );
    for id in [
        "getOrder",
        "cancelOrder",
        "extendOrder",
        "getTicket",
        "demoPay",
    ] {
        assert_eq!(
            operation(&doc, id)["security"],
            json!([{"customer": []}, {"admin": []}]),
            "{id}"
        );
    }
    // Every secured operation documents its 401 and the challenge header of customer routes.
    for (path, method, op) in operations(&doc) {
        let Some(security) = op["security"].as_array() else {
            continue;
        };
        assert!(!security.is_empty(), "{method} {path}");
        assert!(statuses(op).contains(&401), "{method} {path} lacks 401");
        if security.iter().any(|s| s.get("customer").is_some()) {
            assert!(
                op["responses"]["401"]["headers"]["WWW-Authenticate"].is_object(),
                "{method} {path}"
            );
        }
    }
    let limited = &operation(&doc, "purchase")["responses"]["429"];
    assert!(
        limited["description"]
            .as_str()
            .unwrap()
            .starts_with("RATE_LIMITED")
    );
    assert_eq!(
        limited["headers"]["Retry-After"]["schema"]["type"],
        "integer"
    );
    // The public reads need no token.
    for id in [
        "getEvent",
        "getSeatMap",
        "getSoldCount",
        "getRevenue",
        "getVenue",
    ] {
        assert!(operation(&doc, id).get("security").is_none(), "{id}");
    }
}

#[test]
fn demo_payments_are_documented_only_where_served() {
    let page = document(DemoRoutes::Page).to_string();
    assert!(page.contains("\"operationId\":\"demoToken\""));
    assert!(!page.contains("demoPay"));
    let all = document(DemoRoutes::PageAndPayments).to_string();
    assert!(all.contains("\"operationId\":\"demoPay\""));
}

/// Answers the router gives, each within what its operation documents.
#[tokio::test]
async fn the_router_answers_within_the_document() {
    let app = TestApp::in_memory().await;
    let doc = document(DemoRoutes::PageAndPayments);
    let event = app.demo.event.to_string();
    let seat =
        |zone: &str, row: &str, number: Value| json!({"zone": zone, "row": row, "number": number});
    let zone = |code: &str| json!({"code": code, "name": "Floor", "kind": "generalAdmission", "capacity": 10});
    let checks: Vec<(&str, StatusCode, Option<&str>, axum::http::Request<Body>)> = vec![
        // A whole number written as a float is an integer in JSON Schema.
        (
            "purchase",
            StatusCode::CREATED,
            None,
            customer_post(
                "/api/tickets",
                &json!({"eventId": event, "seats": [seat("STALLS", "A", json!(3.0))]}),
            ),
        ),
        (
            "purchase",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            customer_post(
                "/api/tickets",
                &json!({"eventId": event, "seats": [seat("STALLS", "A", json!(4)), seat("STALLS", "A", json!(4))]}),
            ),
        ),
        (
            "purchase",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            customer_post(
                "/api/tickets",
                &json!({"eventId": event.replace('-', ""), "seats": [seat("STALLS", "A", json!(5))]}),
            ),
        ),
        (
            "purchase",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INCONSISTENT_REQUEST"),
            customer_post("/api/tickets", &purchase(event.clone(), &["STALLS:Z:1"])),
        ),
        (
            "purchase",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("UNSUPPORTED_MEDIA_TYPE"),
            Request::post("/api/tickets")
                .header(header::AUTHORIZATION, common::bearer("ann"))
                .body(Body::from("{}"))
                .unwrap(),
        ),
        (
            "purchase",
            StatusCode::UNAUTHORIZED,
            Some("UNAUTHORIZED"),
            json_post("/api/tickets", &purchase(event.clone(), &["STALLS:A:8"])),
        ),
        (
            "getOrder",
            StatusCode::NOT_FOUND,
            Some("NOT_FOUND"),
            Request::get(format!("/api/orders/{}", uuid::Uuid::now_v7()))
                .header(header::AUTHORIZATION, common::bearer("ann"))
                .body(Body::empty())
                .unwrap(),
        ),
        (
            "demoToken",
            StatusCode::OK,
            None,
            json_post("/demo/token", &json!({"customerId": "demo-ann"})),
        ),
        (
            "joinWaitingRoom",
            StatusCode::OK,
            None,
            customer_post(&format!("/api/events/{event}/waiting-room"), &json!({})),
        ),
        (
            "joinWaitingList",
            StatusCode::CREATED,
            None,
            customer_post(
                &format!("/api/events/{event}/waiting-list"),
                &json!({"zone": "STALLS", "partySize": 2.0}),
            ),
        ),
        (
            "joinWaitingList",
            StatusCode::OK,
            None,
            customer_post(
                &format!("/api/events/{event}/waiting-list"),
                &json!({"partySize": 1}),
            ),
        ),
        (
            "joinWaitingList",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            customer_post(
                &format!("/api/events/{event}/waiting-list"),
                &json!({"partySize": 0}),
            ),
        ),
        (
            "joinWaitingList",
            StatusCode::NOT_FOUND,
            Some("NOT_FOUND"),
            customer_post(
                &format!("/api/events/{}/waiting-list", uuid::Uuid::now_v7()),
                &json!({"partySize": 1}),
            ),
        ),
        (
            "getWaitingListEntry",
            StatusCode::NOT_FOUND,
            Some("NOT_FOUND"),
            Request::get(format!("/api/waiting-list/{}", uuid::Uuid::now_v7()))
                .header(header::AUTHORIZATION, common::bearer("ann"))
                .body(Body::empty())
                .unwrap(),
        ),
        (
            "leaveWaitingList",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            Request::delete("/api/waiting-list/not-a-uuid")
                .header(header::AUTHORIZATION, common::bearer("ann"))
                .body(Body::empty())
                .unwrap(),
        ),
        (
            "setWaitingRoom",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            Request::put(format!("/api/admin/events/{event}/waiting-room"))
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"mode": "rate", "limit": 0, "order": "fifo", "windowSeconds": 60})
                        .to_string(),
                ))
                .unwrap(),
        ),
        (
            "demoToken",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            json_post("/demo/token", &json!({"customerId": "ann"})),
        ),
        (
            "demoToken",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            json_post("/demo/token", &json!({"customerId": null})),
        ),
        (
            "demoToken",
            StatusCode::OK,
            None,
            json_post("/demo/token", &json!({})),
        ),
        // serde would read a struct from an array of its fields; the contract says object.
        (
            "demoToken",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            json_post("/demo/token", &json!([])),
        ),
        (
            "purchase",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            customer_post(
                "/api/tickets",
                &json!([event, [seat("STALLS", "A", json!(6))]]),
            ),
        ),
        (
            "purchase",
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("PAYLOAD_TOO_LARGE"),
            customer_post("/api/tickets", &json!({"pad": "x".repeat(70_000)})),
        ),
        // The stream's refusals (its 200 never ends: the HTTP suite reads it as a client does).
        (
            "getSeatChanges",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            Request::get(format!("/api/events/{event}/seat-changes"))
                .header("last-event-id", "-1")
                .body(Body::empty())
                .unwrap(),
        ),
        (
            "getSeatChanges",
            StatusCode::NOT_FOUND,
            Some("NOT_FOUND"),
            Request::get(format!("/api/events/{}/seat-changes", uuid::Uuid::now_v7()))
                .body(Body::empty())
                .unwrap(),
        ),
        (
            "getEvent",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            Request::get(format!("/api/events/{}", event.replace('-', "")))
                .body(Body::empty())
                .unwrap(),
        ),
        (
            "createVenue",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            admin_post(
                "/api/admin/venues",
                &json!({"name": "é".repeat(MAX_NAME_CHARS + 1), "zones": [zone("A")]}),
            ),
        ),
        (
            "createVenue",
            StatusCode::CREATED,
            None,
            admin_post(
                "/api/admin/venues",
                &json!({"name": "é".repeat(MAX_NAME_CHARS), "zones": [zone("A")]}),
            ),
        ),
        (
            "createVenue",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INCONSISTENT_REQUEST"),
            admin_post(
                "/api/admin/venues",
                &json!({"name": "Hall", "zones": [zone("A"), zone("A")]}),
            ),
        ),
        (
            "createVenue",
            StatusCode::UNAUTHORIZED,
            Some("UNAUTHORIZED"),
            json_post(
                "/api/admin/venues",
                &json!({"name": "Hall", "zones": [zone("A")]}),
            ),
        ),
        (
            "createEvent",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INCONSISTENT_REQUEST"),
            admin_post(
                "/api/admin/events",
                &json!({"venueId": app.demo.venue.to_string(), "name": "Late", "saleOpens": "2030-01-02T00:00:00Z",
                "saleCloses": "2030-01-01T00:00:00Z", "prices": [{"zone": "FLOOR", "amountMinor": 100, "currency": "EUR"}],
                "holdTimeSeconds": 60, "perCustomerLimit": 2}),
            ),
        ),
        (
            "createEvent",
            StatusCode::BAD_REQUEST,
            Some("INVALID_REQUEST"),
            admin_post(
                "/api/admin/events",
                &json!({"venueId": app.demo.venue.to_string(), "name": "Long hold", "saleOpens": "2030-01-01T00:00:00Z",
                "saleCloses": "2030-01-02T00:00:00Z", "prices": [{"zone": "FLOOR", "amountMinor": 100, "currency": "EUR"}],
                "holdTimeSeconds": MAX_HOLD_TIME.num_seconds() + 1, "perCustomerLimit": 2}),
            ),
        ),
    ];
    for (id, status, code, request) in checks {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = app.send(request).await;
        answer.expect(status, code);
        assert!(
            statuses(operation(&doc, id)).contains(&status.as_u16()),
            "{what}: {status} is not documented for {id}"
        );
    }
}

fn json_post(path: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn customer_post(path: &str, body: &Value) -> Request<Body> {
    let mut request = json_post(path, body);
    request.headers_mut().insert(
        header::AUTHORIZATION,
        common::bearer("ann").parse().unwrap(),
    );
    request
}

fn admin_post(path: &str, body: &Value) -> Request<Body> {
    let mut request = json_post(path, body);
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {ADMIN}").parse().unwrap(),
    );
    request
}

/// A server with other venue caps states them in its document: rows per zone, seats per row and,
/// in words, seats per venue.
#[test]
fn the_document_states_the_configured_venue_caps() {
    let limits = VenueLimits {
        max_seats: 5_000,
        max_rows_per_zone: 40,
        max_seats_per_row: 60,
    };
    let doc = document_with_limits(DemoRoutes::Off, &limits);
    assert_eq!(schema(&doc, "RowDto")["properties"]["seats"]["maximum"], 60);
    assert_eq!(
        schema(&doc, "ZoneDto")["oneOf"][0]["properties"]["rows"]["maxItems"],
        40
    );
    let description = schema(&doc, "CreateVenueDto")["description"]
        .as_str()
        .unwrap();
    assert!(description.contains("5000 numbered seats"), "{description}");
}
