//! The flash sale itself: N attempts by C concurrent buyers, each one purchase through the real
//! service (or the HTTP API), timed and classified.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use ticketing_core::Error;
use ticketing_core::domain::{EventId, SeatRef, ZoneCode};
use ticketing_core::service::{PurchaseRequest, Selection, TicketService};

use crate::http::HttpBuyer;
use crate::setup::SEATS_PER_ROW;

/// How buyers choose seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeatChoice {
    /// Any seats, uniformly (each of an order's seats on its own).
    Random,
    /// 80 % of the buyers want the front 10 % of the seats, the rest choose uniformly.
    Hotspot,
    /// A block of adjacent seats in one row, uniformly placed.
    Blocks,
    /// Attempt i takes the i-th free block of seats: no contention, every attempt (up to the
    /// capacity) wins. Measures the purchase pipeline itself.
    Sequential,
}

/// What one attempt ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The order was stored.
    Success,
    /// Refused because a seat was taken: the expected answer for most buyers.
    Rejected,
    /// Anything else (an unavailable backend, a bug).
    Failed,
}

/// One finished attempt.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it finished, since the start of the run.
    pub end: Duration,
    /// How long it took.
    pub latency: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// How to reach the purchase flow.
#[derive(Clone)]
pub enum Buyer {
    /// Call `TicketService::purchase` in process.
    Direct(TicketService),
    /// `POST /api/tickets` on the example server.
    Http(HttpBuyer),
}

impl Buyer {
    /// One purchase, classified; a failure comes with its message.
    pub async fn buy(&self, request: PurchaseRequest) -> (Outcome, Option<String>) {
        match self {
            Buyer::Direct(service) => match service.purchase(request).await {
                Ok(_) => (Outcome::Success, None),
                Err(Error::SeatsTaken { .. } | Error::SoldOut { .. }) => (Outcome::Rejected, None),
                Err(e) => (Outcome::Failed, Some(e.to_string())),
            },
            Buyer::Http(http) => http.buy(&request).await,
        }
    }
}

/// The attempts of one run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Purchase attempts.
    pub attempts: u64,
    /// Buyers at once.
    pub concurrency: usize,
    /// How seats are chosen.
    pub choice: SeatChoice,
    /// Seats per order (places, for general admission).
    pub seats_per_order: usize,
    /// Buy places of this general-admission zone instead of seats (`choice` is then unused).
    pub general_zone: Option<ZoneCode>,
    /// Seed of the seat choice, so runs are repeatable.
    pub seed: u64,
    /// Draw a progress bar.
    pub progress: bool,
    /// Prefix of customer ids, so several phases on one event use distinct buyers.
    pub customer_prefix: String,
}

/// Everything a run measured, unaggregated.
#[derive(Debug, Default)]
pub struct RawResult {
    /// Every attempt.
    pub samples: Vec<Sample>,
    /// The seats of successful orders (none for general admission).
    pub sold: Vec<SeatRef>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// The first few failure messages.
    pub failures: Vec<String>,
}

/// The seats attempt `index` asks for.
pub fn choose(
    seats: &[SeatRef],
    spec: &LoadSpec,
    index: u64,
    rng: &mut fastrand::Rng,
) -> Vec<SeatRef> {
    let k = spec.seats_per_order.clamp(1, seats.len());
    match spec.choice {
        SeatChoice::Sequential => {
            let blocks = (seats.len() / k) as u64;
            let start = (index % blocks.max(1)) as usize * k;
            seats[start..start + k].to_vec()
        }
        SeatChoice::Random => pick_distinct(seats, k, rng),
        SeatChoice::Hotspot => {
            let front = (seats.len() / 10).max(k);
            if rng.u8(0..100) < 80 {
                pick_distinct(&seats[..front], k, rng)
            } else {
                pick_distinct(seats, k, rng)
            }
        }
        SeatChoice::Blocks => {
            let row_len = (SEATS_PER_ROW as usize).min(seats.len());
            let rows = seats.len().div_ceil(row_len);
            let row = rng.usize(0..rows);
            let row_start = row * row_len;
            let row_end = (row_start + row_len).min(seats.len());
            let width = row_end - row_start;
            if width < k {
                return pick_distinct(seats, k, rng);
            }
            let start = row_start + rng.usize(0..=width - k);
            seats[start..start + k].to_vec()
        }
    }
}

fn pick_distinct(from: &[SeatRef], k: usize, rng: &mut fastrand::Rng) -> Vec<SeatRef> {
    let mut picked: Vec<usize> = Vec::with_capacity(k);
    while picked.len() < k.min(from.len()) {
        let i = rng.usize(0..from.len());
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked.into_iter().map(|i| from[i].clone()).collect()
}

/// Runs `spec.attempts` purchases on `event` with `spec.concurrency` buyers at once.
pub async fn run(buyer: &Buyer, event: EventId, seats: &[SeatRef], spec: &LoadSpec) -> RawResult {
    let seats: Arc<[SeatRef]> = seats.into();
    let next = Arc::new(AtomicU64::new(0));
    let bar = if spec.progress {
        let bar = ProgressBar::new(spec.attempts);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} attempts ({per_sec}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let sold_count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..spec.concurrency.max(1) {
        let (buyer, seats, next, bar, sold_count) = (
            buyer.clone(),
            seats.clone(),
            next.clone(),
            bar.clone(),
            sold_count.clone(),
        );
        let spec = spec.clone();
        workers.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(
                spec.seed ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let mut local = RawResult::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= spec.attempts {
                    break;
                }
                let (selection, wanted, tickets) = match &spec.general_zone {
                    Some(zone) => {
                        let quantity = spec.seats_per_order.max(1);
                        let selection = Selection::General {
                            zone: zone.clone(),
                            quantity: quantity as u32,
                        };
                        (selection, Vec::new(), quantity as u64)
                    }
                    None => {
                        let wanted = choose(&seats, &spec, index, &mut rng);
                        let tickets = wanted.len() as u64;
                        (Selection::Seats(wanted.clone()), wanted, tickets)
                    }
                };
                let request = PurchaseRequest {
                    event,
                    customer: format!("{}{index}", spec.customer_prefix)
                        .parse()
                        .expect("customer ids of letters and digits are valid"),
                    selection,
                    idempotency_key: None,
                };
                let begun = Instant::now();
                let (outcome, failure) = buyer.buy(request).await;
                let ended = Instant::now();
                local.samples.push(Sample {
                    end: ended - started,
                    latency: ended - begun,
                    outcome,
                });
                match outcome {
                    Outcome::Success => {
                        let sold = sold_count.fetch_add(tickets, Ordering::Relaxed);
                        if sold % 500 < tickets {
                            bar.set_message(format!("{} tickets sold", sold + tickets));
                        }
                        local.sold.extend(wanted);
                    }
                    Outcome::Failed if local.failures.len() < 5 => {
                        local.failures.extend(failure);
                    }
                    _ => {}
                }
                bar.inc(1);
            }
            local
        });
    }
    let mut result = RawResult::default();
    while let Some(done) = workers.join_next().await {
        let local = done.expect("a buyer task panicked");
        result.samples.extend(local.samples);
        result.sold.extend(local.sold);
        if result.failures.len() < 5 {
            result.failures.extend(local.failures);
        }
    }
    result.elapsed = started.elapsed();
    bar.finish_and_clear();
    result.samples.sort_by_key(|s| s.end);
    result
}
