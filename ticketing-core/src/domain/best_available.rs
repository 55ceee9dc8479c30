//! Best available: which `quantity` seats side by side to give a buyer who names none, without
//! leaving an orphan when a choice without one exists.
//!
//! The seat locks run this choice inside their atomic hold (the in-memory and SQL locks call
//! [`choose_block`]; the Redis lock runs the same rules in Lua, `best_available.lua`), so the
//! seats are chosen and held in one step and two buyers never get the same block.
//!
//! The rules, in order of precedence, over every *placement* (a row and a first seat such that
//! `quantity` seats from it are free, all in that row):
//! 1. **Fewest orphans.** An orphan is a free seat that the placement isolates: it is left
//!    between the block and a taken seat or the row's end, alone. A placement in a free run of
//!    `length` seats, leaving `left` and `right` free seats on its sides
//!    (`left + quantity + right = length`), makes `(left == 1) + (right == 1)` orphans: 0, 1 or 2.
//!    Seats that were alone before are no one's doing and not counted.
//! 2. **Earliest row** in the order given (a zone's rows are listed best first).
//! 3. **Nearest the middle of the row**: the smallest distance between the block's centre and the
//!    row's centre (counted in half seats, so it stays an integer).
//! 4. **Lowest first seat**, so that the choice is deterministic.
//!
//! So an orphan-free placement anywhere in the allowed rows beats every placement that leaves an
//! orphan (seats.io's rule; pretix has none, 12306 takes the first fit), and among orphan-free
//! placements the best row wins.

use std::collections::HashSet;

/// One row as the choice sees it: how many seats it has and which of them are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOccupancy {
    /// Seats in the row, numbered `1..=seats`.
    pub seats: u32,
    /// The taken seats (held or sold by others); numbers outside `1..=seats` are ignored.
    pub taken: HashSet<u32>,
}

/// The block [`choose_block`] picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Index of the row in the rows given.
    pub row: usize,
    /// The block's first seat number; the block is `first..first + quantity`.
    pub first: u32,
    /// Orphans the block makes (0, 1 or 2; see the module docs).
    pub orphans: u8,
}

impl Placement {
    /// The ranking key of the module docs: smaller is better.
    fn key(&self, seats: u32, quantity: u32) -> (u8, usize, u64, u32) {
        (
            self.orphans,
            self.row,
            centre_distance(seats, self.first, quantity),
            self.first,
        )
    }
}

/// Twice the distance between the centre of the block `first..first + quantity` and the centre of
/// a row of `seats` seats: `|2·first + quantity − 1 − (seats + 1)|`.
pub fn centre_distance(seats: u32, first: u32, quantity: u32) -> u64 {
    let block = 2 * u64::from(first) + u64::from(quantity) - 1;
    block.abs_diff(u64::from(seats) + 1)
}

/// Orphans made by a block leaving `left` and `right` free seats in its free run.
pub fn orphans_left(left: u32, right: u32) -> u8 {
    u8::from(left == 1) + u8::from(right == 1)
}

/// The best placement of `quantity` adjacent free seats in `rows` (see the module docs), or `None`
/// when no row has `quantity` free seats side by side (or `quantity` is 0).
///
/// Cost: one pass over each row's seats, O(total seats) for the zone.
pub fn choose_block(rows: &[RowOccupancy], quantity: u32) -> Option<Placement> {
    if quantity == 0 {
        return None;
    }
    let mut best: Option<(Placement, (u8, usize, u64, u32))> = None;
    for (index, row) in rows.iter().enumerate() {
        if best.is_some_and(|(b, _)| b.orphans == 0) {
            break; // An orphan-free block in an earlier row: no later row can beat it.
        }
        let mut number = 1;
        while number <= row.seats {
            if row.taken.contains(&number) {
                number += 1;
                continue;
            }
            // A free run starts at `number`: find its end.
            let start = number;
            while number <= row.seats && !row.taken.contains(&number) {
                number += 1;
            }
            let length = number - start;
            if length < quantity {
                continue;
            }
            for first in start..=start + (length - quantity) {
                let left = first - start;
                let right = length - quantity - left;
                let placement = Placement {
                    row: index,
                    first,
                    orphans: orphans_left(left, right),
                };
                let key = placement.key(row.seats, quantity);
                if best.is_none_or(|(_, b)| key < b) {
                    best = Some((placement, key));
                }
            }
        }
    }
    best.map(|(placement, _)| placement)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn row(seats: u32, taken: &[u32]) -> RowOccupancy {
        RowOccupancy {
            seats,
            taken: taken.iter().copied().collect(),
        }
    }

    /// Free seats of a row that have no free neighbour (alone between taken seats or row ends).
    fn alone(seats: u32, taken: &HashSet<u32>) -> HashSet<u32> {
        let free = |n: u32| n >= 1 && n <= seats && !taken.contains(&n);
        (1..=seats)
            .filter(|&n| free(n) && !free(n - 1) && !free(n + 1))
            .collect()
    }

    /// Every valid placement with its key, computed the slow way: the block's seats checked one
    /// by one, and its orphans counted as seats alone after the hold that were not alone before.
    fn every_placement(
        rows: &[RowOccupancy],
        quantity: u32,
    ) -> Vec<(Placement, (u8, usize, u64, u32))> {
        let mut all = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            if quantity > row.seats {
                continue;
            }
            for first in 1..=row.seats - quantity + 1 {
                let block: Vec<u32> = (first..first + quantity).collect();
                if block.iter().any(|n| row.taken.contains(n)) {
                    continue;
                }
                let before = alone(row.seats, &row.taken);
                let mut after_taken = row.taken.clone();
                after_taken.extend(block.iter().copied());
                let orphans = alone(row.seats, &after_taken).difference(&before).count();
                let placement = Placement {
                    row: index,
                    first,
                    orphans: orphans as u8,
                };
                let key = (
                    placement.orphans,
                    index,
                    centre_distance(row.seats, first, quantity),
                    first,
                );
                all.push((placement, key));
            }
        }
        all
    }

    fn rows_strategy() -> impl Strategy<Value = Vec<RowOccupancy>> {
        proptest::collection::vec(
            (1u32..24).prop_flat_map(|seats| {
                (
                    Just(seats),
                    proptest::collection::hash_set(1..=seats, 0..=seats as usize),
                )
            }),
            1..6,
        )
        .prop_map(|rows| {
            rows.into_iter()
                .map(|(seats, taken)| RowOccupancy { seats, taken })
                .collect()
        })
    }

    proptest! {
        /// On random rows the choice is exactly the best placement of a brute-force enumeration:
        /// valid (free, adjacent, in one row), orphan-free whenever any placement is, and first
        /// by the documented ranking; `None` exactly when no placement exists.
        #[test]
        fn the_choice_is_the_best_of_every_placement(
            rows in rows_strategy(),
            quantity in 1u32..8,
        ) {
            let all = every_placement(&rows, quantity);
            let chosen = choose_block(&rows, quantity);
            let reference = all.iter().min_by_key(|(_, key)| *key).map(|(p, _)| *p);
            prop_assert_eq!(chosen, reference);
            if let Some(chosen) = chosen {
                let row = &rows[chosen.row];
                prop_assert!(chosen.first + quantity - 1 <= row.seats);
                for n in chosen.first..chosen.first + quantity {
                    prop_assert!(!row.taken.contains(&n), "seat {} is taken", n);
                }
                let fewest = all.iter().map(|(p, _)| p.orphans).min();
                prop_assert_eq!(Some(chosen.orphans), fewest);
            }
        }
    }

    #[test]
    fn an_empty_row_is_filled_from_the_middle() {
        let rows = [row(10, &[])];
        assert_eq!(
            choose_block(&rows, 2),
            Some(Placement {
                row: 0,
                first: 5,
                orphans: 0
            })
        );
    }

    #[test]
    fn a_later_row_without_an_orphan_beats_an_earlier_row_with_one() {
        // Row 0 has a gap of 3: two seats there leave one alone. In row 1 the middle pair would
        // leave one alone on each side, so the block goes to an end.
        let rows = [row(5, &[1, 5]), row(4, &[])];
        assert_eq!(
            choose_block(&rows, 2),
            Some(Placement {
                row: 1,
                first: 1,
                orphans: 0
            })
        );
    }

    #[test]
    fn an_orphan_is_left_only_when_every_placement_leaves_one() {
        let rows = [row(3, &[]), row(5, &[1, 5])];
        assert_eq!(
            choose_block(&rows, 2),
            Some(Placement {
                row: 0,
                first: 1,
                orphans: 1
            })
        );
        assert_eq!(choose_block(&[row(3, &[2])], 2), None);
        assert_eq!(choose_block(&[row(3, &[])], 0), None);
    }
}
