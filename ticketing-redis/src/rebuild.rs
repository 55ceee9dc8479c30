//! Rebuilding an event's state from the database after Redis lost it, in chunks.
//!
//! After a data loss every buyer of the event sees `NotLoaded` at once. One of them claims the
//! rebuild lease (`SET NX PX` with a random token) and reads the [`HoldSource`] page by page; each
//! page goes to Redis in script calls of at most
//! [`rebuild_chunk`](crate::RedisSeatLockConfig::rebuild_chunk) holds, written into staging keys
//! next to the event's state, and each call renews the lease. After the last page one script puts
//! the staged state in place, sets the loaded marker and frees the lease. The others poll (claim
//! script, one round trip) until the marker appears, without reading the source.
//!
//! Every call is fenced by the token: a rebuilder whose lease lapsed (it stalled for longer than
//! [`rebuild_lock_ttl`](crate::RedisSeatLockConfig::rebuild_lock_ttl) between two calls) and was
//! taken over writes nothing more; it goes back to waiting like any caller. The one that took over
//! clears the staging keys when it claims. A dead rebuilder's lease lapses the same way.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::Value;
use ticketing_core::Result;
use ticketing_core::domain::{EventId, OrderId, ZoneCode};
use ticketing_core::ports::{ActiveHold, HoldItem, HoldSource};
use tokio::time::{Instant, sleep};

use crate::error::RedisLockError;
use crate::keys::EventKeys;
use crate::lock::{RedisSeatLock, random_token};
use crate::values::{self, held_value, millis, sold_value};

/// What the claim script answered.
enum Claim {
    /// The event is loaded: nothing to do.
    Loaded,
    /// The lease is ours: read the source and write.
    Claimed,
    /// Someone else is rebuilding: wait.
    Busy,
}

impl RedisSeatLock {
    /// Replaces the event's state with the holds read from `source`, even when the event is
    /// loaded: for reconciling the lock with the database on purpose (an admin action, a test).
    ///
    /// Like [`rebuild`](ticketing_core::ports::SeatLock::rebuild), it runs under the event's
    /// rebuild lease, waiting for a rebuild in progress to finish first, and writes in chunks; the
    /// old state stays in use until the last chunk is written. Holds taken between the read of
    /// `source` and the end are lost (the database still enforces every invariant).
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
                        tracing::info!(%event, elapsed = ?started.elapsed(), "seat lock rebuilt from the database");
                        return Ok(());
                    }
                    tracing::warn!(%event, "rebuild lease lapsed and was taken over; waiting for the other rebuild");
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

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.config.rebuild_lock_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    async fn claim(&self, event: EventId, token: &str, force: bool) -> Result<Claim> {
        const SCRIPT: &str = "claim_rebuild";
        let keys = self.keys(event);
        let mut invocation = self.scripts.claim_rebuild.prepare_invoke();
        invocation.key(&keys.loaded).key(&keys.rebuild_lock);
        for key in &keys.staging {
            invocation.key(key);
        }
        invocation
            .arg(token)
            .arg(self.lease_ms())
            .arg(if force { "1" } else { "0" });
        let reply = self.run(&invocation).await?;
        match values::text(SCRIPT, &reply)?.as_str() {
            "loaded" => Ok(Claim::Loaded),
            "claimed" => Ok(Claim::Claimed),
            "busy" => Ok(Claim::Busy),
            other => Err(RedisLockError::reply(SCRIPT, other).into()),
        }
    }

    /// Reads the source page by page and writes it under the claimed lease. `false` when the
    /// lease was lost (nothing more is written). A failed read frees the lease at once.
    async fn rebuild_claimed(
        &self,
        event: EventId,
        token: &str,
        source: &dyn HoldSource,
    ) -> Result<bool> {
        let keys = self.keys(event);
        let mut after = None;
        loop {
            let page = match source.active_holds(event, after).await {
                Ok(page) => page,
                Err(err) => {
                    // Let the next caller try at once instead of waiting for the TTL.
                    if let Err(unclaim) = self.unclaim(&keys, token).await {
                        tracing::warn!(%event, error = %unclaim, "could not free the rebuild lease");
                    }
                    return Err(err);
                }
            };
            if !self.write_page(&keys, token, page.holds).await? {
                return Ok(false);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(self.finish(&keys, token).await?)
    }

    /// Writes one page in chunks of at most `rebuild_chunk` holds, each renewing the lease; a page
    /// without holds still renews it. `false` when the lease was lost.
    async fn write_page(
        &self,
        keys: &EventKeys,
        token: &str,
        holds: Vec<ActiveHold>,
    ) -> Result<bool, RedisLockError> {
        let state = RebuiltState::from_holds(holds);
        let seats: Vec<(String, String)> = state.seats.into_iter().collect();
        let general: Vec<((ZoneCode, OrderId), GeneralEntry)> = state.general.into_iter().collect();
        let chunk = self.config.rebuild_chunk;
        if seats.is_empty() && general.is_empty() {
            return self.write_chunk(keys, token, &[], &[]).await;
        }
        for part in seats.chunks(chunk) {
            if !self.write_chunk(keys, token, part, &[]).await? {
                return Ok(false);
            }
        }
        for part in general.chunks(chunk) {
            if !self.write_chunk(keys, token, &[], part).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn write_chunk(
        &self,
        keys: &EventKeys,
        token: &str,
        seats: &[(String, String)],
        general: &[((ZoneCode, OrderId), GeneralEntry)],
    ) -> Result<bool, RedisLockError> {
        let mut invocation = self.scripts.write_rebuild_chunk.prepare_invoke();
        invocation.key(&keys.rebuild_lock);
        for key in &keys.staging {
            invocation.key(key);
        }
        invocation.arg(token).arg(self.lease_ms()).arg(seats.len());
        for (seat, value) in seats {
            invocation.arg(seat).arg(value);
        }
        for ((zone, order), entry) in general {
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
        Ok(values::int("write_rebuild_chunk", &reply)? == 1)
    }

    /// Puts the staged state in place and marks the event loaded. `false` when the lease was lost.
    async fn finish(&self, keys: &EventKeys, token: &str) -> Result<bool, RedisLockError> {
        let mut invocation = self.scripts.finish_rebuild.prepare_invoke();
        for key in keys.state() {
            invocation.key(key);
        }
        invocation.key(&keys.rebuild_lock);
        for key in &keys.staging {
            invocation.key(key);
        }
        invocation.arg(token);
        let reply = self.run(&invocation).await?;
        Ok(values::int("finish_rebuild", &reply)? == 1)
    }

    async fn unclaim(&self, keys: &EventKeys, token: &str) -> Result<(), RedisLockError> {
        let mut invocation = self.scripts.unclaim_rebuild.prepare_invoke();
        invocation.key(&keys.rebuild_lock);
        for key in &keys.staging {
            invocation.key(key);
        }
        invocation.arg(token);
        let _: Value = self.run(&invocation).await?;
        Ok(())
    }
}

/// The active holds of one page, merged into what the chunk script writes.
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
    /// The chunk script merges across pages by the same rules.
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
