//! [`SeatLock::hold_best_available`]: the block chosen is the one [`BestAvailableRequest::choose`]
//! picks (valid, and orphan-free whenever the rows allow), held in the same atomic step, with
//! lapsed holds and the order's own holds counting as free, and never one seat for two racers.

use std::collections::HashSet;
use std::sync::Arc;

use crate::domain::{EventId, OrderId, Row, SeatRef};
use crate::ports::{BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, SeatLock};
use crate::testkit::checks::race;

use super::super::{new_event, new_order, secs, t0, zone};
use super::{OpenLock, hold, holder, load_empty, snapshot};

/// Racers in the concurrency check.
const RACERS: usize = 48;

fn rows(seats: &[u32]) -> Vec<Row> {
    seats
        .iter()
        .enumerate()
        .map(|(i, &seats)| Row {
            label: (i + 1).to_string().parse().expect("a row label"),
            seats,
        })
        .collect()
}

fn request(event: EventId, order: OrderId, rows: Vec<Row>, quantity: u32) -> BestAvailableRequest {
    BestAvailableRequest {
        event,
        order,
        zone: zone("BA"),
        rows,
        quantity,
        excluded: Vec::new(),
        now: t0(),
        until: t0() + secs(600),
    }
}

/// Asks and expects an answer, not an error.
async fn best(lock: &dyn SeatLock, request: &BestAvailableRequest) -> BestAvailableOutcome {
    lock.hold_best_available(request)
        .await
        .unwrap_or_else(|e| panic!("best available of {} failed: {e}", request.quantity))
}

fn seat_in(row: usize, number: u32) -> SeatRef {
    SeatRef::new(zone("BA"), row.to_string().parse().expect("row"), number).expect("seat")
}

/// Holds `seats` for a fresh order of their own.
async fn take(lock: &dyn SeatLock, event: EventId, seats: &[SeatRef]) {
    let items: Vec<HoldItem> = seats.iter().cloned().map(HoldItem::Seat).collect();
    let outcome = hold(lock, event, new_order(), &items, t0(), t0() + secs(600)).await;
    assert_eq!(outcome, HoldOutcome::Held, "setting up taken seats");
}

/// The seats held or sold in the zone, as the lock shows them.
async fn taken(lock: &dyn SeatLock, event: EventId) -> HashSet<SeatRef> {
    snapshot(lock, event, t0())
        .await
        .seats
        .into_keys()
        .collect()
}

/// Not loaded → `NotLoaded`, nothing written. Then a block that leaves no orphan in a later row
/// beats an earlier row whose only blocks leave one; an exact gap is filled; no block →
/// `NoBlock`, nothing written; and the chosen seats are held by the order until `until`.
pub async fn best_available_chooses_an_orphan_free_block_and_holds_it(lock: &dyn SeatLock) {
    let event = new_event();
    let order = new_order();
    let layout = rows(&[5, 4]);
    assert_eq!(
        best(lock, &request(event, order, layout.clone(), 2)).await,
        BestAvailableOutcome::NotLoaded,
        "an event not loaded"
    );
    assert!(
        lock.snapshot(event, t0())
            .await
            .expect("snapshot")
            .is_none(),
        "NotLoaded wrote nothing"
    );
    load_empty(lock, event).await;
    take(lock, event, &[seat_in(1, 1), seat_in(1, 5)]).await;

    let pair = best(lock, &request(event, order, layout.clone(), 2)).await;
    assert_eq!(
        pair,
        BestAvailableOutcome::Held {
            seats: vec![seat_in(2, 1), seat_in(2, 2)]
        },
        "row 1's gap of three would leave an orphan; row 2 from its end leaves none"
    );
    let shown = snapshot(lock, event, t0()).await;
    for seat in [seat_in(2, 1), seat_in(2, 2)] {
        let state = shown.seats.get(&seat).expect("the chosen seat is held");
        assert_eq!(holder(state), order, "held by the order that asked");
    }

    let other = new_order();
    let three = best(lock, &request(event, other, layout[..1].to_vec(), 3)).await;
    assert_eq!(
        three,
        BestAvailableOutcome::Held {
            seats: vec![seat_in(1, 2), seat_in(1, 3), seat_in(1, 4)]
        },
        "the exact gap of row 1"
    );
    let before = taken(lock, event).await;
    let none = best(lock, &request(event, new_order(), layout, 3)).await;
    assert_eq!(
        none,
        BestAvailableOutcome::NoBlock,
        "row 2 has two free seats left"
    );
    assert_eq!(taken(lock, event).await, before, "NoBlock wrote nothing");
}

/// The request's excluded seats (kept back for a channel the buyer is not of) count as taken,
/// as held seats do, and are left as they were; excluding every free seat is `NoBlock`. The
/// first zone is longer than a chunk of the Redis lock, whose every chunk must honour them.
pub async fn best_available_treats_excluded_seats_as_taken(lock: &dyn SeatLock) {
    let event = new_event();
    load_empty(lock, event).await;
    let layout = rows(&[1_200, 6]);
    let excluded = |seats: &[(usize, u32)]| -> Vec<SeatRef> {
        let mut seats: Vec<SeatRef> = seats.iter().map(|&(r, n)| seat_in(r, n)).collect();
        seats.sort();
        seats
    };
    let mut row_one: Vec<(usize, u32)> = (1..=1_200).map(|n| (1, n)).collect();
    row_one.retain(|&(_, n)| n != 600);
    let wanted = BestAvailableRequest {
        excluded: excluded(&[row_one.as_slice(), &[(2, 3), (2, 4)]].concat()),
        ..request(event, new_order(), layout.clone(), 2)
    };
    assert_eq!(
        best(lock, &wanted).await,
        BestAvailableOutcome::Held {
            seats: vec![seat_in(2, 1), seat_in(2, 2)]
        },
        "row 1 keeps one seat, row 2 two pairs around its excluded middle"
    );
    let shown = taken(lock, event).await;
    assert_eq!(
        shown.len(),
        2,
        "nothing but the chosen pair is held: {shown:?}"
    );
    let everything = BestAvailableRequest {
        excluded: excluded(&[row_one.as_slice(), &[(2, 3), (2, 4), (2, 5), (2, 6)]].concat()),
        ..request(event, new_order(), layout, 1)
    };
    assert_eq!(
        best(lock, &everything).await,
        BestAvailableOutcome::Held {
            seats: vec![seat_in(1, 600)]
        },
        "the one seat neither excluded nor held"
    );
    let mut all = everything.excluded.clone();
    all.push(seat_in(1, 600));
    all.sort();
    let nothing_left = BestAvailableRequest {
        excluded: all,
        ..everything
    };
    let before = taken(lock, event).await;
    assert_eq!(
        best(lock, &nothing_left).await,
        BestAvailableOutcome::NoBlock,
        "every other seat excluded or held"
    );
    assert_eq!(taken(lock, event).await, before, "NoBlock wrote nothing");
}

/// A lapsed hold counts as free; so do the asking order's own holds (a retry picks its seats
/// again); a sold seat is taken, even for its own buyer.
pub async fn best_available_counts_lapsed_and_own_holds_free_and_sold_seats_taken(
    lock: &dyn SeatLock,
) {
    let event = new_event();
    load_empty(lock, event).await;
    let layout = rows(&[3]);
    let middle = [HoldItem::Seat(seat_in(1, 2))];
    let lapsing = hold(lock, event, new_order(), &middle, t0(), t0() + secs(10)).await;
    assert_eq!(lapsing, HoldOutcome::Held);
    let order = new_order();
    let mut ask = request(event, order, layout.clone(), 3);
    assert_eq!(
        best(lock, &ask).await,
        BestAvailableOutcome::NoBlock,
        "seat 2 is held until t0 + 10 s"
    );
    ask.now = t0() + secs(10);
    ask.until = t0() + secs(700);
    let whole_row = vec![seat_in(1, 1), seat_in(1, 2), seat_in(1, 3)];
    assert_eq!(
        best(lock, &ask).await,
        BestAvailableOutcome::Held {
            seats: whole_row.clone()
        },
        "a hold that lapsed at now is free"
    );
    assert_eq!(
        best(lock, &ask).await,
        BestAvailableOutcome::Held {
            seats: whole_row.clone()
        },
        "the order's own holds count as free"
    );
    let items: Vec<HoldItem> = whole_row.iter().cloned().map(HoldItem::Seat).collect();
    lock.mark_sold(event, order, &items)
        .await
        .expect("mark sold");
    assert_eq!(
        best(lock, &ask).await,
        BestAvailableOutcome::NoBlock,
        "sold seats are taken, whoever bought them"
    );
}

/// A deterministic sequence of pseudo-random numbers (xorshift), so the check needs no crate.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n)) as u32
    }
}

/// On many random layouts (some larger than any one chunk an adapter reads), with random seats
/// taken, the lock chooses exactly what [`BestAvailableRequest::choose`] chooses, which the core's
/// property tests hold to a brute-force enumeration: valid, and orphan-free whenever any block is.
pub async fn best_available_matches_the_reference_choice(lock: &dyn SeatLock) {
    let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
    for round in 0..24 {
        let event = new_event();
        load_empty(lock, event).await;
        // Every sixth round a zone of 2,400 seats, beyond a 1,000-seat chunk.
        let (row_count, max_seats) = if round % 6 == 5 { (40, 60) } else { (5, 12) };
        let seats: Vec<u32> = (0..row_count)
            .map(|_| 1 + random.below(max_seats))
            .collect();
        let layout = rows(&seats);
        let mut held = Vec::new();
        for (index, row) in layout.iter().enumerate() {
            // Fuller rows first, so the best rows are the ones where orphans lurk.
            let fill = if round % 6 == 5 && index + 1 < layout.len() {
                90
            } else {
                45
            };
            for number in 1..=row.seats {
                if random.below(100) < fill {
                    held.push(seat_in(index + 1, number));
                }
            }
        }
        if !held.is_empty() {
            take(lock, event, &held).await;
        }
        let quantity = 1 + random.below(4);
        let ask = request(event, new_order(), layout, quantity);
        let expected = ask.choose(held.iter());
        let outcome = best(lock, &ask).await;
        match expected {
            Some(seats) => assert_eq!(
                outcome,
                BestAvailableOutcome::Held { seats },
                "round {round}: {quantity} seats among rows {seats_per_row:?}",
                seats_per_row = ask.rows.iter().map(|r| r.seats).collect::<Vec<_>>()
            ),
            None => assert_eq!(outcome, BestAvailableOutcome::NoBlock, "round {round}"),
        }
    }
}

/// Many racers, each on its own handle, ask for 2 or 3 seats of one small zone at once: no seat is
/// held for two of them, every racer's seats are held by it afterwards, and every racer told
/// `NoBlock` is right at the end too (seats only got taken during the race).
pub async fn concurrent_best_available_never_holds_a_seat_twice(open: &OpenLock) {
    let mut handles = Vec::with_capacity(RACERS);
    for _ in 0..RACERS {
        handles.push(open().await);
    }
    let event = new_event();
    load_empty(handles[0].as_ref(), event).await;
    let layout = Arc::new(rows(&[10, 9, 11, 8]));
    let results = race(RACERS, |i| {
        let (lock, layout) = (handles[i].clone(), layout.clone());
        async move {
            let ask = request(event, new_order(), layout.to_vec(), 2 + (i % 2) as u32);
            let outcome = best(lock.as_ref(), &ask).await;
            (ask, outcome)
        }
    })
    .await;
    let shown = snapshot(handles[0].as_ref(), event, t0()).await;
    let mut seen = HashSet::new();
    for (ask, outcome) in &results {
        if let BestAvailableOutcome::Held { seats } = outcome {
            assert_eq!(seats.len(), ask.quantity as usize);
            for seat in seats {
                assert!(seen.insert(seat.clone()), "seat {seat} given to two racers");
                let state = shown.seats.get(seat).expect("a chosen seat is held");
                assert_eq!(holder(state), ask.order, "seat {seat} held by its racer");
            }
        }
    }
    assert_eq!(shown.seats.len(), seen.len(), "only chosen seats are held");
    for (ask, outcome) in &results {
        if *outcome == BestAvailableOutcome::NoBlock {
            assert_eq!(
                ask.choose(shown.seats.keys()),
                None,
                "a racer told NoBlock for {} seats while a block was free",
                ask.quantity
            );
        }
    }
    assert!(!seen.is_empty(), "some racers won");
}
