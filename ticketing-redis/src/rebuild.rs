//! Rebuilding an event's state from the database after Redis lost it.
//!
//! After a data loss every buyer of the event sees `NotLoaded` at once. One of them claims a short
//! lock (`SET NX PX` with a random token), reads the active holds from the [`HoldSource`] once, and
//! replaces the event's state in one script that also sets the loaded marker and frees the lock.
//! The others poll (claim script, one round trip) until the marker appears, without reading the
//! source. The write is fenced by the token: a rebuilder whose lock lapsed and was taken over writes
//! nothing. A dead rebuilder's lock lapses after
//! [`rebuild_lock_ttl`](crate::RedisSeatLockConfig::rebuild_lock_ttl) and a waiter takes over.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::Value;
use ticketing_core::Result;
use ticketing_core::domain::{EventId, OrderId, ZoneCode};
use ticketing_core::ports::{ActiveHold, HoldItem, HoldSource};
use tokio::time::{Instant, sleep};

use crate::error::RedisLockError;
use crate::lock::{RedisSeatLock, random_token};
use crate::values::{self, held_value, millis, sold_value};

/// What the claim script answered.
enum Claim {
    /// The event is loaded: nothing to do.
    Loaded,
    /// The lock is ours: read the source and write.
    Claimed,
    /// Someone else is rebuilding: wait.
    Busy,
}

impl RedisSeatLock {
    /// Replaces the event's state with the holds read from `source`, even when the event is
    /// loaded: for reconciling the lock with the database on purpose (an admin action, a test).
    ///
    /// Like [`rebuild`](ticketing_core::ports::SeatLock::rebuild), it runs under the event's
    /// rebuild lock, waiting for a rebuild in progress to finish first. Holds taken between the read
    /// of `source` and the write are lost (the database still enforces every invariant).
    pub async fn reload(&self, event: EventId, source: &dyn HoldSource) -> Result<()> {
        self.rebuild_event(event, source, true).await
    }

    /// The rebuild protocol; with `force`, a loaded event is replaced too.
    pub(crate) async fn rebuild_event(
        &self,
        event: EventId,
        source: &dyn HoldSource,
        force: bool,
    ) -> Result<()> {
        let started = Instant::now();
        let token = random_token();
        loop {
            match self.claim(event, &token, force).await? {
                Claim::Loaded => return Ok(()),
                Claim::Claimed => {
                    if self.rebuild_claimed(event, &token, source).await? {
                        tracing::info!(%event, "seat lock rebuilt from the database");
                        return Ok(());
                    }
                    tracing::warn!(%event, "rebuild lock lapsed before the write; nothing written");
                }
                Claim::Busy => {}
            }
            if started.elapsed() >= self.config.rebuild_wait {
                return Err(RedisLockError::RebuildTimedOut {
                    event,
                    waited: self.config.rebuild_wait,
                }
                .into());
            }
            sleep(self.config.rebuild_poll_interval).await;
        }
    }

    async fn claim(&self, event: EventId, token: &str, force: bool) -> Result<Claim> {
        const SCRIPT: &str = "claim_rebuild";
        let keys = self.keys(event);
        let ttl_ms = u64::try_from(self.config.rebuild_lock_ttl.as_millis()).unwrap_or(u64::MAX);
        let mut invocation = self.scripts.claim_rebuild.prepare_invoke();
        invocation
            .key(&keys.loaded)
            .key(&keys.rebuild_lock)
            .arg(token)
            .arg(ttl_ms)
            .arg(if force { "1" } else { "0" });
        let reply = self.run(&invocation).await?;
        match values::text(SCRIPT, &reply)?.as_str() {
            "loaded" => Ok(Claim::Loaded),
            "claimed" => Ok(Claim::Claimed),
            "busy" => Ok(Claim::Busy),
            other => Err(RedisLockError::reply(SCRIPT, other).into()),
        }
    }

    /// Reads the source and writes it under the claimed lock. `false` when the lock was lost.
    async fn rebuild_claimed(
        &self,
        event: EventId,
        token: &str,
        source: &dyn HoldSource,
    ) -> Result<bool> {
        let holds = match source.active_holds(event).await {
            Ok(holds) => holds,
            Err(err) => {
                // Let the next caller try at once instead of waiting for the TTL.
                if let Err(unclaim) = self.unclaim(event, token).await {
                    tracing::warn!(%event, error = %unclaim, "could not free the rebuild lock");
                }
                return Err(err);
            }
        };
        let state = RebuiltState::from_holds(holds);
        let keys = self.keys(event);
        let mut invocation = self.scripts.rebuild.prepare_invoke();
        for key in keys.state() {
            invocation.key(key);
        }
        invocation
            .key(&keys.rebuild_lock)
            .arg(token)
            .arg(state.seats.len());
        for (seat, value) in &state.seats {
            invocation.arg(seat).arg(value);
        }
        for ((zone, order), entry) in &state.general {
            invocation
                .arg(zone.as_str())
                .arg(order.to_string())
                .arg(entry.places)
                .arg(
                    entry
                        .until
                        .map(|u| millis(u).to_string())
                        .unwrap_or_default(),
                );
        }
        let reply = self.run(&invocation).await?;
        Ok(values::int("rebuild", &reply)? == 1)
    }

    async fn unclaim(&self, event: EventId, token: &str) -> Result<(), RedisLockError> {
        let keys = self.keys(event);
        let mut invocation = self.scripts.unclaim_rebuild.prepare_invoke();
        invocation.key(&keys.rebuild_lock).arg(token);
        let _: Value = self.run(&invocation).await?;
        Ok(())
    }
}

/// The active holds of an event, merged into what the rebuild script writes.
#[derive(Debug, Default, PartialEq)]
struct RebuiltState {
    /// Seat key → encoded seat value.
    seats: HashMap<String, String>,
    /// (zone, order) → places and deadline.
    general: HashMap<(ZoneCode, OrderId), GeneralEntry>,
}

/// The general-admission places of one order in one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GeneralEntry {
    places: u64,
    /// `None` when sold.
    until: Option<DateTime<Utc>>,
}

impl RebuiltState {
    /// Merges the holds: one ticket per general-admission place becomes one entry per order and
    /// zone; a seat listed twice (which the database forbids) keeps the sold or the later hold.
    fn from_holds(holds: Vec<ActiveHold>) -> Self {
        let mut seats: HashMap<String, (OrderId, Option<DateTime<Utc>>)> = HashMap::new();
        let mut general: HashMap<(ZoneCode, OrderId), GeneralEntry> = HashMap::new();
        for hold in holds {
            match hold.item {
                HoldItem::Seat(seat) => {
                    let entry = seats.entry(seat.key()).or_insert((hold.order, hold.until));
                    if outlasts(hold.until, entry.1) {
                        *entry = (hold.order, hold.until);
                    }
                }
                HoldItem::General { zone, quantity, .. } => {
                    let entry = general.entry((zone, hold.order)).or_insert(GeneralEntry {
                        places: 0,
                        until: hold.until,
                    });
                    entry.places += u64::from(quantity);
                    if outlasts(hold.until, entry.until) {
                        entry.until = hold.until;
                    }
                }
            }
        }
        let seats = seats
            .into_iter()
            .map(|(seat, (order, until))| {
                let value = match until {
                    Some(until) => held_value(order, until),
                    None => sold_value(order),
                };
                (seat, value)
            })
            .collect();
        Self { seats, general }
    }
}

/// Whether a hold with deadline `a` outlasts one with `b` (`None` = sold = forever).
fn outlasts(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a > b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_core::domain::SeatRef;
    use uuid::Uuid;

    fn order(n: u128) -> OrderId {
        OrderId::from_uuid(Uuid::from_u128(n))
    }

    fn at(ms: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(ms)
    }

    #[test]
    fn general_places_are_summed_per_order_and_sold_wins() {
        let zone: ZoneCode = "FLOOR".parse().unwrap();
        let place = |o, until| ActiveHold {
            order: order(o),
            item: HoldItem::General {
                zone: zone.clone(),
                quantity: 1,
                capacity: 10,
            },
            until,
        };
        let seat: SeatRef = "A:1:1".parse().unwrap();
        let state = RebuiltState::from_holds(vec![
            place(1, at(5)),
            place(1, at(5)),
            place(2, at(7)),
            place(2, None),
            ActiveHold {
                order: order(3),
                item: HoldItem::Seat(seat.clone()),
                until: at(9),
            },
            ActiveHold {
                order: order(4),
                item: HoldItem::Seat(seat.clone()),
                until: None,
            },
        ]);
        assert_eq!(
            state.general[&(zone.clone(), order(1))],
            GeneralEntry {
                places: 2,
                until: at(5)
            }
        );
        assert_eq!(
            state.general[&(zone, order(2))],
            GeneralEntry {
                places: 2,
                until: None
            }
        );
        assert_eq!(state.seats[&seat.key()], sold_value(order(4)));
    }
}
