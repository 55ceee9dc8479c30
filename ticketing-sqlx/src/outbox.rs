//! The transactional outbox: one row per state change, numbered in commit order.

use sqlx::{MySqlConnection, MySqlPool, Row};
use ticketing_core::Error;
use ticketing_core::domain::{OutboxEntry, OutboxEvent};

use crate::codec::{expand, value_rows};
use crate::error::StoreResult;

/// Takes `n` sequence numbers; the row stays locked until the transaction ends, so numbers are
/// handed out in commit order. `LAST_INSERT_ID(expr)` returns the new value in the OK packet.
const TAKE_SEQUENCE: &str =
    "UPDATE outbox_sequence SET last_seq = LAST_INSERT_ID(last_seq + ?) WHERE id = 1";

const INSERT_ROWS: &str =
    "INSERT INTO outbox (seq, kind, order_id, recorded_at, payload) VALUES {list}";

const SELECT_AFTER: &str = "SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?";

/// Appends `events` in order. Call it as the last statement before COMMIT: it serialises
/// committing writers on the sequence row, so the shorter it is held the better.
pub(crate) async fn append(conn: &mut MySqlConnection, events: &[OutboxEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let taken = sqlx::query(TAKE_SEQUENCE)
        .bind(events.len() as u64)
        .execute(&mut *conn)
        .await?;
    if taken.rows_affected() != 1 {
        return Err(Error::internal("outbox_sequence has no row; were the migrations run?").into());
    }
    let first = taken.last_insert_id() + 1 - events.len() as u64;
    let mut insert = sqlx::query(expand(INSERT_ROWS, &value_rows(events.len(), 5)));
    for (offset, event) in events.iter().enumerate() {
        let payload = serde_json::to_string(event)
            .map_err(|e| Error::internal(format!("outbox event does not serialise: {e}")))?;
        insert = insert
            .bind(first + offset as u64)
            .bind(event.kind.as_str())
            .bind(event.order_id.as_uuid())
            .bind(event.at)
            .bind(payload);
    }
    insert.execute(&mut *conn).await?;
    Ok(())
}

/// Up to `limit` entries after `after`, in sequence order.
pub(crate) async fn after(
    pool: &MySqlPool,
    after: u64,
    limit: u32,
) -> StoreResult<Vec<OutboxEntry>> {
    let rows = sqlx::query(SELECT_AFTER)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let payload: String = row.try_get("payload")?;
            let event: OutboxEvent = serde_json::from_str(&payload).map_err(|e| {
                Error::internal(format!("outbox row holds an unreadable event: {e}"))
            })?;
            Ok(OutboxEntry {
                seq: row.try_get("seq")?,
                event,
            })
        })
        .collect()
}
