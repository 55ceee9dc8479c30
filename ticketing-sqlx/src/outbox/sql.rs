//! The outbox's statements. The two with a list of variable length are functions that build
//! them with sqlx's [`QueryBuilder`] and bind their values; each needs at least one entry.

use sqlx::{MySql, QueryBuilder};
use ticketing_core::domain::OutboxEvent;

use crate::codec::push_list;

/// Rows `(kind, order, recorded_at, payload)`, one per event, in the order given.
pub(super) fn insert_rows<'a, I>(rows: I) -> QueryBuilder<MySql>
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

/// Locks the numbering: one numbering transaction at a time, each continuing from the last.
pub(super) const LOCK_NUMBERING: &str =
    "SELECT numbered_seq FROM outbox_relay WHERE id = 1 FOR UPDATE";

/// Committed rows without a number, oldest id first (`ix_outbox_unnumbered`, no sort). A plain
/// read in READ COMMITTED: it sees committed rows only and waits for no writer.
pub(crate) const SELECT_UNNUMBERED: &str =
    "SELECT id FROM outbox WHERE seq IS NULL ORDER BY id LIMIT ?";

/// Row `ids[i]` gets `last + i + 1` (`FIELD` answers an id's first position in `ids`), if it
/// has no number yet.
pub(super) fn number_rows(last: u64, ids: &[u64]) -> QueryBuilder<MySql> {
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

pub(super) const SET_NUMBERED: &str = "UPDATE outbox_relay SET numbered_seq = ? WHERE id = 1";

/// The last number given.
pub(super) const SELECT_HEAD: &str = "SELECT numbered_seq FROM outbox_relay WHERE id = 1";

pub(super) const SELECT_AFTER: &str =
    "SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?";

/// The lease as a compare-and-set: taken when free, lapsed at the caller's `now`, or the caller's.
/// The connection reports matched rows (`CLIENT_FOUND_ROWS`), so a renewal that changes nothing
/// still counts 1.
pub(super) const TAKE_LEASE: &str = "UPDATE outbox_relay SET holder = ?, lease_until = ? \
     WHERE id = 1 AND (holder IS NULL OR holder = ? OR lease_until <= ?)";

pub(super) const RELEASE_LEASE: &str =
    "UPDATE outbox_relay SET holder = NULL, lease_until = NULL WHERE id = 1 AND holder = ?";

/// Numbered entries after the sent cursor. Numbers are given in publication order, so no entry
/// can appear later below one read here.
pub(super) const SELECT_UNSENT: &str = "SELECT seq, payload FROM outbox \
     WHERE seq > (SELECT sent_seq FROM outbox_relay WHERE id = 1) ORDER BY seq LIMIT ?";

pub(super) const MARK_SENT: &str =
    "UPDATE outbox_relay SET sent_seq = GREATEST(sent_seq, ?) WHERE id = 1 AND holder = ?";

pub(super) const REWIND: &str =
    "UPDATE outbox_relay SET sent_seq = LEAST(sent_seq, ?) WHERE id = 1 AND holder = ?";

pub(super) const SELECT_SENT: &str = "SELECT sent_seq FROM outbox_relay WHERE id = 1";

/// The oldest published entries, up to `?` of them, with their time: a range of
/// `uq_outbox_seq` from its start (unnumbered rows, `seq IS NULL`, are not in it).
pub(crate) const SELECT_PRUNABLE: &str = "SELECT seq, recorded_at FROM outbox \
     WHERE seq <= (SELECT sent_seq FROM outbox_relay WHERE id = 1) ORDER BY seq LIMIT ?";

/// Deletes the entries up to sequence number `?`, at most `?` of them: a range of
/// `uq_outbox_seq`. The bound comes from [`SELECT_PRUNABLE`], so it is at most the sent cursor,
/// and no row can get a number at or below it any more.
pub(crate) const PRUNE_UP_TO: &str = "DELETE FROM outbox WHERE seq <= ? ORDER BY seq LIMIT ?";
