//! The seat map: what is free, held and sold, in ranges per row instead of one entry per seat,
//! so that a 100,000-seat event's map is a few kilobytes and its cost grows with what is taken,
//! not with the venue.

use std::collections::HashMap;

use crate::domain::{EventId, RowLabel, SeatRef, Zone, ZoneCode, ZoneKind};
use crate::ports::{LockSnapshot, SeatState};

/// Whether a seat can be bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeatAvailability {
    /// Nobody holds it.
    Free,
    /// An order holds it while its buyer pays.
    Held,
    /// Paid.
    Sold,
}

/// One seat with its availability, as [`SeatMap::seats`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatView {
    /// The seat.
    pub seat: SeatRef,
    /// Its availability.
    pub state: SeatAvailability,
}

/// The seats `first..=last` of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatRange {
    /// The first seat number of the range.
    pub first: u32,
    /// The last seat number of the range (at least `first`).
    pub last: u32,
}

impl SeatRange {
    /// Whether `number` is in the range.
    pub fn contains(&self, number: u32) -> bool {
        (self.first..=self.last).contains(&number)
    }
}

/// One row of a seated zone: its free and its sold seats as ranges; every other seat is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowAvailability {
    /// The row.
    pub row: RowLabel,
    /// How many seats the row has (numbered `1..=seats`).
    pub seats: u32,
    /// The free seats: ascending ranges that neither overlap nor touch.
    pub free: Vec<SeatRange>,
    /// The sold seats, in the same form.
    pub sold: Vec<SeatRange>,
}

impl RowAvailability {
    /// The availability of seat `number`; `None` when the row has no such seat.
    pub fn state(&self, number: u32) -> Option<SeatAvailability> {
        let within = |ranges: &[SeatRange]| ranges.iter().any(|r| r.contains(number));
        if number == 0 || number > self.seats {
            None
        } else if within(&self.free) {
            Some(SeatAvailability::Free)
        } else if within(&self.sold) {
            Some(SeatAvailability::Sold)
        } else {
            Some(SeatAvailability::Held)
        }
    }

    /// Free seats in the row.
    pub fn free_count(&self) -> u32 {
        self.free.iter().map(|r| r.last - r.first + 1).sum()
    }
}

/// The rows of one seated zone, in layout order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatedAvailability {
    /// The zone.
    pub zone: ZoneCode,
    /// Every row of the zone.
    pub rows: Vec<RowAvailability>,
}

/// Places of a general-admission zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralAvailability {
    /// The zone.
    pub zone: ZoneCode,
    /// Its capacity.
    pub capacity: u32,
    /// Places held or sold.
    pub taken: u32,
    /// Places left.
    pub remaining: u32,
}

/// The availability of the priced zones of an event that is on sale (all of them, or the one a
/// zone map asks for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatMap {
    /// The event.
    pub event: EventId,
    /// The priced seated zones, in layout order.
    pub seated: Vec<SeatedAvailability>,
    /// The priced general-admission zones, by code.
    pub general: Vec<GeneralAvailability>,
}

impl SeatMap {
    /// Every seat of the map with its availability, zone by zone and row by row. This expands
    /// the ranges into one item per seat: for checks and small maps, not for serving a venue.
    pub fn seats(&self) -> impl Iterator<Item = SeatView> + '_ {
        self.seated.iter().flat_map(|zone| {
            zone.rows.iter().flat_map(move |row| {
                (1..=row.seats).map(move |number| SeatView {
                    seat: SeatRef {
                        zone: zone.zone.clone(),
                        row: row.row.clone(),
                        number,
                    },
                    state: row.state(number).unwrap_or(SeatAvailability::Held),
                })
            })
        })
    }

    /// The map of `zones` (priced zones of the event, in layout order) from the lock's
    /// `snapshot`, with the seats `reserved` for a sales channel shown sold (to the public a
    /// reserved seat is taken for good). Costs O(taken seats · log + rows): free seats are
    /// never listed one by one.
    pub(crate) fn build<'z>(
        event: EventId,
        zones: impl Iterator<Item = &'z Zone>,
        snapshot: &LockSnapshot,
        reserved: &[SeatRef],
    ) -> Self {
        let mut taken: HashMap<(&ZoneCode, &RowLabel), Vec<(u32, bool)>> = HashMap::new();
        let kept = reserved
            .iter()
            .filter(|seat| !snapshot.seats.contains_key(*seat))
            .map(|seat| (seat, true));
        let states = snapshot
            .seats
            .iter()
            .map(|(seat, state)| (seat, matches!(state, SeatState::Sold { .. })));
        for (seat, sold) in states.chain(kept) {
            taken
                .entry((&seat.zone, &seat.row))
                .or_default()
                .push((seat.number, sold));
        }
        let mut map = Self {
            event,
            seated: Vec::new(),
            general: Vec::new(),
        };
        for zone in zones {
            match &zone.kind {
                ZoneKind::Seated { rows } => map.seated.push(SeatedAvailability {
                    zone: zone.code.clone(),
                    rows: rows
                        .iter()
                        .map(|row| {
                            let numbers = taken.get_mut(&(&zone.code, &row.label));
                            row_availability(row.label.clone(), row.seats, numbers)
                        })
                        .collect(),
                }),
                ZoneKind::GeneralAdmission { capacity } => {
                    let taken = snapshot
                        .general
                        .get(&zone.code)
                        .copied()
                        .unwrap_or(0)
                        .min(*capacity);
                    map.general.push(GeneralAvailability {
                        zone: zone.code.clone(),
                        capacity: *capacity,
                        taken,
                        remaining: capacity - taken,
                    });
                }
            }
        }
        map.general.sort_by(|a, b| a.zone.cmp(&b.zone));
        map
    }
}

/// One row's ranges from its taken seats (`(number, sold)`, any order; numbers outside the row
/// are ignored).
fn row_availability(
    row: RowLabel,
    seats: u32,
    taken: Option<&mut Vec<(u32, bool)>>,
) -> RowAvailability {
    let mut taken = taken.map(std::mem::take).unwrap_or_default();
    taken.retain(|(number, _)| (1..=seats).contains(number));
    taken.sort_unstable();
    let mut free = Vec::new();
    let mut sold: Vec<SeatRange> = Vec::new();
    let mut next_free = 1;
    for (number, is_sold) in taken {
        if number > next_free {
            free.push(SeatRange {
                first: next_free,
                last: number - 1,
            });
        }
        next_free = number + 1;
        if is_sold {
            match sold.last_mut() {
                Some(range) if range.last + 1 == number => range.last = number,
                _ => sold.push(SeatRange {
                    first: number,
                    last: number,
                }),
            }
        }
    }
    if next_free <= seats {
        free.push(SeatRange {
            first: next_free,
            last: seats,
        });
    }
    RowAvailability {
        row,
        seats,
        free,
        sold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderId;
    use uuid::Uuid;

    fn range(first: u32, last: u32) -> SeatRange {
        SeatRange { first, last }
    }

    #[test]
    fn rows_become_free_and_sold_ranges() {
        let order = OrderId::from_uuid(Uuid::nil());
        let held = SeatState::Held {
            order,
            until: chrono::DateTime::UNIX_EPOCH,
        };
        let sold = SeatState::Sold { order };
        let zone: Zone = Zone {
            code: "A".parse().unwrap(),
            name: "A".into(),
            kind: ZoneKind::Seated {
                rows: vec![
                    crate::domain::Row {
                        label: "1".parse().unwrap(),
                        seats: 20,
                    },
                    crate::domain::Row {
                        label: "2".parse().unwrap(),
                        seats: 3,
                    },
                ],
            },
        };
        let mut snapshot = LockSnapshot::default();
        for (key, state) in [
            ("A:1:13", held),
            ("A:1:14", sold),
            ("A:1:15", sold),
            ("A:1:20", held),
            ("A:1:1", sold),
            ("A:1:99", sold),
            ("A:2:1", held),
            ("A:2:2", held),
            ("A:2:3", held),
            ("B:1:2", sold),
        ] {
            snapshot.seats.insert(key.parse().unwrap(), state);
        }
        let map = SeatMap::build(
            EventId::from_uuid(Uuid::nil()),
            [&zone].into_iter(),
            &snapshot,
            &[],
        );
        let rows = &map.seated[0].rows;
        assert_eq!(rows[0].free, [range(2, 12), range(16, 19)]);
        assert_eq!(rows[0].sold, [range(1, 1), range(14, 15)]);
        assert_eq!(rows[0].free_count(), 15);
        assert_eq!(rows[0].state(13), Some(SeatAvailability::Held));
        assert_eq!(
            rows[0].state(21),
            None,
            "seat 99 of the lock is not in the row"
        );
        assert_eq!(rows[1].free, []);
        assert_eq!(rows[1].sold, []);
        let states: Vec<_> = map.seats().map(|s| s.state).collect();
        assert_eq!(states.len(), 23);
        assert_eq!(
            states
                .iter()
                .filter(|s| **s == SeatAvailability::Free)
                .count(),
            15
        );
    }
}
