use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::general_zone::{GeneralHold, GeneralZone};
use super::lock;
use crate::Result;
use crate::domain::{EventId, OrderId, SeatRef, Zone, ZoneCode};
use crate::ports::{
    BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldRequest, HoldSource,
    LockSnapshot, SeatLock, SeatState,
};

/// The seat lock in memory. An event without state answers [`HoldOutcome::NotLoaded`], exactly like
/// Redis after a data loss, so the rebuild path is exercised by the embedded default too.
///
/// A general-admission zone keeps its places taken as counters instead of summing its holds on
/// every hold: a hold costs O(log n) in the zone's holds (amortised, as lapsed holds are
/// uncounted once each).
#[derive(Debug, Default)]
pub struct InMemorySeatLock {
    events: Mutex<HashMap<EventId, EventLocks>>,
    /// Serialises rebuilds so concurrent callers read the source once.
    rebuilding: tokio::sync::Mutex<()>,
    rebuilds: AtomicU64,
}

#[derive(Debug, Default)]
struct EventLocks {
    seats: HashMap<SeatRef, SeatState>,
    /// Per general-admission zone: its holds, with the places taken kept as counters.
    general: HashMap<ZoneCode, GeneralZone>,
}

fn seat_is_live(state: &SeatState, now: DateTime<Utc>) -> bool {
    match state {
        SeatState::Held { until, .. } => *until > now,
        SeatState::Sold { .. } => true,
    }
}

fn holder(state: &SeatState) -> OrderId {
    match state {
        SeatState::Held { order, .. } | SeatState::Sold { order } => *order,
    }
}

impl InMemorySeatLock {
    /// An empty lock: every event starts not loaded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything, as a Redis restart without persistence would.
    pub fn wipe(&self) {
        lock(&self.events).clear();
    }

    /// How many rebuilds read their source so far.
    pub fn rebuild_count(&self) -> u64 {
        self.rebuilds.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl SeatLock for InMemorySeatLock {
    async fn hold(&self, request: &HoldRequest) -> Result<HoldOutcome> {
        let mut events = lock(&self.events);
        let Some(locks) = events.get_mut(&request.event) else {
            return Ok(HoldOutcome::NotLoaded);
        };
        let (now, order) = (request.now, request.order);
        let mut taken_seats = Vec::new();
        let mut taken_zones = Vec::new();
        for item in &request.items {
            match item {
                HoldItem::Seat(seat) => {
                    if let Some(state) = locks.seats.get(seat)
                        && holder(state) != order
                        && seat_is_live(state, now)
                    {
                        taken_seats.push(seat.clone());
                    }
                }
                HoldItem::General {
                    zone,
                    quantity,
                    capacity,
                } => {
                    let others = locks
                        .general
                        .get_mut(zone)
                        .map_or(0, |places| places.taken_by_others(order, now));
                    if others + u64::from(*quantity) > u64::from(*capacity) {
                        taken_zones.push(zone.clone());
                    }
                }
            }
        }
        if !taken_seats.is_empty() || !taken_zones.is_empty() {
            return Ok(HoldOutcome::Taken {
                seats: taken_seats,
                zones: taken_zones,
            });
        }
        for item in &request.items {
            match item {
                HoldItem::Seat(seat) => {
                    let state = locks.seats.entry(seat.clone()).or_insert(SeatState::Held {
                        order,
                        until: request.until,
                    });
                    // A seat this order bought stays sold; anything else becomes our hold.
                    if !matches!(state, SeatState::Sold { order: o } if *o == order) {
                        *state = SeatState::Held {
                            order,
                            until: request.until,
                        };
                    }
                }
                HoldItem::General { zone, quantity, .. } => {
                    let places = locks.general.entry(zone.clone()).or_default();
                    places.purge_lapsed(now);
                    // Places this order bought stay sold; anything else becomes our hold.
                    if places.get(order).is_none_or(|own| own.until.is_some()) {
                        places.put(
                            order,
                            GeneralHold {
                                quantity: *quantity,
                                until: Some(request.until),
                            },
                        );
                    }
                }
            }
        }
        Ok(HoldOutcome::Held)
    }

    /// Chooses under the one mutex that every hold takes, so choice and hold are one step.
    async fn hold_best_available(
        &self,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome> {
        let mut events = lock(&self.events);
        let Some(locks) = events.get_mut(&request.event) else {
            return Ok(BestAvailableOutcome::NotLoaded);
        };
        let (now, order) = (request.now, request.order);
        let taken = locks.seats.iter().filter(|(seat, state)| {
            seat.zone == request.zone
                && seat_is_live(state, now)
                && (holder(state) != order || matches!(state, SeatState::Sold { .. }))
        });
        let Some(seats) = request.choose(taken.map(|(seat, _)| seat)) else {
            return Ok(BestAvailableOutcome::NoBlock);
        };
        for seat in &seats {
            locks.seats.insert(
                seat.clone(),
                SeatState::Held {
                    order,
                    until: request.until,
                },
            );
        }
        Ok(BestAvailableOutcome::Held { seats })
    }

    async fn release(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        let mut events = lock(&self.events);
        let Some(locks) = events.get_mut(&event) else {
            return Ok(());
        };
        for item in items {
            match item {
                HoldItem::Seat(seat) => {
                    if locks.seats.get(seat).is_some_and(|s| holder(s) == order) {
                        locks.seats.remove(seat);
                    }
                }
                HoldItem::General { zone, .. } => {
                    if let Some(places) = locks.general.get_mut(zone) {
                        places.remove(order);
                    }
                }
            }
        }
        Ok(())
    }

    async fn mark_sold(&self, event: EventId, order: OrderId, items: &[HoldItem]) -> Result<()> {
        let mut events = lock(&self.events);
        let Some(locks) = events.get_mut(&event) else {
            return Ok(());
        };
        for item in items {
            match item {
                // A free seat stays free: a release that overtook this mark must win.
                HoldItem::Seat(seat) => {
                    if let Some(state) = locks.seats.get_mut(seat) {
                        *state = SeatState::Sold { order };
                    }
                }
                HoldItem::General { zone, quantity, .. } => {
                    // A lapsed hold not purged yet is sold too.
                    if let Some(places) = locks.general.get_mut(zone)
                        && places.get(order).is_some()
                    {
                        places.put(
                            order,
                            GeneralHold {
                                quantity: *quantity,
                                until: None,
                            },
                        );
                    }
                }
            }
        }
        Ok(())
    }

    async fn snapshot(&self, event: EventId, now: DateTime<Utc>) -> Result<Option<LockSnapshot>> {
        let mut events = lock(&self.events);
        let Some(locks) = events.get_mut(&event) else {
            return Ok(None);
        };
        let seats = locks
            .seats
            .iter()
            .filter(|(_, state)| seat_is_live(state, now))
            .map(|(seat, state)| (seat.clone(), *state))
            .collect();
        let general = locks
            .general
            .iter_mut()
            .map(|(zone, places)| {
                let taken = u32::try_from(places.taken(now)).unwrap_or(u32::MAX);
                (zone.clone(), taken)
            })
            .collect();
        Ok(Some(LockSnapshot { seats, general }))
    }

    async fn zone_snapshot(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>> {
        let mut events = lock(&self.events);
        let Some(locks) = events.get_mut(&event) else {
            return Ok(None);
        };
        let seats = locks
            .seats
            .iter()
            .filter(|(seat, state)| seat.zone == zone.code && seat_is_live(state, now))
            .map(|(seat, state)| (seat.clone(), *state))
            .collect();
        let general = locks
            .general
            .get_mut(&zone.code)
            .map(|places| {
                let taken = u32::try_from(places.taken(now)).unwrap_or(u32::MAX);
                (zone.code.clone(), taken)
            })
            .into_iter()
            .collect();
        Ok(Some(LockSnapshot { seats, general }))
    }

    async fn rebuild(&self, event: EventId, source: &dyn HoldSource) -> Result<()> {
        // The mutex is the lease: it lives as long as this call, in the one process there is.
        let _rebuilding = self.rebuilding.lock().await;
        if lock(&self.events).contains_key(&event) {
            return Ok(()); // Someone else rebuilt it while we waited.
        }
        // Built aside page by page and put in place after the last one: until then the event
        // stays not loaded.
        let mut locks = EventLocks::default();
        // The source lists a general-admission order once per ticket, on one page or several: one
        // order's holds in one zone merge into one entry of their summed places, sold if any is,
        // else until the latest deadline (as the Redis and SQL locks rebuild them).
        let mut general: HashMap<(ZoneCode, OrderId), GeneralHold> = HashMap::new();
        let mut after = None;
        loop {
            let page = source.active_holds(event, after).await?;
            if after.is_none() {
                self.rebuilds.fetch_add(1, Ordering::Relaxed);
            }
            for hold in page.holds {
                match hold.item {
                    HoldItem::Seat(seat) => {
                        let state = match hold.until {
                            Some(until) => SeatState::Held {
                                order: hold.order,
                                until,
                            },
                            None => SeatState::Sold { order: hold.order },
                        };
                        locks.seats.insert(seat, state);
                    }
                    HoldItem::General { zone, quantity, .. } => {
                        let merged = general.entry((zone, hold.order)).or_insert(GeneralHold {
                            quantity: 0,
                            until: hold.until,
                        });
                        merged.quantity = merged.quantity.saturating_add(quantity);
                        merged.until = match (merged.until, hold.until) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            _ => None,
                        };
                    }
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        for ((zone, order), merged) in general {
            locks.general.entry(zone).or_default().put(order, merged);
        }
        lock(&self.events).insert(event, locks);
        Ok(())
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        lock(&self.events).remove(&event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use futures::executor::block_on;
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::domain::TicketId;
    use crate::ports::{ActiveHold, HoldPage};

    /// Zone capacities of the model: small, so zones fill up and holds lose.
    const CAPACITIES: [u32; 2] = [8, 12];

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(second)
    }

    fn order(n: u8) -> OrderId {
        OrderId::from_uuid(Uuid::from_u128(u128::from(n) + 1))
    }

    fn zone(index: usize) -> ZoneCode {
        ["GA1", "GA2"][index].parse().expect("zone code")
    }

    fn general(index: usize, quantity: u32) -> HoldItem {
        HoldItem::General {
            zone: zone(index),
            quantity,
            capacity: CAPACITIES[index],
        }
    }

    /// The general-admission half of the lock as it was before the counters: every question
    /// answered by summing every hold of the zone.
    #[derive(Debug, Default)]
    struct Recount {
        zones: HashMap<ZoneCode, HashMap<OrderId, GeneralHold>>,
    }

    impl Recount {
        fn taken(&self, zone: &ZoneCode, except: Option<OrderId>, now: DateTime<Utc>) -> u64 {
            self.zones.get(zone).map_or(0, |holds| {
                holds
                    .iter()
                    .filter(|(o, h)| Some(**o) != except && h.is_live(now))
                    .map(|(_, h)| u64::from(h.quantity))
                    .sum()
            })
        }

        fn hold(&mut self, request: &HoldRequest) -> HoldOutcome {
            let mut zones = Vec::new();
            for item in &request.items {
                if let HoldItem::General {
                    zone,
                    quantity,
                    capacity,
                } = item
                    && self.taken(zone, Some(request.order), request.now) + u64::from(*quantity)
                        > u64::from(*capacity)
                {
                    zones.push(zone.clone());
                }
            }
            if !zones.is_empty() {
                return HoldOutcome::Taken {
                    seats: Vec::new(),
                    zones,
                };
            }
            for item in &request.items {
                if let HoldItem::General { zone, quantity, .. } = item {
                    let holds = self.zones.entry(zone.clone()).or_default();
                    holds.retain(|_, h| h.is_live(request.now));
                    let held = GeneralHold {
                        quantity: *quantity,
                        until: Some(request.until),
                    };
                    let own = holds.entry(request.order).or_insert(held);
                    if own.until.is_some() {
                        *own = held;
                    }
                }
            }
            HoldOutcome::Held
        }

        fn release(&mut self, order: OrderId, zone: &ZoneCode) {
            if let Some(holds) = self.zones.get_mut(zone) {
                holds.remove(&order);
            }
        }

        fn mark_sold(&mut self, order: OrderId, zone: &ZoneCode, quantity: u32) {
            if let Some(own) = self.zones.get_mut(zone).and_then(|h| h.get_mut(&order)) {
                *own = GeneralHold {
                    quantity,
                    until: None,
                };
            }
        }

        fn snapshot(&self, now: DateTime<Utc>) -> HashMap<ZoneCode, u32> {
            self.zones
                .keys()
                .map(|zone| (zone.clone(), self.taken(zone, None, now) as u32))
                .collect()
        }

        /// Every entry, lapsed ones included, as a rebuild source; zones without entries go, as
        /// they do from a rebuilt lock.
        fn reload(&mut self) -> Vec<ActiveHold> {
            self.zones.retain(|_, holds| !holds.is_empty());
            let mut holds = Vec::new();
            for (zone, entries) in &self.zones {
                for (order, hold) in entries {
                    holds.push(ActiveHold {
                        order: *order,
                        item: HoldItem::General {
                            zone: zone.clone(),
                            quantity: hold.quantity,
                            capacity: u32::MAX,
                        },
                        until: hold.until,
                    });
                }
            }
            holds
        }
    }

    struct Source(Vec<ActiveHold>);

    #[async_trait]
    impl HoldSource for Source {
        async fn active_holds(&self, _: EventId, _: Option<TicketId>) -> Result<HoldPage> {
            Ok(HoldPage::last(self.0.clone()))
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// Places per zone (0 = not asked), at `now`, until `now + ttl`.
        Hold {
            order: u8,
            quantities: [u32; 2],
            ttl: i64,
        },
        Release {
            order: u8,
            zone: usize,
        },
        MarkSold {
            order: u8,
            zone: usize,
            quantity: u32,
        },
        /// Loses the lock's state and rebuilds it from the model.
        Rebuild,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u8..6, [0u32..5, 0u32..5], -2i64..12)
                .prop_filter("asks for something", |(_, q, _)| q.iter().any(|n| *n > 0))
                .prop_map(|(order, quantities, ttl)| Step::Hold { order, quantities, ttl }),
            2 => (0u8..6, 0usize..2).prop_map(|(order, zone)| Step::Release { order, zone }),
            2 => (0u8..6, 0usize..2, 1u32..5)
                .prop_map(|(order, zone, quantity)| Step::MarkSold { order, zone, quantity }),
            1 => Just(Step::Rebuild),
        ]
    }

    proptest! {
        /// Random holds, releases, sales and rebuilds at random (also backward) instants: every
        /// hold has the outcome, and every snapshot the taken places, that a recount of every
        /// hold gives.
        #[test]
        fn general_admission_counts_match_a_recount(
            steps in proptest::collection::vec((step(), 0i64..30, 0i64..30), 1..60),
        ) {
            let lock = InMemorySeatLock::new();
            let event = EventId::from_uuid(Uuid::from_u128(7));
            let mut model = Recount::default();
            block_on(lock.rebuild(event, &Source(Vec::new()))).expect("load");
            for (step, now, read_at) in steps {
                let now = at(now);
                match step {
                    Step::Hold { order: o, quantities, ttl } => {
                        let items = (0..2)
                            .filter(|&z| quantities[z] > 0)
                            .map(|z| general(z, quantities[z]))
                            .collect();
                        let request = HoldRequest {
                            event,
                            order: order(o),
                            items,
                            now,
                            until: now + TimeDelta::seconds(ttl),
                        };
                        let outcome = block_on(lock.hold(&request)).expect("hold");
                        prop_assert_eq!(outcome, model.hold(&request));
                    }
                    Step::Release { order: o, zone: z } => {
                        block_on(lock.release(event, order(o), &[general(z, 1)])).expect("release");
                        model.release(order(o), &zone(z));
                    }
                    Step::MarkSold { order: o, zone: z, quantity } => {
                        block_on(lock.mark_sold(event, order(o), &[general(z, quantity)]))
                            .expect("mark sold");
                        model.mark_sold(order(o), &zone(z), quantity);
                    }
                    Step::Rebuild => {
                        lock.wipe();
                        let source = Source(model.reload());
                        block_on(lock.rebuild(event, &source)).expect("rebuild");
                    }
                }
                let snapshot = block_on(lock.snapshot(event, at(read_at)))
                    .expect("snapshot")
                    .expect("loaded");
                prop_assert_eq!(snapshot.general, model.snapshot(at(read_at)));
            }
        }
    }

    #[tokio::test]
    async fn an_expired_hold_frees_its_places_without_a_release() {
        let lock = InMemorySeatLock::new();
        let event = EventId::from_uuid(Uuid::from_u128(7));
        lock.rebuild(event, &Source(Vec::new()))
            .await
            .expect("load");
        let hold = |o: u8, now: i64| HoldRequest {
            event,
            order: order(o),
            items: vec![general(0, CAPACITIES[0])],
            now: at(now),
            until: at(now + 10),
        };
        assert_eq!(lock.hold(&hold(1, 0)).await.unwrap(), HoldOutcome::Held);
        assert!(matches!(
            lock.hold(&hold(2, 9)).await.unwrap(),
            HoldOutcome::Taken { .. }
        ));
        assert_eq!(lock.hold(&hold(2, 10)).await.unwrap(), HoldOutcome::Held);
    }
}
