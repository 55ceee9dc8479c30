//! `flash-sale`: the load generator. See `--help`, and the README's "Performance" section for
//! the commands behind the published numbers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;
use ticketing_bench::audit::{self, Audit, Reported};
use ticketing_bench::client::HttpClient;
use ticketing_bench::http::{HttpBuyer, InProcessServer};
use ticketing_bench::raw::{self, RawLimits, ratio};
use ticketing_bench::rejection::{self, CostProbes};
use ticketing_bench::remote::{self, TargetConfig, TargetRatios, parse_target};
use ticketing_bench::report::{self, RunMeta, RunReport};
use ticketing_bench::scenario::{self, Buyer, Goods, LoadSpec, SeatChoice};
use ticketing_bench::seat_map_readers::ReaderClient;
use ticketing_bench::setup::{LockKind, RepoKind, Rig, RunDatabase, SaleKind, SetupSpec};
use ticketing_bench::{BenchError, mysql_url, redis_url};
use ticketing_core::service::{PurchaseRequest, Selection, ServiceConfig, TicketService};
use ticketing_server::auth::{TokenMinter, TokenRules};
use ticketing_server::config::parse_duration;
use ticketing_sqlx::BatchConfig;

/// Attempts of a run when neither `--attempts` nor `--duration` is given.
const DEFAULT_ATTEMPTS: u64 = 100_000;

/// How attempts reach the purchase flow (without `--target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `TicketService::purchase` in process.
    Direct,
    /// `POST /api/tickets` on the example server's router, served in process on 127.0.0.1.
    Http,
}

/// Flash sale: S seats (or a general-admission zone), N purchase attempts at concurrency C,
/// every answer timed, the result audited. In process, URLs come from TICKETING_MYSQL_URL and
/// TICKETING_REDIS_URL and each run creates and drops its own database and Redis key prefix.
/// With --target, separately started ticketing-server processes are driven over HTTP and set up
/// through their admin API.
#[derive(Debug, Parser)]
#[command(name = "flash-sale", version)]
struct Args {
    /// Seats of the event (S).
    #[arg(long, default_value_t = 10_000)]
    seats: u32,
    /// Sell this many general-admission places in one zone instead of numbered seats (each
    /// order buys --seats-per-order places).
    #[arg(long, conflicts_with = "seats")]
    places: Option<u32>,
    /// Purchase attempts (N) [default: 100000, or unlimited with --duration].
    #[arg(long)]
    attempts: Option<u64>,
    /// Stop starting attempts after this long (e.g. 30s, 2m); with --attempts, whichever comes
    /// first.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Buyers at once (C); over HTTP also the most keep-alive connections.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// How buyers choose seats.
    #[arg(long, value_enum, default_value_t = SeatChoice::Random)]
    choice: SeatChoice,
    /// Seats (or places) per order.
    #[arg(long, default_value_t = 1)]
    seats_per_order: usize,
    /// Pay every successful order right after buying it: through the signed payment webhook
    /// over HTTP, `TicketService::pay` in direct mode.
    #[arg(long)]
    pay: bool,
    /// The seat lock.
    #[arg(long, value_enum, default_value_t = LockKind::Redis)]
    lock: LockKind,
    /// The ticket repository; several, comma-separated (`--repo mysql,postgres`), run the same
    /// sale on each, one after the other, and report them side by side.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "mysql")]
    repo: Vec<RepoKind>,
    /// Direct library calls or HTTP to the router in process.
    #[arg(long, value_enum, default_value_t = Mode::Direct)]
    mode: Mode,
    /// Write batching in the MySQL repository.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    batching: bool,
    /// Most orders per batch.
    #[arg(long, default_value_t = 64)]
    batch_max_orders: usize,
    /// Longest wait for a batch to fill, microseconds.
    #[arg(long, default_value_t = 1_000)]
    batch_max_wait_us: u64,
    /// Batches writing at once.
    #[arg(long, default_value_t = 2)]
    batch_in_flight: usize,
    /// Connections of the MySQL pool.
    #[arg(long, default_value_t = 64)]
    pool: u32,
    /// Attempts of the rejection-only phase that measures what a rejection costs (0: skip).
    #[arg(long, default_value_t = 20_000)]
    rejection_attempts: u64,
    /// Run Redis (batched and unbatched) against MySqlSeatLock on MySQL, re-measure the raw
    /// limits, and print the ratios.
    #[arg(long)]
    compare: bool,
    /// Drive a separately started ticketing-server at this base URL (http://HOST:PORT) instead
    /// of backends in process. Repeat for several servers sharing one database: buyer i uses
    /// server i mod n (load spread by connection).
    #[arg(long, value_parser = parse_target, conflicts_with_all = [
        "compare", "lock", "repo", "mode", "batching", "batch_max_orders", "batch_max_wait_us",
        "batch_in_flight", "pool",
    ])]
    target: Vec<String>,
    /// With --target: the servers' admin bearer token (their --admin-token).
    #[arg(long, env = "TICKETING_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// With --target and --pay: the servers' payment webhook secret (their --webhook-secret).
    #[arg(long, env = "TICKETING_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// With --target: the servers' HS256 customer-token secret (their --jwt-hs256-secret); the
    /// bench signs a token for each of its customers with it.
    #[arg(long, env = "TICKETING_JWT_HS256_SECRET", hide_env_values = true)]
    jwt_hs256_secret: Option<String>,
    /// With --target: the database the servers use. The audit then counts active tickets per
    /// seat and per zone there with SQL (otherwise through the read API), and the raw INSERT
    /// rate is measured on its server (in a scratch database).
    #[arg(long, requires = "target")]
    database_url: Option<String>,
    /// With --target: the Redis server of the servers' seat lock, for the raw EVALSHA rate and
    /// the scripts per rejection.
    #[arg(long, requires = "target")]
    redis_url: Option<String>,
    /// With --target: the longest a request may take before it counts as a failure.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Seconds per raw-limit probe (with --compare, or --target with --database-url or
    /// --redis-url; 0 skips them).
    #[arg(long, default_value_t = 3)]
    raw_seconds: u64,
    /// Clients per raw-limit probe.
    #[arg(long, default_value_t = 50)]
    raw_clients: usize,
    /// Write the results (with a time series) as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seed of the seat choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// With --target: this many clients read the event's seat map in a loop while the sale
    /// runs (the report gives their maps read per second).
    #[arg(long, default_value_t = 0, requires = "target")]
    seat_map_readers: usize,
    /// How long each seat-map reader waits after a read (e.g. 1s, like a page refreshing its map
    /// every second; 0: a tight loop).
    #[arg(long, default_value = "0", value_parser = parse_pause, requires = "seat_map_readers")]
    seat_map_pause: Duration,
    /// How the seat-map readers ask: as a browser (gzip, and If-None-Match with the map they
    /// hold) or plain (the whole JSON every time).
    #[arg(long, value_enum, default_value_t = ReaderClient::Browser, requires = "seat_map_readers")]
    seat_map_client: ReaderClient,
}

impl Args {
    /// What the event sells.
    fn sale(&self) -> SaleKind {
        match self.places {
            Some(places) => SaleKind::General(places),
            None => SaleKind::Seats(self.seats),
        }
    }

    /// The most attempts: `--attempts`, else unlimited with `--duration`, else the default.
    fn attempts(&self) -> u64 {
        match (self.attempts, self.duration) {
            (Some(n), _) => n,
            (None, Some(_)) => u64::MAX,
            (None, None) => DEFAULT_ATTEMPTS,
        }
    }

    /// The main phase's load with `choice` and at most `attempts` attempts.
    fn load(&self, choice: SeatChoice, attempts: u64) -> LoadSpec {
        LoadSpec {
            attempts,
            duration: self.duration,
            concurrency: self.concurrency,
            choice,
            seats_per_order: self.seats_per_order,
            seed: self.seed,
            progress: !self.no_progress,
            customer_prefix: "b".into(),
            pay: self.pay,
        }
    }

    /// Most tickets per customer: at least the seats per order.
    fn per_customer_limit(&self) -> u32 {
        (self.seats_per_order as u32).max(4)
    }

    /// The `--target` run these flags describe; errors name the missing flag.
    fn target_config(&self) -> Result<TargetConfig, BenchError> {
        let admin_token = self
            .admin_token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or("--target needs --admin-token (the servers' admin token)")?;
        let webhook_secret = self
            .webhook_secret
            .clone()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes);
        if self.pay && webhook_secret.is_none() {
            return Err("--target with --pay needs --webhook-secret (the servers' secret)".into());
        }
        let jwt_hs256_secret = self
            .jwt_hs256_secret
            .clone()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes)
            .ok_or(
                "--target needs --jwt-hs256-secret (the servers' customer-token secret), \
                 to sign its customers' tokens",
            )?;
        Ok(TargetConfig {
            targets: self.target.clone(),
            admin_token,
            webhook_secret,
            jwt_hs256_secret,
            database_url: self.database_url.clone(),
            redis_url: self.redis_url.clone(),
            sale: self.sale(),
            per_customer_limit: self.per_customer_limit(),
            load: self.load(self.choice, self.attempts()),
            rejection_attempts: self.rejection_attempts,
            request_timeout: self.request_timeout,
            raw_clients: self.raw_clients,
            raw_duration: Duration::from_secs(self.raw_seconds),
            seat_map_readers: self.seat_map_readers,
            seat_map_pause: self.seat_map_pause,
            seat_map_client: self.seat_map_client,
        })
    }
}

/// A pause: `parse_duration`, or `0` for none.
fn parse_pause(text: &str) -> Result<Duration, String> {
    match text.trim() {
        "0" | "0s" | "0ms" => Ok(Duration::ZERO),
        _ => parse_duration(text),
    }
}

/// Ratios of a `--compare` run.
#[derive(Debug, Clone, Copy, Serialize)]
struct Ratios {
    /// Redis (batched) purchases/s ÷ MySqlSeatLock purchases/s. Goal ≥ 5.
    redis_vs_sql_purchases: f64,
    /// Rejection-only phase rejections/s (Redis) ÷ raw EVALSHA/s. Goal ≥ 0.5.
    rejections_vs_raw_evalsha: Option<f64>,
    /// Redis batched purchases/s with no contention (sequential seats) ÷ raw single-row
    /// commits/s. Goal ≥ 1.0.
    pipeline_vs_single_insert: Option<f64>,
    /// The same without batching.
    unbatched_pipeline_vs_single_insert: Option<f64>,
}

/// The JSON file.
#[derive(Debug, Serialize)]
struct Output {
    started_at: String,
    load_average: Option<String>,
    runs: Vec<RunReport>,
    raw_limits: Option<RawLimits>,
    ratios: Option<Ratios>,
    target_ratios: Option<TargetRatios>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("OVERSELL AUDIT FAILED");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("flash-sale: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_average() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

async fn run(args: Args) -> Result<bool, BenchError> {
    let started_at = chrono::Utc::now().to_rfc3339();
    let load = load_average();
    let bound = match (args.attempts(), args.duration) {
        (u64::MAX, Some(d)) => format!("for {:.0} s", d.as_secs_f64()),
        (n, Some(d)) => format!("{n} attempts at most, for {:.0} s at most", d.as_secs_f64()),
        (n, None) => format!("{n} attempts"),
    };
    let sale = args.sale();
    println!(
        "flash sale: {} {}, {bound}, concurrency {}, {:?} choice, {} per order{}; load average {}",
        sale.capacity(),
        sale.name(),
        args.concurrency,
        args.choice,
        args.seats_per_order,
        if args.pay { ", paid" } else { "" },
        load.as_deref().unwrap_or("?")
    );
    let (runs, raw_limits, ratios, target_ratios) = if args.target.is_empty() {
        let (runs, limits, ratios) = run_in_process(&args).await?;
        (runs, limits, ratios, None)
    } else {
        let outcome = remote::run(&args.target_config()?).await?;
        (
            vec![outcome.report],
            outcome.raw_limits,
            None,
            outcome.ratios,
        )
    };

    println!();
    println!("{}", report::table(&runs));
    if let Some(limits) = &raw_limits {
        println!("{}", limits.describe());
    }
    if let Some(r) = &ratios {
        let show = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format!("{v:.2}"));
        println!(
            "ratios: Redis/MySqlSeatLock purchases/s {:.2}x (goal 5x); rejections/s / raw EVALSHA {} (goal 0.5); pipeline / single-row commits {}x batched, {}x unbatched (goal 1.0x)",
            r.redis_vs_sql_purchases,
            show(r.rejections_vs_raw_evalsha),
            show(r.pipeline_vs_single_insert),
            show(r.unbatched_pipeline_vs_single_insert)
        );
    }
    if let Some(r) = &target_ratios {
        println!("{}", r.describe());
    }
    for run in &runs {
        for failure in &run.failure_examples {
            eprintln!("{}: failure example: {failure}", run.label);
        }
    }
    let audit_ok = runs.iter().all(|r| !r.audit.failed());
    println!(
        "oversell audit: {}",
        if audit_ok {
            "ok (no seat sold twice, no zone over capacity, every success stored)"
        } else {
            "FAILED"
        }
    );
    if let Some(path) = &args.json {
        let output = Output {
            started_at,
            load_average: load,
            runs,
            raw_limits,
            ratios,
            target_ratios,
        };
        std::fs::write(path, serde_json::to_string_pretty(&output)?)?;
        println!("results written to {}", path.display());
    }
    Ok(audit_ok)
}

/// One in-process run: the lock, the repository, batching, the seat choice and the attempts.
type Plan = (LockKind, RepoKind, Option<BatchConfig>, SeatChoice, u64);

/// The runs of an in-process invocation: one, or the five of `--compare` (with the raw limits
/// and ratios).
async fn run_in_process(
    args: &Args,
) -> Result<(Vec<RunReport>, Option<RawLimits>, Option<Ratios>), BenchError> {
    let batch = BatchConfig {
        max_orders: args.batch_max_orders,
        max_wait: Duration::from_micros(args.batch_max_wait_us),
        max_in_flight: args.batch_in_flight,
    };
    let plans: Vec<Plan> = if args.compare {
        let (sale, n) = (args.choice, args.attempts());
        let pipeline = args.sale().capacity() / args.seats_per_order.max(1) as u64;
        vec![
            (LockKind::Redis, RepoKind::Mysql, Some(batch), sale, n),
            (LockKind::Redis, RepoKind::Mysql, None, sale, n),
            (LockKind::Sql, RepoKind::Mysql, None, sale, n),
            // The pipeline alone: every attempt gets the next free seats, nobody loses.
            (
                LockKind::Redis,
                RepoKind::Mysql,
                Some(batch),
                SeatChoice::Sequential,
                pipeline,
            ),
            (
                LockKind::Redis,
                RepoKind::Mysql,
                None,
                SeatChoice::Sequential,
                pipeline,
            ),
        ]
    } else {
        args.repo
            .iter()
            .map(|&repo| {
                let batching = (args.batching && repo == RepoKind::Mysql).then_some(batch);
                (args.lock, repo, batching, args.choice, args.attempts())
            })
            .collect()
    };
    let mut runs = Vec::new();
    for plan in plans {
        runs.push(scenario_run(args, plan).await?);
    }
    if !args.compare {
        return Ok((runs, None, None));
    }
    println!(
        "raw limits: {} clients, {} s per probe",
        args.raw_clients, args.raw_seconds
    );
    let db =
        RunDatabase::create(&mysql_url(), "TICKETING_MYSQL_URL", args.raw_clients as u32).await?;
    let limits = raw::measure(
        Some(&db.pool),
        Some(&redis_url()),
        args.raw_clients,
        Duration::from_secs(args.raw_seconds),
    )
    .await;
    db.drop_database().await?;
    let limits = limits?;
    let ratios = Ratios {
        redis_vs_sql_purchases: runs[0].purchases_per_s / runs[2].purchases_per_s.max(1e-9),
        rejections_vs_raw_evalsha: ratio(
            runs[0].rejection_cost.rejections_per_s,
            limits.evalsha_per_s,
        ),
        pipeline_vs_single_insert: ratio(runs[3].purchases_per_s, limits.single_insert_per_s),
        unbatched_pipeline_vs_single_insert: ratio(
            runs[4].purchases_per_s,
            limits.single_insert_per_s,
        ),
    };
    Ok((runs, Some(limits), Some(ratios)))
}

fn label(plan: &Plan, sale: SaleKind) -> String {
    let (lock, repo, batching, choice, _) = plan;
    let lock = match lock {
        LockKind::Redis => "redis",
        LockKind::Sql => "sql-lock",
        LockKind::Memory => "memory",
    };
    let repo = match repo {
        RepoKind::Mysql => "mysql",
        RepoKind::Postgres => "postgres",
        RepoKind::Memory => "memory",
    };
    let mut name = match batching {
        Some(_) => format!("{lock}+{repo} batched"),
        None => format!("{lock}+{repo}"),
    };
    if let SaleKind::General(_) = sale {
        name.push_str(" general");
    }
    match choice {
        SeatChoice::Sequential => format!("{name} (pipeline)"),
        _ => name,
    }
}

async fn scenario_run(args: &Args, plan: Plan) -> Result<RunReport, BenchError> {
    let (lock, repo, batching, _, _) = plan;
    let spec = SetupSpec {
        lock,
        repo,
        batching,
        sale: args.sale(),
        per_customer_limit: args.per_customer_limit(),
        pool_size: args.pool,
    };
    let rig = Rig::build(&spec).await?;
    let result = drive(args, &plan, &rig).await;
    let teardown = rig.tear_down().await;
    let report = result?;
    teardown?;
    Ok(report)
}

/// The buyer of an in-process run, and the server it talks to in HTTP mode.
async fn in_process_buyer(
    args: &Args,
    rig: &Rig,
) -> Result<(Buyer, Option<(InProcessServer, HttpClient)>), BenchError> {
    Ok(match args.mode {
        Mode::Direct => (
            Buyer::Direct(TicketService::new(
                rig.backends.clone(),
                ServiceConfig::default(),
            )),
            None,
        ),
        Mode::Http => {
            let server = InProcessServer::start(rig.backends.clone()).await?;
            let client = HttpClient::new(args.concurrency, args.request_timeout);
            let tokens = TokenMinter::hs256(&server.jwt_secret, &TokenRules::default())?;
            let buyer = HttpBuyer::new(
                client.clone(),
                &server.base_url(),
                Some(&server.webhook_secret),
                tokens,
            );
            (Buyer::Http(buyer), Some((server, client)))
        }
    })
}

async fn drive(args: &Args, plan: &Plan, rig: &Rig) -> Result<RunReport, BenchError> {
    let (_, repo, _, choice, attempts) = *plan;
    let label = label(plan, args.sale());
    rig.warm_up().await?;
    let (buyer, server) = in_process_buyer(args, rig).await?;
    // Fill the service's event cache with a purchase the validation refuses (a seat in a zone
    // the venue does not have): nothing is held or stored.
    let _ = buyer
        .buy(PurchaseRequest {
            event: rig.event,
            customer: "warmup".parse()?,
            selection: Selection::Seats(vec!["NONE:1:1".parse()?]),
            idempotency_key: None,
            voucher: None,
            channel: None,
        })
        .await;
    let load = args.load(choice, attempts);
    let buyers = [buyer];
    println!(
        "{label}: selling {} {} to {}",
        rig.goods.capacity(),
        args.sale().name(),
        if attempts == u64::MAX {
            "as many attempts as fit".to_owned()
        } else {
            format!("{attempts} attempts")
        }
    );
    let calls_before = rig.calls.snapshot();
    let connections_before = server.as_ref().map(|(_, c)| c.connections_opened());
    let raw = scenario::run(&buyers, rig.event, &rig.goods, &load).await;
    let repository_calls = rig.calls.snapshot().since(&calls_before);
    let connections_opened = server
        .as_ref()
        .zip(connections_before)
        .map(|((_, c), before)| c.connections_opened() - before);

    // The rejection-only phase: attempts that can only lose, for the cost of a rejection.
    let mut rejection_cost = Default::default();
    let losing = rejection::losing_goods(&rig.goods, &raw, args.seats_per_order);
    if let (Some(losing), true) = (losing, args.rejection_attempts > 0) {
        let redis = rig.redis.is_some().then(redis_url);
        let probes = CostProbes {
            pool: rig.database.as_ref().map(|d| &d.pool),
            redis_url: redis.as_deref(),
            calls: Some(&rig.calls),
        };
        let spec = rejection::phase_spec(&load, args.rejection_attempts);
        rejection_cost = rejection::measure(&buyers, rig.event, &losing, &spec, probes).await?;
    }
    if let Some((server, _)) = server {
        server.stop().await;
    }

    let reported = Reported::of(&raw, args.seats_per_order, args.pay);
    let capacity = rig.goods.capacity();
    let audit: Audit = match (&rig.database, &rig.postgres) {
        (Some(db), _) if repo == RepoKind::Mysql => {
            audit::audit_sql(&db.pool, rig.event, capacity, reported).await?
        }
        (_, Some(db)) if repo == RepoKind::Postgres => {
            audit::audit_sql_postgres(&db.pool, rig.event, capacity, reported).await?
        }
        _ => {
            let general = matches!(rig.goods, Goods::General { .. }).then_some(capacity);
            audit::audit_repository(
                &**rig.backends.tickets(),
                rig.event,
                capacity,
                general,
                reported,
            )
            .await?
        }
    };
    let meta = RunMeta {
        label,
        mode: match args.mode {
            Mode::Direct => "direct",
            Mode::Http => "http",
        },
        targets: Vec::new(),
        sale: args.sale().name(),
        capacity,
    };
    let mut report = RunReport::new(meta, &load, &raw, audit);
    report.repository_calls = Some(repository_calls);
    report.rejection_cost = rejection_cost;
    report.connections_opened = connections_opened;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("flash-sale").chain(args.iter().copied()))
    }

    #[test]
    fn targets_repeat_and_are_normalised() {
        let args = parse(&[
            "--target",
            "http://127.0.0.1:18081/",
            "--target",
            "http://127.0.0.1:18082",
            "--admin-token",
            "T",
            "--jwt-hs256-secret",
            "0123456789abcdef0123456789abcdef",
        ])
        .unwrap();
        assert_eq!(
            args.target,
            ["http://127.0.0.1:18081", "http://127.0.0.1:18082"]
        );
        let config = args.target_config().unwrap();
        assert_eq!(config.admin_token, "T");
        assert_eq!(config.load.attempts, DEFAULT_ATTEMPTS);
        assert!(parse(&["--target", "127.0.0.1:18081"]).is_err());
    }

    #[test]
    fn target_conflicts_with_in_process_backend_flags() {
        for flag in [
            &["--compare"][..],
            &["--lock", "sql"],
            &["--repo", "memory"],
            &["--mode", "http"],
            &["--batching", "false"],
            &["--pool", "8"],
        ] {
            let mut argv = vec!["--target", "http://127.0.0.1:18081"];
            argv.extend_from_slice(flag);
            assert!(parse(&argv).is_err(), "{flag:?} should conflict");
        }
    }

    #[test]
    fn several_repositories_run_side_by_side() {
        let args = parse(&["--repo", "mysql,postgres"]).unwrap();
        assert_eq!(args.repo, [RepoKind::Mysql, RepoKind::Postgres]);
        assert_eq!(parse(&[]).unwrap().repo, [RepoKind::Mysql]);
    }

    #[test]
    fn service_urls_need_a_target() {
        assert!(parse(&["--database-url", "mysql://root@127.0.0.1/x"]).is_err());
        assert!(parse(&["--redis-url", "redis://127.0.0.1"]).is_err());
        assert!(
            parse(&[
                "--target",
                "http://127.0.0.1:18081",
                "--database-url",
                "mysql://root@127.0.0.1/x",
                "--redis-url",
                "redis://127.0.0.1",
            ])
            .is_ok()
        );
    }

    #[test]
    fn scenario_flags_shape_the_sale_and_the_load() {
        let args = parse(&["--places", "1000", "--attempts", "3000", "--pay"]).unwrap();
        assert_eq!(args.sale(), SaleKind::General(1000));
        let load = args.load(args.choice, args.attempts());
        assert_eq!((load.attempts, load.pay), (3000, true));
        let args = parse(&["--places", "1000000", "--duration", "20s"]).unwrap();
        assert_eq!(args.attempts(), u64::MAX);
        assert_eq!(args.duration, Some(Duration::from_secs(20)));
        assert!(parse(&["--places", "10", "--seats", "10"]).is_err());
        assert!(parse(&["--duration", "0s"]).is_err());
        let args = parse(&[]).unwrap();
        assert_eq!(args.sale(), SaleKind::Seats(10_000));
        assert_eq!(args.request_timeout, Duration::from_secs(30));
    }

    #[test]
    fn a_target_run_needs_the_admin_token_and_to_pay_the_secret() {
        let no_token = parse(&["--target", "http://127.0.0.1:18081"]).unwrap();
        if std::env::var_os("TICKETING_ADMIN_TOKEN").is_none() {
            let error = no_token.target_config().unwrap_err().to_string();
            assert!(error.contains("--admin-token"), "{error}");
        }
        let no_secret = parse(&[
            "--target",
            "http://127.0.0.1:18081",
            "--admin-token",
            "T",
            "--pay",
        ])
        .unwrap();
        if std::env::var_os("TICKETING_WEBHOOK_SECRET").is_none() {
            let error = no_secret.target_config().unwrap_err().to_string();
            assert!(error.contains("--webhook-secret"), "{error}");
        }
        let no_jwt = parse(&["--target", "http://127.0.0.1:18081", "--admin-token", "T"]).unwrap();
        if std::env::var_os("TICKETING_JWT_HS256_SECRET").is_none() {
            let error = no_jwt.target_config().unwrap_err().to_string();
            assert!(error.contains("--jwt-hs256-secret"), "{error}");
        }
    }
}
