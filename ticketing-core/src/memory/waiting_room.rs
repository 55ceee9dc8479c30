//! [`InMemoryWaitingRoom`]: the waiting room in one process.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::lock;
use crate::Result;
use crate::domain::{AdmissionPolicy, AdmissionRefusal, CustomerId, EventId, QueueOrder};
use crate::ports::{Admission, Gate, Occupancy, Place, WaitingRoom};

/// The [`WaitingRoom`] in memory: every event's queue and admissions behind one mutex, so each
/// call is atomic. For one server (or a test); servers that share a sale share a Redis or SQL
/// waiting room instead.
#[derive(Debug, Default)]
pub struct InMemoryWaitingRoom {
    rooms: Mutex<HashMap<EventId, Room>>,
}

impl InMemoryWaitingRoom {
    /// An empty waiting room.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Debug, Default)]
struct Room {
    policy: Option<AdmissionPolicy>,
    /// (score, arrival) → customer: the queue in exit order.
    queue: BTreeMap<(u64, u64), CustomerId>,
    /// customer → its queue key.
    waiting: HashMap<CustomerId, (u64, u64)>,
    /// customer → its admission (live or lapsed, not used) and whether a purchase uses it.
    admitted: HashMap<CustomerId, (Admission, bool)>,
    arrivals: u64,
    issued: u64,
    /// The second (ms since the epoch / 1000) of the rate's window and its admissions.
    rate_window: (i64, u32),
}

impl Room {
    fn live(&self, customer: &CustomerId, now: DateTime<Utc>) -> Option<&(Admission, bool)> {
        self.admitted
            .get(customer)
            .filter(|(admission, _)| admission.expires > now)
    }

    fn place(&self, customer: &CustomerId, now: DateTime<Utc>) -> Place {
        let Some(policy) = self.policy else {
            return Place::NotRequired;
        };
        if let Some((admission, _)) = self.live(customer, now) {
            return Place::Admitted(admission.clone());
        }
        match self.waiting.get(customer) {
            Some(key) => Place::Waiting {
                position: self.queue.range(..key).count() as u64 + 1,
                policy,
            },
            None => Place::Absent,
        }
    }
}

#[async_trait]
impl WaitingRoom for InMemoryWaitingRoom {
    async fn set_policy(&self, event: EventId, policy: Option<AdmissionPolicy>) -> Result<()> {
        lock(&self.rooms).entry(event).or_default().policy = policy;
        Ok(())
    }

    async fn policy(&self, event: EventId) -> Result<Option<AdmissionPolicy>> {
        Ok(lock(&self.rooms).get(&event).and_then(|room| room.policy))
    }

    async fn join(
        &self,
        event: EventId,
        customer: &CustomerId,
        lottery: u64,
        now: DateTime<Utc>,
    ) -> Result<Place> {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(&event).filter(|room| room.policy.is_some()) else {
            return Ok(Place::NotRequired);
        };
        if room.live(customer, now).is_none() && !room.waiting.contains_key(customer) {
            room.arrivals += 1;
            let score = match room.policy.map(|p| p.order()) {
                Some(QueueOrder::Random) => lottery,
                _ => 0,
            };
            let key = (score, room.arrivals);
            room.queue.insert(key, customer.clone());
            room.waiting.insert(customer.clone(), key);
        }
        Ok(room.place(customer, now))
    }

    async fn place(
        &self,
        event: EventId,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Place> {
        Ok(lock(&self.rooms)
            .get(&event)
            .map_or(Place::NotRequired, |room| room.place(customer, now)))
    }

    async fn admit(&self, event: EventId, now: DateTime<Utc>) -> Result<Vec<Admission>> {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(&event) else {
            return Ok(Vec::new());
        };
        let Some(policy) = room.policy else {
            return Ok(Vec::new());
        };
        room.admitted
            .retain(|_, (admission, _)| admission.expires > now);
        let second = now.timestamp_millis().div_euclid(1000);
        if room.rate_window.0 != second {
            room.rate_window = (second, 0);
        }
        let room_left = match policy.mode() {
            crate::domain::AdmissionMode::Concurrent(cap) => {
                (cap as usize).saturating_sub(room.admitted.len())
            }
            crate::domain::AdmissionMode::PerSecond(rate) => {
                rate.saturating_sub(room.rate_window.1) as usize
            }
        };
        let mut admitted = Vec::new();
        while admitted.len() < room_left {
            let Some((_, customer)) = room.queue.pop_first() else {
                break;
            };
            room.waiting.remove(&customer);
            room.issued += 1;
            let admission = Admission {
                customer: customer.clone(),
                id: room.issued,
                expires: now + policy.window(),
            };
            room.admitted.insert(customer, (admission.clone(), false));
            admitted.push(admission);
        }
        room.rate_window.1 += admitted.len() as u32;
        Ok(admitted)
    }

    async fn begin_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Gate> {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(&event).filter(|room| room.policy.is_some()) else {
            return Ok(Gate::NotRequired);
        };
        let Some(id) = admission else {
            return Ok(Gate::Refused(AdmissionRefusal::Missing));
        };
        match room.admitted.get_mut(customer) {
            Some((live, in_use)) if live.id == id && live.expires > now => {
                if *in_use {
                    Ok(Gate::Refused(AdmissionRefusal::InUse))
                } else {
                    *in_use = true;
                    Ok(Gate::Granted)
                }
            }
            _ => Ok(Gate::Refused(AdmissionRefusal::NotAdmitted)),
        }
    }

    async fn finish_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: u64,
        bought: bool,
    ) -> Result<()> {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(&event) else {
            return Ok(());
        };
        if let Some((live, in_use)) = room.admitted.get_mut(customer)
            && live.id == admission
            && *in_use
        {
            if bought {
                room.admitted.remove(customer);
            } else {
                *in_use = false;
            }
        }
        Ok(())
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        lock(&self.rooms).remove(&event);
        Ok(())
    }

    async fn occupancy(&self, event: EventId, now: DateTime<Utc>) -> Result<Occupancy> {
        let rooms = lock(&self.rooms);
        Ok(rooms
            .get(&event)
            .map_or_else(Occupancy::default, |room| Occupancy {
                waiting: room.queue.len() as u64,
                admitted: room
                    .admitted
                    .values()
                    .filter(|(a, _)| a.expires > now)
                    .count() as u64,
            }))
    }
}
