//! The event stream ports: where the outbox relay reads from ([`OutboxStore`]) and where it
//! publishes to ([`EventSink`]).
//!
//! Delivery is at-least-once: a relay that crashes between publishing and
//! [`OutboxStore::mark_sent`] publishes the same entries again. Sinks and consumers are therefore
//! idempotent by [`OutboxEntry::seq`].

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::Result;
use crate::domain::OutboxEntry;

/// Where outbox entries are published: Redis Streams, Kafka, NATS, …
///
/// Implementations must be idempotent by sequence number: publishing an entry that was published
/// before must not make consumers apply it twice (a sink either drops it, as Redis Streams does
/// with an entry id `<seq>-0` not above the stream's top, or passes the sequence number on so that
/// consumers skip it).
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Publishes `entries` (increasing sequence numbers, usually contiguous) in order. On `Ok`
    /// every entry is durable in the sink. On an error a prefix may have been published; the
    /// relay publishes the whole batch again later. A sink that cannot be reached answers
    /// [`Error::Unavailable`](crate::Error::Unavailable).
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<()>;

    /// The highest sequence number the sink holds, `Some(0)` when it holds none, or `None` when
    /// the sink cannot tell.
    ///
    /// The relay compares it with its cursor: a sink that answers less than what was marked sent
    /// lost data (a Redis restart without persistence, a stream deleted by hand), and the relay
    /// rewinds to republish from there. Required, so that a new sink says on purpose whether
    /// it can detect a loss.
    async fn high_water_mark(&self) -> Result<Option<u64>>;
}

/// The outbox as the relay sees it: the entries not yet published, a cursor of what was
/// published, and a lease so that one relay publishes at a time.
///
/// The lease is one compare-and-set record (holder, valid until). Several relays may run; at
/// most one holds the lease at any instant of the callers' clocks. A relay that lost its lease
/// (paused longer than the TTL) may still finish publishing a batch another relay publishes too:
/// that costs a duplicate, never a loss, and [`mark_sent`](OutboxStore::mark_sent) refuses it.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Takes or renews the lease for `relay` until `now + ttl`, as a compare-and-set: `true` when
    /// the lease was free, lapsed at `now`, or already held by `relay`; `false` when another relay
    /// holds it (nothing changed).
    async fn try_acquire_lease(
        &self,
        relay: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool>;

    /// Gives the lease up if `relay` holds it, so another relay can take over at once.
    async fn release_lease(&self, relay: &str) -> Result<()>;

    /// Up to `limit` entries after the sent cursor, in sequence order.
    async fn unsent(&self, limit: u32) -> Result<Vec<OutboxEntry>>;

    /// Moves the sent cursor forward to `up_to` (never backwards) if `relay` holds the lease.
    /// `false` when another relay holds it (nothing changed).
    async fn mark_sent(&self, relay: &str, up_to: u64) -> Result<bool>;

    /// Moves the sent cursor back to `to` (never forwards) if `relay` holds the lease, so the
    /// entries after `to` are published again. `false` when another relay holds it.
    async fn rewind(&self, relay: &str, to: u64) -> Result<bool>;

    /// The sent cursor: every entry with a sequence number up to it was published.
    async fn sent_up_to(&self) -> Result<u64>;

    /// Deletes up to `limit` of the oldest entries, in sequence order, that were published
    /// (sequence number up to the sent cursor) and recorded before `before`; returns how many.
    ///
    /// It deletes a prefix: it stops at the first entry that is unsent or recorded at or after
    /// `before`, so the entries left are still a contiguous run ending at the newest, and an entry
    /// after the cursor is never deleted, however old. Each call is one bounded batch; callers
    /// repeat it while it answers `limit`. A sink rewound below the oldest entry left gets only
    /// the entries that are left.
    async fn prune(&self, before: DateTime<Utc>, limit: u32) -> Result<u64>;
}
