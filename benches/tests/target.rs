//! `--target` runs against real servers over real HTTP: the example server's router served on
//! 127.0.0.1 by this process, set up only through its admin API like a separately started one.
//! The in-memory tests need nothing else; the MySQL test reads `TICKETING_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`) and fails, naming it, when the server is unreachable.

use std::sync::Arc;
use std::time::Duration;

use ticketing_bench::client::{HttpClient, RequestError};
use ticketing_bench::http::InProcessServer;
use ticketing_bench::remote::{self, TargetConfig, TargetOutcome};
use ticketing_bench::scenario::{LoadSpec, SeatChoice};
use ticketing_bench::seat_map_readers::ReaderClient;
use ticketing_bench::setup::{RunDatabase, SaleKind};
use ticketing_core::service::Backends;
use ticketing_sqlx::{MySqlCatalog, MySqlSeatLock, MySqlTicketRepository};

fn load(attempts: u64, concurrency: usize, pay: bool) -> LoadSpec {
    LoadSpec {
        attempts,
        duration: None,
        concurrency,
        choice: SeatChoice::Random,
        seats_per_order: 1,
        seed: 7,
        progress: false,
        customer_prefix: "b".into(),
        pay,
    }
}

fn config(servers: &[&InProcessServer], sale: SaleKind, load: LoadSpec) -> TargetConfig {
    TargetConfig {
        targets: servers.iter().map(|s| s.base_url()).collect(),
        admin_token: servers[0].admin_token.clone(),
        webhook_secret: Some(servers[0].webhook_secret.clone()),
        jwt_hs256_secret: servers[0].jwt_secret.clone(),
        database_url: None,
        redis_url: None,
        sale,
        per_customer_limit: 4,
        load,
        rejection_attempts: 200,
        request_timeout: Duration::from_secs(10),
        raw_clients: 4,
        raw_duration: Duration::ZERO,
        seat_map_readers: 0,
        seat_map_pause: Duration::ZERO,
        seat_map_client: ReaderClient::Browser,
    }
}

fn assert_clean(outcome: &TargetOutcome) {
    let report = &outcome.report;
    assert_eq!(
        report.failures, 0,
        "failures: {:?}",
        report.failure_examples
    );
    assert!(!report.audit.failed(), "audit failed: {:?}", report.audit);
    assert!(
        report.connections_opened.unwrap() <= report.concurrency as u64,
        "{} connections for {} buyers",
        report.connections_opened.unwrap(),
        report.concurrency
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_general_admission_sale_over_http_is_audited_through_the_read_api() {
    let server = InProcessServer::start(Backends::in_memory()).await.unwrap();
    let outcome = remote::run(&config(
        &[&server],
        SaleKind::General(50),
        load(150, 16, true),
    ))
    .await
    .unwrap();
    assert_clean(&outcome);
    let report = &outcome.report;
    assert_eq!((report.successes, report.rejections), (50, 100));
    let payments = report.payments.as_ref().unwrap();
    assert_eq!((payments.paid, payments.failed), (50, 0));
    assert_eq!(report.audit.source, "api");
    assert_eq!(report.audit.paid_tickets, Some(50));
    assert_eq!(report.audit.orders_missing, Some(0));
    // Sold out, so the rejection-only phase ran: every attempt answered SOLD_OUT.
    assert_eq!(report.rejection_cost.rejected, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seated_sale_spread_over_two_servers_sharing_backends_answers_every_attempt() {
    let backends = Backends::in_memory();
    let first = InProcessServer::start(backends.clone()).await.unwrap();
    // Servers of one deployment verify the same customer tokens.
    let second = InProcessServer::start_with_jwt_secret(backends, first.jwt_secret.clone())
        .await
        .unwrap();
    let outcome = remote::run(&config(
        &[&first, &second],
        SaleKind::Seats(100),
        load(400, 8, false),
    ))
    .await
    .unwrap();
    assert_clean(&outcome);
    let report = &outcome.report;
    assert_eq!(report.targets.len(), 2);
    assert_eq!(report.successes + report.rejections, 400);
    assert_eq!(report.audit.active_tickets, report.successes);
    assert_eq!(report.audit.double_sold_seats, 0);
    first.stop().await;
    second.stop().await;
}

/// Seat-map readers run beside the buyers for the whole sale and are counted; the sale is still
/// answered and audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_map_readers_read_during_the_sale_and_are_counted() {
    let server = InProcessServer::start(Backends::in_memory()).await.unwrap();
    let mut spec = load(u64::MAX, 4, false);
    spec.duration = Some(Duration::from_millis(500));
    let mut config = config(&[&server], SaleKind::Seats(1_000), spec);
    config.seat_map_readers = 3;
    let outcome = remote::run(&config).await.unwrap();
    assert_clean(&outcome);
    let readers = outcome.report.seat_map_readers.expect("reader stats");
    assert_eq!(readers.readers, 3);
    assert!(readers.maps >= 3, "{readers:?}");
    assert_eq!(readers.failures, 0, "{readers:?}");
    assert!(readers.mean_map_bytes > 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_for_a_duration_stops_on_time() {
    let server = InProcessServer::start(Backends::in_memory()).await.unwrap();
    let mut spec = load(u64::MAX, 4, false);
    spec.duration = Some(Duration::from_millis(500));
    let outcome = remote::run(&config(&[&server], SaleKind::General(1_000_000), spec))
        .await
        .unwrap();
    assert_clean(&outcome);
    let report = &outcome.report;
    assert!(report.elapsed_s < 5.0, "ran {} s", report.elapsed_s);
    assert!(report.successes > 0);
    assert_eq!(report.rejections, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_do_not_share_a_database_are_refused() {
    let first = InProcessServer::start(Backends::in_memory()).await.unwrap();
    let second =
        InProcessServer::start_with_jwt_secret(Backends::in_memory(), first.jwt_secret.clone())
            .await
            .unwrap();
    let error = remote::run(&config(
        &[&first, &second],
        SaleKind::Seats(10),
        load(10, 2, false),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("does not know event"), "{error}");
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_admin_token_webhook_secret_or_token_secret_is_named() {
    let server = InProcessServer::start(Backends::in_memory()).await.unwrap();
    let mut wrong_token = config(&[&server], SaleKind::Seats(10), load(10, 2, false));
    wrong_token.admin_token = "not-the-token".into();
    let error = remote::run(&wrong_token).await.unwrap_err().to_string();
    assert!(error.contains("--admin-token"), "{error}");
    let mut wrong_secret = config(&[&server], SaleKind::General(10), load(10, 2, true));
    wrong_secret.webhook_secret = Some(b"not-the-secret".to_vec());
    let error = remote::run(&wrong_secret).await.unwrap_err().to_string();
    assert!(error.contains("--webhook-secret"), "{error}");
    let mut wrong_jwt = config(&[&server], SaleKind::Seats(10), load(10, 2, false));
    wrong_jwt.jwt_hs256_secret = b"not-the-secret-but-long-enough-to-sign".to_vec();
    let error = remote::run(&wrong_jwt).await.unwrap_err().to_string();
    assert!(error.contains("--jwt-hs256-secret"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let client = HttpClient::new(1, Duration::from_millis(200));
    let error = client
        .get(&format!("http://{address}/health"))
        .await
        .unwrap_err();
    assert_eq!(error, RequestError::Timeout);
    assert!(error.outcome_unknown());
    held.abort();
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = HttpClient::new(1, Duration::from_secs(5));
    let error = client
        .get(&format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap_err();
    assert!(matches!(error, RequestError::Connect(_)), "{error:?}");
    assert!(!error.outcome_unknown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_on_mysql_is_audited_with_sql_in_its_database() {
    let url = ticketing_bench::mysql_url();
    let database = RunDatabase::create(&url, "TICKETING_MYSQL_URL", 8)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pool = database.pool.clone();
    let backends = Backends::builder()
        .tickets(Arc::new(MySqlTicketRepository::new(pool.clone())))
        .catalog(Arc::new(MySqlCatalog::new(pool.clone())))
        .seat_lock(Arc::new(MySqlSeatLock::new(pool)))
        .build()
        .expect("every adapter given");
    let server = InProcessServer::start(backends).await.unwrap();

    let mut run = config(&[&server], SaleKind::General(40), load(100, 8, true));
    run.database_url = Some(database.url());
    run.raw_duration = Duration::from_millis(300);
    let outcome = remote::run(&run).await.unwrap();
    assert_clean(&outcome);
    let report = &outcome.report;
    assert_eq!(report.audit.source, "sql");
    assert_eq!(report.audit.active_tickets, 40);
    assert_eq!(report.audit.paid_tickets, Some(40));
    assert!(report.rejection_cost.db_questions_per_rejection.is_some());
    let limits = outcome.raw_limits.unwrap();
    assert!(limits.single_insert_per_s.unwrap() > 0.0);
    assert_eq!(limits.evalsha_per_s, None);
    assert!(outcome.ratios.unwrap().purchases_vs_single_insert.is_some());

    // A database the server does not use is refused rather than audited as empty.
    let elsewhere = InProcessServer::start(Backends::in_memory()).await.unwrap();
    let mut wrong = config(&[&elsewhere], SaleKind::Seats(10), load(10, 2, false));
    wrong.database_url = Some(database.url());
    let error = remote::run(&wrong).await.unwrap_err().to_string();
    assert!(error.contains("--database-url"), "{error}");

    server.stop().await;
    elsewhere.stop().await;
    database.drop_database().await.unwrap();
}
