//! Deterministic fault-injection simulation of the services (issue 6, part 1).
//!
//! One seed builds one simulated sale: a small hall, a handful of virtual customers and the real
//! [`TicketService`](crate::service::TicketService) and
//! [`QueryService`](crate::service::QueryService) over the in-memory adapters, each port wrapped
//! by a fault injector ([`FaultySeatLock`], [`FaultyTickets`]), on a
//! [`ManualClock`](crate::ports::ManualClock) with seeded ids ([`SeededIds`]).
//!
//! Everything runs on one thread. Operations (purchases and their retries, payment webhooks,
//! cancellations, refunds, the expiry sweep, seat maps) are futures the runner keeps in flight;
//! every port call waits once at a [`yield_point`], so each step polls one operation forward by
//! one port call, in an order the seed chooses — or injects a fault, starts an operation, drops
//! an operation where it stands (a crash), or moves the clock. Nothing depends on wall-clock time
//! or hash-map order, so the same seed gives the same history, bit for bit.
//!
//! After every step the checker holds the repository, the outbox and the seat lock against
//! DESIGN.md's invariants 1–7 and against every answer the customers got; the run ends with an
//! audit (every hold lapsed, a full sweep, a wiped lock rebuilt from the repository). A failure
//! names the seed and is shrunk to the shortest failing prefix of the history.
//!
//! ```no_run
//! use ticketing_core::testkit::sim::{SimConfig, check_seed};
//! let report = check_seed(42, &SimConfig::default());
//! if let Some(failure) = report.failure {
//!     panic!("{failure}");
//! }
//! ```

mod adapters;
mod checker;
mod faults;
mod rng;
mod runner;
mod workload;

pub use adapters::{FaultySeatLock, FaultyTickets};
pub use checker::{
    HOLD_EXTENDED, LATE_PAYMENT_ACCEPTED, LATE_PAYMENT_REACTIVATED, VOUCHER_REFUSED, VOUCHER_USED,
    Violation,
};
pub use faults::{
    FaultConfig, FaultCounts, FaultKind, Faults, PlantedBug, YieldPoint, injected, yield_point,
};
pub use rng::{SeededIds, SimRng};
pub use runner::{
    Failure, SIM_VOUCHER, SIM_VOUCHER_USES, SeedReport, SimConfig, Summary, check_seed, run_prefix,
    run_seed, run_seeds, shrink,
};
