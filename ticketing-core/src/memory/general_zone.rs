//! The holds of one general-admission zone in the in-memory seat lock, with the number of places
//! taken kept as counters instead of summed over every hold on each call.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound::{Excluded, Included, Unbounded};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::OrderId;

/// The largest order id: with it, a range of deadline keys ends after every order of its instant.
const LAST_ORDER: OrderId = OrderId::from_uuid(Uuid::max());

/// One order's places in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GeneralHold {
    /// Places.
    pub quantity: u32,
    /// When the hold lapses; `None` = sold.
    pub until: Option<DateTime<Utc>>,
}

impl GeneralHold {
    /// Held until after `now`, or sold.
    pub(super) fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

/// The holds of one zone. A hold asks how many places other orders have at its `now`; summing
/// every hold for that made each hold O(holds in the zone). Instead the zone keeps the sold
/// places and the held places still live at `counted_after`, and lapses holds from a
/// deadline-ordered index as callers' clocks move past them: each hold is uncounted once, so a
/// call costs O(log n), amortised, while callers' clocks move forward.
#[derive(Debug)]
pub(super) struct GeneralZone {
    /// Per order. A lapsed hold stays until a successful hold in the zone purges it, so a late
    /// `mark_sold` still finds it (and sells it) exactly as when every call summed the map.
    holds: HashMap<OrderId, GeneralHold>,
    /// Every unsold entry of `holds` by (deadline, order), with its places.
    deadlines: BTreeMap<(DateTime<Utc>, OrderId), u32>,
    /// Places of the sold entries.
    sold: u64,
    /// Places of the unsold entries whose deadline is after `counted_after`.
    held_live: u64,
    /// The latest `now` the counters were brought to. Only moves forward.
    counted_after: DateTime<Utc>,
}

impl Default for GeneralZone {
    fn default() -> Self {
        Self {
            holds: HashMap::new(),
            deadlines: BTreeMap::new(),
            sold: 0,
            held_live: 0,
            counted_after: DateTime::<Utc>::MIN_UTC,
        }
    }
}

impl GeneralZone {
    /// Places held (until after `now`) or sold, by every order.
    pub(super) fn taken(&mut self, now: DateTime<Utc>) -> u64 {
        self.lapse_until(now);
        self.sold + self.held_live + self.lapsed_since(now)
    }

    /// Places held or sold at `now` by orders other than `order`.
    pub(super) fn taken_by_others(&mut self, order: OrderId, now: DateTime<Utc>) -> u64 {
        let own = self
            .holds
            .get(&order)
            .filter(|hold| hold.is_live(now))
            .map_or(0, |hold| u64::from(hold.quantity));
        self.taken(now) - own
    }

    /// The entry of `order`, live or lapsed.
    pub(super) fn get(&self, order: OrderId) -> Option<GeneralHold> {
        self.holds.get(&order).copied()
    }

    /// Sets the entry of `order`, replacing any it had.
    pub(super) fn put(&mut self, order: OrderId, hold: GeneralHold) {
        self.remove(order);
        self.holds.insert(order, hold);
        match hold.until {
            Some(until) => {
                self.deadlines.insert((until, order), hold.quantity);
                if until > self.counted_after {
                    self.held_live += u64::from(hold.quantity);
                }
            }
            None => self.sold += u64::from(hold.quantity),
        }
    }

    /// Removes the entry of `order`, live or lapsed.
    pub(super) fn remove(&mut self, order: OrderId) -> Option<GeneralHold> {
        let hold = self.holds.remove(&order)?;
        match hold.until {
            Some(until) => {
                self.deadlines.remove(&(until, order));
                self.uncount_held(until, hold.quantity);
            }
            None => self.sold -= u64::from(hold.quantity),
        }
        Some(hold)
    }

    /// Drops every hold lapsed at `now`, as a successful hold in the zone does.
    pub(super) fn purge_lapsed(&mut self, now: DateTime<Utc>) {
        while let Some(entry) = self.deadlines.first_entry() {
            let (until, order) = *entry.key();
            if until > now {
                break;
            }
            let quantity = entry.remove();
            self.holds.remove(&order);
            self.uncount_held(until, quantity);
        }
    }

    fn uncount_held(&mut self, until: DateTime<Utc>, quantity: u32) {
        if until > self.counted_after {
            self.held_live -= u64::from(quantity);
        }
    }

    /// Moves `counted_after` forward to `now`, uncounting the holds that lapsed in between.
    fn lapse_until(&mut self, now: DateTime<Utc>) {
        if now <= self.counted_after {
            return;
        }
        let lapsed: u64 = self
            .deadlines
            .range((
                Excluded((self.counted_after, LAST_ORDER)),
                Included((now, LAST_ORDER)),
            ))
            .map(|(_, quantity)| u64::from(*quantity))
            .sum();
        self.held_live -= lapsed;
        self.counted_after = now;
    }

    /// For a `now` behind `counted_after` (a caller whose clock lags or jumped back): the places
    /// of holds that lapsed after `now` and were already uncounted. Costs one step per such hold.
    fn lapsed_since(&self, now: DateTime<Utc>) -> u64 {
        if now >= self.counted_after {
            return 0;
        }
        self.deadlines
            .range((Excluded((now, LAST_ORDER)), Unbounded))
            .take_while(|((until, _), _)| *until <= self.counted_after)
            .map(|(_, quantity)| u64::from(*quantity))
            .sum()
    }

    /// The same sum as [`taken`](Self::taken), recounted from every entry, for tests.
    #[cfg(test)]
    pub(super) fn recount(&self, now: DateTime<Utc>) -> u64 {
        self.holds
            .values()
            .filter(|hold| hold.is_live(now))
            .map(|hold| u64::from(hold.quantity))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use proptest::prelude::*;

    use super::*;

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(second)
    }

    fn order(n: u8) -> OrderId {
        OrderId::from_uuid(Uuid::from_u128(u128::from(n) + 1))
    }

    #[derive(Debug, Clone)]
    enum Step {
        Put {
            order: u8,
            quantity: u32,
            until: Option<i64>,
        },
        Remove(u8),
        Purge(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..8, 1u32..5, proptest::option::weighted(0.8, 0i64..20))
                .prop_map(|(order, quantity, until)| Step::Put { order, quantity, until }),
            2 => (0u8..8).prop_map(Step::Remove),
            1 => (0i64..20).prop_map(Step::Purge),
        ]
    }

    proptest! {
        /// After any puts, removals and purges, read at any instants (forward and backward), the
        /// counters agree with a sum over every entry.
        #[test]
        fn taken_matches_a_recount(
            steps in proptest::collection::vec((step(), 0i64..20), 1..80),
        ) {
            let mut zone = GeneralZone::default();
            for (step, now) in steps {
                match step {
                    Step::Put { order: o, quantity, until } => {
                        zone.put(order(o), GeneralHold { quantity, until: until.map(at) });
                    }
                    Step::Remove(o) => {
                        zone.remove(order(o));
                    }
                    Step::Purge(now) => zone.purge_lapsed(at(now)),
                }
                let now = at(now);
                prop_assert_eq!(zone.taken(now), zone.recount(now));
                for o in 0..8 {
                    let others = zone.recount(now)
                        - zone.get(order(o)).filter(|h| h.is_live(now)).map_or(0, |h| u64::from(h.quantity));
                    prop_assert_eq!(zone.taken_by_others(order(o), now), others);
                }
            }
        }
    }

    #[test]
    fn a_hold_lapses_at_its_deadline_and_counts_again_for_an_earlier_now() {
        let mut zone = GeneralZone::default();
        zone.put(
            order(1),
            GeneralHold {
                quantity: 3,
                until: Some(at(10)),
            },
        );
        zone.put(
            order(2),
            GeneralHold {
                quantity: 2,
                until: None,
            },
        );
        assert_eq!(zone.taken(at(9)), 5);
        assert_eq!(zone.taken(at(10)), 2, "lapsed at its deadline");
        assert_eq!(zone.taken(at(9)), 5, "a lagging clock still sees it");
        zone.purge_lapsed(at(10));
        assert_eq!(zone.taken(at(9)), 2, "purged for good");
        assert_eq!(zone.get(order(1)), None);
    }
}
