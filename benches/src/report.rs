//! Aggregating samples into the summary (throughput, latency percentiles, sell-out time, a time
//! series) and printing it as a Markdown table.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::audit::Audit;
use crate::counting::CallSnapshot;
use crate::scenario::{Outcome, RawResult, Sample};

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
        let mut histogram =
            Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        for sample in samples.filter(|s| s.outcome == outcome) {
            histogram.saturating_record(sample.latency.as_micros().max(1) as u64);
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
}

/// Up to `slices` points over the run (each at least 50 ms).
pub fn series(samples: &[Sample], elapsed: Duration, slices: u32) -> Vec<Point> {
    let width = (elapsed / slices.max(1)).max(Duration::from_millis(50));
    let mut points = Vec::new();
    let mut sold = 0;
    let mut start = 0;
    let mut end_of_slice = width;
    while start < samples.len() {
        let len = samples[start..]
            .iter()
            .take_while(|s| s.end < end_of_slice)
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
        });
        start += len;
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
    /// Repository calls per rejection, counted by the decorator (exact).
    pub repository_calls_per_rejection: f64,
    /// MariaDB `Questions` per rejection (server-wide delta, so other clients of the server
    /// during the phase count too); `None` without a database.
    pub db_questions_per_rejection: Option<f64>,
    /// Redis `EVALSHA`/`EVAL` calls per rejection (server-wide delta); `None` without Redis.
    pub redis_scripts_per_rejection: Option<f64>,
}

/// The summary of one scenario run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// A short name, e.g. `redis+mysql (batched)`.
    pub label: String,
    /// `direct` or `http`.
    pub mode: String,
    /// Seats of the event.
    pub seats: u32,
    /// Attempts.
    pub attempts: u64,
    /// Buyers at once.
    pub concurrency: usize,
    /// Seat choice.
    pub choice: String,
    /// Seats per order.
    pub seats_per_order: usize,
    /// Wall time of the main phase, seconds.
    pub elapsed_s: f64,
    /// Attempts per second over the main phase.
    pub attempts_per_s: f64,
    /// Successful orders.
    pub successes: u64,
    /// Rejected attempts.
    pub rejections: u64,
    /// Failed attempts (neither success nor a clean rejection).
    pub failures: u64,
    /// Successful orders per second until the last success (the sell-out window).
    pub purchases_per_s: f64,
    /// Seconds until the last seat was sold; `None` when seats are left.
    pub sell_out_s: Option<f64>,
    /// Latency of successes.
    pub success_latency: Latency,
    /// Latency of rejections.
    pub rejection_latency: Latency,
    /// Repository calls during the main phase.
    pub repository_calls: CallSnapshot,
    /// What a rejection cost.
    pub rejection_cost: RejectionCost,
    /// The oversell audit.
    pub audit: Audit,
    /// The first failure messages.
    pub failure_examples: Vec<String>,
    /// Throughput and latency over time.
    pub series: Vec<Point>,
    /// Successful purchases per second while each consecutive [`SOLD_WINDOW`] tickets sold.
    pub purchases_per_s_by_tickets_sold: Vec<f64>,
}

/// Tickets per entry of [`RunReport::purchases_per_s_by_tickets_sold`].
pub const SOLD_WINDOW: u64 = 10_000;

/// Successful purchases per second while each consecutive `window` tickets were sold: the first
/// entry covers tickets 0 to `window` (from the start of the run), the next `window` to
/// `2 * window`, and so on; a last, partial window is left out. Flat means a purchase costs the
/// same however many tickets the event holds already.
pub fn rate_by_tickets_sold(samples: &[Sample], tickets_per_order: usize, window: u64) -> Vec<f64> {
    let per_order = tickets_per_order.max(1) as u64;
    let mut rates = Vec::new();
    let (mut sold, mut orders, mut window_start) = (0u64, 0u64, Duration::ZERO);
    for sample in samples.iter().filter(|s| s.outcome == Outcome::Success) {
        sold += per_order;
        orders += 1;
        if sold >= window * (rates.len() as u64 + 1) {
            let secs = (sample.end - window_start).as_secs_f64();
            rates.push(if secs > 0.0 {
                orders as f64 / secs
            } else {
                0.0
            });
            (orders, window_start) = (0, sample.end);
        }
    }
    rates
}

/// Numbers of the main phase: (successes, rejections, failures, purchases/s, sell-out seconds).
pub fn tally(
    raw: &RawResult,
    seats: u32,
    seats_per_order: usize,
) -> (u64, u64, u64, f64, Option<f64>) {
    let count = |o: Outcome| raw.samples.iter().filter(|s| s.outcome == o).count() as u64;
    let successes = count(Outcome::Success);
    let last_success = raw
        .samples
        .iter()
        .rfind(|s| s.outcome == Outcome::Success)
        .map(|s| s.end.as_secs_f64());
    let purchases_per_s = match last_success {
        Some(t) if t > 0.0 => successes as f64 / t,
        _ => 0.0,
    };
    let sold_out = successes * seats_per_order as u64 >= u64::from(seats);
    (
        successes,
        count(Outcome::Rejected),
        count(Outcome::Failed),
        purchases_per_s,
        if sold_out { last_success } else { None },
    )
}

/// One line on how throughput held up as tickets accumulated, `None` for a run shorter than
/// two windows: purchases/s per window and the cost of a purchase in the last full window
/// relative to the first.
pub fn by_tickets_sold_line(run: &RunReport) -> Option<String> {
    let rates = &run.purchases_per_s_by_tickets_sold;
    let (first, last) = (rates.first()?, rates.last()?);
    if rates.len() < 2 || *last <= 0.0 {
        return None;
    }
    let windows: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
    Some(format!(
        "{}: purchases/s per {} tickets sold: {}; cost of a purchase, tickets {}k–{}k vs the first {}k: {:.2}x",
        run.label,
        SOLD_WINDOW,
        windows.join(", "),
        (rates.len() as u64 - 1) * SOLD_WINDOW / 1_000,
        rates.len() as u64 * SOLD_WINDOW / 1_000,
        SOLD_WINDOW / 1_000,
        first / last
    ))
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
    row("successful purchases/s", &|r| {
        format!("{:.0}", r.purchases_per_s)
    });
    row("sell-out time (s)", &|r| opt(r.sell_out_s, 2));
    row("successes / rejections / failures", &|r| {
        format!("{} / {} / {}", r.successes, r.rejections, r.failures)
    });
    row("success p50 / p95 / p99 / max (ms)", &|r| {
        let l = r.success_latency;
        format!(
            "{:.1} / {:.1} / {:.1} / {:.1}",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        )
    });
    row("rejection p50 / p95 / p99 / max (ms)", &|r| {
        let l = r.rejection_latency;
        format!(
            "{:.1} / {:.1} / {:.1} / {:.1}",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        )
    });
    row("rejection-only phase: rejections/s", &|r| {
        format!("{:.0}", r.rejection_cost.rejections_per_s)
    });
    row("repository calls per rejection", &|r| {
        format!("{:.3}", r.rejection_cost.repository_calls_per_rejection)
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
    row("audit: seats sold twice", &|r| {
        r.audit.double_sold_seats.to_string()
    });
    row("audit", &|r| {
        if r.audit.failed() {
            "FAILED".into()
        } else {
            "ok".into()
        }
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
