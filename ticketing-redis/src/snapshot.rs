//! Snapshots of an event's seat-lock state, read in bounded chunks.
//!
//! A large event's seat hash (one entry per held or sold seat, up to the venue's size) is never
//! read by one command or script: Redis runs one at a time, so one `HGETALL` of 100,000 seats
//! would stall every buyer of every event for tens of milliseconds. The whole event is scanned
//! with `HSCAN … COUNT` [`SNAPSHOT_CHUNK`]; one zone's seats are read by key,
//! [`SNAPSHOT_CHUNK`] keys per script call. The general-admission counts are one short script.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::Value;
use ticketing_core::domain::{EventId, SeatRef, Zone, ZoneCode, ZoneKind};
use ticketing_core::ports::{LockSnapshot, SeatState};

use crate::error::RedisLockError;
use crate::keys::EventKeys;
use crate::lock::RedisSeatLock;
use crate::values::{self, millis, parse_seat_value};

/// Most seat entries one Redis call of a snapshot reads: the bound on how long a seat map keeps
/// Redis from everyone else (about a millisecond). `HSCAN`'s `COUNT` is a hint: Redis may return
/// a few more entries (a whole hash bucket), never the whole hash at once unless the hash is
/// small enough to be stored compactly (at most 128 entries by default).
pub const SNAPSHOT_CHUNK: usize = 1_000;

impl RedisSeatLock {
    /// The whole event: the general-admission script (which also says whether the event is
    /// loaded), then the seat hash in `HSCAN` chunks of about [`SNAPSHOT_CHUNK`] entries. Not one
    /// atomic read: a seat that changes during the scan shows either state.
    pub(crate) async fn read_snapshot(
        &self,
        event: EventId,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>, RedisLockError> {
        let keys = self.keys(event);
        let Some(general) = self.read_general(&keys, now).await? else {
            return Ok(None);
        };
        let mut snapshot = LockSnapshot {
            seats: HashMap::new(),
            general,
        };
        let mut conn = self.conn.clone();
        let mut cursor = String::from("0");
        loop {
            let (next, flat): (String, Vec<String>) = redis::cmd("HSCAN")
                .arg(&keys.seats)
                .arg(&cursor)
                .arg("COUNT")
                .arg(SNAPSHOT_CHUNK)
                .query_async(&mut conn)
                .await?;
            for pair in flat.chunks(2) {
                let [key, value] = pair else {
                    return Err(RedisLockError::reply("HSCAN", "odd number of seat fields"));
                };
                insert_seat(&mut snapshot, event, key.parse().ok(), Some(value), now);
            }
            if next == "0" {
                return Ok(Some(snapshot));
            }
            cursor = next;
        }
    }

    /// One zone: a general-admission zone from the general-admission script, a seated zone's
    /// seats by key, [`SNAPSHOT_CHUNK`] per script call (each call also checks that the event is
    /// loaded).
    pub(crate) async fn read_zone_snapshot(
        &self,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>, RedisLockError> {
        let keys = self.keys(event);
        if let ZoneKind::GeneralAdmission { .. } = zone.kind {
            let Some(mut general) = self.read_general(&keys, now).await? else {
                return Ok(None);
            };
            general.retain(|code, _| code == &zone.code);
            return Ok(Some(LockSnapshot {
                seats: HashMap::new(),
                general,
            }));
        }
        let mut snapshot = LockSnapshot::default();
        let mut seats = zone.seats().peekable();
        loop {
            let chunk: Vec<SeatRef> = seats.by_ref().take(SNAPSHOT_CHUNK).collect();
            let mut invocation = self.scripts.seat_states.prepare_invoke();
            invocation.key(&keys.loaded).key(&keys.seats);
            for seat in &chunk {
                invocation.arg(seat.key());
            }
            let reply = self.run(&invocation).await?;
            let Some(states) = seat_states(&reply, chunk.len())? else {
                return Ok(None);
            };
            for (seat, value) in chunk.into_iter().zip(states) {
                insert_seat(&mut snapshot, event, Some(seat), value.as_deref(), now);
            }
            if seats.peek().is_none() {
                return Ok(Some(snapshot));
            }
        }
    }

    /// The general-admission places taken per zone; `None` when the event is not loaded.
    async fn read_general(
        &self,
        keys: &EventKeys,
        now: DateTime<Utc>,
    ) -> Result<Option<HashMap<ZoneCode, u32>>, RedisLockError> {
        const SCRIPT: &str = "snapshot";
        let mut invocation = self.scripts.snapshot.prepare_invoke();
        for key in keys.state() {
            invocation.key(key);
        }
        invocation.arg(millis(now));
        let reply = self.run(&invocation).await?;
        let parts = values::array(SCRIPT, &reply)?;
        match (
            parts.first().map(|v| values::int(SCRIPT, v)).transpose()?,
            parts.len(),
        ) {
            (Some(0), 1) => return Ok(None),
            (Some(1), 2) => {}
            _ => return Err(RedisLockError::reply(SCRIPT, format!("{reply:?}"))),
        }
        let mut general = HashMap::new();
        for (zone, taken) in array_pairs(SCRIPT, &parts[1])? {
            let Ok(zone) = zone.parse::<ZoneCode>() else {
                tracing::warn!(event = %keys.event, zone, "unreadable general-admission zone is left out");
                continue;
            };
            let taken = u32::try_from(taken).unwrap_or(if taken < 0 { 0 } else { u32::MAX });
            general.insert(zone, taken);
        }
        Ok(Some(general))
    }
}

/// Adds one stored seat entry to `snapshot` unless it is free or lapsed; an unreadable entry
/// counts as free and is logged.
fn insert_seat(
    snapshot: &mut LockSnapshot,
    event: EventId,
    seat: Option<SeatRef>,
    value: Option<&str>,
    now: DateTime<Utc>,
) {
    let Some(value) = value else {
        return;
    };
    let (Some(seat), Some(state)) = (seat, parse_seat_value(value)) else {
        tracing::warn!(%event, value, "unreadable seat-lock entry counts as free");
        return;
    };
    let lapsed = matches!(state, SeatState::Held { until, .. } if until <= now);
    if !lapsed {
        snapshot.seats.insert(seat, state);
    }
}

/// Reads the seat-states script's reply: `None` when the event is not loaded, else one value per
/// asked seat (`None` for a free one).
fn seat_states(reply: &Value, asked: usize) -> Result<Option<Vec<Option<String>>>, RedisLockError> {
    const SCRIPT: &str = "seat_states";
    let parts = values::array(SCRIPT, reply)?;
    match (
        parts.first().map(|v| values::int(SCRIPT, v)).transpose()?,
        parts.len(),
    ) {
        (Some(0), 1) => return Ok(None),
        (Some(1), 2) => {}
        _ => return Err(RedisLockError::reply(SCRIPT, format!("{reply:?}"))),
    }
    let states = values::array(SCRIPT, &parts[1])?
        .iter()
        .map(|value| match value {
            Value::Nil => Ok(None),
            other => values::text(SCRIPT, other).map(Some),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if states.len() != asked {
        return Err(RedisLockError::reply(
            SCRIPT,
            format!("{} values for {asked} seats", states.len()),
        ));
    }
    Ok(Some(states))
}

/// A flat `[text, integer, text, integer, …]` array reply as pairs.
fn array_pairs(script: &'static str, value: &Value) -> Result<Vec<(String, i64)>, RedisLockError> {
    let items = values::array(script, value)?;
    items
        .chunks(2)
        .map(|pair| match pair {
            [name, count] => Ok((values::text(script, name)?, values::int(script, count)?)),
            _ => Err(RedisLockError::reply(script, "odd number of zone fields")),
        })
        .collect()
}
