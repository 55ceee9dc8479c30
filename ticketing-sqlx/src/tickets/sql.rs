//! The ticket repository's statements. Statuses are bound as parameters (`TicketStatus::as_str`),
//! times are always the caller's `now`, never the server's `NOW()`.
//!
//! Statements with a list of variable length (an `IN` list, the rows of a multi-row `VALUES`)
//! are functions that build them with sqlx's [`QueryBuilder`] and bind their values, in the
//! order the text names them; each needs at least one list entry. The rest are constants.

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, QueryBuilder, Row};
use ticketing_core::domain::{CustomerId, IdempotencyKey, Order, SeatRef, Ticket, TicketStatus};
use ticketing_core::ports::IdempotencyRecord;
use uuid::Uuid;

use crate::codec::{push_list, ticket_columns};
use crate::error::StoreResult;
use crate::flows::channel::Channels;
use crate::flows::extension::HoldExtensions;
use crate::flows::payment::Ledger;
use crate::flows::tier::{PriceTiers, TierPlaces};
use crate::flows::voucher::{OrderVoucher, VoucherUses};

// --- purchase ---------------------------------------------------------------------------------

pub(super) const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency_keys \
     (customer_id, idem_key, fingerprint, order_id, created_at) VALUES (?, ?, ?, ?, ?)";

/// Up to `?` idempotency records of orders created before `?`, oldest first: a range of
/// `ix_idempotency_keys_created`.
pub(super) const PRUNE_IDEMPOTENCY: &str =
    "DELETE FROM idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?";

pub(super) const SELECT_IDEMPOTENCY: &str = "SELECT customer_id, idem_key, fingerprint, order_id \
     FROM idempotency_keys WHERE customer_id = ? AND idem_key = ?";

pub(super) const INSERT_ORDER: &str =
    "INSERT INTO orders (id, event_id, customer_id, status, expires_at) VALUES (?, ?, ?, ?, ?)";

/// One row per ticket: [`ticket_columns!`], then the `zone_usage` shard of a general-admission
/// place (`None`, NULL, for a seat).
pub(super) fn insert_tickets(tickets: &[(&Ticket, Option<u16>)]) -> QueryBuilder<MySql> {
    let mut insert = QueryBuilder::new(concat!(
        "INSERT INTO tickets (",
        ticket_columns!(),
        ", usage_shard) "
    ));
    insert.push_values(tickets, |mut row, (t, shard)| {
        row.push_bind(t.id.as_uuid())
            .push_bind(t.order_id.as_uuid())
            .push_bind(t.event_id.as_uuid())
            .push_bind(t.venue_id.as_uuid())
            .push_bind(t.zone.as_str())
            .push_bind(t.seat.as_ref().map(SeatRef::key))
            .push_bind(t.customer.as_str())
            .push_bind(t.price.minor)
            .push_bind(t.price.currency.as_str())
            .push_bind(t.status.as_str())
            .push_bind(t.created_on)
            .push_bind(t.expires_at)
            .push_bind(t.paid_at)
            .push_bind(t.payment_ref.as_ref().map(|p| p.as_str()))
            .push_bind(*shard);
    });
    insert
}

/// The name of the unique key behind invariant 1, as the server names it in ER_DUP_ENTRY.
pub(super) const ACTIVE_SEAT_KEY: &str = "uq_tickets_active_seat";

/// The seats among `keys` of `event` that have an active ticket.
pub(super) fn select_taken_seats<I>(event: Uuid, keys: I) -> QueryBuilder<MySql>
where
    I: IntoIterator<Item = String>,
{
    let mut select = QueryBuilder::new("SELECT active_seat FROM tickets WHERE event_id = ");
    select.push_bind(event).push(" AND active_seat IN ");
    push_list(&mut select, keys);
    select
}

/// Idempotency records `(customer, key, fingerprint, order, created)`, one per keyed order of a
/// batch, each with its order's creation time.
pub(super) fn insert_idempotency_rows<'a, I>(records: I) -> QueryBuilder<MySql>
where
    I: IntoIterator<Item = (&'a IdempotencyRecord, DateTime<Utc>)>,
{
    let mut insert = QueryBuilder::new(
        "INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, order_id, created_at) ",
    );
    insert.push_values(records, |mut row, (record, created)| {
        row.push_bind(record.customer.as_str())
            .push_bind(record.key.as_str())
            .push_bind(record.fingerprint.as_str())
            .push_bind(record.order_id.as_uuid())
            .push_bind(created);
    });
    insert
}

/// Which of these `(customer, key)` pairs have an idempotency record.
pub(super) fn select_used_keys<'a, I>(keys: I) -> QueryBuilder<MySql>
where
    I: IntoIterator<Item = (&'a CustomerId, &'a IdempotencyKey)>,
{
    let mut select = QueryBuilder::new("SELECT customer_id, idem_key FROM idempotency_keys WHERE ");
    let mut any = select.separated(" OR ");
    for (customer, key) in keys {
        any.push("(customer_id = ")
            .push_bind_unseparated(customer.as_str())
            .push_unseparated(" AND idem_key = ")
            .push_bind_unseparated(key.as_str())
            .push_unseparated(")");
    }
    select
}

/// Which of these order ids are stored.
pub(super) fn select_stored_orders(ids: impl IntoIterator<Item = Uuid>) -> QueryBuilder<MySql> {
    let mut select = QueryBuilder::new("SELECT id FROM orders WHERE id IN ");
    push_list(&mut select, ids);
    select
}

/// Order rows `(id, event, customer, PENDING_PAYMENT, deadline)`, one per order of a batch.
pub(super) fn insert_order_rows<'a, I>(orders: I) -> QueryBuilder<MySql>
where
    I: IntoIterator<Item = &'a Order>,
{
    let mut insert =
        QueryBuilder::new("INSERT INTO orders (id, event_id, customer_id, status, expires_at) ");
    insert.push_values(orders, |mut row, order| {
        row.push_bind(order.id.as_uuid())
            .push_bind(order.event_id.as_uuid())
            .push_bind(order.customer.as_str())
            .push_bind(TicketStatus::PendingPayment.as_str())
            .push_bind(order.expires_at);
    });
    insert
}

/// Rows `(event, customer, n)`: adds each `n` to the customer's active tickets for the event,
/// creating the rows that are missing. Reports per row 1 for a created row, 2 for a raised one.
pub(super) fn add_customer_usage<'a, I>(sums: I) -> QueryBuilder<MySql>
where
    I: IntoIterator<Item = (Uuid, &'a str, u32)>,
{
    let mut upsert =
        QueryBuilder::new("INSERT INTO customer_usage (event_id, customer_id, active) ");
    upsert.push_values(sums, |mut row, (event, customer, n)| {
        row.push_bind(event).push_bind(customer).push_bind(n);
    });
    upsert.push(" ON DUPLICATE KEY UPDATE active = active + VALUES(active)");
    upsert
}

/// The active tickets (`active`) of these customers (`customer_id`) for `event`.
pub(super) fn select_customer_usage<'a, I>(event: Uuid, customers: I) -> QueryBuilder<MySql>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut select =
        QueryBuilder::new("SELECT customer_id, active FROM customer_usage WHERE event_id = ");
    select.push_bind(event).push(" AND customer_id IN ");
    push_list(&mut select, customers);
    select
}

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

/// The general-admission places of these orders per `zone_usage` shard; tickets from before
/// shards existed count in shard 0.
pub(super) fn places_per_shard(orders: &[Uuid]) -> QueryBuilder<MySql> {
    let mut select = QueryBuilder::new(
        "SELECT event_id, zone_code, CAST(COALESCE(usage_shard, 0) AS UNSIGNED) AS shard, \
         COUNT(*) AS n FROM tickets WHERE order_id IN ",
    );
    push_list(&mut select, orders);
    select.push(
        " AND seat_key IS NULL GROUP BY event_id, zone_code, shard \
         ORDER BY event_id, zone_code, shard",
    );
    select
}

// --- general-admission capacity (`zone_capacity`) ---------------------------------------------

/// Binds: event, zone, first shard, end shard (exclusive), how many rows. Shards with room in
/// that range, skipping rows other transactions hold.
pub(super) const TAKE_FREE_SHARDS: &str = "SELECT shard, \
     CAST(capacity AS SIGNED) - CAST(active AS SIGNED) AS room \
     FROM zone_usage WHERE event_id = ? AND zone_code = ? AND shard >= ? AND shard < ? \
     AND active < capacity ORDER BY shard LIMIT ? FOR UPDATE SKIP LOCKED";

/// Binds: event, zone. Every shard, waiting for the ones other transactions hold: the definite
/// answer when the unlocked shards had too little room.
pub(super) const LOCK_ALL_SHARDS: &str = "SELECT shard, \
     CAST(capacity AS SIGNED) - CAST(active AS SIGNED) AS room FROM zone_usage \
     WHERE event_id = ? AND zone_code = ? ORDER BY shard FOR UPDATE";

/// Rows `(event, zone, shard, capacity, 0)`, one per slice in shard order. A concurrent first
/// purchase may create them too.
pub(super) fn create_shards(event: Uuid, zone: &str, slices: &[u32]) -> QueryBuilder<MySql> {
    let mut insert = QueryBuilder::new(
        "INSERT IGNORE INTO zone_usage (event_id, zone_code, shard, capacity, active) ",
    );
    insert.push_values(slices.iter().enumerate(), |mut row, (shard, slice)| {
        row.push_bind(event)
            .push_bind(zone)
            .push_bind(shard as u16)
            .push_bind(*slice)
            .push_bind(0u32);
    });
    insert
}

/// Binds: n, event, zone, shard, n. Matches no row when the shard would overflow its slice.
pub(super) const RAISE_SHARD: &str = "UPDATE zone_usage SET active = active + ? \
     WHERE event_id = ? AND zone_code = ? AND shard = ? AND active + ? <= capacity";

/// Binds: n, event, zone, shard.
pub(super) const LOWER_SHARD: &str = "UPDATE zone_usage SET active = active - ? \
     WHERE event_id = ? AND zone_code = ? AND shard = ?";

// --- expiry -----------------------------------------------------------------------------------

/// Binds: PENDING_PAYMENT, now, limit. Rows another sweeper (or a payment) holds are skipped, so
/// concurrent sweepers take disjoint batches and never wait for each other.
pub(super) const LOCK_DUE_ORDERS: &str = "SELECT id FROM orders \
     WHERE status = ? AND expires_at <= ? ORDER BY expires_at, id LIMIT ? FOR UPDATE SKIP LOCKED";

/// Binds: EXPIRED, the order ids, PENDING_PAYMENT.
pub(super) fn expire_orders(expired: &str, ids: &[Uuid], pending: &str) -> QueryBuilder<MySql> {
    expire(
        "UPDATE orders SET status = ",
        expired,
        " WHERE id IN ",
        ids,
        pending,
    )
}

/// Binds: EXPIRED, the order ids, PENDING_PAYMENT.
pub(super) fn expire_tickets(expired: &str, ids: &[Uuid], pending: &str) -> QueryBuilder<MySql> {
    expire(
        "UPDATE tickets SET status = ",
        expired,
        " WHERE order_id IN ",
        ids,
        pending,
    )
}

fn expire(
    update: &str,
    expired: &str,
    filter: &str,
    ids: &[Uuid],
    pending: &str,
) -> QueryBuilder<MySql> {
    let mut expire = QueryBuilder::new(update);
    expire.push_bind(expired).push(filter);
    push_list(&mut expire, ids);
    expire.push(" AND status = ").push_bind(pending);
    expire
}

// --- reads ------------------------------------------------------------------------------------

pub(super) const SELECT_TICKET: &str =
    concat!("SELECT ", ticket_columns!(), " FROM tickets WHERE id = ?");

pub(super) const SELECT_ORDER_TICKETS: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE order_id = ?"
);

/// The tickets of these orders.
pub(super) fn select_tickets_of_orders(ids: &[Uuid]) -> QueryBuilder<MySql> {
    let mut select = QueryBuilder::new(concat!(
        "SELECT ",
        ticket_columns!(),
        " FROM tickets WHERE order_id IN "
    ));
    push_list(&mut select, ids);
    select
}

/// Binds: event, PENDING_PAYMENT, PAID.
pub(super) const SELECT_ACTIVE_TICKETS: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE event_id = ? AND status IN (?, ?)"
);

/// Binds: event, PENDING_PAYMENT, PAID, limit. The first page of [`SELECT_ACTIVE_TICKETS_PAGE`].
pub(super) const SELECT_ACTIVE_TICKETS_FIRST_PAGE: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets FORCE INDEX (ix_tickets_event_id) \
     WHERE event_id = ? AND status IN (?, ?) ORDER BY id LIMIT ?"
);

/// Binds: event, after (a ticket id), PENDING_PAYMENT, PAID, limit. A keyset page of an event's
/// active tickets: a range of `ix_tickets_event_id` in id order, terminal tickets skipped in the
/// index. The index is forced: for a cursor among the newest tickets the optimizer would take
/// the primary key's range `id > ?`, which spans every later ticket of every event.
pub(super) const SELECT_ACTIVE_TICKETS_PAGE: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets FORCE INDEX (ix_tickets_event_id) \
     WHERE event_id = ? AND id > ? AND status IN (?, ?) ORDER BY id LIMIT ?"
);

/// Binds: event, status. Answered from `ix_tickets_event_status` alone.
pub(super) const COUNT_BY_STATUS: &str =
    "SELECT COUNT(*) AS n FROM tickets WHERE event_id = ? AND status = ?";

/// Binds: event, PAID, venue. Answered from `ix_tickets_event_status` alone.
pub(super) const REVENUE_MINOR: &str = "SELECT CAST(COALESCE(SUM(price_minor), 0) AS SIGNED) AS revenue \
     FROM tickets WHERE event_id = ? AND status = ? AND venue_id = ?";

// --- payments ledger (`payments`): the statements of the shared flow ------------------------

impl Ledger for MySql {
    const INSERT_PAYMENT: &'static str = "INSERT INTO payments \
         (reference, order_id, amount_minor, currency, received_at, outcome) \
         VALUES (?, ?, ?, ?, ?, ?)";
    const SELECT_PAYMENT: &'static str = "SELECT reference, order_id, amount_minor, currency, \
         received_at, outcome, refunded_at FROM payments WHERE reference = ?";
    const SELECT_PAYMENTS_OF_ORDER: &'static str = "SELECT reference, order_id, amount_minor, \
         currency, received_at, outcome, refunded_at FROM payments WHERE order_id = ? \
         ORDER BY received_at, reference";
    /// Served by `ix_payments_refund_owed`, which holds only owed refunds.
    const SELECT_REFUNDS_DUE: &'static str = "SELECT reference, order_id, amount_minor, \
         currency, received_at, outcome, refunded_at FROM payments WHERE refund_owed = 1 \
         ORDER BY received_at, reference LIMIT ?";
    const MARK_REFUNDED: &'static str =
        "UPDATE payments SET refunded_at = ? WHERE reference = ? AND refund_owed = 1";
    const LOCK_ORDER_STATUS: &'static str =
        "SELECT status, expires_at FROM orders WHERE id = ? FOR UPDATE";
    const CAS_ORDER_BEFORE_DEADLINE: &'static str = CAS_ORDER_BEFORE_DEADLINE;
    const CAS_ORDER: &'static str = CAS_ORDER;
    const MOVE_TICKETS: &'static str = MOVE_TICKETS;
    const SET_USAGE_SHARD: &'static str = "UPDATE tickets SET usage_shard = ? WHERE id = ?";
}

// --- vouchers ---------------------------------------------------------------------------------

impl VoucherUses for MySql {
    const ENSURE_VOUCHER_USAGE: &'static str = "INSERT INTO voucher_usage \
     (event_id, code, max_uses, max_per_customer, active) VALUES (?, ?, ?, ?, 0) \
     ON DUPLICATE KEY UPDATE active = active";
    const RAISE_VOUCHER_USAGE: &'static str = "UPDATE voucher_usage SET active = active + 1 \
     WHERE event_id = ? AND code = ? AND active < max_uses";
    const ENSURE_VOUCHER_CUSTOMER: &'static str = "INSERT INTO voucher_customer_usage \
     (event_id, code, customer_id, active) VALUES (?, ?, ?, 0) \
     ON DUPLICATE KEY UPDATE active = active";
    const RAISE_VOUCHER_CUSTOMER: &'static str = "UPDATE voucher_customer_usage \
     SET active = active + 1 WHERE event_id = ? AND code = ? AND customer_id = ? AND active < ?";
    const LOWER_VOUCHER_USAGE: &'static str =
        "UPDATE voucher_usage SET active = active - ? WHERE event_id = ? AND code = ?";
    const LOWER_VOUCHER_CUSTOMER: &'static str = "UPDATE voucher_customer_usage \
     SET active = active - ? WHERE event_id = ? AND code = ? AND customer_id = ?";
    const SET_ORDER_VOUCHER: &'static str = "UPDATE orders SET voucher_code = ? WHERE id = ?";
    const SELECT_ORDER_VOUCHER: &'static str = "SELECT voucher_code FROM orders WHERE id = ?";
    const SELECT_VOUCHER_LIMITS: &'static str = "SELECT max_uses, max_per_customer \
     FROM voucher_usage WHERE event_id = ? AND code = ?";
    const SELECT_VOUCHER_USES: &'static str =
        "SELECT code, active FROM voucher_usage WHERE event_id = ? ORDER BY code";

    async fn order_vouchers(
        conn: &mut MySqlConnection,
        ids: &[Uuid],
    ) -> StoreResult<Vec<OrderVoucher>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut select = QueryBuilder::new(
            "SELECT event_id, customer_id, voucher_code FROM orders \
             WHERE voucher_code IS NOT NULL AND id IN ",
        );
        push_list(&mut select, ids.iter().copied());
        let rows = select.build().fetch_all(conn).await?;
        rows.iter().map(Self::order_voucher).collect()
    }

    fn stored_limit(count: u32) -> StoreResult<u32> {
        Ok(count)
    }
}

// --- price tiers (`tier_usage`): the statements of the shared flow ----------------------------

impl PriceTiers for MySql {
    const TIER_ROOM: &'static str = "SELECT CAST(COUNT(*) AS SIGNED) AS shards, \
         CAST(COALESCE(SUM(capacity - active), 0) AS SIGNED) AS room FROM tier_usage \
         WHERE event_id = ? AND zone_code = ? AND tier = ?";
    const TAKE_FREE_TIER_SHARDS: &'static str = "SELECT shard, capacity - active AS room \
         FROM tier_usage WHERE event_id = ? AND zone_code = ? AND tier = ? \
         AND shard >= ? AND shard < ? AND active < capacity \
         ORDER BY shard LIMIT ? FOR UPDATE SKIP LOCKED";
    const LOCK_ALL_TIER_SHARDS: &'static str = "SELECT shard, capacity - active AS room \
         FROM tier_usage WHERE event_id = ? AND zone_code = ? AND tier = ? \
         ORDER BY shard FOR UPDATE";
    const CREATE_TIER_SHARD: &'static str = "INSERT IGNORE INTO tier_usage \
         (event_id, zone_code, tier, shard, capacity, active) VALUES (?, ?, ?, ?, ?, 0)";
    const RAISE_TIER_SHARD: &'static str = "UPDATE tier_usage SET active = active + ? \
         WHERE event_id = ? AND zone_code = ? AND tier = ? AND shard = ? \
         AND active + ? <= capacity";
    const LOWER_TIER_SHARD: &'static str = "UPDATE tier_usage SET active = active - ? \
         WHERE event_id = ? AND zone_code = ? AND tier = ? AND shard = ?";
    const SET_TICKET_TIER: &'static str =
        "UPDATE tickets SET price_tier = ?, tier_shard = ? WHERE id = ?";
    const SELECT_TICKET_TIERS: &'static str = "SELECT id, zone_code, price_tier FROM tickets \
         WHERE order_id = ? AND price_tier IS NOT NULL ORDER BY zone_code, price_tier, id";
    const SELECT_TIER_SALES: &'static str = "SELECT zone_code, tier, \
         CAST(SUM(active) AS SIGNED) AS active FROM tier_usage WHERE event_id = ? \
         GROUP BY zone_code, tier ORDER BY zone_code, tier";

    async fn tier_places(conn: &mut MySqlConnection, ids: &[Uuid]) -> StoreResult<Vec<TierPlaces>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut select = QueryBuilder::new(
            "SELECT event_id, zone_code, price_tier, tier_shard, CAST(COUNT(*) AS SIGNED) AS n \
             FROM tickets WHERE price_tier IS NOT NULL AND order_id IN ",
        );
        push_list(&mut select, ids.iter().copied());
        select.push(
            " GROUP BY event_id, zone_code, price_tier, tier_shard \
             ORDER BY event_id, zone_code, price_tier, tier_shard",
        );
        let rows = select.build().fetch_all(conn).await?;
        rows.iter().map(Self::tier_place).collect()
    }
}

// --- hold extension (`orders.extensions`): the statements of the shared flow ----------------

impl HoldExtensions for MySql {
    const LOCK_ORDER_DEADLINE: &'static str = "SELECT status, expires_at, \
         CAST(extensions AS SIGNED) AS extensions FROM orders WHERE id = ? FOR UPDATE";
    const COUNT_PAYMENTS_SINCE: &'static str = "SELECT CAST(COUNT(*) AS SIGNED) AS n \
         FROM payments WHERE order_id = ? AND received_at >= ?";
    const EXTEND_ORDER: &'static str =
        "UPDATE orders SET expires_at = ?, extensions = extensions + 1 WHERE id = ?";
    const EXTEND_TICKETS: &'static str =
        "UPDATE tickets SET expires_at = ? WHERE order_id = ? AND status = ?";
}

// --- channel-reserved seats -----------------------------------------------------------------

impl Channels for MySql {
    const INSERT_CHANNEL: &'static str =
        "INSERT INTO channels (event_id, code, key_hash) VALUES (?, ?, ?)";
    const SELECT_CHANNELS: &'static str =
        "SELECT code, key_hash FROM channels WHERE event_id = ? ORDER BY code";
    const SELECT_CHANNEL_SEATS: &'static str = "SELECT channel_code, seat_key, released \
         FROM channel_seats WHERE event_id = ?";
    const LOCK_CHANNEL: &'static str =
        "SELECT key_hash FROM channels WHERE event_id = ? AND code = ? FOR UPDATE";
    const SELECT_SEATS_OF_CHANNEL: &'static str = "SELECT seat_key, released FROM channel_seats \
         WHERE event_id = ? AND channel_code = ?";

    async fn insert_channel_seats(
        conn: &mut MySqlConnection,
        event: Uuid,
        code: &str,
        seats: &[String],
    ) -> sqlx::Result<()> {
        let mut insert =
            QueryBuilder::new("INSERT INTO channel_seats (event_id, seat_key, channel_code) ");
        insert.push_values(seats, |mut row, seat| {
            row.push_bind(event).push_bind(seat).push_bind(code);
        });
        insert.build().execute(conn).await.map(|_| ())
    }

    async fn kept_among(
        conn: &mut MySqlConnection,
        event: Uuid,
        seats: &[String],
    ) -> StoreResult<Vec<(String, String, bool)>> {
        let mut select = QueryBuilder::new(
            "SELECT seat_key, channel_code, released FROM channel_seats WHERE event_id = ",
        );
        select.push_bind(event).push(" AND seat_key IN ");
        push_list(&mut select, seats.iter().cloned());
        select.push(" ORDER BY seat_key LOCK IN SHARE MODE");
        let rows = select.build().fetch_all(conn).await?;
        rows.iter().map(Self::kept_row).collect()
    }

    async fn mark_released(
        conn: &mut MySqlConnection,
        event: Uuid,
        code: &str,
        seats: &[String],
    ) -> StoreResult<()> {
        let mut update =
            QueryBuilder::new("UPDATE channel_seats SET released = TRUE WHERE event_id = ");
        update
            .push_bind(event)
            .push(" AND channel_code = ")
            .push_bind(code)
            .push(" AND seat_key IN ");
        push_list(&mut update, seats.iter().cloned());
        update.build().execute(conn).await?;
        Ok(())
    }

    async fn active_among(
        conn: &mut MySqlConnection,
        event: Uuid,
        seats: &[String],
    ) -> StoreResult<Vec<String>> {
        let mut select = select_taken_seats(event, seats.iter().cloned());
        let rows = select.build().fetch_all(conn).await?;
        rows.iter()
            .map(|row| Ok(row.try_get("active_seat")?))
            .collect()
    }
}
