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

/// The reads of unlocked shards with room (`FOR UPDATE SKIP LOCKED`), from shard
/// `start % MAX_SHARDS` on and wrapping around, until the rooms found hold `want` places or no
/// shard is left. Each read locks only the rows it returns, and it asks for one shard first,
/// then twice as many each time: a purchase in a zone (or tier) with room locks one shard,
/// leaving the others to concurrent purchases (a read of all shards at once would lock them
/// all). The caller runs each read [`Scan::next_read`] names and hands its rows to
/// [`Scan::found`].
pub(crate) struct Scan {
    ranges: [(u32, u32); 2],
    range: usize,
    from: u32,
    rows: u32,
    want: u32,
    rooms: Rooms,
}

impl Scan {
    pub(crate) fn new(start: u32, want: u32) -> Self {
        let first = start % MAX_SHARDS;
        Self {
            ranges: [(first, MAX_SHARDS), (0, first)],
            range: 0,
            from: first,
            rows: 1,
            want,
            rooms: Rooms::new(),
        }
    }

    /// The next read: (first shard, end shard exclusive, how many rows), or `None` when the
    /// rooms found are enough or every shard was read.
    pub(crate) fn next_read(&mut self) -> Option<(u32, u32, u32)> {
        if total(&self.rooms) >= self.want {
            return None;
        }
        while let Some(&(_, end)) = self.ranges.get(self.range) {
            if self.from < end {
                return Some((self.from, end, self.rows));
            }
            self.next_range();
        }
        None
    }

    /// What the last read found: on from its last shard, or the next range when it found none.
    pub(crate) fn found(&mut self, found: Rooms) {
        let Some(&last) = found.keys().next_back() else {
            self.next_range();
            return;
        };
        self.rooms.extend(found);
        self.from = u32::from(last) + 1;
        self.rows = (self.rows * 2).min(MAX_SHARDS);
    }

    fn next_range(&mut self) {
        self.range += 1;
        if let Some(&(from, _)) = self.ranges.get(self.range) {
            self.from = from;
        }
    }

    /// The rooms found.
    pub(crate) fn rooms(self) -> Rooms {
        self.rooms
    }
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
    fn a_scan_reads_from_its_start_wraps_around_and_stops_when_it_has_enough() {
        let mut scan = Scan::new(MAX_SHARDS + 30, 5);
        assert_eq!(scan.next_read(), Some((30, MAX_SHARDS, 1)));
        scan.found([(30, 1)].into_iter().collect());
        assert_eq!(scan.next_read(), Some((31, MAX_SHARDS, 2)));
        scan.found(Rooms::new());
        assert_eq!(scan.next_read(), Some((0, 30, 2)));
        scan.found([(0, 1), (4, 3)].into_iter().collect());
        assert_eq!(scan.next_read(), None, "5 places found");
        assert_eq!(total(&scan.rooms()), 5);
        let mut empty = Scan::new(0, 1);
        assert_eq!(empty.next_read(), Some((0, MAX_SHARDS, 1)));
        empty.found(Rooms::new());
        assert_eq!(empty.next_read(), None, "the second range is empty");
    }

    #[test]
    fn allocation_takes_exactly_n_from_shards_with_room() {
        let rooms: Rooms = [(2, 1), (5, 3), (9, 10)].into_iter().collect();
        let plan = allocate(&rooms, 5);
        assert_eq!(plan, [(2, 1), (5, 3), (9, 1)].into_iter().collect());
        assert_eq!(allocate(&rooms, 1), [(2, 1)].into_iter().collect());
    }
}
