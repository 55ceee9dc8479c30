//! The flash sale itself: N attempts (or as many as fit in a duration) by C concurrent buyers,
//! each one purchase through the real service or the HTTP API, optionally paid right after,
//! timed and classified. Every failure is counted by kind; none is dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use ticketing_core::Error;
use ticketing_core::domain::{EventId, Money, OrderId, PaymentNotice, SeatRef, ZoneCode};
use ticketing_core::service::{BestAvailable, PurchaseRequest, Selection, TicketService};

use crate::client::RequestError;
use crate::http::HttpBuyer;
use crate::setup::{SEATS_PER_ROW, ticket_price};

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
    /// Best available: buyers name no seats and the seat lock chooses and holds a block of
    /// adjacent seats in one row (`Selection::BestAvailable`, DESIGN.md "Best available").
    /// Compare with `blocks`, where buyers name such a block themselves.
    BestAvailable,
}

/// What is on sale.
#[derive(Debug, Clone)]
pub enum Goods {
    /// Numbered seats, front rows first.
    Seats(Arc<[SeatRef]>),
    /// Places in one general-admission zone.
    General {
        /// The zone.
        zone: ZoneCode,
        /// Its places.
        capacity: u32,
    },
}

impl Goods {
    /// Seats or places on sale.
    pub fn capacity(&self) -> u64 {
        match self {
            Goods::Seats(seats) => seats.len() as u64,
            Goods::General { capacity, .. } => u64::from(*capacity),
        }
    }
}

/// What one attempt ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The order was stored.
    Success,
    /// Refused because a seat was taken or the zone sold out: the expected answer for most
    /// buyers.
    Rejected,
    /// Anything else (an unavailable backend, a timeout, a bug).
    Failed,
}

/// Why a purchase or a payment failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A short name to count failures by, e.g. `HTTP 503 UNAVAILABLE` or `timeout`.
    pub kind: String,
    /// The full message.
    pub message: String,
    /// Whether the purchase or payment may have taken effect although it failed (a timeout, a
    /// lost connection, a 5xx): the audit allows for these.
    pub outcome_unknown: bool,
}

impl From<RequestError> for Failure {
    fn from(error: RequestError) -> Self {
        Failure {
            kind: error.kind(),
            message: error.to_string(),
            outcome_unknown: error.outcome_unknown(),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let outcome_unknown = matches!(
            error,
            Error::Unavailable { .. } | Error::Backend { .. } | Error::Internal { .. }
        );
        Failure {
            kind: error.code().to_owned(),
            message: error.to_string(),
            outcome_unknown,
        }
    }
}

/// What one purchase attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// How it ended.
    pub outcome: Outcome,
    /// The order of a success.
    pub order: Option<OrderId>,
    /// Why it failed, for [`Outcome::Failed`].
    pub failure: Option<Failure>,
}

impl Attempt {
    /// A stored order.
    pub fn success(order: OrderId) -> Self {
        Attempt {
            outcome: Outcome::Success,
            order: Some(order),
            failure: None,
        }
    }

    /// A clean "taken" or "sold out".
    pub fn rejected() -> Self {
        Attempt {
            outcome: Outcome::Rejected,
            order: None,
            failure: None,
        }
    }

    /// A failure.
    pub fn failed(failure: impl Into<Failure>) -> Self {
        Attempt {
            outcome: Outcome::Failed,
            order: None,
            failure: Some(failure.into()),
        }
    }
}

/// The payment that followed a successful attempt.
#[derive(Debug, Clone, Copy)]
pub struct PaymentSample {
    /// When it finished, since the start of the run.
    pub end: Duration,
    /// How long it took.
    pub latency: Duration,
    /// Whether the order is now paid.
    pub paid: bool,
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
    /// Its payment, when the run pays its successes.
    pub payment: Option<PaymentSample>,
}

/// How to reach the purchase flow.
#[derive(Clone)]
pub enum Buyer {
    /// Call `TicketService::purchase` (and `pay`) in process.
    Direct(TicketService),
    /// `POST /api/tickets` (and the signed payment webhook) on an example server.
    Http(HttpBuyer),
}

impl Buyer {
    /// One purchase, classified.
    pub async fn buy(&self, request: PurchaseRequest) -> Attempt {
        match self {
            Buyer::Direct(service) => match service.purchase(request).await {
                Ok(order) => Attempt::success(order.id),
                // "Taken": the named seats, the zone's places, or any block for best available.
                Err(
                    Error::SeatsTaken { .. }
                    | Error::SoldOut { .. }
                    | Error::NoAdjacentSeats { .. },
                ) => Attempt::rejected(),
                Err(e) => Attempt::failed(e),
            },
            Buyer::Http(http) => http.buy(&request).await,
        }
    }

    /// Pays `order` of the sale of `event`; `tag` makes the payment reference (and over HTTP the
    /// webhook id) unique within the sale.
    pub async fn pay(
        &self,
        event: EventId,
        tag: &str,
        order: OrderId,
        amount: Money,
    ) -> Result<(), Failure> {
        match self {
            Buyer::Direct(service) => {
                let reference = format!("pi_bench_{tag}").parse().map_err(Failure::from)?;
                service
                    .pay(PaymentNotice {
                        order,
                        reference,
                        amount,
                    })
                    .await
                    .map(drop)
                    .map_err(Failure::from)
            }
            Buyer::Http(http) => http
                .pay(event, tag, order, amount)
                .await
                .map_err(Failure::from),
        }
    }
}

/// The attempts of one run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Most purchase attempts.
    pub attempts: u64,
    /// Stop starting attempts after this long (the attempts in flight finish).
    pub duration: Option<Duration>,
    /// Buyers at once.
    pub concurrency: usize,
    /// How seats are chosen.
    pub choice: SeatChoice,
    /// Seats (or general-admission places) per order.
    pub seats_per_order: usize,
    /// Seed of the seat choice, so runs are repeatable.
    pub seed: u64,
    /// Draw a progress bar.
    pub progress: bool,
    /// Prefix of customer ids, so several phases on one event use distinct buyers.
    pub customer_prefix: String,
    /// Pay every successful order right after it is bought.
    pub pay: bool,
}

/// Failures counted by kind, with the first few messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailureTally {
    /// Failures per kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Of which the outcome is unknown (the request may have taken effect).
    pub outcome_unknown: u64,
    /// The first [`FailureTally::EXAMPLES`] messages.
    pub examples: Vec<String>,
}

impl FailureTally {
    /// How many messages are kept.
    pub const EXAMPLES: usize = 5;

    /// Counts one failure.
    pub fn record(&mut self, failure: Failure) {
        *self.by_kind.entry(failure.kind).or_default() += 1;
        if failure.outcome_unknown {
            self.outcome_unknown += 1;
        }
        if self.examples.len() < Self::EXAMPLES {
            self.examples.push(failure.message);
        }
    }

    /// Adds another tally's counts (and examples, up to the limit).
    pub fn merge(&mut self, other: FailureTally) {
        for (kind, n) in other.by_kind {
            *self.by_kind.entry(kind).or_default() += n;
        }
        self.outcome_unknown += other.outcome_unknown;
        let room = Self::EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }

    /// All failures counted.
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

/// Everything a run measured, unaggregated.
#[derive(Debug, Default)]
pub struct RawResult {
    /// Every attempt, by end time.
    pub samples: Vec<Sample>,
    /// The seats of successful orders (empty for general admission).
    pub sold: Vec<SeatRef>,
    /// The successful orders.
    pub orders: Vec<OrderId>,
    /// Wall time until every attempt was answered.
    pub elapsed: Duration,
    /// Failed purchases.
    pub failures: FailureTally,
    /// Failed payments.
    pub payment_failures: FailureTally,
}

impl RawResult {
    /// Attempts that ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.samples.iter().filter(|s| s.outcome == outcome).count() as u64
    }

    /// Orders paid.
    pub fn paid(&self) -> u64 {
        self.samples
            .iter()
            .filter(|s| s.payment.is_some_and(|p| p.paid))
            .count() as u64
    }

    fn absorb(&mut self, other: RawResult) {
        self.samples.extend(other.samples);
        self.sold.extend(other.sold);
        self.orders.extend(other.orders);
        self.failures.merge(other.failures);
        self.payment_failures.merge(other.payment_failures);
    }
}

/// What attempt `index` asks for.
pub fn choose(goods: &Goods, spec: &LoadSpec, index: u64, rng: &mut fastrand::Rng) -> Selection {
    match goods {
        Goods::Seats(seats) if spec.choice == SeatChoice::BestAvailable => {
            Selection::BestAvailable(BestAvailable {
                zone: seats.first().map(|seat| seat.zone.clone()),
                quantity: spec.seats_per_order.max(1) as u32,
                rows: None,
                max_price: None,
            })
        }
        Goods::Seats(seats) => Selection::Seats(choose_seats(seats, spec, index, rng)),
        Goods::General { zone, .. } => Selection::General {
            zone: zone.clone(),
            quantity: spec.seats_per_order.max(1) as u32,
        },
    }
}

/// The seats attempt `index` asks for.
pub fn choose_seats(
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
        // Where a best-available run must name seats (none does now), it names a block.
        SeatChoice::Blocks | SeatChoice::BestAvailable => {
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

/// The progress bar of a run: attempts out of `spec.attempts`, or a counter for a run bounded
/// by its duration.
fn progress_bar(spec: &LoadSpec) -> ProgressBar {
    if !spec.progress {
        return ProgressBar::hidden();
    }
    let (bar, template) = match spec.duration {
        Some(_) => (
            ProgressBar::no_length(),
            "{prefix} [{elapsed_precise}] {spinner} {pos} attempts ({per_sec}) {msg}",
        ),
        None => (
            ProgressBar::new(spec.attempts),
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} attempts ({per_sec}) {msg}",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if spec.duration.is_some() {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

/// Shared by the buyer tasks of one run.
struct RunShared {
    goods: Goods,
    spec: LoadSpec,
    event: EventId,
    next: AtomicU64,
    sold: AtomicU64,
    paid: AtomicU64,
    started: Instant,
    deadline: Option<Instant>,
    bar: ProgressBar,
}

impl RunShared {
    /// The index of the next attempt, or `None` when the run is over.
    fn next_attempt(&self) -> Option<u64> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        (index < self.spec.attempts).then_some(index)
    }

    fn note_sale(&self, places: u64) {
        let sold = self.sold.fetch_add(places, Ordering::Relaxed) + places;
        if sold % 500 < places {
            self.show_counts(sold, self.paid.load(Ordering::Relaxed));
        }
    }

    fn note_payment(&self) {
        let paid = self.paid.fetch_add(1, Ordering::Relaxed) + 1;
        if paid.is_multiple_of(500) {
            self.show_counts(self.sold.load(Ordering::Relaxed), paid);
        }
    }

    fn show_counts(&self, sold: u64, paid: u64) {
        if self.spec.pay {
            self.bar
                .set_message(format!("{sold} sold, {paid} orders paid"));
        } else {
            self.bar.set_message(format!("{sold} sold"));
        }
    }
}

/// Runs up to `spec.attempts` purchases on `event` (for at most `spec.duration`) with
/// `spec.concurrency` buyers at once. Buyer task `i` uses `buyers[i % buyers.len()]`, so with
/// one buyer per server the load is spread over the servers by connection.
pub async fn run(buyers: &[Buyer], event: EventId, goods: &Goods, spec: &LoadSpec) -> RawResult {
    assert!(!buyers.is_empty(), "a run needs at least one buyer");
    let started = Instant::now();
    let shared = Arc::new(RunShared {
        goods: goods.clone(),
        spec: spec.clone(),
        event,
        next: AtomicU64::new(0),
        sold: AtomicU64::new(0),
        paid: AtomicU64::new(0),
        started,
        deadline: spec.duration.map(|d| started + d),
        bar: progress_bar(spec),
    });
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..spec.concurrency.max(1) {
        let buyer = buyers[worker % buyers.len()].clone();
        workers.spawn(buyer_task(buyer, worker, shared.clone()));
    }
    let mut result = RawResult::default();
    while let Some(done) = workers.join_next().await {
        result.absorb(done.expect("a buyer task panicked"));
    }
    result.elapsed = started.elapsed();
    shared.bar.finish_and_clear();
    result.samples.sort_by_key(|s| s.end);
    result
}

/// One buyer: attempts until the run is over, paying each success when the run pays.
async fn buyer_task(buyer: Buyer, worker: usize, shared: Arc<RunShared>) -> RawResult {
    let spec = &shared.spec;
    let mut rng =
        fastrand::Rng::with_seed(spec.seed ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut local = RawResult::default();
    while let Some(index) = shared.next_attempt() {
        let selection = choose(&shared.goods, spec, index, &mut rng);
        let request = PurchaseRequest {
            event: shared.event,
            customer: format!("{}{index}", spec.customer_prefix)
                .parse()
                .expect("customer ids of letters and digits are valid"),
            selection: selection.clone(),
            idempotency_key: None,
            voucher: None,
            channel: None,
        };
        let begun = Instant::now();
        let attempt = buyer.buy(request).await;
        let ended = Instant::now();
        let mut sample = Sample {
            end: ended - shared.started,
            latency: ended - begun,
            outcome: attempt.outcome,
            payment: None,
        };
        match (attempt.outcome, attempt.order) {
            (Outcome::Success, Some(order)) => {
                let bought = places(&selection);
                shared.note_sale(bought);
                // A best-available order's seats are the lock's choice, not known here: the
                // audit counts them in the repository.
                if let Selection::Seats(seats) = selection {
                    local.sold.extend(seats);
                }
                local.orders.push(order);
                if spec.pay {
                    let price = ticket_price();
                    let total = Money::new(price.minor * bought as i64, price.currency);
                    sample.payment =
                        Some(pay(&buyer, &shared, index, order, total, &mut local).await);
                }
            }
            (Outcome::Failed, _) => {
                if let Some(failure) = attempt.failure {
                    local.failures.record(failure);
                }
            }
            _ => {}
        }
        local.samples.push(sample);
        shared.bar.inc(1);
    }
    local
}

/// Pays the order of attempt `index`, counting a failure in `local`.
async fn pay(
    buyer: &Buyer,
    shared: &RunShared,
    index: u64,
    order: OrderId,
    total: Money,
    local: &mut RawResult,
) -> PaymentSample {
    let begun = Instant::now();
    let paid = buyer
        .pay(shared.event, &index.to_string(), order, total)
        .await;
    let ended = Instant::now();
    let sample = PaymentSample {
        end: ended - shared.started,
        latency: ended - begun,
        paid: paid.is_ok(),
    };
    match paid {
        Ok(()) => shared.note_payment(),
        Err(failure) => local.payment_failures.record(failure),
    }
    sample
}

/// Seats or places a selection asks for.
pub fn places(selection: &Selection) -> u64 {
    match selection {
        Selection::Seats(seats) => seats.len() as u64,
        Selection::General { quantity, .. } => u64::from(*quantity),
        Selection::BestAvailable(wanted) => u64::from(wanted.quantity),
    }
}
