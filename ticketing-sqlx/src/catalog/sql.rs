//! The catalog's statements.

pub(super) const INSERT_VENUE: &str = "INSERT INTO venues (id, name) VALUES (?, ?)";

pub(super) const INSERT_ZONE: &str =
    "INSERT INTO zones (venue_id, code, position, name, kind, capacity) VALUES (?, ?, ?, ?, ?, ?)";

pub(super) const INSERT_SEAT_ROWS: &str =
    "INSERT INTO seat_rows (venue_id, zone_code, label, position, seats) VALUES {list}";

pub(super) const SELECT_VENUE: &str = "SELECT name FROM venues WHERE id = ?";

pub(super) const SELECT_ZONES: &str =
    "SELECT code, name, kind, capacity FROM zones WHERE venue_id = ? ORDER BY position";

pub(super) const SELECT_SEAT_ROWS: &str = "SELECT zone_code, label, seats FROM seat_rows \
     WHERE venue_id = ? ORDER BY zone_code, position";

pub(super) const INSERT_EVENT: &str = "INSERT INTO events \
     (id, venue_id, name, sale_opens, sale_closes, currency, hold_time_ms, per_customer_limit) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

pub(super) const INSERT_PRICES: &str =
    "INSERT INTO event_prices (event_id, zone_code, price_minor) VALUES {list}";

pub(super) const SELECT_EVENT: &str = "SELECT venue_id, name, sale_opens, sale_closes, currency, \
     hold_time_ms, per_customer_limit FROM events WHERE id = ?";

pub(super) const SELECT_PRICES: &str =
    "SELECT zone_code, price_minor FROM event_prices WHERE event_id = ?";

/// Zone kinds as stored.
pub(super) const SEATED: &str = "SEATED";
pub(super) const GENERAL_ADMISSION: &str = "GENERAL_ADMISSION";
