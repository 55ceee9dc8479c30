//! The waiting list's statements on PostgreSQL, for the shared flow ([`DatabaseWaitingList`]).

use sqlx::Postgres;

use crate::flows::waiting_list::DatabaseWaitingList;

/// The columns every read of an entry selects.
macro_rules! entry_columns {
    () => {
        "SELECT id, event_id, customer, zone, party, joined_at, state, offer_order, offers \
         FROM waiting_list "
    };
}

impl DatabaseWaitingList for Postgres {
    const INSERT: &'static str = "INSERT INTO waiting_list \
         (id, event_id, customer, zone, party, joined_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, 'WAITING')";
    const OPEN_KEY: &'static str = "uq_waiting_list_open";
    const BY_ID: &'static str = concat!(entry_columns!(), "WHERE id = $1");
    const OPEN_OF: &'static str = concat!(
        entry_columns!(),
        "WHERE event_id = $1 AND customer = $2 AND state IN ('WAITING', 'OFFERED')"
    );
    const WAITING: &'static str = concat!(
        entry_columns!(),
        "WHERE event_id = $1 AND state = 'WAITING' ORDER BY joined_at, id LIMIT $2"
    );
    const LEAVE: &'static str = "UPDATE waiting_list SET state = 'LEFT' \
         WHERE id = $1 AND state IN ('WAITING', 'OFFERED')";
    const OFFER: &'static str = "UPDATE waiting_list \
         SET state = 'OFFERED', offer_order = $1, offers = offers + 1 \
         WHERE id = $2 AND state = 'WAITING'";
    const SETTLE: &'static str = "UPDATE waiting_list SET state = $1 \
         WHERE offer_order = $2 AND state = 'OFFERED'";
    const BY_OFFER: &'static str = concat!(entry_columns!(), "WHERE offer_order = $1");
}
