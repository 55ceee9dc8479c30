use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::lock;
use crate::Result;
use crate::domain::{EventId, OrderId, SeatRef, ZoneCode};
use crate::ports::{
    HoldItem, HoldOutcome, HoldRequest, HoldSource, LockSnapshot, SeatLock, SeatState,
};

/// The seat lock in memory. An event without state answers [`HoldOutcome::NotLoaded`], exactly like
/// Redis after a data loss, so the rebuild path is exercised by the embedded default too.
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
    /// Per zone, per order: places and deadline (`None` = sold).
    general: HashMap<ZoneCode, HashMap<OrderId, GeneralHold>>,
}

#[derive(Debug, Clone, Copy)]
struct GeneralHold {
    quantity: u32,
    until: Option<DateTime<Utc>>,
}

impl GeneralHold {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| until > now)
    }
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

impl EventLocks {
    fn general_taken_by_others(&self, zone: &ZoneCode, order: OrderId, now: DateTime<Utc>) -> u64 {
        self.general.get(zone).map_or(0, |holds| {
            holds
                .iter()
                .filter(|(o, h)| **o != order && h.is_live(now))
                .map(|(_, h)| u64::from(h.quantity))
                .sum()
        })
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
                    let others = locks.general_taken_by_others(zone, order, now);
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
                    let holds = locks.general.entry(zone.clone()).or_default();
                    holds.retain(|_, h| h.is_live(now));
                    let hold = holds.entry(order).or_insert(GeneralHold {
                        quantity: *quantity,
                        until: Some(request.until),
                    });
                    if hold.until.is_some() {
                        *hold = GeneralHold {
                            quantity: *quantity,
                            until: Some(request.until),
                        };
                    }
                }
            }
        }
        Ok(HoldOutcome::Held)
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
                    if let Some(holds) = locks.general.get_mut(zone) {
                        holds.remove(&order);
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
                    let own = locks.general.get_mut(zone).and_then(|h| h.get_mut(&order));
                    if let Some(hold) = own {
                        *hold = GeneralHold {
                            quantity: *quantity,
                            until: None,
                        };
                    }
                }
            }
        }
        Ok(())
    }

    async fn snapshot(&self, event: EventId, now: DateTime<Utc>) -> Result<Option<LockSnapshot>> {
        let events = lock(&self.events);
        let Some(locks) = events.get(&event) else {
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
            .iter()
            .map(|(zone, holds)| {
                let taken = holds
                    .values()
                    .filter(|h| h.is_live(now))
                    .map(|h| h.quantity)
                    .sum();
                (zone.clone(), taken)
            })
            .collect();
        Ok(Some(LockSnapshot { seats, general }))
    }

    async fn rebuild(&self, event: EventId, source: Arc<dyn HoldSource>) -> Result<()> {
        let _rebuilding = self.rebuilding.lock().await;
        if lock(&self.events).contains_key(&event) {
            return Ok(()); // Someone else rebuilt it while we waited.
        }
        let holds = source.active_holds(event).await?;
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        let mut locks = EventLocks::default();
        for hold in holds {
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
                    locks.general.entry(zone).or_default().insert(
                        hold.order,
                        GeneralHold {
                            quantity,
                            until: hold.until,
                        },
                    );
                }
            }
        }
        lock(&self.events).insert(event, locks);
        Ok(())
    }
}
