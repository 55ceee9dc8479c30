//! A few hundred generated malformed requests: every answer is a 4xx JSON error with the
//! `{code, message, path, traceId}` shape, never a 2xx, a 5xx or plain text.

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::{ADMIN, TestApp, assert_error_shape};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use uuid::Uuid;

/// One generated request.
#[derive(Debug, Clone)]
struct Bad {
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn bad(method: Method, path: String, headers: Vec<(&str, String)>, body: Vec<u8>) -> Bad {
    Bad {
        method,
        path,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        body,
    }
}

/// A path segment that is never a UUID.
fn not_a_uuid() -> impl Strategy<Value = String> {
    "([A-Za-z0-9._~!$'()*+,;=:@-]|%[0-9A-F]{2}){1,40}"
        .prop_filter("must not be a UUID", |s| Uuid::parse_str(s).is_err())
}

fn json_routes() -> impl Strategy<Value = (&'static str, bool)> {
    prop_oneof![
        Just(("/api/tickets", false)),
        Just(("/api/admin/venues", true)),
        Just(("/api/admin/events", true)),
    ]
}

/// Any JSON value of a few levels, as text.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[ -~]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The admin token, or a new customer's token (a customer per request, so the purchase rate
/// limit never answers in place of the check under test).
fn bearer(admin: bool) -> String {
    if admin {
        format!("Bearer {ADMIN}")
    } else {
        common::bearer(&format!("c{}", Uuid::new_v4().simple()))
    }
}

fn with_auth(admin: bool) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_owned()),
        ("authorization", bearer(admin)),
    ]
}

fn malformed() -> impl Strategy<Value = Bad> {
    let garbage_body = (json_routes(), prop::collection::vec(any::<u8>(), 0..200))
        .prop_map(|((route, admin), body)| bad(Method::POST, route.into(), with_auth(admin), body));
    let wrong_shape = (json_routes(), json_value()).prop_map(|((route, admin), value)| {
        bad(
            Method::POST,
            route.into(),
            with_auth(admin),
            value.to_string().into_bytes(),
        )
    });
    // A purchase with every field present but one of them of a wrong type or invalid.
    let wrong_field = (0usize..5, json_value()).prop_map(|(which, value)| {
        let mut body = serde_json::json!({
            "eventId": Uuid::now_v7().to_string(),
            "seats": [{"zone": "STALLS", "row": "A", "number": 1}]});
        match which {
            0 => body["eventId"] = value,
            1 => body["seats"][0]["zone"] = serde_json::json!([value]),
            2 => body["seats"] = serde_json::json!({"x": value}),
            3 => body["seats"][0]["number"] = serde_json::json!(-1),
            _ => body["unexpected"] = value,
        }
        bad(
            Method::POST,
            "/api/tickets".into(),
            with_auth(false),
            body.to_string().into_bytes(),
        )
    });
    let bad_ids = (0usize..7, not_a_uuid(), not_a_uuid()).prop_map(|(which, a, b)| {
        let (method, path) = match which {
            0 => (Method::GET, format!("/api/tickets/{a}")),
            1 => (Method::GET, format!("/api/events/{a}/seats")),
            2 => (Method::GET, format!("/api/events/{a}/sold-count")),
            3 => (Method::GET, format!("/api/venues/{a}/events/{b}/revenue")),
            4 => (Method::POST, format!("/api/orders/{a}/cancel")),
            5 => (Method::GET, format!("/api/orders/{a}")),
            _ => (Method::GET, format!("/api/events/{a}")),
        };
        bad(method, path, vec![("authorization", bearer(false))], vec![])
    });
    let unknown_paths = "(/[a-z0-9-]{1,12}){1,4}".prop_map(|p| {
        bad(
            Method::GET,
            format!("/x-{}", p.trim_start_matches('/')),
            vec![],
            vec![],
        )
    });
    let wrong_methods = (
        prop_oneof![Just(Method::PUT), Just(Method::DELETE), Just(Method::PATCH)],
        prop_oneof![
            Just("/api/tickets"),
            Just("/api/payments/webhook"),
            Just("/health"),
            Just("/metrics"),
            Just("/openapi.json"),
        ],
    )
        .prop_map(|(method, path)| bad(method, path.into(), vec![], vec![]));
    let unsigned_webhooks = ("[ -~]{0,80}", prop::collection::vec(any::<u8>(), 0..120)).prop_map(
        |(signature, body)| {
            bad(
                Method::POST,
                "/api/payments/webhook".into(),
                vec![
                    ("content-type", "application/json".into()),
                    ("webhook-signature", signature),
                ],
                body,
            )
        },
    );
    let unauthorized_admin = (json_routes(), "[ -~]{0,40}").prop_filter_map(
        "admin routes only",
        |((route, admin), token)| {
            admin.then(|| {
                bad(
                    Method::POST,
                    route.into(),
                    vec![
                        ("content-type", "application/json".into()),
                        ("authorization", token),
                    ],
                    b"{}".to_vec(),
                )
            })
        },
    );
    let oversized = (json_routes(), 1usize..4).prop_map(|((route, admin), factor)| {
        let body = vec![b'['; ticketing_server::app::BODY_LIMIT * factor + 1];
        bad(Method::POST, route.into(), with_auth(admin), body)
    });
    let wrong_content_type = (
        json_routes(),
        "(text/plain|application/xml|multipart/form-data)",
    )
        .prop_map(|((route, admin), ct)| {
            let mut headers = with_auth(admin);
            headers[0].1 = ct;
            bad(Method::POST, route.into(), headers, b"{}".to_vec())
        });
    prop_oneof![
        garbage_body,
        wrong_shape,
        wrong_field,
        bad_ids,
        unknown_paths,
        wrong_methods,
        unsigned_webhooks,
        unauthorized_admin,
        oversized,
        wrong_content_type,
    ]
}

#[test]
fn generated_malformed_requests_get_4xx_json() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(TestApp::in_memory());
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&malformed(), |case| {
            let mut builder = Request::builder()
                .method(case.method.clone())
                .uri(&case.path);
            for (name, value) in &case.headers {
                builder = builder.header(name, value);
            }
            let request = builder
                .body(Body::from(case.body.clone()))
                .map_err(|e| TestCaseError::reject(format!("not a request: {e}")))?;
            let answer = runtime.block_on(app.send(request));
            prop_assert!(
                answer.status.is_client_error(),
                "{} {} answered {}: {}",
                case.method,
                case.path,
                answer.status,
                answer.text()
            );
            assert_error_shape(&answer);
            Ok(())
        })
        .unwrap();
}
