//! The [`SeatLock`] contract: all-or-nothing holds naming every conflict, best-available holds
//! (the reference choice, atomic under races), fenced releases, lapsing
//! exactly at the deadline, `mark_sold`, general-admission counting, the `NotLoaded` / rebuild
//! protocol (a paged source, a lease renewed between pages and lost by a stalled rebuilder), and
//! real races between many buyers and many rebuilders.
//!
//! An adapter's tests build a [`SeatLockContext`] on a fresh lock and either call [`run_all`] or,
//! better for failure reports, one check per `#[tokio::test]` (multi-threaded: the race checks
//! spawn tasks):
//!
//! ```ignore
//! use ticketing_core::testkit::contracts::seat_lock;
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn release_is_fenced_by_the_order() {
//!     let lock = MyLock::connect(/* a key prefix of this test */).await;
//!     seat_lock::release_is_fenced_by_the_order(&lock).await;
//! }
//! ```

mod best_available;
mod general;
mod holds;
mod races;
mod rebuild;
mod sales;
mod snapshots;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::{seat, zone};
use uuid::Uuid;

use crate::domain::{EventId, OrderId, SeatRef, TicketId, ZoneCode};
use crate::ports::{
    ActiveHold, HoldItem, HoldOutcome, HoldPage, HoldRequest, HoldSource, LockSnapshot, SeatLock,
    SeatState,
};
use crate::{Error, Result};

pub use best_available::{
    best_available_chooses_an_orphan_free_block_and_holds_it,
    best_available_counts_lapsed_and_own_holds_free_and_sold_seats_taken,
    best_available_matches_the_reference_choice, best_available_treats_excluded_seats_as_taken,
    concurrent_best_available_never_holds_a_seat_twice,
};
pub use general::{
    general_admission_counts_other_orders_and_replaces_the_own_hold,
    sold_places_stay_sold_and_never_lapse,
};
pub use holds::{
    a_hold_lapses_exactly_at_its_deadline,
    an_event_not_loaded_answers_not_loaded_and_writes_nothing, duplicate_items,
    holds_are_all_or_nothing_and_name_every_conflict, re_holding_extends_the_hold,
    release_is_fenced_by_the_order,
};
pub use races::{
    a_rebuilder_that_lost_its_lease_writes_nothing_more, concurrent_rebuilds_read_the_source_once,
    general_admission_race_never_exceeds_capacity, one_seat_many_buyers_exactly_one_wins,
    overlapping_multi_seat_holds_never_share_a_seat,
    racing_rebuilders_read_a_slow_paged_source_once,
};
pub use rebuild::{
    a_failed_source_read_leaves_the_event_not_loaded,
    a_rebuild_in_pages_restores_what_one_page_does, forgetting_an_event_drops_only_that_event,
    rebuild_restores_every_active_hold, rebuilding_a_loaded_event_changes_nothing,
};
pub use sales::{
    a_bought_seat_stays_sold_when_its_buyer_holds_it_again,
    mark_sold_leaves_free_seats_and_other_orders_zones_alone,
    mark_sold_overwrites_any_holder_and_never_lapses,
};
pub use snapshots::zone_snapshots_show_one_zone_of_a_large_event;

/// Opens another handle on the lock under test as a second process would have it: its own
/// connection and its own in-process state (such as a rebuild mutex), the same stored state. The
/// race checks give every racer its own handle, so that the lock's atomicity is tested where it
/// must hold (between processes), not only inside one. The in-memory lock, which has no other
/// process, hands out itself.
pub type OpenLock = Arc<dyn Fn() -> BoxFuture<'static, Arc<dyn SeatLock>> + Send + Sync>;

/// Drops every bit of one event's state from the lock under test (e.g. `RedisSeatLock::forget`),
/// so that it answers `NotLoaded` until rebuilt.
pub type ForgetEvent = Arc<dyn Fn(EventId) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Behaviour the port leaves to the implementation, so adapters legitimately differ in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeatLockCapabilities {
    /// A request that lists a seat or a zone twice (which [`HoldRequest`] forbids the caller) is
    /// answered [`Error::InvalidRequest`] by `hold`, `release` and `mark_sold`, and changes
    /// nothing. Without it the lock may accept such a request; [`duplicate_items`] then only asks
    /// that a seat listed twice is held once.
    pub rejects_duplicate_items: bool,
    /// How long a rebuilder's lease lasts without being renewed, when it can lapse while the
    /// rebuilder still runs (the Redis lock's `rebuild_lock_ttl`): a rebuilder that stalls longer
    /// loses it to another. `None` when the lease lasts exactly as long as the rebuilder (the
    /// in-memory lock's mutex, the SQL lock's transaction);
    /// [`a_rebuilder_that_lost_its_lease_writes_nothing_more`] is then not run.
    pub rebuild_lease: Option<Duration>,
}

/// The lock under test and what the checks need besides it.
pub struct SeatLockContext {
    /// The lock under test.
    pub lock: Arc<dyn SeatLock>,
    /// Opens more handles on the same lock, for the race checks.
    pub open: OpenLock,
    /// Forgets one event; `None` when the lock cannot forget a single event (the in-memory lock
    /// only wipes everything), and [`forgetting_an_event_drops_only_that_event`] is not run.
    pub forget: Option<ForgetEvent>,
    /// What the lock does where the port lets implementations differ.
    pub capabilities: SeatLockCapabilities,
}

impl SeatLockContext {
    /// A context on `lock` alone: every race runs on clones of it, and no event can be forgotten.
    /// Right for the in-memory lock, whose one mutex is all a second process would share.
    pub fn single(lock: Arc<dyn SeatLock>, capabilities: SeatLockCapabilities) -> Self {
        let shared = lock.clone();
        Self {
            lock,
            open: Arc::new(move || {
                let lock = shared.clone();
                Box::pin(async move { lock })
            }),
            forget: None,
            capabilities,
        }
    }
}

/// Runs every check that applies to `context`, in the order of this module's docs. A failed check
/// panics.
pub async fn run_all(context: &SeatLockContext) {
    let lock = context.lock.as_ref();
    an_event_not_loaded_answers_not_loaded_and_writes_nothing(lock).await;
    holds_are_all_or_nothing_and_name_every_conflict(lock).await;
    release_is_fenced_by_the_order(lock).await;
    re_holding_extends_the_hold(lock).await;
    a_hold_lapses_exactly_at_its_deadline(lock).await;
    duplicate_items(lock, context.capabilities.rejects_duplicate_items).await;
    mark_sold_overwrites_any_holder_and_never_lapses(lock).await;
    mark_sold_leaves_free_seats_and_other_orders_zones_alone(lock).await;
    a_bought_seat_stays_sold_when_its_buyer_holds_it_again(lock).await;
    general_admission_counts_other_orders_and_replaces_the_own_hold(lock).await;
    sold_places_stay_sold_and_never_lapse(lock).await;
    zone_snapshots_show_one_zone_of_a_large_event(lock).await;
    best_available_chooses_an_orphan_free_block_and_holds_it(lock).await;
    best_available_counts_lapsed_and_own_holds_free_and_sold_seats_taken(lock).await;
    best_available_matches_the_reference_choice(lock).await;
    best_available_treats_excluded_seats_as_taken(lock).await;
    concurrent_best_available_never_holds_a_seat_twice(&context.open).await;
    one_seat_many_buyers_exactly_one_wins(&context.open).await;
    overlapping_multi_seat_holds_never_share_a_seat(&context.open).await;
    general_admission_race_never_exceeds_capacity(&context.open).await;
    concurrent_rebuilds_read_the_source_once(&context.open).await;
    racing_rebuilders_read_a_slow_paged_source_once(
        &context.open,
        context.capabilities.rebuild_lease,
    )
    .await;
    if let Some(lease) = context.capabilities.rebuild_lease {
        a_rebuilder_that_lost_its_lease_writes_nothing_more(&context.open, lease).await;
    }
    rebuild_restores_every_active_hold(lock).await;
    a_rebuild_in_pages_restores_what_one_page_does(lock).await;
    rebuilding_a_loaded_event_changes_nothing(lock).await;
    a_failed_source_read_leaves_the_event_not_loaded(lock).await;
    if let Some(forget) = &context.forget {
        forgetting_an_event_drops_only_that_event(lock, forget).await;
    }
}

fn seats(keys: &[&str]) -> Vec<HoldItem> {
    keys.iter().map(|key| HoldItem::Seat(seat(key))).collect()
}

fn general(code: &str, quantity: u32, capacity: u32) -> HoldItem {
    HoldItem::General {
        zone: zone(code),
        quantity,
        capacity,
    }
}

/// Holds and expects an answer, not an error.
async fn hold(
    lock: &dyn SeatLock,
    event: EventId,
    order: OrderId,
    items: &[HoldItem],
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> HoldOutcome {
    let request = HoldRequest {
        event,
        order,
        items: items.to_vec(),
        now,
        until,
    };
    lock.hold(&request)
        .await
        .unwrap_or_else(|e| panic!("hold of {items:?} failed: {e}"))
}

/// Marks `event` loaded with no holds.
async fn load_empty(lock: &dyn SeatLock, event: EventId) {
    lock.rebuild(event, &CountingSource::new(Vec::new()))
        .await
        .expect("loading an event from an empty source");
}

/// The snapshot of a loaded event.
async fn snapshot(lock: &dyn SeatLock, event: EventId, now: DateTime<Utc>) -> LockSnapshot {
    lock.snapshot(event, now)
        .await
        .expect("snapshot")
        .expect("the event is loaded")
}

/// Places taken in `code`; a zone the snapshot leaves out has none.
fn places(snapshot: &LockSnapshot, code: &str) -> u32 {
    snapshot.general.get(&zone(code)).copied().unwrap_or(0)
}

fn holder(state: &SeatState) -> OrderId {
    match state {
        SeatState::Held { order, .. } | SeatState::Sold { order } => *order,
    }
}

/// Asserts `outcome` is `Taken` naming exactly these seats and zones, in any order (the port does
/// not fix one).
#[track_caller]
fn assert_taken(outcome: &HoldOutcome, seat_keys: &[&str], zone_codes: &[&str]) {
    let HoldOutcome::Taken { seats, zones } = outcome else {
        panic!("expected Taken {seat_keys:?} {zone_codes:?}, got {outcome:?}");
    };
    let mut got_seats: Vec<&SeatRef> = seats.iter().collect();
    let mut got_zones: Vec<&ZoneCode> = zones.iter().collect();
    got_seats.sort();
    got_zones.sort();
    let mut want_seats: Vec<SeatRef> = seat_keys.iter().map(|k| seat(k)).collect();
    let mut want_zones: Vec<ZoneCode> = zone_codes.iter().map(|z| zone(z)).collect();
    want_seats.sort();
    want_zones.sort();
    assert_eq!(
        (got_seats, got_zones),
        (want_seats.iter().collect(), want_zones.iter().collect()),
        "every conflict named, and only conflicts"
    );
}

/// A hold source with fixed holds, read in pages of `page_size` holds (one page unless set),
/// that counts its passes and pages; optionally slow or failing.
struct CountingSource {
    holds: Vec<ActiveHold>,
    page_size: usize,
    reads: AtomicUsize,
    pages: AtomicUsize,
    delay: Duration,
    fail: bool,
}

impl CountingSource {
    fn new(holds: Vec<ActiveHold>) -> Self {
        Self {
            holds,
            page_size: usize::MAX,
            reads: AtomicUsize::new(0),
            pages: AtomicUsize::new(0),
            delay: Duration::ZERO,
            fail: false,
        }
    }

    /// Reading takes `delay`, as a slow database would: the other rebuilders pile up meanwhile.
    fn slow(holds: Vec<ActiveHold>, delay: Duration) -> Self {
        Self {
            delay,
            ..Self::new(holds)
        }
    }

    /// Reading fails with `Unavailable`, as a database that is down would.
    fn failing() -> Self {
        Self {
            fail: true,
            ..Self::new(Vec::new())
        }
    }

    /// Pages of `size` holds (at least 1), each read taking `delay` on top.
    fn paged(self, size: usize) -> Self {
        Self {
            page_size: size.max(1),
            ..self
        }
    }

    /// Passes over the source that were started (reads of the first page).
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// Pages read, over every pass.
    fn pages(&self) -> usize {
        self.pages.load(Ordering::SeqCst)
    }

    /// The page of holds after `after` (the count of holds before the page, as a cursor).
    fn page(&self, after: Option<TicketId>) -> HoldPage {
        page_of(&self.holds, self.page_size, after)
    }
}

/// The page of `holds` after `after`, `size` holds long; the cursor is the number of holds before
/// the next page, made a ticket id.
fn page_of(holds: &[ActiveHold], size: usize, after: Option<TicketId>) -> HoldPage {
    let start = after.map_or(0, |t| {
        usize::try_from(t.as_uuid().as_u128()).expect("a cursor this source gave")
    });
    let end = start.saturating_add(size).min(holds.len());
    HoldPage {
        holds: holds[start.min(end)..end].to_vec(),
        next: (end < holds.len()).then(|| TicketId::from_uuid(Uuid::from_u128(end as u128))),
    }
}

#[async_trait]
impl HoldSource for CountingSource {
    async fn active_holds(&self, _event: EventId, after: Option<TicketId>) -> Result<HoldPage> {
        if after.is_none() {
            self.reads.fetch_add(1, Ordering::SeqCst);
        }
        self.pages.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.fail {
            return Err(Error::unavailable(
                "contract-source",
                "the source of holds is down",
            ));
        }
        Ok(self.page(after))
    }
}

/// Expands one `#[tokio::test]` per check that every seat lock runs: `$context` is an
/// `async fn() -> (SeatLockContext, G)` giving a fresh lock and what keeps its state apart (a
/// database, a key prefix), and `$finish` an `async fn(G)` that removes that state after a check
/// passed. Checks that depend on the adapter (a lapsing lease, forgetting one event) stay in the
/// adapter's own test file.
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
#[macro_export]
macro_rules! seat_lock_contract {
    ($context:path, $finish:path) => {
        $crate::seat_lock_contract!(@lock $context, $finish;
            an_event_not_loaded_answers_not_loaded_and_writes_nothing,
            holds_are_all_or_nothing_and_name_every_conflict,
            release_is_fenced_by_the_order,
            re_holding_extends_the_hold,
            a_hold_lapses_exactly_at_its_deadline,
            mark_sold_overwrites_any_holder_and_never_lapses,
            mark_sold_leaves_free_seats_and_other_orders_zones_alone,
            a_bought_seat_stays_sold_when_its_buyer_holds_it_again,
            general_admission_counts_other_orders_and_replaces_the_own_hold,
            sold_places_stay_sold_and_never_lapse,
            zone_snapshots_show_one_zone_of_a_large_event,
            best_available_chooses_an_orphan_free_block_and_holds_it,
            best_available_counts_lapsed_and_own_holds_free_and_sold_seats_taken,
            best_available_matches_the_reference_choice,
            best_available_treats_excluded_seats_as_taken,
            rebuild_restores_every_active_hold,
            rebuilding_a_loaded_event_changes_nothing,
            a_failed_source_read_leaves_the_event_not_loaded,
            a_rebuild_in_pages_restores_what_one_page_does,
        );
        $crate::seat_lock_contract!(@open $context, $finish;
            one_seat_many_buyers_exactly_one_wins,
            overlapping_multi_seat_holds_never_share_a_seat,
            general_admission_race_never_exceeds_capacity,
            concurrent_rebuilds_read_the_source_once,
            concurrent_best_available_never_holds_a_seat_twice,
        );

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn racing_rebuilders_read_a_slow_paged_source_once() {
            let (context, guard) = $context().await;
            $crate::testkit::contracts::seat_lock::racing_rebuilders_read_a_slow_paged_source_once(
                &context.open,
                context.capabilities.rebuild_lease,
            )
            .await;
            $finish(guard).await;
        }

        #[tokio::test]
        async fn duplicate_items() {
            let (context, guard) = $context().await;
            $crate::testkit::contracts::seat_lock::duplicate_items(
                context.lock.as_ref(),
                context.capabilities.rejects_duplicate_items,
            )
            .await;
            $finish(guard).await;
        }
    };
    (@lock $context:path, $finish:path; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let (context, guard) = $context().await;
            $crate::testkit::contracts::seat_lock::$check(context.lock.as_ref()).await;
            $finish(guard).await;
        }
    )*};
    (@open $context:path, $finish:path; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let (context, guard) = $context().await;
            $crate::testkit::contracts::seat_lock::$check(&context.open).await;
            $finish(guard).await;
        }
    )*};
}
