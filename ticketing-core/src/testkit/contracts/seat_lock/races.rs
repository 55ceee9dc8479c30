//! Real races: many buyers (each on its own handle, as separate processes) released together by a
//! barrier, and every outcome counted against the lock's state afterwards.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};

use crate::Result;
use crate::domain::{EventId, OrderId, SeatRef, TicketId};
use crate::ports::{ActiveHold, HoldItem, HoldOutcome, HoldPage, HoldSource, SeatLock, SeatState};
use crate::testkit::checks::race;

use super::super::{new_event, new_order, seat, secs, t0, zone};
use super::{
    CountingSource, OpenLock, general, hold, holder, load_empty, page_of, places, seats, snapshot,
};

/// Buyers per race.
const BUYERS: usize = 48;

/// Opens `n` handles on the lock under test.
async fn handles(open: &OpenLock, n: usize) -> Vec<Arc<dyn SeatLock>> {
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        handles.push(open().await);
    }
    handles
}

/// Every buyer `i` holds `wants[i]` on its own handle at once; (order, items, outcome) each.
async fn race_holds(
    handles: &[Arc<dyn SeatLock>],
    event: EventId,
    wants: Vec<Vec<HoldItem>>,
) -> Vec<(OrderId, Vec<HoldItem>, HoldOutcome)> {
    let wants = Arc::new(wants);
    race(wants.len(), |i| {
        let (lock, wants) = (handles[i % handles.len()].clone(), wants.clone());
        async move {
            let order = new_order();
            let items = wants[i].clone();
            let outcome = hold(lock.as_ref(), event, order, &items, t0(), t0() + secs(600)).await;
            (order, items, outcome)
        }
    })
    .await
}

fn only_seat(items: &[HoldItem]) -> SeatRef {
    match items {
        [HoldItem::Seat(seat)] => seat.clone(),
        other => unreachable!("one seat per buyer, not {other:?}"),
    }
}

/// Many buyers for one seat: exactly one wins and holds it, every other is told that seat is
/// taken. Then many buyers for a few seats: one winner per seat; and the losers' releases, all at
/// once, free none of the winners' seats.
pub async fn one_seat_many_buyers_exactly_one_wins(open: &OpenLock) {
    let handles = handles(open, BUYERS).await;
    let event = new_event();
    load_empty(handles[0].as_ref(), event).await;

    let results = race_holds(&handles, event, vec![seats(&["A:1:1"]); BUYERS]).await;
    let winners: Vec<OrderId> = results
        .iter()
        .filter(|r| r.2 == HoldOutcome::Held)
        .map(|r| r.0)
        .collect();
    let told_taken = results
        .iter()
        .filter(|r| {
            r.2 == HoldOutcome::Taken {
                seats: vec![seat("A:1:1")],
                zones: Vec::new(),
            }
        })
        .count();
    assert_eq!(
        (winners.len(), told_taken),
        (1, BUYERS - 1),
        "one winner, every other buyer told the seat is taken"
    );
    assert_eq!(
        snapshot(handles[1].as_ref(), event, t0()).await.seats[&seat("A:1:1")],
        SeatState::Held {
            order: winners[0],
            until: t0() + secs(600)
        }
    );

    const SEATS: usize = 8;
    let event = new_event();
    load_empty(handles[0].as_ref(), event).await;
    let wants = (0..BUYERS)
        .map(|i| seats(&[&format!("A:2:{}", i % SEATS + 1)]))
        .collect();
    let results = race_holds(&handles, event, wants).await;
    let mut winner_of: HashMap<SeatRef, OrderId> = HashMap::new();
    for (order, items, outcome) in &results {
        let wanted = only_seat(items);
        match outcome {
            HoldOutcome::Held => assert!(
                winner_of.insert(wanted.clone(), *order).is_none(),
                "two winners for {wanted}"
            ),
            HoldOutcome::Taken { seats, zones } => {
                assert_eq!((seats, zones), (&vec![wanted], &Vec::new()));
            }
            HoldOutcome::NotLoaded => panic!("the event is loaded"),
        }
    }
    assert_eq!(winner_of.len(), SEATS, "every seat has its winner");

    // Every loser releases the seat it wanted, all at once: fenced, the winners keep theirs.
    let losers: Arc<Vec<(OrderId, Vec<HoldItem>)>> = Arc::new(
        results
            .into_iter()
            .filter(|r| r.2 != HoldOutcome::Held)
            .map(|(order, items, _)| (order, items))
            .collect(),
    );
    let released = race(losers.len(), |i| {
        let (lock, losers) = (handles[i].clone(), losers.clone());
        async move {
            let (order, items) = &losers[i];
            lock.release(event, *order, items).await
        }
    })
    .await;
    assert!(released.iter().all(Result::is_ok), "{released:?}");
    let after = snapshot(handles[0].as_ref(), event, t0()).await;
    assert_eq!(after.seats.len(), SEATS);
    for (seat, order) in &winner_of {
        assert_eq!(holder(&after.seats[seat]), *order, "{seat} kept its winner");
    }
}

/// Buyers wanting overlapping sets of three seats, listed in different orders: every hold answers
/// (no deadlock or lock timeout leaks out), a winner holds all its seats, a loser none of its
/// seats and only real conflicts are named, and each held seat belongs to exactly one winner.
pub async fn overlapping_multi_seat_holds_never_share_a_seat(open: &OpenLock) {
    const SEATS: usize = 12;
    let handles = handles(open, BUYERS).await;
    for round in 0..2 {
        let event = new_event();
        load_empty(handles[0].as_ref(), event).await;
        let wants: Vec<Vec<HoldItem>> = (0..BUYERS)
            .map(|i| {
                let picks: BTreeSet<usize> = [i + round, i * 5 + 2, i * 7 + 5 + round]
                    .iter()
                    .map(|n| n % SEATS + 1)
                    .collect();
                let mut keys: Vec<String> = picks.iter().map(|n| format!("A:1:{n}")).collect();
                if i % 2 == 1 {
                    keys.reverse();
                }
                seats(&keys.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .collect();
        let results = race_holds(&handles, event, wants).await;
        let after = snapshot(handles[0].as_ref(), event, t0()).await;
        let holder_of = |s: &SeatRef| after.seats.get(s).map(holder);

        let mut held_by_winners = 0;
        for (order, items, outcome) in &results {
            let wanted: Vec<SeatRef> = items
                .iter()
                .map(|item| only_seat(std::slice::from_ref(item)))
                .collect();
            match outcome {
                HoldOutcome::Held => {
                    held_by_winners += wanted.len();
                    for s in &wanted {
                        assert_eq!(holder_of(s), Some(*order), "a winner holds all its seats");
                    }
                }
                HoldOutcome::Taken { seats, zones } => {
                    assert!(zones.is_empty() && !seats.is_empty(), "{outcome:?}");
                    for s in &wanted {
                        assert_ne!(
                            holder_of(s),
                            Some(*order),
                            "a loser holds none of its seats"
                        );
                    }
                    for conflict in seats {
                        assert!(wanted.contains(conflict), "{conflict} was not asked for");
                        let taken_by = holder_of(conflict);
                        assert!(
                            taken_by.is_some() && taken_by != Some(*order),
                            "a named conflict is held by another order"
                        );
                    }
                }
                HoldOutcome::NotLoaded => panic!("the event is loaded"),
            }
        }
        let winners = results.iter().filter(|r| r.2 == HoldOutcome::Held).count();
        assert!(winners >= 1, "someone wins");
        assert_eq!(
            after.seats.len(),
            held_by_winners,
            "each held seat belongs to exactly one of the {winners} winners"
        );
    }
}

/// Buyers oversubscribing a general-admission zone: the places taken equal the winners' places
/// and never exceed the capacity, and every refused buyer really did not fit.
pub async fn general_admission_race_never_exceeds_capacity(open: &OpenLock) {
    const CAPACITY: u32 = 50;
    let handles = handles(open, BUYERS).await;
    let event = new_event();
    load_empty(handles[0].as_ref(), event).await;
    let quantity = |i: usize| i as u32 % 3 + 1;
    let wants = (0..BUYERS)
        .map(|i| vec![general("GA", quantity(i), CAPACITY)])
        .collect();
    let results = race_holds(&handles, event, wants).await;
    let asked = |items: &[HoldItem]| match items {
        [HoldItem::General { quantity, .. }] => *quantity,
        other => unreachable!("one zone per buyer, not {other:?}"),
    };

    let won: u32 = results
        .iter()
        .filter(|r| r.2 == HoldOutcome::Held)
        .map(|r| asked(&r.1))
        .sum();
    let taken = places(&snapshot(handles[0].as_ref(), event, t0()).await, "GA");
    assert_eq!(taken, won, "the lock counts exactly the winners' places");
    assert!(taken <= CAPACITY, "{taken} places taken of {CAPACITY}");
    let mut refused = 0;
    for (_, items, outcome) in &results {
        match outcome {
            HoldOutcome::Held => {}
            HoldOutcome::Taken { seats, zones } => {
                assert!(seats.is_empty());
                assert_eq!(zones, &vec![zone("GA")]);
                // Nothing is released during the race, so free places only shrink: a refused
                // buyer did not fit then and does not now.
                assert!(CAPACITY - taken < asked(items), "refused although it fits");
                refused += 1;
            }
            HoldOutcome::NotLoaded => panic!("the event is loaded"),
        }
    }
    let total: u32 = results.iter().map(|r| asked(&r.1)).sum();
    assert!(total > CAPACITY && refused > 0, "the race oversubscribes");
}

/// After a data loss every buyer sees `NotLoaded` and asks for a rebuild at once, each on its own
/// handle: the source is read once, every buyer's retry is held, and the rebuilt state has the
/// source's holds plus every buyer's.
pub async fn concurrent_rebuilds_read_the_source_once(open: &OpenLock) {
    let handles = handles(open, BUYERS).await;
    let event = new_event();
    let sold_to = new_order();
    // A slow read keeps the rebuild running while the others arrive; the count does not depend
    // on it (a late caller finds the event loaded).
    let source = Arc::new(CountingSource::slow(
        vec![ActiveHold {
            order: sold_to,
            item: HoldItem::Seat(seat("A:1:1")),
            until: None,
        }],
        Duration::from_millis(200),
    ));
    let results = race(BUYERS, |i| {
        let (lock, source) = (handles[i].clone(), source.clone());
        async move {
            let (buyer, wanted) = (new_order(), seats(&[&format!("A:2:{}", i + 1)]));
            let until = t0() + secs(60);
            let first = hold(lock.as_ref(), event, buyer, &wanted, t0(), until).await;
            if first == HoldOutcome::NotLoaded {
                lock.rebuild(event, source.as_ref()).await.expect("rebuild");
            }
            let second = hold(lock.as_ref(), event, buyer, &wanted, t0(), until).await;
            (first, second)
        }
    })
    .await;

    let asked = results
        .iter()
        .filter(|(first, _)| *first == HoldOutcome::NotLoaded)
        .count();
    assert!(asked >= 1, "the event started not loaded");
    assert!(
        results
            .iter()
            .all(|(_, second)| *second == HoldOutcome::Held),
        "{results:?}"
    );
    assert_eq!(
        source.reads(),
        1,
        "{asked} callers asked for a rebuild; one read the source"
    );
    let after = snapshot(handles[0].as_ref(), event, t0()).await;
    assert_eq!(after.seats.len(), BUYERS + 1);
    assert_eq!(
        after.seats[&seat("A:1:1")],
        SeatState::Sold { order: sold_to }
    );
}

/// Racers per rebuild race: fewer than [`BUYERS`], as each polls while it waits.
const REBUILDERS: usize = 16;

/// Pages of the slow source in [`racing_rebuilders_read_a_slow_paged_source_once`].
const SLOW_PAGES: usize = 8;

/// Many rebuilders race for an event whose source is read in slow pages that take, all
/// together, twice the lease when the lock has one (8 × 50 ms otherwise): one pass reads every
/// page once (the lease is renewed between pages, so nobody takes over), the others wait for it,
/// and the event then holds exactly the source's holds.
pub async fn racing_rebuilders_read_a_slow_paged_source_once(
    open: &OpenLock,
    lease: Option<Duration>,
) {
    let handles = handles(open, REBUILDERS).await;
    let event = new_event();
    let delay = lease.map_or(Duration::from_millis(50), |lease| {
        lease * 2 / SLOW_PAGES as u32
    });
    let (buyer, until) = (new_order(), t0() + secs(600));
    let mut holds = Vec::new();
    for page in 0..SLOW_PAGES {
        holds.push(ActiveHold {
            order: new_order(),
            item: HoldItem::Seat(seat(&format!("A:1:{}", page + 1))),
            until: (page % 2 == 0).then_some(until),
        });
        // One order's general-admission tickets, one per page.
        holds.push(ActiveHold {
            order: buyer,
            item: general("GA", 1, 100),
            until: Some(until),
        });
    }
    let source = Arc::new(CountingSource::slow(holds, delay).paged(2));
    let results = race(REBUILDERS, |i| {
        let (lock, source) = (handles[i].clone(), source.clone());
        async move { lock.rebuild(event, source.as_ref()).await }
    })
    .await;
    for result in &results {
        assert!(result.is_ok(), "every rebuilder ends well: {result:?}");
    }
    assert_eq!(
        (source.reads(), source.pages()),
        (1, SLOW_PAGES),
        "{REBUILDERS} rebuilders, one pass over {SLOW_PAGES} pages ({delay:?} each)"
    );
    for lock in [&handles[0], &handles[REBUILDERS - 1]] {
        let state = snapshot(lock.as_ref(), event, t0()).await;
        assert_eq!(state.seats.len(), SLOW_PAGES, "{state:?}");
        assert_eq!(places(&state, "GA"), SLOW_PAGES as u32, "{state:?}");
    }
    let other = new_order();
    assert_eq!(
        hold(
            handles[1].as_ref(),
            event,
            other,
            &[general("GA", 93, 100)],
            t0(),
            until
        )
        .await,
        HoldOutcome::Taken {
            seats: Vec::new(),
            zones: vec![zone("GA")]
        },
        "the pages' places count as one order's"
    );
}

/// A source whose second page waits for a permit: a rebuilder reading it stalls after its first
/// page.
struct StallingSource {
    holds: Vec<ActiveHold>,
    reads: AtomicUsize,
    /// Notified when the second page is asked for.
    stalled: Notify,
    /// Lets the second page through.
    gate: Semaphore,
}

#[async_trait]
impl HoldSource for StallingSource {
    async fn active_holds(&self, _event: EventId, after: Option<TicketId>) -> Result<HoldPage> {
        if after.is_none() {
            self.reads.fetch_add(1, Ordering::SeqCst);
        } else {
            self.stalled.notify_one();
            let _permit = self.gate.acquire().await.expect("gate open");
        }
        Ok(page_of(&self.holds, 1, after))
    }
}

/// A rebuilder that stalls between two pages for longer than its lease loses it: the event stays
/// not loaded meanwhile (its first page is not in use), another rebuilder takes over and loads its
/// own read, and the stalled one, woken up, writes nothing more: it finds the event loaded and
/// returns. Only for locks whose lease can lapse while the rebuilder runs
/// ([`SeatLockCapabilities::rebuild_lease`](super::SeatLockCapabilities::rebuild_lease)).
pub async fn a_rebuilder_that_lost_its_lease_writes_nothing_more(open: &OpenLock, lease: Duration) {
    let (stalling, taking_over) = (open().await, open().await);
    let (event, first, second) = (new_event(), new_order(), new_order());
    let until = t0() + secs(600);
    let stale = Arc::new(StallingSource {
        holds: vec![
            ActiveHold {
                order: first,
                item: HoldItem::Seat(seat("A:1:1")),
                until: Some(until),
            },
            ActiveHold {
                order: first,
                item: general("GA", 2, 10),
                until: Some(until),
            },
        ],
        reads: AtomicUsize::new(0),
        stalled: Notify::new(),
        gate: Semaphore::new(0),
    });
    let stalled = tokio::spawn({
        let (lock, source) = (stalling.clone(), stale.clone());
        async move { lock.rebuild(event, source.as_ref()).await }
    });
    stale.stalled.notified().await;
    tokio::time::sleep(lease * 2).await;
    assert_eq!(
        taking_over.snapshot(event, t0()).await.expect("snapshot"),
        None,
        "not loaded while a rebuild is half done"
    );
    assert_eq!(
        hold(
            taking_over.as_ref(),
            event,
            second,
            &seats(&["A:1:1"]),
            t0(),
            until
        )
        .await,
        HoldOutcome::NotLoaded
    );

    let fresh = CountingSource::new(vec![ActiveHold {
        order: second,
        item: HoldItem::Seat(seat("A:1:2")),
        until: None,
    }]);
    taking_over
        .rebuild(event, &fresh)
        .await
        .expect("the lapsed lease is taken over");
    assert_eq!(fresh.reads(), 1);
    stale.gate.add_permits(1);
    let woken = stalled.await.expect("the stalled rebuild did not panic");
    assert!(
        woken.is_ok(),
        "the stalled rebuilder waits for the other rebuild and returns: {woken:?}"
    );
    assert_eq!(
        stale.reads.load(Ordering::SeqCst),
        1,
        "the stalled rebuilder does not start over"
    );
    for lock in [&stalling, &taking_over] {
        let state = snapshot(lock.as_ref(), event, t0()).await;
        assert_eq!(
            state.seats,
            HashMap::from([(seat("A:1:2"), SeatState::Sold { order: second })]),
            "only the second rebuild's read is in use"
        );
        assert_eq!(
            places(&state, "GA"),
            0,
            "nothing of the stale pages: {state:?}"
        );
    }
}
