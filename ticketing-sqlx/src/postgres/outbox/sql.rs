//! The outbox's statements on PostgreSQL. Lists are bound as arrays.

/// Binds: kinds, order ids, times, payloads — one row per event, inserted in array order, so ids
/// (from the identity sequence) follow it.
pub(super) const INSERT_ROWS: &str = "INSERT INTO outbox (kind, order_id, recorded_at, payload) \
     SELECT e.kind, e.order_id, e.recorded_at, e.payload \
     FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[]) WITH ORDINALITY \
     AS e(kind, order_id, recorded_at, payload, ord) ORDER BY e.ord";

/// Locks the numbering: one numbering transaction at a time, each continuing from the last.
pub(super) const LOCK_NUMBERING: &str =
    "SELECT numbered_seq FROM outbox_relay WHERE id = 1 FOR UPDATE";

/// Binds: limit. Committed rows without a number, oldest id first (`ix_outbox_unnumbered`). A
/// plain read at READ COMMITTED: it sees committed rows only and waits for no writer.
pub(in crate::postgres) const SELECT_UNNUMBERED: &str =
    "SELECT id FROM outbox WHERE seq IS NULL ORDER BY id LIMIT $1";

/// Binds: last number given, ids. Row `ids[i]` gets `last + i + 1`, if it has no number yet.
pub(super) const NUMBER_ROWS: &str = "UPDATE outbox AS o SET seq = $1 + n.ord \
     FROM unnest($2::bigint[]) WITH ORDINALITY AS n(id, ord) \
     WHERE o.id = n.id AND o.seq IS NULL";

pub(super) const SET_NUMBERED: &str = "UPDATE outbox_relay SET numbered_seq = $1 WHERE id = 1";

/// The last number given.
pub(super) const SELECT_HEAD: &str = "SELECT numbered_seq FROM outbox_relay WHERE id = 1";

pub(super) const SELECT_AFTER: &str =
    "SELECT seq, payload FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2";

/// Binds: relay, lease until, now. The lease as a compare-and-set: taken when free, lapsed at
/// the caller's `now`, or the caller's (PostgreSQL counts a row updated to the same values).
pub(super) const TAKE_LEASE: &str = "UPDATE outbox_relay SET holder = $1, lease_until = $2 \
     WHERE id = 1 AND (holder IS NULL OR holder = $1 OR lease_until <= $3)";

pub(super) const RELEASE_LEASE: &str =
    "UPDATE outbox_relay SET holder = NULL, lease_until = NULL WHERE id = 1 AND holder = $1";

/// Numbered entries after the sent cursor.
pub(super) const SELECT_UNSENT: &str = "SELECT seq, payload FROM outbox \
     WHERE seq > (SELECT sent_seq FROM outbox_relay WHERE id = 1) ORDER BY seq LIMIT $1";

pub(super) const MARK_SENT: &str =
    "UPDATE outbox_relay SET sent_seq = GREATEST(sent_seq, $1) WHERE id = 1 AND holder = $2";

pub(super) const REWIND: &str =
    "UPDATE outbox_relay SET sent_seq = LEAST(sent_seq, $1) WHERE id = 1 AND holder = $2";

pub(super) const SELECT_SENT: &str = "SELECT sent_seq FROM outbox_relay WHERE id = 1";

/// Binds: limit. The oldest published entries with their time: a range of `uq_outbox_seq`.
pub(in crate::postgres) const SELECT_PRUNABLE: &str = "SELECT seq, recorded_at FROM outbox \
     WHERE seq <= (SELECT sent_seq FROM outbox_relay WHERE id = 1) ORDER BY seq LIMIT $1";

/// Binds: up to (a number from [`SELECT_PRUNABLE`], so at most the sent cursor), limit.
pub(in crate::postgres) const PRUNE_UP_TO: &str = "DELETE FROM outbox WHERE id IN \
     (SELECT id FROM outbox WHERE seq <= $1 ORDER BY seq LIMIT $2)";
