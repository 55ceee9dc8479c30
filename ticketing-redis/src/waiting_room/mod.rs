//! [`RedisWaitingRoom`]: the [`WaitingRoom`] port on Redis, one Lua script per operation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{ErrorKind, Script, ScriptInvocation, ServerErrorKind};
use ticketing_core::domain::{AdmissionPolicy, AdmissionRefusal, CustomerId, EventId};
use ticketing_core::ports::{Admission, Gate, Occupancy, Place, WaitingRoom};
use ticketing_core::{Error, Result};

use crate::connection::{RedisConnection, RedisConnectionConfig};
use crate::error::RedisLockError;
use crate::values::millis;

/// The waiting rooms of events on Redis.
///
/// Each event's room is four keys under the event's hash tag `<prefix>{ev:<id>}:wr:…` (one Redis
/// Cluster slot, every key passed in `KEYS`): the policy hash (with the admission and arrival
/// counters and the rate's window), the queue (a sorted set by arrival or lottery number), the
/// live admissions (a sorted set by expiry: what the cap counts) and the admissions themselves
/// (a hash customer → `id|expires_ms|state`). Join, place, admit, the purchase gate and its end
/// are each one script, so Redis runs each atomically, whatever the number of servers.
///
/// Keys carry no TTL: used admissions are deleted, lapsed ones by the next admit; an event's
/// room is deleted (one `DEL`) by [`WaitingRoom::forget`] once the event is over.
pub struct RedisWaitingRoom {
    conn: RedisConnection,
    prefix: String,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisWaitingRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWaitingRoom")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The policy's own fields in its hash (the rest are counters).
const POLICY_FIELDS: [&str; 4] = ["mode", "limit", "order", "window_ms"];

struct Scripts {
    join: Script,
    place: Script,
    admit: Script,
    begin_purchase: Script,
    finish_purchase: Script,
    occupancy: Script,
}

/// The keys of one event's room.
struct RoomKeys {
    policy: String,
    queue: String,
    live: String,
    admissions: String,
}

impl RoomKeys {
    fn new(prefix: &str, event: EventId) -> Self {
        let base = format!("{prefix}{{ev:{event}}}:wr");
        Self {
            policy: format!("{base}:policy"),
            queue: format!("{base}:queue"),
            live: format!("{base}:live"),
            admissions: format!("{base}:admissions"),
        }
    }
}

impl RedisWaitingRoom {
    /// A waiting room over an existing connection, its keys under `key_prefix` (e.g. `"tkt:"`,
    /// the seat lock's). A prefix with `{` or `}` is [`Error::Config`]: the event's `{ev:<id>}`
    /// must be each key's hash tag.
    pub fn new(conn: impl Into<RedisConnection>, key_prefix: impl Into<String>) -> Result<Self> {
        let prefix = key_prefix.into();
        if prefix.contains(['{', '}']) {
            return Err(Error::config(
                "key_prefix",
                "must not contain { or } (the event's hash tag must be the first one in each key)",
            ));
        }
        Ok(Self {
            conn: conn.into(),
            prefix,
            scripts: Scripts {
                join: Script::new(include_str!("lua/join.lua")),
                place: Script::new(include_str!("lua/place.lua")),
                admit: Script::new(include_str!("lua/admit.lua")),
                begin_purchase: Script::new(include_str!("lua/begin_purchase.lua")),
                finish_purchase: Script::new(include_str!("lua/finish_purchase.lua")),
                occupancy: Script::new(include_str!("lua/occupancy.lua")),
            },
        })
    }

    /// Connects to `nodes` (see [`RedisConnection::connect`]) with default timeouts. An
    /// unreachable server is [`Error::Unavailable`]; a malformed URL is [`Error::Config`].
    pub async fn connect(nodes: &str, key_prefix: impl Into<String>) -> Result<Self> {
        let conn = RedisConnection::connect(nodes, RedisConnectionConfig::default()).await?;
        Self::new(conn, key_prefix)
    }

    /// Runs a script (EVALSHA, loading it again on NOSCRIPT a bounded number of times).
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, RedisLockError> {
        const ATTEMPTS: u32 = 3;
        let mut conn = self.conn.clone();
        let mut attempt = 1;
        loop {
            match invocation.invoke_async(&mut conn).await {
                Err(e)
                    if attempt < ATTEMPTS
                        && e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) =>
                {
                    attempt += 1;
                }
                result => return Ok(result?),
            }
        }
    }
}

fn bad(script: &'static str, reply: &[String]) -> Error {
    RedisLockError::reply(script, format!("{reply:?}")).into()
}

fn number<T: std::str::FromStr>(script: &'static str, text: &str) -> Result<T> {
    text.parse()
        .map_err(|_| RedisLockError::reply(script, format!("not a number: {text:?}")).into())
}

fn at(script: &'static str, ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| RedisLockError::reply(script, format!("not an instant: {ms}")).into())
}

/// A [`Place`] from the reply of `join.lua` or `place.lua`.
fn place_of(script: &'static str, customer: &CustomerId, reply: &[String]) -> Result<Place> {
    match reply {
        [tag] if tag == "none" => Ok(Place::NotRequired),
        [tag] if tag == "absent" => Ok(Place::Absent),
        [tag, id, expires] if tag == "admitted" => Ok(Place::Admitted(Admission {
            customer: customer.clone(),
            id: number(script, id)?,
            expires: at(script, number(script, expires)?)?,
        })),
        [tag, position, mode, limit, order, window] if tag == "waiting" => Ok(Place::Waiting {
            position: number(script, position)?,
            policy: AdmissionPolicy::from_stored(
                mode,
                number(script, limit)?,
                order,
                number(script, window)?,
            )?,
        }),
        _ => Err(bad(script, reply)),
    }
}

#[async_trait]
impl WaitingRoom for RedisWaitingRoom {
    async fn set_policy(&self, event: EventId, policy: Option<AdmissionPolicy>) -> Result<()> {
        let keys = RoomKeys::new(&self.prefix, event);
        let mut conn = self.conn.clone();
        // One command either way, so atomic; the counters stay, keeping admission ids unique.
        let command = match policy {
            Some(policy) => {
                let mut cmd = redis::cmd("HSET");
                cmd.arg(&keys.policy)
                    .arg("mode")
                    .arg(policy.mode().kind())
                    .arg("limit")
                    .arg(policy.mode().limit())
                    .arg("order")
                    .arg(policy.order().name())
                    .arg("window_ms")
                    .arg(policy.window_ms());
                cmd
            }
            None => {
                let mut cmd = redis::cmd("HDEL");
                cmd.arg(&keys.policy).arg(&POLICY_FIELDS[..]);
                cmd
            }
        };
        let _: i64 = command
            .query_async(&mut conn)
            .await
            .map_err(RedisLockError::from)?;
        Ok(())
    }

    async fn policy(&self, event: EventId) -> Result<Option<AdmissionPolicy>> {
        let keys = RoomKeys::new(&self.prefix, event);
        let mut conn = self.conn.clone();
        let (mode, limit, order, window): (
            Option<String>,
            Option<u32>,
            Option<String>,
            Option<i64>,
        ) = redis::cmd("HMGET")
            .arg(&keys.policy)
            .arg(&POLICY_FIELDS[..])
            .query_async(&mut conn)
            .await
            .map_err(RedisLockError::from)?;
        match (mode, limit, order, window) {
            (Some(mode), Some(limit), Some(order), Some(window)) => Ok(Some(
                AdmissionPolicy::from_stored(&mode, limit, &order, window)?,
            )),
            (None, ..) => Ok(None),
            _ => Err(Error::internal(format!(
                "the waiting-room policy of event {event} is incomplete"
            ))),
        }
    }

    async fn join(
        &self,
        event: EventId,
        customer: &CustomerId,
        lottery: u64,
        now: DateTime<Utc>,
    ) -> Result<Place> {
        let keys = RoomKeys::new(&self.prefix, event);
        let mut invocation = self.scripts.join.prepare_invoke();
        invocation
            .key(&keys.policy)
            .key(&keys.queue)
            .key(&keys.admissions)
            .arg(customer.as_str())
            .arg(lottery.to_string())
            .arg(millis(now));
        let reply: Vec<String> = self.run(&invocation).await?;
        place_of("join", customer, &reply)
    }

    async fn place(
        &self,
        event: EventId,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Place> {
        let keys = RoomKeys::new(&self.prefix, event);
        let mut invocation = self.scripts.place.prepare_invoke();
        invocation
            .key(&keys.policy)
            .key(&keys.queue)
            .key(&keys.admissions)
            .arg(customer.as_str())
            .arg(millis(now));
        let reply: Vec<String> = self.run(&invocation).await?;
        place_of("place", customer, &reply)
    }

    async fn admit(&self, event: EventId, now: DateTime<Utc>) -> Result<Vec<Admission>> {
        let keys = RoomKeys::new(&self.prefix, event);
        let mut invocation = self.scripts.admit.prepare_invoke();
        invocation
            .key(&keys.policy)
            .key(&keys.queue)
            .key(&keys.live)
            .key(&keys.admissions)
            .arg(millis(now));
        let reply: Vec<String> = self.run(&invocation).await?;
        if !reply.len().is_multiple_of(3) {
            return Err(bad("admit", &reply));
        }
        reply
            .chunks(3)
            .map(|entry| {
                Ok(Admission {
                    customer: CustomerId::new(entry[0].clone())
                        .map_err(|e| Error::internal(format!("a queued customer id: {e}")))?,
                    id: number("admit", &entry[1])?,
                    expires: at("admit", number("admit", &entry[2])?)?,
                })
            })
            .collect()
    }

    async fn begin_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Gate> {
        let keys = RoomKeys::new(&self.prefix, event);
        let mut invocation = self.scripts.begin_purchase.prepare_invoke();
        invocation
            .key(&keys.policy)
            .key(&keys.admissions)
            .arg(customer.as_str())
            .arg(admission.map(|id| id.to_string()).unwrap_or_default())
            .arg(millis(now));
        let reply: String = self.run(&invocation).await?;
        Ok(match reply.as_str() {
            "not_required" => Gate::NotRequired,
            "granted" => Gate::Granted,
            "missing" => Gate::Refused(AdmissionRefusal::Missing),
            "not_admitted" => Gate::Refused(AdmissionRefusal::NotAdmitted),
            "in_use" => Gate::Refused(AdmissionRefusal::InUse),
            _ => return Err(bad("begin_purchase", &[reply])),
        })
    }

    async fn finish_purchase(
        &self,
        event: EventId,
        customer: &CustomerId,
        admission: u64,
        bought: bool,
    ) -> Result<()> {
        let keys = RoomKeys::new(&self.prefix, event);
        let mut invocation = self.scripts.finish_purchase.prepare_invoke();
        invocation
            .key(&keys.admissions)
            .key(&keys.live)
            .arg(customer.as_str())
            .arg(admission.to_string())
            .arg(if bought { "1" } else { "0" });
        let _: i64 = self.run(&invocation).await?;
        Ok(())
    }

    async fn forget(&self, event: EventId) -> Result<()> {
        let keys = RoomKeys::new(&self.prefix, event);
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(&keys.policy)
            .arg(&keys.queue)
            .arg(&keys.live)
            .arg(&keys.admissions)
            .query_async(&mut conn)
            .await
            .map_err(RedisLockError::from)?;
        Ok(())
    }

    async fn occupancy(&self, event: EventId, now: DateTime<Utc>) -> Result<Occupancy> {
        let keys = RoomKeys::new(&self.prefix, event);
        let mut invocation = self.scripts.occupancy.prepare_invoke();
        invocation.key(&keys.queue).key(&keys.live).arg(millis(now));
        let (waiting, admitted): (u64, u64) = self.run(&invocation).await?;
        Ok(Occupancy { waiting, admitted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_keys_share_the_event_hash_tag() {
        let event = EventId::from_uuid(uuid::Uuid::nil());
        let keys = RoomKeys::new("tkt:", event);
        for key in [&keys.policy, &keys.queue, &keys.live, &keys.admissions] {
            assert!(
                key.starts_with("tkt:{ev:00000000-0000-0000-0000-000000000000}:wr:"),
                "{key}"
            );
        }
    }
}
