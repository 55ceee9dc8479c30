//! The waiting list's statements on MySQL, for the shared flow ([`DatabaseWaitingList`]).

use sqlx::MySql;

use crate::flows::waiting_list::DatabaseWaitingList;

/// The columns every read of an entry selects.
macro_rules! entry_columns {
    () => {
        "SELECT id, event_id, customer, zone, party, joined_at, state, offer_order, offers \
         FROM waiting_list "
    };
}

impl DatabaseWaitingList for MySql {
    const INSERT: &'static str = "INSERT INTO waiting_list \
         (id, event_id, customer, zone, party, joined_at, state) \
         VALUES (?, ?, ?, ?, ?, ?, 'WAITING')";
    const OPEN_KEY: &'static str = "uq_waiting_list_open";
    const BY_ID: &'static str = concat!(entry_columns!(), "WHERE id = ?");
    const OPEN_OF: &'static str =
        concat!(entry_columns!(), "WHERE event_id = ? AND open_customer = ?");
    const WAITING: &'static str = concat!(
        entry_columns!(),
        "WHERE event_id = ? AND state = 'WAITING' ORDER BY joined_at, id LIMIT ?"
    );
    const LEAVE: &'static str = "UPDATE waiting_list SET state = 'LEFT' \
         WHERE id = ? AND state IN ('WAITING', 'OFFERED')";
    const OFFER: &'static str = "UPDATE waiting_list \
         SET state = 'OFFERED', offer_order = ?, offers = offers + 1 \
         WHERE id = ? AND state = 'WAITING'";
    const SETTLE: &'static str = "UPDATE waiting_list SET state = ? \
         WHERE offer_order = ? AND state = 'OFFERED'";
    const BY_OFFER: &'static str = concat!(entry_columns!(), "WHERE offer_order = ?");
}
