//! Aggregating samples into the summary (throughput, latency percentiles, sell-out time, a time
//! series) and printing it as a Markdown table.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::audit::Audit;
use crate::counting::CallSnapshot;
use crate::scenario::{FailureTally, LoadSpec, Outcome, RawResult, Sample};
use crate::seat_map_readers::ReaderStats;

/// Latency percentiles of one kind of outcome, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Attempts measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of the samples with `outcome`.
    pub fn of<'a>(samples: impl Iterator<Item = &'a Sample>, outcome: Outcome) -> Self {
        Self::of_durations(samples.filter(|s| s.outcome == outcome).map(|s| s.latency))
    }

    /// Percentiles of the successful payments of the samples.
    pub fn of_payments<'a>(samples: impl Iterator<Item = &'a Sample>) -> Self {
        Self::of_durations(
            samples
                .filter_map(|s| s.payment)
                .filter(|p| p.paid)
                .map(|p| p.latency),
        )
    }

    /// Percentiles of `latencies`.
    pub fn of_durations(latencies: impl Iterator<Item = Duration>) -> Self {
        let mut histogram =
            Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        for latency in latencies {
            histogram.saturating_record(latency.as_micros().max(1) as u64);
        }
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p95_ms: ms(histogram.value_at_quantile(0.95)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// One slice of the time series.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point {
    /// End of the slice, seconds since the start.
    pub t_s: f64,
    /// Attempts finished per second in the slice.
    pub attempts_per_s: f64,
    /// Successful purchases per second in the slice.
    pub successes_per_s: f64,
    /// Rejections per second in the slice.
    pub rejections_per_s: f64,
    /// Median latency of the slice's successes (0 when none).
    pub success_p50_ms: f64,
    /// 99th percentile latency of the slice's successes.
    pub success_p99_ms: f64,
    /// Median latency of the slice's rejections.
    pub rejection_p50_ms: f64,
    /// 99th percentile latency of the slice's rejections.
    pub rejection_p99_ms: f64,
    /// Successful orders so far.
    pub sold_orders: u64,
    /// Orders paid per second in the slice (0 when the run does not pay).
    pub paid_per_s: f64,
}

/// Up to `slices` points over the run (each at least 50 ms).
pub fn series(samples: &[Sample], elapsed: Duration, slices: u32) -> Vec<Point> {
    let width = (elapsed / slices.max(1)).max(Duration::from_millis(50));
    let mut payments: Vec<Duration> = samples
        .iter()
        .filter_map(|s| s.payment)
        .filter(|p| p.paid)
        .map(|p| p.end)
        .collect();
    payments.sort_unstable();
    let mut points = Vec::new();
    let mut sold = 0;
    let (mut start, mut paid_start) = (0, 0);
    let mut end_of_slice = width;
    while start < samples.len() || paid_start < payments.len() {
        let len = samples[start..]
            .iter()
            .take_while(|s| s.end < end_of_slice)
            .count();
        let paid = payments[paid_start..]
            .iter()
            .take_while(|end| **end < end_of_slice)
            .count();
        let slice = &samples[start..start + len];
        let secs = width.as_secs_f64();
        let count = |o: Outcome| slice.iter().filter(|s| s.outcome == o).count() as f64;
        let successes = Latency::of(slice.iter(), Outcome::Success);
        let rejections = Latency::of(slice.iter(), Outcome::Rejected);
        sold += successes.count;
        points.push(Point {
            t_s: end_of_slice.as_secs_f64(),
            attempts_per_s: slice.len() as f64 / secs,
            successes_per_s: count(Outcome::Success) / secs,
            rejections_per_s: count(Outcome::Rejected) / secs,
            success_p50_ms: successes.p50_ms,
            success_p99_ms: successes.p99_ms,
            rejection_p50_ms: rejections.p50_ms,
            rejection_p99_ms: rejections.p99_ms,
            sold_orders: sold,
            paid_per_s: paid as f64 / secs,
        });
        start += len;
        paid_start += paid;
        end_of_slice += width;
    }
    points
}

/// What a purchase that was rejected cost, measured on a separate phase of attempts that can
/// only be rejected (they ask for seats sold in the main phase).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RejectionCost {
    /// Attempts in the phase.
    pub attempts: u64,
    /// Of which rejected (all, unless something failed).
    pub rejected: u64,
    /// Rejections per second in the phase.
    pub rejections_per_s: f64,
    /// Repository calls per rejection, counted by the decorator (exact); `None` when the
    /// repository is in another process (`--target`).
    pub repository_calls_per_rejection: Option<f64>,
    /// MariaDB `Questions` per rejection (server-wide delta, so other clients of the server
    /// during the phase count too); `None` without a database.
    pub db_questions_per_rejection: Option<f64>,
    /// Redis `EVALSHA`/`EVAL` calls per rejection (server-wide delta); `None` without Redis.
    pub redis_scripts_per_rejection: Option<f64>,
}

/// The payments of a run that pays every successful order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PaymentReport {
    /// Orders paid.
    pub paid: u64,
    /// Payments that failed.
    pub failed: u64,
    /// Paid orders per second, from the start until the last payment ("paid sales/s").
    pub paid_per_s: f64,
    /// Latency of the successful payments.
    pub latency: Latency,
    /// The failed payments by kind.
    pub failures: FailureTally,
}

impl PaymentReport {
    /// The payments of `raw`.
    pub fn of(raw: &RawResult) -> Self {
        let paid = raw.paid();
        let last = raw
            .samples
            .iter()
            .filter_map(|s| s.payment)
            .filter(|p| p.paid)
            .map(|p| p.end.as_secs_f64())
            .fold(0.0, f64::max);
        PaymentReport {
            paid,
            failed: raw.payment_failures.total(),
            paid_per_s: if last > 0.0 { paid as f64 / last } else { 0.0 },
            latency: Latency::of_payments(raw.samples.iter()),
            failures: raw.payment_failures.clone(),
        }
    }
}

/// What a run was, apart from what it measured.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// A short name, e.g. `redis+mysql batched` or `http://10.0.0.5:8080`.
    pub label: String,
    /// `direct`, `http` (the router in process) or `target` (separately started servers).
    pub mode: &'static str,
    /// The servers of a `target` run.
    pub targets: Vec<String>,
    /// `seats` or `general`.
    pub sale: &'static str,
    /// Seats or places on sale.
    pub capacity: u64,
}

/// The summary of one scenario run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// A short name, e.g. `redis+mysql (batched)`.
    pub label: String,
    /// `direct`, `http` or `target`.
    pub mode: String,
    /// The servers of a `target` run.
    pub targets: Vec<String>,
    /// `seats` (numbered) or `general` (general admission).
    pub sale: String,
    /// Seats or places on sale.
    pub seats: u64,
    /// Attempts made.
    pub attempts: u64,
    /// The run's time limit, seconds, when it had one.
    pub duration_limit_s: Option<f64>,
    /// Buyers at once.
    pub concurrency: usize,
    /// Seat choice.
    pub choice: String,
    /// Seats per order.
    pub seats_per_order: usize,
    /// Wall time of the main phase until every attempt was answered, seconds.
    pub elapsed_s: f64,
    /// Attempts per second over the main phase.
    pub attempts_per_s: f64,
    /// Successful orders.
    pub successes: u64,
    /// Rejected attempts.
    pub rejections: u64,
    /// Failed attempts (neither success nor a clean rejection).
    pub failures: u64,
    /// The failed attempts by kind.
    pub failure_tally: FailureTally,
    /// Successful orders per second until the last success (the sell-out window).
    pub purchases_per_s: f64,
    /// Seconds until the last seat was sold; `None` when seats are left.
    pub sell_out_s: Option<f64>,
    /// Latency of successes.
    pub success_latency: Latency,
    /// Latency of rejections.
    pub rejection_latency: Latency,
    /// The payments, when the run paid its successes.
    pub payments: Option<PaymentReport>,
    /// Repository calls during the main phase; `None` when the repository is in another
    /// process.
    pub repository_calls: Option<CallSnapshot>,
    /// TCP connections the HTTP client opened (HTTP runs).
    pub connections_opened: Option<u64>,
    /// The seat-map readers that ran beside the buyers (`--seat-map-readers`).
    pub seat_map_readers: Option<ReaderStats>,
    /// What a rejection cost.
    pub rejection_cost: RejectionCost,
    /// The oversell audit.
    pub audit: Audit,
    /// The first failure messages (purchases, then payments).
    pub failure_examples: Vec<String>,
    /// Throughput and latency over time.
    pub series: Vec<Point>,
}

impl RunReport {
    /// The report of the main phase `raw` of a run of `spec`, audited by `audit`. The rejection
    /// cost, repository calls and connections are left for the caller to fill in.
    pub fn new(meta: RunMeta, spec: &LoadSpec, raw: &RawResult, audit: Audit) -> Self {
        let (successes, rejections, failures, purchases_per_s, sell_out_s) =
            tally(raw, meta.capacity, spec.seats_per_order);
        let mut failure_examples = raw.failures.examples.clone();
        failure_examples.extend(
            raw.payment_failures
                .examples
                .iter()
                .map(|e| format!("payment: {e}")),
        );
        RunReport {
            label: meta.label,
            mode: meta.mode.into(),
            targets: meta.targets,
            sale: meta.sale.into(),
            seats: meta.capacity,
            attempts: raw.samples.len() as u64,
            duration_limit_s: spec.duration.map(|d| d.as_secs_f64()),
            concurrency: spec.concurrency,
            choice: format!("{:?}", spec.choice).to_lowercase(),
            seats_per_order: spec.seats_per_order,
            elapsed_s: raw.elapsed.as_secs_f64(),
            attempts_per_s: raw.samples.len() as f64 / raw.elapsed.as_secs_f64().max(1e-9),
            successes,
            rejections,
            failures,
            failure_tally: raw.failures.clone(),
            purchases_per_s,
            sell_out_s,
            success_latency: Latency::of(raw.samples.iter(), Outcome::Success),
            rejection_latency: Latency::of(raw.samples.iter(), Outcome::Rejected),
            payments: spec.pay.then(|| PaymentReport::of(raw)),
            repository_calls: None,
            connections_opened: None,
            seat_map_readers: None,
            rejection_cost: RejectionCost::default(),
            audit,
            failure_examples,
            series: series(&raw.samples, raw.elapsed, 120),
        }
    }
}

/// Numbers of the main phase: (successes, rejections, failures, purchases/s, sell-out seconds).
pub fn tally(
    raw: &RawResult,
    capacity: u64,
    seats_per_order: usize,
) -> (u64, u64, u64, f64, Option<f64>) {
    let successes = raw.count(Outcome::Success);
    let last_success = raw
        .samples
        .iter()
        .rfind(|s| s.outcome == Outcome::Success)
        .map(|s| s.end.as_secs_f64());
    let purchases_per_s = match last_success {
        Some(t) if t > 0.0 => successes as f64 / t,
        _ => 0.0,
    };
    let sold_out = successes * seats_per_order as u64 >= capacity;
    (
        successes,
        raw.count(Outcome::Rejected),
        raw.count(Outcome::Failed),
        purchases_per_s,
        if sold_out { last_success } else { None },
    )
}

/// Failures by kind on one line: `HTTP 503 UNAVAILABLE: 3, timeout: 1`, or `none`.
pub fn kinds(tally: &FailureTally) -> String {
    if tally.by_kind.is_empty() {
        return "none".into();
    }
    tally
        .by_kind
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn latency_cell(l: Latency) -> String {
    format!(
        "{:.1} / {:.1} / {:.1} / {:.1}",
        l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
    )
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// The runs side by side as a Markdown table (one column per run).
pub fn table(runs: &[RunReport]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&RunReport) -> String| {
        rows.push((name.to_owned(), runs.iter().map(f).collect()));
    };
    row("attempts / concurrency", &|r| {
        format!("{} / {}", r.attempts, r.concurrency)
    });
    row("attempts/s", &|r| format!("{:.0}", r.attempts_per_s));
    row("time to answer all (s)", &|r| format!("{:.2}", r.elapsed_s));
    row("successful purchases/s", &|r| {
        format!("{:.0}", r.purchases_per_s)
    });
    row("sell-out time (s)", &|r| opt(r.sell_out_s, 2));
    row("successes / rejections / failures", &|r| {
        format!("{} / {} / {}", r.successes, r.rejections, r.failures)
    });
    row("failures by kind", &|r| kinds(&r.failure_tally));
    row("success p50 / p95 / p99 / max (ms)", &|r| {
        latency_cell(r.success_latency)
    });
    row("rejection p50 / p95 / p99 / max (ms)", &|r| {
        latency_cell(r.rejection_latency)
    });
    if runs.iter().any(|r| r.payments.is_some()) {
        row("paid sales/s", &|r| {
            opt(r.payments.as_ref().map(|p| p.paid_per_s), 0)
        });
        row("payments paid / failed", &|r| match &r.payments {
            Some(p) => format!("{} / {}", p.paid, p.failed),
            None => "–".into(),
        });
        row("payment failures by kind", &|r| match &r.payments {
            Some(p) => kinds(&p.failures),
            None => "–".into(),
        });
        row(
            "payment p50 / p95 / p99 / max (ms)",
            &|r| match &r.payments {
                Some(p) => latency_cell(p.latency),
                None => "–".into(),
            },
        );
    }
    if runs.iter().any(|r| r.connections_opened.is_some()) {
        row("HTTP connections opened", &|r| {
            r.connections_opened
                .map_or_else(|| "–".into(), |n| n.to_string())
        });
    }
    if runs.iter().any(|r| r.seat_map_readers.is_some()) {
        row(
            "seat-map readers / reads/s",
            &|r| match &r.seat_map_readers {
                Some(s) => format!("{} / {:.0}", s.readers, s.reads_per_s),
                None => "–".into(),
            },
        );
    }
    row("rejection-only phase: rejections/s", &|r| {
        format!("{:.0}", r.rejection_cost.rejections_per_s)
    });
    row("repository calls per rejection", &|r| {
        opt(r.rejection_cost.repository_calls_per_rejection, 3)
    });
    row("DB queries per rejection (Questions Δ)", &|r| {
        opt(r.rejection_cost.db_questions_per_rejection, 3)
    });
    row("Redis scripts per rejection", &|r| {
        opt(r.rejection_cost.redis_scripts_per_rejection, 3)
    });
    row("audit: active tickets / capacity", &|r| {
        format!("{} / {}", r.audit.active_tickets, r.audit.capacity)
    });
    row("audit: seats sold twice / zones over capacity", &|r| {
        format!(
            "{} / {}",
            r.audit.double_sold_seats, r.audit.zones_over_capacity
        )
    });
    if runs.iter().any(|r| r.audit.paid_tickets.is_some()) {
        row("audit: paid tickets / reported paid", &|r| match (
            r.audit.paid_tickets,
            r.audit.reported.tickets_paid,
        ) {
            (Some(paid), Some(reported)) => format!("{paid} / {reported}"),
            _ => "–".into(),
        });
    }
    row("audit", &|r| {
        let verdict = if r.audit.failed() { "FAILED" } else { "ok" };
        format!("{verdict} ({})", r.audit.source)
    });
    let mut out = String::new();
    out.push_str("| |");
    for r in runs {
        out.push_str(&format!(" {} |", r.label));
    }
    out.push_str("\n|---|");
    for _ in runs {
        out.push_str("---:|");
    }
    out.push('\n');
    for (name, cells) in rows {
        out.push_str(&format!("| {name} |"));
        for cell in cells {
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}
