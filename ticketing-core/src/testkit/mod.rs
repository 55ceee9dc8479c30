//! The adapter conformance suite: one check per invariant of DESIGN.md, run against every adapter.
//!
//! An adapter crate enables the `testkit` feature as a dev-dependency (and `tokio` with the
//! `macros` and `rt-multi-thread` features), writes one async function that builds a fresh
//! [`Harness`] (its own database, its own key prefix), and expands
//! [`conformance_suite!`](crate::conformance_suite) with it:
//!
//! ```ignore
//! async fn harness() -> ticketing_core::testkit::Harness { /* … */ }
//! ticketing_core::conformance_suite!(harness);
//! ```
//!
//! Each check is also a plain `pub async fn` here, so an adapter can run a subset, and
//! [`run_all`] runs them all outside the test harness (in a doctest or an example). The READMEs of
//! `ticketing-redis` and `ticketing-sqlx` show a whole adapter tested this way.

mod best_available_checks;
mod channel_checks;
mod checks;
pub mod contracts;
mod extension_checks;
mod fixture;
mod payment_checks;
pub mod sim;
mod tier_checks;
mod voucher_checks;
mod waiting_list_checks;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use best_available_checks::{
    ObservedLock, StampedeReport, best_available_sells_blocks_without_orphans,
    best_available_stampede, observed,
};
pub use channel_checks::{
    a_release_gives_the_seats_to_the_public_once, channel_seats_are_kept_from_the_public,
};
pub use checks::{
    a_paged_rebuild_keeps_every_sale, abandoned_holds_free_their_seats, bad_requests_write_nothing,
    closed_events_are_forgotten_by_the_seat_lock, customer_limit_holds_under_concurrency,
    general_admission_never_exceeds_capacity, late_mark_sold_does_not_resurrect_a_refunded_seat,
    lifecycle_round_trip, lost_lock_updates_are_repaired_from_the_outbox,
    paid_changes_only_by_refund, payment_races_expiry_sweep,
    pruned_idempotency_keys_make_no_second_order, purchase_is_idempotent,
    seat_lock_data_loss_is_harmless, seats_are_sold_once,
};
pub use extension_checks::{
    an_extension_never_takes_a_seat_back, extensions_race_payments_and_the_sweep,
    hold_extension_follows_the_policy,
};
pub use fixture::{Fixture, Layout, PRICE_MINOR, REBUILD_PAGE};
pub use payment_checks::{
    late_payment_races_a_resale, late_payments_follow_the_policy,
    payments_ledger_records_every_notification,
};
pub use tier_checks::{
    price_tiers_are_exact_under_a_stampede, price_tiers_span_orders_and_come_back,
};
pub use voucher_checks::{
    a_late_payment_takes_its_voucher_use_back, voucher_retries_and_customer_limits,
    voucher_uses_are_exact_under_a_stampede, voucher_windows_and_hidden_zones,
};
pub use waiting_list_checks::{
    a_channel_release_is_offered_to_the_waiting_list, a_duplicate_delivery_makes_one_offer,
    a_party_gets_adjacent_seats_or_waits, an_offered_seat_is_nobody_elses,
    waiting_list_offers_freed_seats_in_join_order,
};

use crate::memory::{
    InMemoryCatalog, InMemorySeatLock, InMemoryTicketRepository, InMemoryWaitingList,
};
use crate::ports::{CatalogRepository, OutboxStore, SeatLock, TicketRepository, WaitingList};

/// A boxed future, as harness hooks return.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The adapters under test, freshly created and isolated from every other test.
pub struct Harness {
    /// The seat lock under test.
    pub seat_lock: Arc<dyn SeatLock>,
    /// The ticket repository under test.
    pub tickets: Arc<dyn TicketRepository>,
    /// The catalog repository under test.
    pub catalog: Arc<dyn CatalogRepository>,
    /// The waiting list under test, writing its offer events to the outbox of `tickets`.
    pub waiting_list: Arc<dyn WaitingList>,
    /// The outbox of `tickets`, which the waiting-list checks relay.
    pub outbox: Arc<dyn OutboxStore>,
    /// Wipes every bit of seat-lock state, as a Redis restart without persistence would.
    pub wipe_seat_lock: Arc<dyn Fn() -> BoxFuture + Send + Sync>,
    /// Run once when the check passed: drops the test database, deletes the key prefix.
    pub teardown: Option<BoxFuture>,
}

impl Harness {
    /// All in-memory adapters: the reference the other adapters are held to.
    pub fn in_memory() -> Harness {
        let seat_lock = Arc::new(InMemorySeatLock::new());
        let wiped = seat_lock.clone();
        let tickets = Arc::new(InMemoryTicketRepository::new());
        Harness {
            seat_lock,
            waiting_list: Arc::new(InMemoryWaitingList::new(tickets.clone())),
            outbox: tickets.clone(),
            tickets,
            catalog: Arc::new(InMemoryCatalog::new()),
            wipe_seat_lock: Arc::new(move || {
                wiped.wipe();
                Box::pin(async {})
            }),
            teardown: None,
        }
    }

    /// Runs the teardown hook.
    pub async fn finish(mut self) {
        if let Some(teardown) = self.teardown.take() {
            teardown.await;
        }
    }
}

/// Runs every conformance check, each on a fresh harness from `harness`, in the order
/// [`conformance_suite!`](crate::conformance_suite) expands them. A check that fails panics.
pub async fn run_all<F, Fut>(harness: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
{
    macro_rules! run_each {
        ($($check:ident),* $(,)?) => {
            $( $check(harness().await).await; )*
        };
    }
    crate::__conformance_checks!(run_each;);
}

/// Calls `$callback!($($prefix)* check, check, …)` with every check's name: the one list
/// [`conformance_suite!`](crate::conformance_suite) and [`run_all`] share.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_checks {
    ($callback:path; $($prefix:tt)*) => {
        $callback!($($prefix)*
            lifecycle_round_trip,
            seats_are_sold_once,
            general_admission_never_exceeds_capacity,
            payment_races_expiry_sweep,
            paid_changes_only_by_refund,
            abandoned_holds_free_their_seats,
            late_mark_sold_does_not_resurrect_a_refunded_seat,
            lost_lock_updates_are_repaired_from_the_outbox,
            purchase_is_idempotent,
            pruned_idempotency_keys_make_no_second_order,
            closed_events_are_forgotten_by_the_seat_lock,
            customer_limit_holds_under_concurrency,
            seat_lock_data_loss_is_harmless,
            a_paged_rebuild_keeps_every_sale,
            bad_requests_write_nothing,
            payments_ledger_records_every_notification,
            late_payments_follow_the_policy,
            late_payment_races_a_resale,
            voucher_uses_are_exact_under_a_stampede,
            voucher_retries_and_customer_limits,
            voucher_windows_and_hidden_zones,
            a_late_payment_takes_its_voucher_use_back, price_tiers_are_exact_under_a_stampede, price_tiers_span_orders_and_come_back, channel_seats_are_kept_from_the_public, a_release_gives_the_seats_to_the_public_once,
            best_available_sells_blocks_without_orphans,
            hold_extension_follows_the_policy,
            an_extension_never_takes_a_seat_back,
            extensions_race_payments_and_the_sweep,
            waiting_list_offers_freed_seats_in_join_order,
            an_offered_seat_is_nobody_elses,
            a_party_gets_adjacent_seats_or_waits,
            a_duplicate_delivery_makes_one_offer,
            a_channel_release_is_offered_to_the_waiting_list,
        );
    };
}

/// Expands one `#[tokio::test]` per conformance check, each with a fresh harness from `$harness`
/// (a path to an `async fn() -> Harness`).
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
#[macro_export]
macro_rules! conformance_suite {
    ($harness:path) => {
        $crate::__conformance_checks!($crate::conformance_suite; @checks $harness;);
    };
    (@checks $harness:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                $crate::testkit::$check($harness().await).await;
            }
        )*
    };
}
