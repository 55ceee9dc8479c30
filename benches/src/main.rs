//! `flash-sale`: the load generator. See `--help`, and the README's "Performance" section for
//! the commands behind the published numbers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde::Serialize;
use ticketing_bench::audit::{self, Audit};
use ticketing_bench::http::{HttpBuyer, InProcessServer};
use ticketing_bench::raw::{self, RawLimits};
use ticketing_bench::report::{self, Latency, RejectionCost, RunReport};
use ticketing_bench::scenario::{self, Buyer, LoadSpec, Outcome, SeatChoice};
use ticketing_bench::setup::{LockKind, RepoKind, Rig, RunDatabase, SetupSpec};
use ticketing_bench::{BenchError, mysql_url, redis_url};
use ticketing_core::service::{PurchaseRequest, Selection, ServiceConfig, TicketService};
use ticketing_sqlx::BatchConfig;

/// How attempts reach the purchase flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `TicketService::purchase` in process.
    Direct,
    /// `POST /api/tickets` on the example server's router, served in process on 127.0.0.1.
    Http,
}

/// Flash sale: S seats, N purchase attempts at concurrency C, every answer timed, the result
/// audited in the database. URLs come from TICKETING_MYSQL_URL and TICKETING_REDIS_URL; each
/// run creates and drops its own database and uses its own Redis key prefix.
#[derive(Debug, Parser)]
#[command(name = "flash-sale", version)]
struct Args {
    /// Seats of the event (S).
    #[arg(long, default_value_t = 10_000)]
    seats: u32,
    /// Purchase attempts (N).
    #[arg(long, default_value_t = 100_000)]
    attempts: u64,
    /// Buyers at once (C).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// How buyers choose seats.
    #[arg(long, value_enum, default_value_t = SeatChoice::Random)]
    choice: SeatChoice,
    /// Seats per order (places, with --general).
    #[arg(long, default_value_t = 1)]
    seats_per_order: usize,
    /// Sell S places of one general-admission zone instead of S numbered seats (--choice is
    /// then unused).
    #[arg(long)]
    general: bool,
    /// The seat lock.
    #[arg(long, value_enum, default_value_t = LockKind::Redis)]
    lock: LockKind,
    /// The ticket repository.
    #[arg(long, value_enum, default_value_t = RepoKind::Mysql)]
    repo: RepoKind,
    /// Direct library calls or HTTP.
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
    /// Run Redis (batched and unbatched) against SqlSeatLock on MySQL, re-measure the raw
    /// limits, and print the ratios.
    #[arg(long)]
    compare: bool,
    /// Seconds per raw-limit probe (with --compare).
    #[arg(long, default_value_t = 3)]
    raw_seconds: u64,
    /// Clients per raw-limit probe (with --compare).
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
}

/// Ratios of a `--compare` run.
#[derive(Debug, Clone, Copy, Serialize)]
struct Ratios {
    /// Redis (batched) purchases/s ÷ SqlSeatLock purchases/s. Goal ≥ 5.
    redis_vs_sql_purchases: f64,
    /// Rejection-only phase rejections/s (Redis) ÷ raw EVALSHA/s. Goal ≥ 0.5.
    rejections_vs_raw_evalsha: f64,
    /// Redis batched purchases/s with no contention (sequential seats) ÷ raw single-row
    /// commits/s. Goal ≥ 1.0.
    pipeline_vs_single_insert: f64,
    /// The same without batching.
    unbatched_pipeline_vs_single_insert: f64,
}

/// The JSON file.
#[derive(Debug, Serialize)]
struct Output {
    started_at: String,
    load_average: Option<String>,
    runs: Vec<RunReport>,
    raw_limits: Option<RawLimits>,
    ratios: Option<Ratios>,
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
    if args.general && args.mode == Mode::Http {
        return Err(
            "--general buys through the library (--mode direct): the HTTP buyer sends seats".into(),
        );
    }
    let started_at = chrono::Utc::now().to_rfc3339();
    let load = load_average();
    println!(
        "flash sale: {} seats, {} attempts, concurrency {}, {:?} choice, {} seat(s) per order; load average {}",
        args.seats,
        args.attempts,
        args.concurrency,
        args.choice,
        args.seats_per_order,
        load.as_deref().unwrap_or("?")
    );
    let batch = BatchConfig {
        max_orders: args.batch_max_orders,
        max_wait: Duration::from_micros(args.batch_max_wait_us),
        max_in_flight: args.batch_in_flight,
    };
    // (lock, repository, batching, seat choice, attempts)
    type Plan = (LockKind, RepoKind, Option<BatchConfig>, SeatChoice, u64);
    let plans: Vec<Plan> = if args.compare {
        let (sale, n) = (args.choice, args.attempts);
        let pipeline = u64::from(args.seats) / args.seats_per_order.max(1) as u64;
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
        let batching = (args.batching && args.repo == RepoKind::Mysql).then_some(batch);
        vec![(args.lock, args.repo, batching, args.choice, args.attempts)]
    };
    let mut runs = Vec::new();
    for (lock, repo, batching, choice, attempts) in plans {
        runs.push(scenario_run(&args, lock, repo, batching, choice, attempts).await?);
    }
    let (raw_limits, ratios) = if args.compare {
        println!(
            "raw limits: {} clients, {} s per probe",
            args.raw_clients, args.raw_seconds
        );
        let db = RunDatabase::create(&mysql_url(), args.raw_clients as u32).await?;
        let limits = raw::measure(
            &db.pool,
            &redis_url(),
            args.raw_clients,
            Duration::from_secs(args.raw_seconds),
        )
        .await;
        db.drop_database().await?;
        let limits = limits?;
        let ratios = Ratios {
            redis_vs_sql_purchases: runs[0].purchases_per_s / runs[2].purchases_per_s.max(1e-9),
            rejections_vs_raw_evalsha: runs[0].rejection_cost.rejections_per_s
                / limits.evalsha_per_s.max(1e-9),
            pipeline_vs_single_insert: runs[3].purchases_per_s
                / limits.single_insert_per_s.max(1e-9),
            unbatched_pipeline_vs_single_insert: runs[4].purchases_per_s
                / limits.single_insert_per_s.max(1e-9),
        };
        (Some(limits), Some(ratios))
    } else {
        (None, None)
    };

    println!();
    println!("{}", report::table(&runs));
    for run in &runs {
        if let Some(line) = report::by_tickets_sold_line(run) {
            println!("{line}");
        }
    }
    if let Some(limits) = &raw_limits {
        println!(
            "raw limits ({} clients, unpipelined): EVALSHA one-seat hold {:.0}/s; single-row autocommit INSERT {:.0}/s; {}-row INSERT {:.0} rows/s",
            limits.clients,
            limits.evalsha_per_s,
            limits.single_insert_per_s,
            raw::BATCH_ROWS,
            limits.batched_rows_per_s
        );
    }
    if let Some(r) = &ratios {
        println!(
            "ratios: Redis/SqlSeatLock purchases/s {:.2}x (goal 5x); rejections/s / raw EVALSHA {:.2} (goal 0.5); pipeline / single-row commits {:.2}x batched, {:.2}x unbatched (goal 1.0x)",
            r.redis_vs_sql_purchases,
            r.rejections_vs_raw_evalsha,
            r.pipeline_vs_single_insert,
            r.unbatched_pipeline_vs_single_insert
        );
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
            "ok (no seat sold twice, sold <= capacity, every success stored)"
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
        };
        std::fs::write(path, serde_json::to_string_pretty(&output)?)?;
        println!("results written to {}", path.display());
    }
    Ok(audit_ok)
}

fn label(
    lock: LockKind,
    repo: RepoKind,
    batching: Option<BatchConfig>,
    choice: SeatChoice,
) -> String {
    let lock = match lock {
        LockKind::Redis => "redis",
        LockKind::Sql => "sql-lock",
        LockKind::Memory => "memory",
    };
    let repo = match repo {
        RepoKind::Mysql => "mysql",
        RepoKind::Memory => "memory",
    };
    let name = match batching {
        Some(_) => format!("{lock}+{repo} batched"),
        None => format!("{lock}+{repo}"),
    };
    match choice {
        SeatChoice::Sequential => format!("{name} (pipeline)"),
        _ => name,
    }
}

async fn scenario_run(
    args: &Args,
    lock: LockKind,
    repo: RepoKind,
    batching: Option<BatchConfig>,
    choice: SeatChoice,
    attempts: u64,
) -> Result<RunReport, BenchError> {
    let mut label = label(lock, repo, batching, choice);
    if args.general {
        label.push_str(" general admission");
    }
    let spec = SetupSpec {
        lock,
        repo,
        batching,
        seats: args.seats,
        general: args.general,
        per_customer_limit: (args.seats_per_order as u32).max(4),
        pool_size: args.pool,
    };
    let rig = Rig::build(&spec).await?;
    let result = drive(args, &label, &rig, choice, attempts).await;
    let teardown = rig.tear_down().await;
    let report = result?;
    teardown?;
    Ok(report)
}

async fn drive(
    args: &Args,
    label: &str,
    rig: &Rig,
    choice: SeatChoice,
    attempts: u64,
) -> Result<RunReport, BenchError> {
    rig.warm_up().await?;
    let (buyer, server) = match args.mode {
        Mode::Direct => (
            Buyer::Direct(TicketService::new(
                rig.backends.clone(),
                ServiceConfig::default(),
            )),
            None,
        ),
        Mode::Http => {
            let server = InProcessServer::start(rig.backends.clone()).await?;
            let buyer = HttpBuyer::new(&format!("http://{}", server.address));
            (Buyer::Http(buyer), Some(server))
        }
    };
    // Fill the service's event cache with a purchase the validation refuses (a seat the venue
    // does not have): nothing is held or stored.
    let _ = buyer
        .buy(PurchaseRequest {
            event: rig.event,
            customer: "warmup".parse()?,
            selection: Selection::Seats(vec!["A:9999:1".parse()?]),
            idempotency_key: None,
        })
        .await;
    let mut load = LoadSpec {
        attempts,
        concurrency: args.concurrency,
        choice,
        seats_per_order: args.seats_per_order,
        general_zone: rig.general_zone.clone(),
        seed: args.seed,
        progress: !args.no_progress,
        customer_prefix: "b".into(),
    };
    println!(
        "{label}: selling {} seats to {attempts} attempts",
        args.seats
    );
    let calls_before = rig.calls.snapshot();
    let raw = scenario::run(&buyer, rig.event, &rig.seats, &load).await;
    let repository_calls = rig.calls.snapshot().since(&calls_before);
    let (successes, rejections, failures, purchases_per_s, sell_out_s) =
        report::tally(&raw, args.seats, args.seats_per_order);

    // The rejection-only phase: attempts that can only lose, for the cost of a rejection.
    let mut rejection_cost = RejectionCost::default();
    if args.rejection_attempts > 0 && !raw.sold.is_empty() {
        load.attempts = args.rejection_attempts;
        load.choice = SeatChoice::Random;
        load.seats_per_order = 1;
        load.customer_prefix = "r".into();
        load.progress = false;
        let pool = rig.database.as_ref().map(|d| d.pool.clone());
        let redis = rig.redis.is_some().then(redis_url);
        let questions_before = match &pool {
            Some(p) => Some(audit::questions(p).await?),
            None => None,
        };
        let scripts_before = match &redis {
            Some(url) => Some(audit::script_calls(url).await?),
            None => None,
        };
        let calls_before = rig.calls.snapshot();
        let phase_started = Instant::now();
        let phase = scenario::run(&buyer, rig.event, &raw.sold, &load).await;
        let phase_elapsed = phase_started.elapsed().as_secs_f64();
        let calls = rig.calls.snapshot().since(&calls_before);
        let rejected = phase
            .samples
            .iter()
            .filter(|s| s.outcome == Outcome::Rejected)
            .count() as u64;
        let per = |n: f64| n / (rejected.max(1) as f64);
        let questions = match (&pool, questions_before) {
            // The second SHOW STATUS counts itself once.
            (Some(p), Some(before)) => Some(per(
                (audit::questions(p).await? - before).saturating_sub(1) as f64
            )),
            _ => None,
        };
        let scripts = match (&redis, scripts_before) {
            (Some(url), Some(before)) => {
                Some(per((audit::script_calls(url).await? - before) as f64))
            }
            _ => None,
        };
        rejection_cost = RejectionCost {
            attempts: load.attempts,
            rejected,
            rejections_per_s: rejected as f64 / phase_elapsed,
            repository_calls_per_rejection: per(calls.total() as f64),
            db_questions_per_rejection: questions,
            redis_scripts_per_rejection: scripts,
        };
    }
    if let Some(server) = server {
        server.stop().await;
    }

    let reported = successes * args.seats_per_order as u64;
    let audit: Audit = match &rig.database {
        Some(db) if args.repo == RepoKind::Mysql || label.contains("mysql") => {
            audit::audit_sql(&db.pool, rig.event, u64::from(args.seats), reported).await?
        }
        _ => {
            audit::audit_repository(
                &*rig.backends.tickets,
                rig.event,
                u64::from(args.seats),
                reported,
            )
            .await?
        }
    };
    Ok(RunReport {
        label: label.to_owned(),
        mode: format!("{:?}", args.mode).to_lowercase(),
        seats: args.seats,
        attempts,
        concurrency: args.concurrency,
        choice: format!("{choice:?}").to_lowercase(),
        seats_per_order: args.seats_per_order,
        elapsed_s: raw.elapsed.as_secs_f64(),
        attempts_per_s: raw.samples.len() as f64 / raw.elapsed.as_secs_f64(),
        successes,
        rejections,
        failures,
        purchases_per_s,
        sell_out_s,
        success_latency: Latency::of(raw.samples.iter(), Outcome::Success),
        rejection_latency: Latency::of(raw.samples.iter(), Outcome::Rejected),
        repository_calls,
        rejection_cost,
        audit,
        failure_examples: raw.failures.clone(),
        series: report::series(&raw.samples, raw.elapsed, 120),
        purchases_per_s_by_tickets_sold: report::rate_by_tickets_sold(
            &raw.samples,
            args.seats_per_order,
            report::SOLD_WINDOW,
        ),
    })
}
