//! The deterministic fault-injection simulation (issue 6, part 1).
//!
//! CI runs a fixed set of seeds as a normal test. More seeds, or one seed replayed:
//!
//! ```text
//! SIM_SEEDS=100000 cargo test -p ticketing-core --release --features testkit --test simulation -- --ignored many_seeds --nocapture
//! SIM_SEED=1234 cargo test -p ticketing-core --features testkit --test simulation -- --ignored replay_seed --nocapture
//! ```
//! `SIM_FIRST_SEED` moves the start of the `SIM_SEEDS` range (default 0);
//! `SIM_STRICT_SOLD_MARKS=1` turns the known stale-sold-mark bug into failures;
//! `SIM_LATE_PAYMENT=accept_if_available` runs the seeds under that late-payment policy
//! (default `reject`); `SIM_BEST_AVAILABLE=0.5` asks that share of seated purchases as best
//! available (default 0); `SIM_VOUCHERS=0.3` names the event's voucher in that share of
//! purchases (default 0). `replay_seed` reads the same variables, so a failure found under them
//! replays under them.

use std::time::Instant;

use ticketing_core::domain::LatePaymentPolicy;
use ticketing_core::testkit::sim::{
    FaultKind, HOLD_EXTENDED, LATE_PAYMENT_ACCEPTED, LATE_PAYMENT_REACTIVATED, PlantedBug,
    SimConfig, Summary, VOUCHER_REFUSED, VOUCHER_USED, check_seed, run_prefix, run_seed, run_seeds,
};

/// Seeds CI runs on every `cargo test`.
const CI_SEEDS: u64 = 2_000;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number"))
    })
}

/// The late-payment policy `SIM_LATE_PAYMENT` names (`reject` when unset).
fn late_payment_policy() -> LatePaymentPolicy {
    match std::env::var("SIM_LATE_PAYMENT").as_deref() {
        Err(_) | Ok("reject") => LatePaymentPolicy::Reject,
        Ok("accept_if_available") => LatePaymentPolicy::AcceptIfAvailable,
        Ok(other) => {
            panic!("SIM_LATE_PAYMENT must be reject or accept_if_available, not {other:?}")
        }
    }
}

/// The share `SIM_BEST_AVAILABLE` gives (0 when unset).
fn best_available_share() -> f64 {
    share("SIM_BEST_AVAILABLE")
}

/// The share `SIM_VOUCHERS` gives (0 when unset).
fn voucher_share() -> f64 {
    share("SIM_VOUCHERS")
}

/// A share from 0 to 1 in `variable` (0 when unset).
fn share(variable: &str) -> f64 {
    std::env::var(variable).map_or(0.0, |v| {
        v.trim()
            .parse()
            .ok()
            .filter(|share| (0.0..=1.0).contains(share))
            .unwrap_or_else(|| panic!("{variable} must be a share from 0 to 1, not {v:?}"))
    })
}

/// The configuration the opt-in runs take from the environment (see the module docs).
fn config_from_env() -> SimConfig {
    SimConfig {
        strict_sold_marks: env_u64("SIM_STRICT_SOLD_MARKS") == Some(1),
        late_payment: late_payment_policy(),
        best_available: best_available_share(),
        vouchers: voucher_share(),
        ..SimConfig::default()
    }
}

fn assert_no_failures(summary: &Summary) {
    if let Some(first) = summary.failures.first() {
        let seeds: Vec<u64> = summary.failures.iter().map(|f| f.seed).collect();
        for failure in &summary.failures {
            eprintln!(
                "seed {} step {}: {}",
                failure.seed, failure.step, failure.violation
            );
        }
        panic!(
            "{} seeds failed: {seeds:?}\n\n{first}\n{summary}",
            seeds.len()
        );
    }
}

/// CI's seeds under `config`: all run, none failed.
fn run_ci_seeds(config: &SimConfig) -> Summary {
    let summary = run_seeds(0..CI_SEEDS, config, threads());
    println!("{summary}");
    assert_no_failures(&summary);
    assert_eq!(summary.seeds, CI_SEEDS);
    summary
}

/// Each of `observations` happened at least once: otherwise the run proves nothing about it.
fn assert_happened(summary: &Summary, observations: &[&str]) {
    for what in observations {
        assert!(
            summary.observations.get(what).is_some_and(|(n, _)| *n > 0),
            "never happened, so the run proves nothing about it: {what}"
        );
    }
}

#[test]
fn fixed_seeds_keep_every_invariant_under_faults() {
    let started = Instant::now();
    let summary = run_seeds(0..CI_SEEDS, &SimConfig::default(), threads());
    println!("{summary}run time {:?}", started.elapsed());
    assert_no_failures(&summary);
    assert_eq!(summary.seeds, CI_SEEDS);
    for kind in FaultKind::ALL {
        assert!(
            summary.faults.get(kind) > 0,
            "no {} fault was injected: the run proves nothing about it",
            kind.name()
        );
    }
    assert!(summary.checks > summary.steps, "a check after every step");
    assert!(
        summary
            .observations
            .get(HOLD_EXTENDED)
            .is_some_and(|(n, _)| *n > 0),
        "no hold was extended, so the run proves nothing about extensions"
    );
}

/// The same seeds with late payments accepted when the seats allow: a late webhook may pay an
/// unswept order or take an expired order's seats back, and no seat is ever sold twice.
#[test]
fn fixed_seeds_keep_every_invariant_accepting_late_payments() {
    let config = SimConfig {
        late_payment: LatePaymentPolicy::AcceptIfAvailable,
        ..SimConfig::default()
    };
    let summary = run_ci_seeds(&config);
    assert_happened(&summary, &[LATE_PAYMENT_ACCEPTED, LATE_PAYMENT_REACTIVATED]);
}

/// The same seeds with half of the seated purchases asked as best available: the seat lock
/// chooses the seats, and every invariant still holds after every step, faults included.
#[test]
fn fixed_seeds_keep_every_invariant_with_best_available_purchases() {
    let config = SimConfig {
        best_available: 0.5,
        ..SimConfig::default()
    };
    let summary = run_ci_seeds(&config);
    assert!(summary.checks > summary.steps, "a check after every step");
}

/// The same seeds with the event's voucher named in a third of the purchases (under the late-
/// payment policy that can take an expired order, and its use, back): after every step the
/// active orders priced with the voucher are within its limits and are exactly the uses the
/// repository counts (invariant 8), faults included.
#[test]
fn fixed_seeds_keep_every_invariant_with_vouchers() {
    let config = SimConfig {
        vouchers: 0.3,
        late_payment: LatePaymentPolicy::AcceptIfAvailable,
        ..SimConfig::default()
    };
    let summary = run_ci_seeds(&config);
    assert_happened(
        &summary,
        &[VOUCHER_USED, VOUCHER_REFUSED, LATE_PAYMENT_REACTIVATED],
    );
}

#[test]
fn the_same_seed_gives_the_same_history() {
    let config = SimConfig::default();
    let first = run_seed(7, &config);
    let again = run_seed(7, &config);
    assert_eq!(first.history, again.history);
    assert_eq!(first.history_hash, again.history_hash);
    assert_eq!(first.faults, again.faults);
    assert_ne!(run_seed(8, &config).history_hash, first.history_hash);
}

#[test]
fn a_prefix_replays_the_start_of_the_full_history() {
    let config = SimConfig::default();
    let full = run_seed(11, &config);
    let prefix = run_prefix(11, &config, 50);
    assert_eq!(prefix.history[..50], full.history[..50]);
}

/// Runs seeds from 0 until one fails, at most `bound`, and returns the shrunk failure.
fn first_failure(bug: PlantedBug, bound: u64) -> ticketing_core::testkit::sim::Failure {
    let config = SimConfig {
        bug,
        ..SimConfig::default()
    };
    for seed in 0..bound {
        if let Some(failure) = check_seed(seed, &config).failure {
            println!("{failure}");
            // The shrunk prefix fails on replay, and one step less does not.
            let (steps, _) = failure.prefix();
            assert!(failure.step <= failure.first_seen_at);
            assert!(run_prefix(seed, &config, steps).failure.is_some());
            if steps > 0 {
                assert!(run_prefix(seed, &config, steps - 1).failure.is_none());
            }
            return failure;
        }
    }
    panic!("the planted bug {bug:?} went unnoticed for {bound} seeds");
}

#[test]
fn a_lost_commit_is_caught_as_a_durability_break() {
    let failure = first_failure(PlantedBug::LostWrite, 20);
    assert!(
        failure.violation.invariant.starts_with("durability"),
        "{failure}"
    );
}

#[test]
fn a_seat_upsert_behind_a_lock_that_holds_nothing_is_caught() {
    let failure = first_failure(PlantedBug::SeatOverwrite, 50);
    assert!(
        failure.violation.invariant.starts_with('3')
            || failure.violation.invariant.starts_with("history"),
        "{failure}"
    );
}

#[test]
fn holds_that_outlive_hold_time_and_grace_are_caught() {
    let failure = first_failure(PlantedBug::EternalHolds, 20);
    assert!(failure.violation.invariant.starts_with('4'), "{failure}");
}

#[test]
#[ignore = "replays one seed: SIM_SEED=<n>"]
fn replay_seed() {
    let seed = env_u64("SIM_SEED").expect("set SIM_SEED to the seed to replay");
    let report = check_seed(seed, &config_from_env());
    for (i, line) in report.history.iter().enumerate() {
        println!("{:>4} {line}", i + 1);
    }
    println!(
        "seed {seed}: {} steps, {} operations, {} checks, history hash {:016x}\nfaults:\n{}",
        report.steps, report.operations, report.checks, report.history_hash, report.faults
    );
    if let Some(failure) = report.failure {
        panic!("{failure}");
    }
}

#[test]
#[ignore = "many seeds: SIM_SEEDS=<count> [SIM_FIRST_SEED=<n>], best with --release"]
fn many_seeds() {
    let count = env_u64("SIM_SEEDS").unwrap_or(10_000);
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(0);
    let started = Instant::now();
    let config = config_from_env();
    let summary = run_seeds(first..first + count, &config, threads());
    println!(
        "late payments: {:?}, best available: {}, vouchers: {}\n{summary}run time {:?}",
        config.late_payment,
        config.best_available,
        config.vouchers,
        started.elapsed()
    );
    if let Some(shortest) = summary.failures.iter().min_by_key(|f| f.step) {
        println!("shortest failure:\n{shortest}");
    }
    assert_no_failures(&summary);
}

/// The known bug the simulator found (see `SimConfig::strict_sold_marks`): a refund commits in the
/// repository, its seat-lock releases are lost, and the seat stays *sold* in the lock for good.
/// `mark_sold` now leaves a free seat free (a late mark cannot undo the refund's release) and a
/// refund releases before its commit as well as after, which took it from 1,204 in 100,000 seeds
/// to about 35 in 20,000. What remains needs two faults at once (the release before the commit
/// fails, then the process dies after the commit) or a rebuild that read the order as PAID just
/// before the refund. When that is fixed too, this test fails: make `strict_sold_marks` the
/// default and delete it.
///
/// Opt-in since the payments ledger: with keyed order ids, paged rebuilds and the ledger the
/// seeded histories changed, and the bug became rarer (each change alone left it at about 1 in
/// 570 to 1 in 5,000 seeds; together, none in the first 5,000). Run it with
/// `cargo test --release -p ticketing-core --features testkit --test simulation known_bug -- --ignored`.
#[test]
#[ignore = "rare since the payments ledger: searches 50,000 seeds, best with --release"]
fn known_bug_refunded_seats_stay_sold_in_the_lock() {
    let config = SimConfig {
        strict_sold_marks: true,
        lock_sync: false,
        ..SimConfig::default()
    };
    let failure = (0..50_000)
        .find_map(|seed| check_seed(seed, &config).failure)
        .expect("the stale sold mark of a refunded order was not found in 50,000 seeds");
    println!("seed {}: {failure}", failure.seed);
    assert!(failure.violation.invariant.starts_with('4'), "{failure}");
    assert!(
        failure
            .violation
            .message
            .contains("without an active ticket"),
        "{failure}"
    );
}
