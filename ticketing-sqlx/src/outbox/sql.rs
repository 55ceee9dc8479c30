//! The outbox's statements on MySQL, as the shared flow's [`Outbox`] constants, and the two
//! statements with a list of variable length, built with sqlx's [`QueryBuilder`].

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};
use ticketing_core::Error;
use ticketing_core::domain::OutboxEvent;

use crate::codec::push_list;
use crate::error::StoreResult;
use crate::flows::outbox::Outbox;

impl Outbox for MySql {
    type Seq = u64;

    const LOCK_NUMBERING: &'static str =
        "SELECT numbered_seq FROM outbox_relay WHERE id = 1 FOR UPDATE";
    const SELECT_UNNUMBERED: &'static str =
        "SELECT id FROM outbox WHERE seq IS NULL ORDER BY id LIMIT ?";
    const SET_NUMBERED: &'static str = "UPDATE outbox_relay SET numbered_seq = ? WHERE id = 1";
    const SELECT_HEAD: &'static str = "SELECT numbered_seq FROM outbox_relay WHERE id = 1";
    const SELECT_AFTER: &'static str =
        "SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?";
    const RELEASE_LEASE: &'static str =
        "UPDATE outbox_relay SET holder = NULL, lease_until = NULL WHERE id = 1 AND holder = ?";
    const SELECT_UNSENT: &'static str = "SELECT seq, payload FROM outbox \
         WHERE seq > (SELECT sent_seq FROM outbox_relay WHERE id = 1) ORDER BY seq LIMIT ?";
    const MARK_SENT: &'static str =
        "UPDATE outbox_relay SET sent_seq = GREATEST(sent_seq, ?) WHERE id = 1 AND holder = ?";
    const REWIND: &'static str =
        "UPDATE outbox_relay SET sent_seq = LEAST(sent_seq, ?) WHERE id = 1 AND holder = ?";
    const SELECT_SENT: &'static str = "SELECT sent_seq FROM outbox_relay WHERE id = 1";
    const SELECT_PRUNABLE: &'static str = SELECT_PRUNABLE;
    const PRUNE_UP_TO: &'static str = PRUNE_UP_TO;

    fn seq_bind(seq: u64) -> u64 {
        seq
    }

    fn seq_number(seq: u64) -> Result<u64, Error> {
        Ok(seq)
    }

    fn seq_count(n: usize) -> u64 {
        n as u64
    }

    async fn append(conn: &mut MySqlConnection, events: &[OutboxEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let payloads = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::internal(format!("outbox event does not serialise: {e}")))?;
        insert_rows(events.iter().zip(payloads))
            .build()
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The list is padded to a power of two with the last id (FIELD answers its first
    /// position, IN ignores repeats), so a relay numbering batches of every size prepares a
    /// handful of statements instead of one per size (see `STATEMENT_CACHE_CAPACITY`).
    async fn number_rows(conn: &mut MySqlConnection, last: u64, ids: &[u64]) -> StoreResult<u64> {
        let last_id = ids[ids.len() - 1];
        let mut padded = ids.to_vec();
        padded.resize(ids.len().next_power_of_two(), last_id);
        let numbered = number_rows(last, &padded)
            .build()
            .execute(&mut *conn)
            .await?;
        Ok(numbered.rows_affected())
    }

    /// The connection reports matched rows (`CLIENT_FOUND_ROWS`), so a renewal that changes
    /// nothing still counts 1.
    async fn take_lease(
        pool: &MySqlPool,
        relay: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE outbox_relay SET holder = ?, lease_until = ? \
             WHERE id = 1 AND (holder IS NULL OR holder = ? OR lease_until <= ?)",
        )
        .bind(relay)
        .bind(now + ttl)
        .bind(relay)
        .bind(now)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Rows `(kind, order, recorded_at, payload)`, one per event, in the order given.
fn insert_rows<'a, I>(rows: I) -> QueryBuilder<MySql>
where
    I: IntoIterator<Item = (&'a OutboxEvent, String)>,
{
    let mut insert =
        QueryBuilder::new("INSERT INTO outbox (kind, order_id, recorded_at, payload) ");
    insert.push_values(rows, |mut row, (event, payload)| {
        row.push_bind(event.kind.as_str())
            .push_bind(event.order_id.as_uuid())
            .push_bind(event.at)
            .push_bind(payload);
    });
    insert
}

/// Row `ids[i]` gets `last + i + 1` (`FIELD` answers an id's first position in `ids`), if it
/// has no number yet.
fn number_rows(last: u64, ids: &[u64]) -> QueryBuilder<MySql> {
    let mut number = QueryBuilder::new("UPDATE outbox SET seq = ");
    number.push_bind(last).push(" + FIELD(id, ");
    let mut positions = number.separated(", ");
    for id in ids {
        positions.push_bind(*id);
    }
    positions.push_unseparated(") WHERE seq IS NULL AND id IN ");
    push_list(&mut number, ids);
    number
}

/// The oldest published entries, up to `?` of them, with their time: a range of
/// `uq_outbox_seq` from its start (unnumbered rows, `seq IS NULL`, are not in it).
pub(crate) const SELECT_PRUNABLE: &str = "SELECT seq, recorded_at FROM outbox \
     WHERE seq <= (SELECT sent_seq FROM outbox_relay WHERE id = 1) ORDER BY seq LIMIT ?";

/// Deletes the entries up to sequence number `?`, at most `?` of them: a range of
/// `uq_outbox_seq`. The bound comes from [`SELECT_PRUNABLE`], so it is at most the sent cursor,
/// and no row can get a number at or below it any more.
pub(crate) const PRUNE_UP_TO: &str = "DELETE FROM outbox WHERE seq <= ? ORDER BY seq LIMIT ?";
