//! The plan of a general-admission purchase over a zone's `zone_usage` shards, the same on every
//! database: how a zone's capacity is sliced, and which shards give how many places.

use std::collections::BTreeMap;

/// Most shards per zone: more than the connections that usually write at once, so a purchase
/// nearly always finds an unlocked shard with room.
pub(crate) const MAX_SHARDS: u32 = 32;

/// The slices of a zone of `capacity` places: up to [`MAX_SHARDS`] shards, sizes differing by at
/// most one, adding up to `capacity`.
pub(crate) fn slices(capacity: u32) -> Vec<u32> {
    let shards = capacity.clamp(1, MAX_SHARDS);
    (0..shards)
        .map(|s| capacity / shards + u32::from(s < capacity % shards))
        .collect()
}

/// Room per shard (only shards with room matter).
pub(crate) type Rooms = BTreeMap<u16, u32>;

pub(crate) fn total(rooms: &Rooms) -> u32 {
    rooms.values().fold(0u32, |sum, r| sum.saturating_add(*r))
}

/// Which shards give how many of the `n` places: the rooms in shard order until `n` is reached.
pub(crate) fn allocate(rooms: &Rooms, n: u32) -> BTreeMap<u16, u32> {
    let mut plan = BTreeMap::new();
    let mut left = n;
    for (&shard, &room) in rooms {
        if left == 0 {
            break;
        }
        let count = room.min(left);
        plan.insert(shard, count);
        left -= count;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_add_up_to_the_capacity_and_differ_by_at_most_one() {
        for capacity in [0, 1, 2, 31, 32, 33, 1_000, 1_000_000, u32::MAX] {
            let s = slices(capacity);
            assert_eq!(s.len() as u32, capacity.clamp(1, MAX_SHARDS));
            assert_eq!(
                s.iter().map(|&x| u64::from(x)).sum::<u64>(),
                u64::from(capacity)
            );
            let (lo, hi) = (s.iter().min().unwrap(), s.iter().max().unwrap());
            assert!(hi - lo <= 1, "{capacity}: {s:?}");
        }
    }

    #[test]
    fn allocation_takes_exactly_n_from_shards_with_room() {
        let rooms: Rooms = [(2, 1), (5, 3), (9, 10)].into_iter().collect();
        let plan = allocate(&rooms, 5);
        assert_eq!(plan, [(2, 1), (5, 3), (9, 1)].into_iter().collect());
        assert_eq!(allocate(&rooms, 1), [(2, 1)].into_iter().collect());
    }
}
