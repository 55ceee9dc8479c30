//! The ticket repository's statements. Statuses are bound as parameters (`TicketStatus::as_str`),
//! times are always the caller's `now`, never the server's `NOW()`.

use crate::codec::ticket_columns;

// --- purchase ---------------------------------------------------------------------------------

pub(super) const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, order_id) VALUES (?, ?, ?, ?)";

pub(super) const SELECT_IDEMPOTENCY: &str = "SELECT customer_id, idem_key, fingerprint, order_id \
     FROM idempotency_keys WHERE customer_id = ? AND idem_key = ?";

pub(super) const INSERT_ORDER: &str =
    "INSERT INTO orders (id, event_id, customer_id, status, expires_at) VALUES (?, ?, ?, ?, ?)";

/// Fifteen columns per ticket: [`ticket_columns!`], then the `zone_usage` shard of a
/// general-admission place (NULL for a seat).
pub(super) const INSERT_TICKETS: &str = concat!(
    "INSERT INTO tickets (",
    ticket_columns!(),
    ", usage_shard) VALUES {list}"
);

/// The name of the unique key behind invariant 1, as the server names it in ER_DUP_ENTRY.
pub(super) const ACTIVE_SEAT_KEY: &str = "uq_tickets_active_seat";

pub(super) const SELECT_TAKEN_SEATS: &str =
    "SELECT active_seat FROM tickets WHERE event_id = ? AND active_seat IN ({list})";

pub(super) const ENSURE_CUSTOMER_USAGE: &str = "INSERT INTO customer_usage (event_id, customer_id, active) \
     VALUES (?, ?, 0) ON DUPLICATE KEY UPDATE active = active";

/// Binds: n, event, customer, n, limit. Matches no row when the limit would be exceeded.
pub(super) const RAISE_CUSTOMER_USAGE: &str = "UPDATE customer_usage SET active = active + ? \
     WHERE event_id = ? AND customer_id = ? AND active + ? <= ?";

// --- transitions ------------------------------------------------------------------------------

/// Binds: target, order, source, now. Payment only strictly before the deadline.
pub(super) const CAS_ORDER_BEFORE_DEADLINE: &str =
    "UPDATE orders SET status = ? WHERE id = ? AND status = ? AND expires_at > ?";

/// Binds: target, order, source, now. Expiry only at or after the deadline.
pub(super) const CAS_ORDER_AFTER_DEADLINE: &str =
    "UPDATE orders SET status = ? WHERE id = ? AND status = ? AND expires_at <= ?";

/// Binds: target, order, source.
pub(super) const CAS_ORDER: &str = "UPDATE orders SET status = ? WHERE id = ? AND status = ?";

/// Binds: target, paid_at (NULL keeps), payment_ref (NULL keeps), order, source.
pub(super) const MOVE_TICKETS: &str = "UPDATE tickets SET status = ?, \
     paid_at = COALESCE(?, paid_at), payment_ref = COALESCE(?, payment_ref) \
     WHERE order_id = ? AND status = ?";

/// Binds: n, event, customer.
pub(super) const LOWER_CUSTOMER_USAGE: &str =
    "UPDATE customer_usage SET active = active - ? WHERE event_id = ? AND customer_id = ?";

/// Binds: the order ids. The general-admission places of these orders per `zone_usage` shard;
/// tickets from before shards existed count in shard 0.
pub(super) const PLACES_PER_SHARD: &str = "SELECT event_id, zone_code, \
     CAST(COALESCE(usage_shard, 0) AS UNSIGNED) AS shard, COUNT(*) AS n FROM tickets \
     WHERE order_id IN ({list}) AND seat_key IS NULL \
     GROUP BY event_id, zone_code, shard ORDER BY event_id, zone_code, shard";

// --- expiry -----------------------------------------------------------------------------------

/// Binds: PENDING_PAYMENT, now, limit. Rows another sweeper (or a payment) holds are skipped, so
/// concurrent sweepers take disjoint batches and never wait for each other.
pub(super) const LOCK_DUE_ORDERS: &str = "SELECT id FROM orders \
     WHERE status = ? AND expires_at <= ? ORDER BY expires_at, id LIMIT ? FOR UPDATE SKIP LOCKED";

/// Binds: EXPIRED, the order ids, PENDING_PAYMENT.
pub(super) const EXPIRE_ORDERS: &str =
    "UPDATE orders SET status = ? WHERE id IN ({list}) AND status = ?";

/// Binds: EXPIRED, the order ids, PENDING_PAYMENT.
pub(super) const EXPIRE_TICKETS: &str =
    "UPDATE tickets SET status = ? WHERE order_id IN ({list}) AND status = ?";

// --- reads ------------------------------------------------------------------------------------

pub(super) const SELECT_TICKET: &str =
    concat!("SELECT ", ticket_columns!(), " FROM tickets WHERE id = ?");

pub(super) const SELECT_ORDER_TICKETS: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE order_id = ?"
);

pub(super) const SELECT_TICKETS_OF_ORDERS: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE order_id IN ({list})"
);

/// Binds: event, PENDING_PAYMENT, PAID.
pub(super) const SELECT_ACTIVE_TICKETS: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE event_id = ? AND status IN (?, ?)"
);

/// Binds: event, status. Answered from `ix_tickets_event_status` alone.
pub(super) const COUNT_BY_STATUS: &str =
    "SELECT COUNT(*) AS n FROM tickets WHERE event_id = ? AND status = ?";

/// Binds: event, PAID, venue. Answered from `ix_tickets_event_status` alone.
pub(super) const REVENUE_MINOR: &str = "SELECT CAST(COALESCE(SUM(price_minor), 0) AS SIGNED) AS revenue \
     FROM tickets WHERE event_id = ? AND status = ? AND venue_id = ?";
