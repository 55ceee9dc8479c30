//! The catalog's statements on PostgreSQL. Multi-row inserts take their rows as arrays
//! (`unnest`), so each is one prepared statement whatever the number of rows.

pub(super) const INSERT_VENUE: &str = "INSERT INTO venues (id, name) VALUES ($1, $2)";

pub(super) const INSERT_ZONE: &str = "INSERT INTO zones (venue_id, code, position, name, kind, capacity) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// Binds: venue, zone, labels, seats per row. `position` numbers the rows from 0 in the order
/// given.
pub(super) const INSERT_SEAT_ROWS: &str = "INSERT INTO seat_rows \
     (venue_id, zone_code, label, position, seats) \
     SELECT $1, $2, r.label, (r.ord - 1)::integer, r.seats \
     FROM unnest($3::text[], $4::bigint[]) WITH ORDINALITY AS r(label, seats, ord)";

pub(super) const SELECT_VENUE: &str = "SELECT name FROM venues WHERE id = $1";

pub(super) const SELECT_ZONES: &str =
    "SELECT code, name, kind, capacity FROM zones WHERE venue_id = $1 ORDER BY position";

pub(super) const SELECT_SEAT_ROWS: &str = "SELECT zone_code, label, seats FROM seat_rows \
     WHERE venue_id = $1 ORDER BY zone_code, position";

pub(super) const INSERT_EVENT: &str = "INSERT INTO events \
     (id, venue_id, name, sale_opens, sale_closes, currency, hold_time_ms, per_customer_limit) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Binds: event, zone codes, prices (minor units; the currency is the event's).
pub(super) const INSERT_PRICES: &str = "INSERT INTO event_prices (event_id, zone_code, price_minor) \
     SELECT $1, p.zone, p.price FROM unnest($2::text[], $3::bigint[]) AS p(zone, price)";

pub(super) const SELECT_EVENT: &str = "SELECT venue_id, name, sale_opens, sale_closes, currency, \
     hold_time_ms, per_customer_limit FROM events WHERE id = $1";

/// Binds: closed by, limit. The first page of closed events by (sale_closes, id): a range of
/// `ix_events_closes`.
pub(super) const SELECT_CLOSED_FIRST: &str = "SELECT id FROM events WHERE sale_closes <= $1 \
     ORDER BY sale_closes, id LIMIT $2";

/// Binds: closed by, the last key (sale_closes, id), limit. The next page, after that key.
pub(super) const SELECT_CLOSED_AFTER: &str = "SELECT id FROM events WHERE sale_closes <= $1 \
     AND (sale_closes, id) > ($2, $3) ORDER BY sale_closes, id LIMIT $4";

pub(super) const SELECT_PRICES: &str =
    "SELECT zone_code, price_minor FROM event_prices WHERE event_id = $1";

/// Zone kinds as stored.
pub(super) const SEATED: &str = "SEATED";
pub(super) const GENERAL_ADMISSION: &str = "GENERAL_ADMISSION";
