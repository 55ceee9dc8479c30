//! Snapshots of a large event, whole and one zone at a time.

use std::collections::HashMap;

use crate::domain::{Row, Zone, ZoneKind};
use crate::ports::{HoldItem, HoldOutcome, LockSnapshot, SeatLock, SeatState};

use super::super::{new_event, new_order, seat, secs, t0, zone};
use super::{general, hold, load_empty, places, snapshot};

/// Rows of zone `A` in this check: more held seats than one bounded read of an adapter returns
/// (1,000), so a snapshot that stops after its first chunk is caught.
const ROWS: u32 = 25;
const SEATS_PER_ROW: u32 = 100;

fn seated_zone(code: &str, rows: u32) -> Zone {
    Zone {
        code: zone(code),
        name: code.into(),
        kind: ZoneKind::Seated {
            rows: (1..=rows)
                .map(|n| Row {
                    label: n.to_string().parse().expect("a valid row label"),
                    seats: SEATS_PER_ROW,
                })
                .collect(),
        },
    }
}

/// The part of `whole` a zone snapshot of `code` shows.
fn only_zone(whole: &LockSnapshot, code: &str) -> (HashMap<String, SeatState>, u32) {
    let seats = whole
        .seats
        .iter()
        .filter(|(seat, _)| seat.zone == zone(code))
        .map(|(seat, state)| (seat.key(), *state))
        .collect();
    (seats, places(whole, code))
}

/// A snapshot shows every held and sold seat of an event however many there are (2,500 here,
/// read in several bounded chunks by adapters that chunk), and a zone snapshot shows exactly the
/// snapshot's part of that zone: its seats, or its general-admission places, nothing of other
/// zones. An event that is not loaded is `None` for both.
pub async fn zone_snapshots_show_one_zone_of_a_large_event(lock: &dyn SeatLock) {
    let (event, buyer, payer) = (new_event(), new_order(), new_order());
    let (a, b) = (seated_zone("A", ROWS), seated_zone("B", 1));
    let ga = Zone {
        code: zone("GA"),
        name: "GA".into(),
        kind: ZoneKind::GeneralAdmission { capacity: 50 },
    };
    assert_eq!(
        lock.zone_snapshot(event, &a, t0())
            .await
            .expect("zone snapshot"),
        None,
        "an event not loaded has no zone snapshot"
    );
    load_empty(lock, event).await;
    let until = t0() + secs(600);
    for row in 1..=ROWS {
        let items: Vec<HoldItem> = (1..=SEATS_PER_ROW)
            .map(|n| HoldItem::Seat(seat(&format!("A:{row}:{n}"))))
            .collect();
        assert_eq!(
            hold(lock, event, buyer, &items, t0(), until).await,
            HoldOutcome::Held
        );
    }
    let in_b = [HoldItem::Seat(seat("B:1:7"))];
    assert_eq!(
        hold(lock, event, payer, &in_b, t0(), until).await,
        HoldOutcome::Held
    );
    lock.mark_sold(event, payer, &in_b)
        .await
        .expect("mark_sold");
    let places_held = [general("GA", 4, 50)];
    assert_eq!(
        hold(lock, event, buyer, &places_held, t0(), until).await,
        HoldOutcome::Held
    );

    let whole = snapshot(lock, event, t0()).await;
    assert_eq!(
        whole.seats.len(),
        (ROWS * SEATS_PER_ROW + 1) as usize,
        "the snapshot shows every held and sold seat"
    );
    for (zone_of_map, code) in [(&a, "A"), (&b, "B"), (&ga, "GA")] {
        let part = lock
            .zone_snapshot(event, zone_of_map, t0())
            .await
            .expect("zone snapshot")
            .expect("the event is loaded");
        assert!(
            part.seats.keys().all(|seat| seat.zone == zone(code)),
            "zone {code}'s snapshot shows seats of other zones"
        );
        assert!(
            part.general.iter().all(|(z, _)| z == &zone(code)),
            "zone {code}'s snapshot shows places of other zones"
        );
        assert_eq!(
            only_zone(&part, code),
            only_zone(&whole, code),
            "zone {code}'s snapshot differs from the snapshot's part of it"
        );
    }
    assert_eq!(places(&whole, "GA"), 4);
    assert_eq!(
        whole.seats.get(&seat("B:1:7")),
        Some(&SeatState::Sold { order: payer })
    );
    let lapsed = lock
        .zone_snapshot(event, &a, until)
        .await
        .expect("zone snapshot")
        .expect("the event is loaded");
    assert!(
        lapsed.seats.is_empty(),
        "holds that lapsed at `now` are left out of a zone snapshot"
    );
}
