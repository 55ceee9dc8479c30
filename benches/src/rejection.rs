//! The rejection-only phase: after the sale, attempts that can only lose (seats sold in the main
//! phase, or a sold-out general-admission zone), to measure what a rejection costs: its rate,
//! and the repository calls, database statements and Redis scripts spent on each.

use std::time::Instant;

use sqlx::MySqlPool;
use ticketing_core::domain::EventId;

use crate::BenchError;
use crate::audit;
use crate::counting::CallCounts;
use crate::report::RejectionCost;
use crate::scenario::{self, Buyer, Goods, LoadSpec, Outcome, RawResult, SeatChoice};

/// The counters read around the phase; each is optional.
#[derive(Clone, Copy, Default)]
pub struct CostProbes<'a> {
    /// The database whose server-wide `Questions` counter is read.
    pub pool: Option<&'a MySqlPool>,
    /// The Redis server whose `EVALSHA` calls are counted.
    pub redis_url: Option<&'a str>,
    /// The repository decorator's counts (in-process runs only).
    pub calls: Option<&'a CallCounts>,
}

/// What the phase asks for, when it can only lose: the seats sold in the main phase, or the
/// general-admission zone when the main phase sold it out. `None` when nothing can only lose.
pub fn losing_goods(goods: &Goods, main: &RawResult, seats_per_order: usize) -> Option<Goods> {
    match goods {
        Goods::Seats(_) if main.sold.is_empty() => None,
        Goods::Seats(_) => Some(Goods::Seats(main.sold.clone().into())),
        Goods::General { capacity, .. } => {
            let sold = main.count(Outcome::Success) * seats_per_order.max(1) as u64;
            (sold >= u64::from(*capacity)).then(|| goods.clone())
        }
    }
}

/// The load of the phase: `attempts` one-seat attempts by new customers (prefix `r`), random
/// seats, no payments, no time limit, no progress bar.
pub fn phase_spec(main: &LoadSpec, attempts: u64) -> LoadSpec {
    LoadSpec {
        attempts,
        duration: None,
        choice: SeatChoice::Random,
        seats_per_order: 1,
        customer_prefix: "r".into(),
        progress: false,
        pay: false,
        ..main.clone()
    }
}

/// Runs the phase of `spec` on `losing` and counts what the rejections cost.
pub async fn measure(
    buyers: &[Buyer],
    event: EventId,
    losing: &Goods,
    spec: &LoadSpec,
    probes: CostProbes<'_>,
) -> Result<RejectionCost, BenchError> {
    let questions_before = match probes.pool {
        Some(pool) => Some(audit::questions(pool).await?),
        None => None,
    };
    let scripts_before = match probes.redis_url {
        Some(url) => Some(audit::script_calls(url).await?),
        None => None,
    };
    let calls_before = probes.calls.map(CallCounts::snapshot);
    let started = Instant::now();
    let phase = scenario::run(buyers, event, losing, spec).await;
    let elapsed = started.elapsed().as_secs_f64();
    let rejected = phase.count(Outcome::Rejected);
    let per = |n: f64| n / (rejected.max(1) as f64);
    let repository_calls_per_rejection = match (probes.calls, calls_before) {
        (Some(calls), Some(before)) => Some(per(calls.snapshot().since(&before).total() as f64)),
        _ => None,
    };
    let db_questions_per_rejection = match (probes.pool, questions_before) {
        // The second SHOW STATUS counts itself once.
        (Some(pool), Some(before)) => Some(per(
            (audit::questions(pool).await? - before).saturating_sub(1) as f64
        )),
        _ => None,
    };
    let redis_scripts_per_rejection = match (probes.redis_url, scripts_before) {
        (Some(url), Some(before)) => Some(per((audit::script_calls(url).await? - before) as f64)),
        _ => None,
    };
    Ok(RejectionCost {
        attempts: spec.attempts,
        rejected,
        rejections_per_s: rejected as f64 / elapsed,
        repository_calls_per_rejection,
        db_questions_per_rejection,
        redis_scripts_per_rejection,
    })
}
