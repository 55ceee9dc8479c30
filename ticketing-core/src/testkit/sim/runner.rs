//! The runner: builds one simulated world per seed, drives it step by step, checks after every
//! step, and shrinks a failure to the shortest failing prefix of its history.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::{
    Currency, Discount, Event, EventId, EventSpec, HoldExtension, LatePaymentPolicy, Money,
    PaymentNotice, PaymentRef, Row, SeatRef, TicketStatus, Venue, VenueId, Voucher, VoucherCode,
    VoucherEffect, VoucherSpec, Zone, ZoneCode, ZoneKind,
};
use crate::memory::{InMemoryCatalog, InMemorySeatLock, InMemoryTicketRepository};
use crate::ports::{CatalogRepository, Clock, EventSink, ManualClock, TicketRepository};
use crate::service::{
    Backends, BestAvailable, PurchaseRequest, QueryService, SeatLockSync, Selection, ServiceConfig,
    TicketService,
};

use super::adapters::{FaultySeatLock, FaultyTickets};
use super::checker::{Checker, Shape, Violation, inv, ready};
use super::faults::{FaultConfig, FaultCounts, FaultKind, Faults, PlantedBug};
use super::rng::{SeededIds, SimRng};
use super::workload::{
    Customers, InFlight, OpFuture, OpKind, OpOutput, Webhook, customer, describe, general, key,
    payment, short,
};

/// The shape of one simulated sale and the fault rates.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Steps per seed (each step is one poll, one new operation, one fault or one clock move).
    pub steps: usize,
    /// Virtual customers.
    pub customers: u32,
    /// Rows of the seated zone `A`.
    pub rows: u32,
    /// Seats per row.
    pub seats_per_row: u32,
    /// Capacity of the general-admission zone `GA`.
    pub general_capacity: u32,
    /// The event's per-customer limit.
    pub per_customer_limit: u32,
    /// The event's payment window.
    pub hold_time: Duration,
    /// The services' hold grace.
    pub hold_grace: Duration,
    /// Most operations in flight at once.
    pub max_in_flight: usize,
    /// Fault rates.
    pub faults: FaultConfig,
    /// A deliberately planted bug ([`PlantedBug::None`] for the real thing).
    pub bug: PlantedBug,
    /// Whether a seat (or GA place) that the seat lock keeps *sold* for an order that was since
    /// refunded fails the run (invariant 4). Off by default: the services leave such marks behind
    /// when a refund's lock update is lost (release fails, the process crashes between commit and
    /// release, a slower `mark_sold` of the same order lands after the refund, or a rebuild read
    /// the order before the refund). That is a known bug, counted as an observation instead; the
    /// other invariant-4 breaks always fail.
    pub strict_sold_marks: bool,
    /// Whether each sweep also runs a relay pass that mirrors the outbox into the seat lock
    /// ([`SeatLockSync`](crate::service::SeatLockSync)) from a durable cursor, as a server that
    /// runs the outbox relay does. It repairs lock updates lost between a commit and the
    /// service's own lock call.
    pub lock_sync: bool,
    /// The services' late-payment policy: under `AcceptIfAvailable` a late webhook may pay an
    /// order still unswept or take an expired order's seats back, and the checker allows exactly
    /// that (a `PAID_LATE` ledger entry, an EXPIRED → PAID move reported as reactivated).
    pub late_payment: LatePaymentPolicy,
    /// The share (0 to 1) of seated purchases asked as best available (1 to 3 seats of zone `A`,
    /// chosen by the seat lock) instead of named seats. 0 by default, which leaves the random
    /// sequence, and so every recorded history, as it was before best available.
    pub best_available: f64,
    /// The services' hold-extension policy; customers ask for extensions of their unpaid orders
    /// (and now and then of another's). The checker holds every `HoldExtended` to it, and
    /// invariant 4's horizon is the longest hold it allows + grace.
    pub hold_extension: HoldExtension,
    /// The share (0 to 1) of purchases that name the event's voucher [`SIM_VOUCHER`] (1.00 off
    /// each ticket, [`SIM_VOUCHER_USES`] uses, one per customer). The checker holds its uses to
    /// invariant 8 at every step, by the discounted ticket prices and by the repository's count.
    /// 0 by default, which leaves the random sequence as it was before vouchers.
    pub vouchers: f64,
}

/// The code of the simulated event's voucher.
pub const SIM_VOUCHER: &str = "SIM";
/// How many active orders may use [`SIM_VOUCHER`] at once (one per customer).
pub const SIM_VOUCHER_USES: u32 = 2;
/// What [`SIM_VOUCHER`] takes off each ticket, in minor units.
const SIM_VOUCHER_OFF: i64 = 100;

impl Default for SimConfig {
    /// A small hall (8 seats, 6 standing places) and 5 customers, so purchases collide often.
    fn default() -> Self {
        Self {
            steps: 200,
            customers: 5,
            rows: 2,
            seats_per_row: 4,
            general_capacity: 6,
            per_customer_limit: 4,
            hold_time: Duration::from_secs(60),
            hold_grace: Duration::from_secs(5),
            max_in_flight: 8,
            faults: FaultConfig::default(),
            bug: PlantedBug::None,
            strict_sold_marks: false,
            lock_sync: true,
            late_payment: LatePaymentPolicy::Reject,
            best_available: 0.0,
            // Three extensions of the hold time, the third cut by a cap of 2.5 hold times.
            hold_extension: HoldExtension {
                step: None,
                max_extensions: 3,
                max_total: Duration::from_secs(150),
            },
            vouchers: 0.0,
        }
    }
}

/// A broken invariant with the seed and the shortest history prefix that breaks it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The step at which the invariant broke in the shortest prefix (`steps + 1` is the final audit).
    pub step: usize,
    /// The step at which it broke in the full run, before shrinking.
    pub first_seen_at: usize,
    /// What broke.
    pub violation: Violation,
    /// One line per step of the shortest failing prefix.
    pub history: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulation failed for seed {}", self.seed)?;
        writeln!(f, "  {}", self.violation)?;
        let (steps, audit) = self.prefix();
        writeln!(
            f,
            "  shortest failing prefix: {steps} steps{} (first seen at step {} of the full run)",
            if audit { " + the final audit" } else { "" },
            self.first_seen_at
        )?;
        writeln!(
            f,
            "  replay: SIM_SEED={} cargo test -p ticketing-core --features testkit --test simulation replay_seed -- --ignored --nocapture",
            self.seed
        )?;
        writeln!(f, "history:")?;
        for (i, line) in self.history.iter().enumerate() {
            writeln!(f, "  {:>4} {line}", i + 1)?;
        }
        Ok(())
    }
}

impl Failure {
    /// The length of the failing prefix, and whether the break showed in the final audit
    /// (after the prefix) rather than in one of its steps.
    pub fn prefix(&self) -> (usize, bool) {
        let last = self.history.last().map(String::as_str).unwrap_or_default();
        let audit = last.starts_with(FINAL_AUDIT);
        (self.step - usize::from(audit), audit)
    }
}

const FINAL_AUDIT: &str = "final audit";

/// What one seed did.
#[derive(Debug, Clone)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Steps run (without the final audit).
    pub steps: usize,
    /// Operations that finished (acknowledged or refused).
    pub operations: u64,
    /// Invariant checks performed.
    pub checks: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// Things worth knowing that break no invariant, with counts.
    pub observations: BTreeMap<&'static str, u64>,
    /// A hash of the history: the same seed gives the same hash.
    pub history_hash: u64,
    /// The history, one line per step, the final audit last.
    pub history: Vec<String>,
    /// The broken invariant, if any (not shrunk; see [`check_seed`]).
    pub failure: Option<Failure>,
}

/// Runs `config.steps` steps of `seed` and the final audit, without shrinking.
pub fn run_seed(seed: u64, config: &SimConfig) -> SeedReport {
    run_prefix(seed, config, config.steps)
}

/// Runs the first `steps` steps of `seed`'s history, then the final audit.
pub fn run_prefix(seed: u64, config: &SimConfig, steps: usize) -> SeedReport {
    let mut world = World::new(seed, config);
    let mut history = Vec::with_capacity(steps + 1);
    let mut failure = None;
    for step in 1..=steps {
        let result = world.step();
        let result = result.and_then(|line| {
            history.push(line);
            world.check()
        });
        if let Err(violation) = result {
            if history.len() < step {
                history.push(world.last_head.clone());
            }
            failure = Some((step, violation));
            break;
        }
    }
    if failure.is_none() {
        match world.final_audit() {
            Ok(line) => history.push(line),
            Err(violation) => {
                history.push(format!("{FINAL_AUDIT}: drop every operation in flight, stop faults, let every hold lapse, sweep, wipe the lock, rebuild"));
                failure = Some((steps + 1, violation));
            }
        }
    }
    let history_hash = history.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, line| {
        line.bytes()
            .chain([b'\n'])
            .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    });
    SeedReport {
        seed,
        steps: history.len().min(steps),
        operations: world.operations,
        checks: world.checker.checks,
        faults: world.faults.counts(),
        observations: world.checker.observations.clone(),
        history_hash,
        failure: failure.map(|(step, violation)| Failure {
            seed,
            step,
            first_seen_at: step,
            violation,
            history: history.clone(),
        }),
        history,
    }
}

/// Finds the shortest prefix of `seed`'s history that still breaks an invariant, by bisecting
/// on the number of steps (re-running the seed each time). `failing` is a known failing length.
pub fn shrink(seed: u64, config: &SimConfig, failing: usize) -> Option<Failure> {
    let mut best = run_prefix(seed, config, failing.min(config.steps)).failure?;
    let (mut low, mut high) = (0usize, best.step.min(config.steps));
    // Invariant: a prefix of `high` steps fails; `low` steps was not seen failing.
    while low + 1 < high {
        let mid = low + (high - low) / 2;
        match run_prefix(seed, config, mid).failure {
            Some(failure) => {
                high = mid;
                best = failure;
            }
            None => low = mid,
        }
    }
    best.first_seen_at = failing;
    Some(best)
}

/// Runs `seed`; on a failure, shrinks it to the shortest failing prefix.
pub fn check_seed(seed: u64, config: &SimConfig) -> SeedReport {
    let mut report = run_seed(seed, config);
    if let Some(failure) = &report.failure
        && let Some(shrunk) = shrink(seed, config, failure.step)
    {
        report.failure = Some(shrunk);
    }
    report
}

/// Totals over many seeds.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Steps run.
    pub steps: u64,
    /// Operations finished.
    pub operations: u64,
    /// Invariant checks performed.
    pub checks: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// Observations, with counts and the number of seeds that saw each.
    pub observations: BTreeMap<&'static str, (u64, u64)>,
    /// Shrunk failures, by seed.
    pub failures: Vec<Failure>,
}

impl Summary {
    fn add(&mut self, report: SeedReport) {
        self.seeds += 1;
        self.steps += report.steps as u64;
        self.operations += report.operations;
        self.checks += report.checks;
        self.faults.merge(&report.faults);
        for (what, n) in report.observations {
            let entry = self.observations.entry(what).or_default();
            entry.0 += n;
            entry.1 += 1;
        }
        self.failures.extend(report.failure);
    }

    fn merge(&mut self, other: Summary) {
        self.seeds += other.seeds;
        self.steps += other.steps;
        self.operations += other.operations;
        self.checks += other.checks;
        self.faults.merge(&other.faults);
        for (what, (n, seeds)) in other.observations {
            let entry = self.observations.entry(what).or_default();
            entry.0 += n;
            entry.1 += seeds;
        }
        self.failures.extend(other.failures);
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seeds {}, steps {}, operations finished {}, invariant checks {}, failures {}",
            self.seeds,
            self.steps,
            self.operations,
            self.checks,
            self.failures.len()
        )?;
        writeln!(f, "faults injected:\n{}", self.faults)?;
        for (what, (n, seeds)) in &self.observations {
            writeln!(f, "observed: {what}: {n} times in {seeds} seeds")?;
        }
        Ok(())
    }
}

/// Runs every seed of `seeds` (shrinking failures) on `threads` threads and sums the reports.
/// Each seed is independent and deterministic, so the totals do not depend on `threads`.
pub fn run_seeds(seeds: Range<u64>, config: &SimConfig, threads: usize) -> Summary {
    let threads = threads.max(1) as u64;
    let mut summary = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    let mut summary = Summary::default();
                    for seed in seeds.skip(t as usize).step_by(threads as usize) {
                        summary.add(check_seed(seed, config));
                    }
                    summary
                })
            })
            .collect();
        workers
            .into_iter()
            .fold(Summary::default(), |mut all, worker| {
                all.merge(worker.join().expect("a simulation thread panicked"));
                all
            })
    });
    summary.failures.sort_by_key(|f| f.seed);
    summary
}

/// One relay pass into the seat lock: the outbox after the cursor, mirrored, then the cursor
/// moved. A failure (an injected fault) leaves the cursor, so the next pass repeats the batch.
async fn relay_pass(sync: &SeatLockSync, cursor: &AtomicU64, outbox: &dyn TicketRepository) {
    let from = cursor.load(Ordering::SeqCst);
    let Ok(entries) = outbox.outbox_after(from, 1_000).await else {
        return;
    };
    let Some(last) = entries.last().map(|e| e.seq) else {
        return;
    };
    if sync.publish(&entries).await.is_ok() {
        cursor.fetch_max(last, Ordering::SeqCst);
    }
}

/// One simulated sale: the adapters, the services, the customers and the checker.
struct World {
    config: SimConfig,
    rng: SimRng,
    faults: Arc<Faults>,
    clock: Arc<ManualClock>,
    start: DateTime<Utc>,
    latest: DateTime<Utc>,
    lock: Arc<InMemorySeatLock>,
    repo: Arc<InMemoryTicketRepository>,
    tickets: TicketService,
    queries: QueryService,
    /// The relay pass of each sweep, when [`SimConfig::lock_sync`] is on.
    lock_sync: Option<Arc<SeatLockSync>>,
    /// Where the relay pass continues (the relay's cursor is durable: it survives crashes).
    relay_cursor: Arc<AtomicU64>,
    outbox: Arc<dyn TicketRepository>,
    event: EventId,
    seats: Vec<SeatRef>,
    general_zone: ZoneCode,
    customers: Customers,
    checker: Checker,
    in_flight: Vec<InFlight>,
    next_op: u64,
    operations: u64,
    /// The start of the line of the step being run, for a step whose answer breaks an invariant.
    last_head: String,
}

fn zone(code: &str) -> ZoneCode {
    code.parse().expect("zone code")
}

impl World {
    fn new(seed: u64, config: &SimConfig) -> World {
        let start = DateTime::from_timestamp(1_893_456_000, 0).expect("2030-01-01");
        let clock = Arc::new(ManualClock::new(start));
        let mut catalog_ids = SimRng::stream(seed, 0xCA7);
        let zones = vec![
            Zone {
                code: zone("A"),
                name: "Stalls".into(),
                kind: ZoneKind::Seated {
                    rows: (1..=config.rows)
                        .map(|r| Row {
                            label: r.to_string().parse().expect("row label"),
                            seats: config.seats_per_row,
                        })
                        .collect(),
                },
            },
            Zone {
                code: zone("GA"),
                name: "Standing".into(),
                kind: ZoneKind::GeneralAdmission {
                    capacity: config.general_capacity,
                },
            },
        ];
        let venue =
            Venue::new(VenueId::from_uuid(catalog_ids.uuid()), "Sim Hall", zones).expect("venue");
        let eur = Currency::new("EUR").expect("EUR");
        let event = Event::new(
            EventId::from_uuid(catalog_ids.uuid()),
            EventSpec {
                name: "Sim Night".into(),
                venue_id: venue.id(),
                sale_opens: start - TimeDelta::hours(1),
                sale_closes: start + TimeDelta::days(30),
                prices: [
                    (zone("A"), Money::new(2500, eur)),
                    (zone("GA"), Money::new(1500, eur)),
                ]
                .into(),
                hold_time: span(config.hold_time),
                per_customer_limit: config.per_customer_limit,
            },
            &venue,
        )
        .expect("event");
        let catalog = Arc::new(InMemoryCatalog::new());
        ready(catalog.insert_venue(&venue)).expect("insert venue");
        ready(catalog.insert_event(&event)).expect("insert event");
        let voucher = sim_voucher(&event, start);
        ready(catalog.insert_voucher(&voucher)).expect("insert voucher");
        let faults = Arc::new(Faults::new(seed, config.faults.clone()));
        let lock = Arc::new(InMemorySeatLock::new());
        let repo = Arc::new(InMemoryTicketRepository::new());
        let backends = Backends {
            catalog,
            tickets: Arc::new(FaultyTickets::new(repo.clone(), faults.clone(), config.bug)),
            seat_lock: Arc::new(FaultySeatLock::new(
                lock.clone(),
                faults.clone(),
                config.bug,
            )),
            clock: clock.clone(),
            ids: Arc::new(SeededIds::new(seed)),
            waiting_room: Arc::new(crate::memory::InMemoryWaitingRoom::new()),
            waiting_list: None,
        };
        let service_config = ServiceConfig {
            hold_grace: config.hold_grace,
            late_payment: config.late_payment,
            hold_extension: config.hold_extension,
            ..ServiceConfig::default()
        };
        let seats = venue.zones()[0].seats().collect();
        let extension = service_config.hold_extension;
        World {
            rng: SimRng::stream(seed, 0x5EED),
            faults,
            clock,
            start,
            latest: start,
            lock,
            repo,
            tickets: TicketService::new(backends.clone(), service_config.clone()),
            lock_sync: config
                .lock_sync
                .then(|| Arc::new(SeatLockSync::new(backends.clone(), service_config.clone()))),
            relay_cursor: Arc::new(AtomicU64::new(0)),
            outbox: backends.tickets().clone(),
            queries: QueryService::new(backends, service_config),
            event: event.id(),
            seats,
            general_zone: zone("GA"),
            customers: Customers::default(),
            checker: Checker::new(Shape {
                event: event.id(),
                capacity: config.general_capacity,
                limit: config.per_customer_limit,
                window: longest_hold(config) + span(config.hold_grace),
                strict_sold_marks: config.strict_sold_marks,
                accept_late: config.late_payment == LatePaymentPolicy::AcceptIfAvailable,
                max_extensions: extension.max_extensions,
                max_hold: span(extension.max_total),
                prices: event
                    .prices()
                    .iter()
                    .map(|(zone, price)| (zone.clone(), price.minor))
                    .collect(),
                voucher_uses: voucher.max_uses(),
                voucher_per_customer: voucher.max_per_customer(),
                voucher_off: SIM_VOUCHER_OFF,
                voucher: voucher.code().clone(),
            }),
            in_flight: Vec::new(),
            next_op: 1,
            operations: 0,
            last_head: String::new(),
            config: config.clone(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Time since the start, for history lines.
    fn at(&self) -> String {
        let ms = (self.now() - self.start).num_milliseconds();
        format!("t={}.{:03}s", ms / 1000, ms.rem_euclid(1000))
    }

    fn ms(&mut self, low: i64, high: i64) -> TimeDelta {
        TimeDelta::milliseconds(self.rng.between(low, high))
    }

    fn set_clock(&mut self, to: DateTime<Utc>) {
        self.clock.set(to);
        self.latest = self.latest.max(to);
        for op in &mut self.in_flight {
            op.latest = op.latest.max(to);
        }
    }

    fn check(&mut self) -> Result<(), Violation> {
        self.checker
            .check_step(&*self.repo, &*self.lock, self.latest)
    }

    /// One step: a fault, a new operation, one poll of an operation in flight, or a clock move.
    fn step(&mut self) -> Result<String, Violation> {
        let faults = self.faults.clone();
        if faults.roll(FaultKind::LockWiped, |c| c.lock_wipe) {
            self.lock.wipe();
            return Ok(format!(
                "{} fault: the seat lock loses all its state",
                self.at()
            ));
        }
        if !self.in_flight.is_empty() && faults.roll(FaultKind::Crash, |c| c.crash) {
            return Ok(self.crash_one());
        }
        if faults.roll(FaultKind::ClockJumpForward, |c| c.clock_jump) {
            let window = span(self.config.hold_time).num_milliseconds();
            let by = self.ms(1000, 2 * window);
            self.set_clock(self.now() + by);
            return Ok(format!("{} fault: the clock jumps forward {by}", self.at()));
        }
        if faults.roll(FaultKind::ClockJumpBackward, |c| c.clock_back) {
            let by = self.ms(1, 2000);
            self.set_clock(self.now() - by);
            return Ok(format!("{} fault: the clock steps back {by}", self.at()));
        }
        if self.in_flight.len() + 2 <= self.config.max_in_flight
            && let Some(i) = self.race_candidate()
            && faults.roll(FaultKind::PaymentRacedSweep, |c| c.payment_races_sweep)
        {
            return self.race_payment_with_sweep(i);
        }
        let action = if self.in_flight.len() >= self.config.max_in_flight {
            0
        } else {
            self.rng.below(100)
        };
        let line = match action {
            0..45 => self.poll_one()?,
            45..60 => Some(self.new_purchase()),
            60..65 => self.retry_purchase(),
            65..77 => self.deliver_webhook(),
            77..80 => self.cancel_one(),
            80..83 => self.refund_one(),
            83..89 => Some(self.start(OpKind::Sweep)),
            89..91 => Some(self.start(OpKind::SeatMap)),
            91..94 => self.extend_one(),
            _ => None,
        };
        Ok(match line {
            Some(line) => line,
            None => {
                let by = self.ms(1, 3000);
                self.set_clock(self.now() + by);
                format!("{} time passes: {by}", self.at())
            }
        })
    }

    fn start(&mut self, kind: OpKind) -> String {
        let id = self.next_op;
        self.next_op += 1;
        let future: OpFuture = match &kind {
            OpKind::Purchase(request) => {
                let (service, request) = (self.tickets.clone(), request.clone());
                Box::pin(async move { OpOutput::Order(service.purchase(request).await) })
            }
            OpKind::Pay {
                order,
                payment_ref,
                amount,
            } => {
                let notice = PaymentNotice {
                    order: *order,
                    reference: payment_ref.clone(),
                    amount: *amount,
                };
                let service = self.tickets.clone();
                Box::pin(async move { OpOutput::Order(service.pay(notice).await) })
            }
            OpKind::Cancel(order) => {
                self.checker.cancel_requested(*order);
                let (service, order) = (self.tickets.clone(), *order);
                Box::pin(async move { OpOutput::Order(service.cancel(order).await) })
            }
            OpKind::Refund(order) => {
                self.checker.refund_requested(*order);
                let (service, order) = (self.tickets.clone(), *order);
                Box::pin(async move { OpOutput::Order(service.refund(order).await) })
            }
            OpKind::Extend { order, customer } => {
                let (service, order, customer) = (self.tickets.clone(), *order, customer.clone());
                Box::pin(
                    async move { OpOutput::Extended(service.extend_hold(order, &customer).await) },
                )
            }
            OpKind::Sweep => {
                let service = self.tickets.clone();
                let relay = self
                    .lock_sync
                    .clone()
                    .map(|sync| (sync, self.relay_cursor.clone(), self.outbox.clone()));
                Box::pin(async move {
                    let swept = service.expire_due().await;
                    if let Some((sync, cursor, outbox)) = relay {
                        relay_pass(&sync, &cursor, &*outbox).await;
                    }
                    OpOutput::Swept(swept)
                })
            }
            OpKind::SeatMap => {
                let (queries, event) = (self.queries.clone(), self.event);
                Box::pin(async move { OpOutput::Map(queries.seat_map(event).await) })
            }
        };
        let line = format!("{} start #{id} {}", self.at(), describe(&kind));
        self.in_flight.push(InFlight {
            id,
            kind,
            future,
            latest: self.now(),
        });
        line
    }

    fn poll_one(&mut self) -> Result<Option<String>, Violation> {
        let Some(i) = self.rng.index(self.in_flight.len()) else {
            return Ok(None);
        };
        self.poll_at(i).map(Some)
    }

    /// Polls the operation started last once, at the current clock: an operation reads the
    /// clock on its first poll (a payment stamps its arrival), so this makes it arrive now.
    fn poll_started(&mut self) -> Result<String, Violation> {
        self.poll_at(self.in_flight.len() - 1)
    }

    fn poll_at(&mut self, i: usize) -> Result<String, Violation> {
        let at = self.at();
        let op = &mut self.in_flight[i];
        match op
            .future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Pending => Ok(format!("{at} poll #{}: pending", op.id)),
            Poll::Ready(output) => {
                let op = self.in_flight.remove(i);
                self.operations += 1;
                self.finish(op, output)
            }
        }
    }

    fn finish(&mut self, op: InFlight, output: OpOutput) -> Result<String, Violation> {
        let head = format!("{} poll #{} {} ->", self.at(), op.id, describe(&op.kind));
        self.last_head = format!("{head} (this answer broke an invariant)");
        let repo = self.repo.clone();
        Ok(match (op.kind, output) {
            (OpKind::Purchase(request), OpOutput::Order(Ok(order))) => {
                self.checker.purchase_acked(&*repo, &request, &order)?;
                let line = format!(
                    "{head} order {} {} until t+{}s",
                    short(order.id),
                    order.status,
                    (order.expires_at - self.start).num_milliseconds() as f64 / 1000.0
                );
                self.customer_decides(&order);
                line
            }
            (OpKind::Purchase(request), OpOutput::Order(Err(error))) => {
                self.checker.purchase_refused(&*repo, &request, &error)?;
                if error.is_retryable() && request.idempotency_key.is_some() && self.rng.chance(0.8)
                {
                    self.customers.retries.push(request);
                }
                format!("{head} {error}")
            }
            (
                OpKind::Pay {
                    order,
                    payment_ref,
                    amount,
                },
                OpOutput::Order(result),
            ) => match result {
                Ok(paid) => {
                    self.checker.payment_acked(&paid, &payment_ref)?;
                    self.checker
                        .payment_judged_by_arrival(&*repo, &paid, &payment_ref)?;
                    self.customers.unpaid.retain(|(o, _)| *o != order);
                    if !self.customers.paid.contains(&order) {
                        self.customers.paid.push(order);
                    }
                    format!("{head} {}", paid.status)
                }
                Err(error) => {
                    self.checker.payment_refused(
                        &*repo,
                        order,
                        &payment_ref,
                        &error,
                        self.latest,
                    )?;
                    if error.is_retryable() {
                        self.redeliver(order, payment_ref, amount);
                    }
                    format!("{head} {error}")
                }
            },
            (OpKind::Extend { order, customer }, OpOutput::Extended(result)) => {
                let owner = self.customers.owners.get(&order) == Some(&customer);
                self.checker
                    .extension_answered(&*repo, order, owner, &result)?;
                match result {
                    Ok(extended) => {
                        for (o, deadline) in &mut self.customers.unpaid {
                            if *o == order {
                                *deadline = (*deadline).max(extended.order.expires_at);
                            }
                        }
                        format!(
                            "{head} until t+{}s ({} left)",
                            (extended.order.expires_at - self.start).num_milliseconds() as f64
                                / 1000.0,
                            extended.extensions_left
                        )
                    }
                    Err(error) => format!("{head} {error}"),
                }
            }
            (_, OpOutput::Extended(_)) => unreachable!("only an extension answers Extended"),
            (_, OpOutput::Order(result)) => match result {
                Ok(order) => format!("{head} {}", order.status),
                Err(error) => format!("{head} {error}"),
            },
            (_, OpOutput::Swept(result)) => match result {
                Ok(n) => format!("{head} expired {n} orders"),
                Err(error) => format!("{head} {error}"),
            },
            (_, OpOutput::Map(result)) => match result {
                Ok(map) => {
                    let held = map
                        .seats()
                        .filter(|s| s.state != crate::service::SeatAvailability::Free)
                        .count();
                    format!("{head} {held} seats taken")
                }
                Err(error) => format!("{head} {error}"),
            },
        })
    }

    /// A customer with a fresh unpaid order pays (a webhook, maybe late), or not.
    fn customer_decides(&mut self, order: &crate::domain::Order) {
        let known = self.customers.unpaid.iter().any(|(o, _)| *o == order.id)
            || self.customers.paid.contains(&order.id);
        if order.status != TicketStatus::PendingPayment || known {
            return;
        }
        self.customers.unpaid.push((order.id, order.expires_at));
        self.customers.totals.insert(order.id, order.total);
        self.customers
            .owners
            .insert(order.id, order.customer.clone());
        if self.rng.below(100) < 65 {
            let window = span(self.config.hold_time).num_milliseconds();
            let delay = if self.rng.chance(self.config.faults.webhook_late) {
                self.ms(window, window * 3 / 2)
            } else {
                self.ms(0, window * 4 / 5)
            };
            let payment_ref = payment(self.customers.next_payment);
            self.customers.next_payment += 1;
            let seq = self.customers.next_webhook;
            self.customers.next_webhook += 1;
            // Now and then the provider reports a wrong amount: recorded, never paid.
            let amount = if self.rng.chance(0.03) {
                Money::new(order.total.minor + 1, order.total.currency)
            } else {
                order.total
            };
            self.customers.webhooks.push(Webhook {
                seq,
                order: order.id,
                payment_ref,
                amount,
                due: self.now() + delay,
                deadline: order.expires_at,
            });
        }
    }

    /// The provider retries a webhook that got no 2xx answer.
    fn redeliver(&mut self, order: crate::domain::OrderId, payment_ref: PaymentRef, amount: Money) {
        let Some(deadline) = self
            .customers
            .unpaid
            .iter()
            .find(|(o, _)| *o == order)
            .map(|(_, d)| *d)
        else {
            return;
        };
        let seq = self.customers.next_webhook;
        self.customers.next_webhook += 1;
        let due = self.now() + self.ms(500, 5000);
        self.customers.webhooks.push(Webhook {
            seq,
            order,
            payment_ref,
            amount,
            due,
            deadline,
        });
    }

    fn new_purchase(&mut self) -> String {
        let who = customer(self.rng.below(u64::from(self.config.customers)));
        let best_available = self.config.best_available;
        let selection = if self.rng.chance(0.7) {
            if best_available > 0.0 && self.rng.chance(best_available) {
                Selection::BestAvailable(BestAvailable {
                    zone: Some(self.seats[0].zone.clone()),
                    quantity: self.rng.between(1, 3) as u32,
                    rows: None,
                    max_price: None,
                })
            } else {
                let n = self.rng.between(1, 3) as usize;
                let mut seats: Vec<SeatRef> = Vec::with_capacity(n);
                while seats.len() < n.min(self.seats.len()) {
                    let seat = &self.seats[self.rng.below(self.seats.len() as u64) as usize];
                    if !seats.contains(seat) {
                        seats.push(seat.clone());
                    }
                }
                Selection::Seats(seats)
            }
        } else {
            general(&self.general_zone, self.rng.between(1, 3) as u32)
        };
        let roll = self.rng.below(100);
        let reusable: Vec<usize> = (0..self.customers.keyed.len())
            .filter(|i| self.customers.keyed[*i].customer == who)
            .collect();
        let idempotency_key = if roll < 70 {
            let k = key(self.customers.next_key);
            self.customers.next_key += 1;
            Some(k)
        } else if roll < 76 && !reusable.is_empty() {
            // The same key for another request: must be a conflict, never another order.
            let i = reusable[self.rng.below(reusable.len() as u64) as usize];
            self.customers.keyed[i].idempotency_key.clone()
        } else {
            None
        };
        let vouchers = self.config.vouchers;
        let voucher = (vouchers > 0.0 && self.rng.chance(vouchers))
            .then(|| VoucherCode::new(SIM_VOUCHER).expect("voucher code"));
        let request = PurchaseRequest {
            event: self.event,
            customer: who,
            selection,
            idempotency_key,
            voucher,
            channel: None,
        };
        if request.idempotency_key.is_some() && roll < 70 {
            self.customers.keyed.push(request.clone());
        }
        self.start(OpKind::Purchase(request))
    }

    fn retry_purchase(&mut self) -> Option<String> {
        let request = if let Some(i) = self.rng.index(self.customers.retries.len()) {
            self.customers.retries.remove(i)
        } else {
            let i = self.rng.index(self.customers.keyed.len())?;
            self.customers.keyed[i].clone()
        };
        Some(self.start(OpKind::Purchase(request)))
    }

    fn deliver_webhook(&mut self) -> Option<String> {
        let now = self.now();
        let due: Vec<usize> = (0..self.customers.webhooks.len())
            .filter(|i| self.customers.webhooks[*i].due <= now)
            .collect();
        let i = due[self.rng.index(due.len())?];
        let webhook = self.customers.webhooks[i].clone();
        if due
            .iter()
            .any(|j| self.customers.webhooks[*j].seq < webhook.seq)
        {
            self.faults.count(FaultKind::WebhookReordered);
        }
        if now >= webhook.deadline {
            self.faults.count(FaultKind::WebhookLate);
        }
        if self
            .faults
            .roll(FaultKind::WebhookDuplicated, |c| c.webhook_duplicate)
        {
            self.customers.webhooks[i].due = now + self.ms(0, 10_000);
        } else {
            self.customers.webhooks.remove(i);
        }
        Some(self.start(OpKind::Pay {
            order: webhook.order,
            payment_ref: webhook.payment_ref,
            amount: webhook.amount,
        }))
    }

    fn cancel_one(&mut self) -> Option<String> {
        let i = self.rng.index(self.customers.unpaid.len())?;
        let (order, _) = self.customers.unpaid.remove(i);
        Some(self.start(OpKind::Cancel(order)))
    }

    /// A customer asks for more time to pay an unpaid order: its own, or (one time in ten)
    /// someone else's, which must be refused as not found.
    fn extend_one(&mut self) -> Option<String> {
        let i = self.rng.index(self.customers.unpaid.len())?;
        let (order, _) = self.customers.unpaid[i];
        let owner = self.customers.owners.get(&order)?.clone();
        let customer = if self.rng.chance(0.1) {
            customer(self.rng.below(u64::from(self.config.customers)))
        } else {
            owner
        };
        Some(self.start(OpKind::Extend { order, customer }))
    }

    fn refund_one(&mut self) -> Option<String> {
        let i = self.rng.index(self.customers.paid.len())?;
        let order = self.customers.paid.remove(i);
        Some(self.start(OpKind::Refund(order)))
    }

    fn crash_one(&mut self) -> String {
        let i = self.rng.below(self.in_flight.len() as u64) as usize;
        let op = self.in_flight.remove(i);
        let line = format!(
            "{} fault: crash drops #{} {} mid-flight",
            self.at(),
            op.id,
            describe(&op.kind)
        );
        drop(op.future);
        match op.kind {
            OpKind::Purchase(request)
                if request.idempotency_key.is_some() && self.rng.chance(0.7) =>
            {
                self.customers.retries.push(request);
            }
            OpKind::Pay {
                order,
                payment_ref,
                amount,
            } => self.redeliver(order, payment_ref, amount),
            _ => {}
        }
        line
    }

    /// An unpaid order whose deadline is still ahead.
    fn race_candidate(&mut self) -> Option<usize> {
        let now = self.now();
        let open: Vec<usize> = (0..self.customers.unpaid.len())
            .filter(|i| self.customers.unpaid[*i].1 > now + TimeDelta::milliseconds(1))
            .collect();
        let i = self.rng.index(open.len())?;
        Some(open[i])
    }

    /// A payment that arrives at the deadline (or 1 ms before) and a sweep started then. Each is
    /// polled once at that instant, so the payment's arrival and the sweep's clock are the
    /// deadline's, however late their next polls come.
    fn race_payment_with_sweep(&mut self, i: usize) -> Result<String, Violation> {
        let (order, deadline) = self.customers.unpaid[i];
        let at = deadline - self.ms(0, 1);
        self.set_clock(at);
        let payment_ref = payment(self.customers.next_payment);
        self.customers.next_payment += 1;
        let amount = self.customers.totals[&order];
        let pay = self.start(OpKind::Pay {
            order,
            payment_ref,
            amount,
        });
        let paying = self.poll_started()?;
        let sweep = self.start(OpKind::Sweep);
        let sweeping = self.poll_started()?;
        let after = deadline + self.ms(0, 1);
        self.set_clock(after);
        Ok(format!(
            "fault: payment races the sweep at the deadline of {}: {pay}; {paying}; {sweep}; {sweeping}; {}",
            short(order),
            self.at()
        ))
    }

    /// Runs one operation to its end (faults off), or reports that it never ends.
    fn drive(&mut self, kind: OpKind) -> Result<OpOutput, Violation> {
        let what = describe(&kind);
        self.start(kind);
        let mut op = self.in_flight.pop().expect("just started");
        for _ in 0..100_000 {
            if let Poll::Ready(output) = op
                .future
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                return Ok(output);
            }
        }
        Err(Violation {
            invariant: inv::LIVENESS,
            message: format!("{what} did not finish in 100000 polls"),
        })
    }

    /// The end of the run: every operation in flight is dropped, faults stop, every hold lapses,
    /// the sweep runs, then the lock is wiped and the seat map is rebuilt from the repository.
    fn final_audit(&mut self) -> Result<String, Violation> {
        let dropped = self.in_flight.len();
        self.in_flight.clear();
        self.faults.set_enabled(false);
        let settle =
            longest_hold(&self.config) + span(self.config.hold_grace) + TimeDelta::seconds(1);
        for _ in 0..2 {
            self.set_clock(self.latest + settle);
            if let OpOutput::Swept(Err(error)) = self.drive(OpKind::Sweep)? {
                return Err(Violation {
                    invariant: inv::LIVENESS,
                    message: format!("the sweep failed without faults: {error}"),
                });
            }
            self.check()?;
        }
        self.checker.audit_purchases(&*self.repo, self.now())?;
        self.checker
            .observe_lock_drift(&*self.repo, &*self.lock, self.now());
        self.lock.wipe();
        match self.drive(OpKind::SeatMap)? {
            OpOutput::Map(Ok(map)) => self.checker.audit_rebuilt_map(&*self.repo, &map)?,
            OpOutput::Map(Err(error)) => {
                return Err(Violation {
                    invariant: inv::REBUILD,
                    message: format!("the seat map after a wipe failed: {error}"),
                });
            }
            _ => unreachable!("a seat map answers a map"),
        }
        let acked = self.checker.acked_purchases().count();
        Ok(format!(
            "{FINAL_AUDIT}: dropped {dropped} operations in flight, settled, swept, wiped and rebuilt the lock; {acked} acknowledged orders all present"
        ))
    }
}

/// The longest a payment deadline can be after its order's purchase: the hold time, or the
/// extension policy's cap when extensions are on.
/// The event's voucher: [`SIM_VOUCHER_OFF`] off each ticket, [`SIM_VOUCHER_USES`] uses, one per
/// customer, valid for the whole sale.
fn sim_voucher(event: &Event, start: DateTime<Utc>) -> Voucher {
    Voucher::new(
        event,
        VoucherSpec {
            code: VoucherCode::new(SIM_VOUCHER).expect("voucher code"),
            effect: VoucherEffect::Discount(Discount::Amount(Money::new(
                SIM_VOUCHER_OFF,
                event.currency(),
            ))),
            max_uses: SIM_VOUCHER_USES,
            max_per_customer: 1,
            valid_from: start - TimeDelta::hours(1),
            valid_until: start + TimeDelta::days(30),
        },
    )
    .expect("voucher")
}

fn longest_hold(config: &SimConfig) -> TimeDelta {
    config.hold_extension.longest_hold(span(config.hold_time))
}

/// A configured span as the domain's time span; one too long for chrono becomes the longest one,
/// which [`Event::new`](crate::domain::Event::new) then refuses as a hold time.
fn span(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}
