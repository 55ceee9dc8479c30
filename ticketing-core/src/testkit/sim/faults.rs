//! Which faults the simulator injects, how often, and how many it injected.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use crate::Error;

use super::rng::SimRng;

/// The probability of each fault. Per-call faults are drawn at every port call of their kind;
/// per-step faults once per simulation step.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Per step: the seat lock loses all its state (a Redis restart without persistence).
    pub lock_wipe: f64,
    /// Per seat-lock call: the call fails with [`Error::Unavailable`] and has no effect.
    pub lock_fail: f64,
    /// Per seat-lock call: the call takes effect, then the caller sees [`Error::Unavailable`]
    /// (a timeout after the server applied it).
    pub lock_timeout: f64,
    /// Per release: the release fails and has no effect (the holds stay until their deadline).
    pub release_fail: f64,
    /// Per `insert_order`: persisting fails and writes nothing.
    pub persist_fail: f64,
    /// Per `insert_order`: the transaction commits, then the caller sees an error (unknown result).
    pub persist_unknown: f64,
    /// Per `transition` / `expire_due`: the call fails and changes nothing.
    pub transition_fail: f64,
    /// Per `transition` / `expire_due`: the change commits, then the caller sees an error.
    pub transition_unknown: f64,
    /// Per repository read: the read fails.
    pub read_fail: f64,
    /// Per step: one in-flight operation is dropped where it stands (the process crashed).
    pub crash: f64,
    /// Per step: the clock jumps forward by up to two payment windows.
    pub clock_jump: f64,
    /// Per step: the clock steps back by up to two seconds (NTP correction, another instance).
    pub clock_back: f64,
    /// Per delivered payment webhook: it stays queued and is delivered again later.
    pub webhook_duplicate: f64,
    /// Per paying customer: the webhook is delayed past the payment deadline.
    pub webhook_late: f64,
    /// Per step: a payment arrives at the order's deadline (or 1 ms before) and the expiry sweep
    /// starts then; each is polled once there, so both read the clock at the deadline.
    pub payment_races_sweep: f64,
}

impl FaultConfig {
    /// No faults at all.
    pub fn none() -> Self {
        Self {
            lock_wipe: 0.0,
            lock_fail: 0.0,
            lock_timeout: 0.0,
            release_fail: 0.0,
            persist_fail: 0.0,
            persist_unknown: 0.0,
            transition_fail: 0.0,
            transition_unknown: 0.0,
            read_fail: 0.0,
            crash: 0.0,
            clock_jump: 0.0,
            clock_back: 0.0,
            webhook_duplicate: 0.0,
            webhook_late: 0.0,
            payment_races_sweep: 0.0,
        }
    }
}

impl Default for FaultConfig {
    /// Rates high enough that every seed sees several faults of most kinds.
    fn default() -> Self {
        Self {
            lock_wipe: 0.01,
            lock_fail: 0.04,
            lock_timeout: 0.04,
            release_fail: 0.15,
            persist_fail: 0.05,
            persist_unknown: 0.05,
            transition_fail: 0.04,
            transition_unknown: 0.04,
            read_fail: 0.02,
            crash: 0.03,
            clock_jump: 0.03,
            clock_back: 0.01,
            webhook_duplicate: 0.2,
            webhook_late: 0.2,
            payment_races_sweep: 0.02,
        }
    }
}

/// A kind of injected fault, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The seat lock lost all its state.
    LockWiped,
    /// A seat-lock call failed without effect.
    LockFailed,
    /// A seat-lock call took effect, then failed.
    LockTimedOut,
    /// A release failed.
    ReleaseFailed,
    /// Persisting an order failed.
    PersistFailed,
    /// Persisting an order committed, then failed.
    PersistUnknown,
    /// A transition or sweep failed.
    TransitionFailed,
    /// A transition or sweep committed, then failed.
    TransitionUnknown,
    /// A repository read failed.
    ReadFailed,
    /// An in-flight operation was dropped at an await point.
    Crash,
    /// The clock jumped forward.
    ClockJumpForward,
    /// The clock stepped back.
    ClockJumpBackward,
    /// A payment webhook was delivered twice (or more).
    WebhookDuplicated,
    /// A payment webhook was delivered before an older one.
    WebhookReordered,
    /// A payment webhook arrived at or after the payment deadline.
    WebhookLate,
    /// A payment and the sweep started together at the deadline.
    PaymentRacedSweep,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 16] = [
        FaultKind::LockWiped,
        FaultKind::LockFailed,
        FaultKind::LockTimedOut,
        FaultKind::ReleaseFailed,
        FaultKind::PersistFailed,
        FaultKind::PersistUnknown,
        FaultKind::TransitionFailed,
        FaultKind::TransitionUnknown,
        FaultKind::ReadFailed,
        FaultKind::Crash,
        FaultKind::ClockJumpForward,
        FaultKind::ClockJumpBackward,
        FaultKind::WebhookDuplicated,
        FaultKind::WebhookReordered,
        FaultKind::WebhookLate,
        FaultKind::PaymentRacedSweep,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::LockWiped => "lock_wiped",
            FaultKind::LockFailed => "lock_failed",
            FaultKind::LockTimedOut => "lock_timed_out",
            FaultKind::ReleaseFailed => "release_failed",
            FaultKind::PersistFailed => "persist_failed",
            FaultKind::PersistUnknown => "persist_unknown_result",
            FaultKind::TransitionFailed => "transition_failed",
            FaultKind::TransitionUnknown => "transition_unknown_result",
            FaultKind::ReadFailed => "read_failed",
            FaultKind::Crash => "crash_mid_operation",
            FaultKind::ClockJumpForward => "clock_jump_forward",
            FaultKind::ClockJumpBackward => "clock_jump_backward",
            FaultKind::WebhookDuplicated => "webhook_duplicated",
            FaultKind::WebhookReordered => "webhook_reordered",
            FaultKind::WebhookLate => "webhook_late",
            FaultKind::PaymentRacedSweep => "payment_raced_sweep",
        }
    }
}

/// How many faults of each kind were injected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts([u64; FaultKind::ALL.len()]);

impl FaultCounts {
    /// Faults of `kind`.
    pub fn get(&self, kind: FaultKind) -> u64 {
        self.0[kind as usize]
    }

    /// Counts one more fault of `kind`.
    pub fn add(&mut self, kind: FaultKind) {
        self.0[kind as usize] += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &FaultCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }

    /// All faults.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in FaultKind::ALL {
            writeln!(f, "  {:<26} {}", kind.name(), self.get(kind))?;
        }
        write!(f, "  {:<26} {}", "total", self.total())
    }
}

/// The injector the fault wrappers share: the fault stream, the rates and the counts.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<FaultState>,
}

#[derive(Debug)]
struct FaultState {
    rng: SimRng,
    config: FaultConfig,
    enabled: bool,
    counts: FaultCounts,
}

impl Faults {
    /// An injector drawing from its own stream of `seed`.
    pub fn new(seed: u64, config: FaultConfig) -> Self {
        Self {
            state: Mutex::new(FaultState {
                rng: SimRng::stream(seed, 0xFA17),
                config,
                enabled: true,
                counts: FaultCounts::default(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Draws whether to inject a fault whose rate `rate` picks from the config, and counts it.
    pub fn roll(&self, kind: FaultKind, rate: impl Fn(&FaultConfig) -> f64) -> bool {
        let mut state = self.state();
        if !state.enabled {
            return false;
        }
        let p = rate(&state.config);
        let hit = state.rng.chance(p);
        if hit {
            state.counts.add(kind);
        }
        hit
    }

    /// Counts a fault the runner injected itself.
    pub fn count(&self, kind: FaultKind) {
        self.state().counts.add(kind);
    }

    /// Turns injection on or off (off for the final audit).
    pub fn set_enabled(&self, enabled: bool) {
        self.state().enabled = enabled;
    }

    /// The counts so far.
    pub fn counts(&self) -> FaultCounts {
        self.state().counts.clone()
    }
}

/// The error an injected backend failure surfaces as.
pub fn injected(adapter: &'static str, what: &str) -> Error {
    Error::unavailable(adapter, format!("injected fault: {what}"))
}

/// A future that is pending once: every port call starts with one, so each poll of an operation
/// advances it by exactly one port call, and the runner can interleave operations (or drop one)
/// at every await point.
#[derive(Debug, Default)]
pub struct YieldPoint(bool);

impl Future for YieldPoint {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Waits at one simulated await point.
pub fn yield_point() -> YieldPoint {
    YieldPoint(false)
}

/// A bug planted on purpose, to prove the checker catches invariant breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlantedBug {
    /// No bug: the real adapters behind the fault wrappers.
    #[default]
    None,
    /// The repository acknowledges one `insert_order` in five without writing it (a lost commit).
    LostWrite,
    /// The seat lock answers `Held` without holding, and the repository "upserts" the seat: when a
    /// seat has an active ticket, it ends that ticket (refunding it if paid) and writes the new one.
    SeatOverwrite,
    /// The seat lock holds for a day instead of the requested deadline.
    EternalHolds,
}
