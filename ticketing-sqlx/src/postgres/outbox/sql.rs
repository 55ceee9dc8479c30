//! The outbox's statements on PostgreSQL, as the shared flow's [`Outbox`] constants. Lists are
//! bound as arrays, so every statement is a constant.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{PgConnection, PgPool, Postgres};
use ticketing_core::Error;
use ticketing_core::domain::OutboxEvent;

use crate::codec::stored;
use crate::flows::outbox::Outbox;
use crate::postgres::error::StoreResult;

impl Outbox for Postgres {
    type Seq = i64;

    const LOCK_NUMBERING: &'static str =
        "SELECT numbered_seq FROM outbox_relay WHERE id = 1 FOR UPDATE";
    /// Served by `ix_outbox_unnumbered`.
    const SELECT_UNNUMBERED: &'static str = SELECT_UNNUMBERED;
    const SET_NUMBERED: &'static str = "UPDATE outbox_relay SET numbered_seq = $1 WHERE id = 1";
    const SELECT_HEAD: &'static str = "SELECT numbered_seq FROM outbox_relay WHERE id = 1";
    const SELECT_AFTER: &'static str =
        "SELECT seq, payload FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2";
    const RELEASE_LEASE: &'static str =
        "UPDATE outbox_relay SET holder = NULL, lease_until = NULL WHERE id = 1 AND holder = $1";
    const SELECT_UNSENT: &'static str = "SELECT seq, payload FROM outbox \
         WHERE seq > (SELECT sent_seq FROM outbox_relay WHERE id = 1) ORDER BY seq LIMIT $1";
    const MARK_SENT: &'static str =
        "UPDATE outbox_relay SET sent_seq = GREATEST(sent_seq, $1) WHERE id = 1 AND holder = $2";
    const REWIND: &'static str =
        "UPDATE outbox_relay SET sent_seq = LEAST(sent_seq, $1) WHERE id = 1 AND holder = $2";
    const SELECT_SENT: &'static str = "SELECT sent_seq FROM outbox_relay WHERE id = 1";
    const SELECT_PRUNABLE: &'static str = SELECT_PRUNABLE;
    const PRUNE_UP_TO: &'static str = PRUNE_UP_TO;

    fn seq_bind(seq: u64) -> i64 {
        i64::try_from(seq).unwrap_or(i64::MAX)
    }

    fn seq_number(seq: i64) -> Result<u64, Error> {
        stored(u64::try_from(seq))
    }

    fn seq_count(n: usize) -> i64 {
        n as i64
    }

    /// One row per event, inserted in array order, so ids (from the identity sequence) follow
    /// it.
    async fn append(conn: &mut PgConnection, events: &[OutboxEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let payloads = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::internal(format!("outbox event does not serialise: {e}")))?;
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        let orders: Vec<uuid::Uuid> = events.iter().map(|e| e.order_id.as_uuid()).collect();
        let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.at).collect();
        sqlx::query(
            "INSERT INTO outbox (kind, order_id, recorded_at, payload) \
             SELECT e.kind, e.order_id, e.recorded_at, e.payload \
             FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[]) WITH ORDINALITY \
             AS e(kind, order_id, recorded_at, payload, ord) ORDER BY e.ord",
        )
        .bind(kinds)
        .bind(orders)
        .bind(times)
        .bind(payloads)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn number_rows(conn: &mut PgConnection, last: i64, ids: &[i64]) -> StoreResult<u64> {
        let numbered = sqlx::query(
            "UPDATE outbox AS o SET seq = $1 + n.ord \
             FROM unnest($2::bigint[]) WITH ORDINALITY AS n(id, ord) \
             WHERE o.id = n.id AND o.seq IS NULL",
        )
        .bind(last)
        .bind(ids)
        .execute(&mut *conn)
        .await?;
        Ok(numbered.rows_affected())
    }

    /// PostgreSQL counts a row updated to the same values, so a renewal counts 1.
    async fn take_lease(
        pool: &PgPool,
        relay: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE outbox_relay SET holder = $1, lease_until = $2 \
             WHERE id = 1 AND (holder IS NULL OR holder = $1 OR lease_until <= $3)",
        )
        .bind(relay)
        .bind(now + ttl)
        .bind(now)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Binds: limit. Committed rows without a number, oldest id first (`ix_outbox_unnumbered`). A
/// plain read at READ COMMITTED: it sees committed rows only and waits for no writer.
pub(in crate::postgres) const SELECT_UNNUMBERED: &str =
    "SELECT id FROM outbox WHERE seq IS NULL ORDER BY id LIMIT $1";

/// Binds: limit. The oldest published entries with their time: a range of `uq_outbox_seq`.
pub(in crate::postgres) const SELECT_PRUNABLE: &str = "SELECT seq, recorded_at FROM outbox \
     WHERE seq <= (SELECT sent_seq FROM outbox_relay WHERE id = 1) ORDER BY seq LIMIT $1";

/// Binds: up to (a number from [`SELECT_PRUNABLE`], so at most the sent cursor), limit.
pub(in crate::postgres) const PRUNE_UP_TO: &str = "DELETE FROM outbox WHERE id IN \
     (SELECT id FROM outbox WHERE seq <= $1 ORDER BY seq LIMIT $2)";
