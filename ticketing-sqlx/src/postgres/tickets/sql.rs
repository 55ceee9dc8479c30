//! The ticket repository's statements on PostgreSQL. Statuses are bound as parameters
//! (`TicketStatus::as_str`) except where a partial index must match the statement's text (the
//! sweep, the active tickets, the refunds owed): there they are literals. Times are always the
//! caller's `now`, never the server's. Lists are bound as arrays (`= ANY($n)`, `unnest`), so
//! every statement is a constant, prepared once per connection.

use sqlx::{PgConnection, Postgres, Row};
use uuid::Uuid;

use crate::codec::stored;
use crate::codec::ticket_columns;
use crate::flows::channel::Channels;
use crate::flows::extension::HoldExtensions;
use crate::flows::payment::Ledger;
use crate::flows::tier::{PriceTiers, TierPlaces};
use crate::flows::voucher::{OrderVoucher, VoucherUses};
use crate::postgres::error::StoreResult;

// --- purchase ---------------------------------------------------------------------------------

/// Binds: customer, key, fingerprint, order, created_at.
pub(super) const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency_keys \
     (customer_id, idem_key, fingerprint, order_id, created_at) VALUES ($1, $2, $3, $4, $5)";

/// Binds: before, limit. Up to `limit` records of orders created before `before`, oldest first:
/// a range of `ix_idempotency_keys_created`.
pub(super) const PRUNE_IDEMPOTENCY: &str = "DELETE FROM idempotency_keys \
     WHERE (customer_id, idem_key) IN (SELECT customer_id, idem_key FROM idempotency_keys \
     WHERE created_at < $1 ORDER BY created_at LIMIT $2)";

/// Binds: customer, key.
pub(super) const SELECT_IDEMPOTENCY: &str = "SELECT customer_id, idem_key, fingerprint, order_id \
     FROM idempotency_keys WHERE customer_id = $1 AND idem_key = $2";

/// Binds: order, event, customer, PENDING_PAYMENT, deadline.
pub(super) const INSERT_ORDER: &str = "INSERT INTO orders (id, event_id, customer_id, status, expires_at) \
     VALUES ($1, $2, $3, $4, $5)";

/// Binds one array per column of [`ticket_columns!`] (each ticket at the same index), then the
/// `zone_usage` shard of each (NULL for a seat).
pub(super) const INSERT_TICKETS: &str = concat!(
    "INSERT INTO tickets (",
    ticket_columns!(),
    ", usage_shard) SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], \
     $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[], \
     $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::text[], $15::smallint[])"
);

/// The name of the partial unique index behind invariant 1, as the server names it in a
/// unique violation's `constraint` field.
pub(super) const ACTIVE_SEAT_KEY: &str = "uq_tickets_active_seat";

/// Binds: event, seat keys. The seats among them with an active ticket (`uq_tickets_active_seat`).
pub(super) const SELECT_TAKEN_SEATS: &str = "SELECT seat_key FROM tickets \
     WHERE event_id = $1 AND seat_key = ANY($2) AND status IN ('PENDING_PAYMENT', 'PAID')";

/// Binds: event, customer.
pub(super) const ENSURE_CUSTOMER_USAGE: &str = "INSERT INTO customer_usage (event_id, customer_id, active) \
     VALUES ($1, $2, 0) ON CONFLICT (event_id, customer_id) DO NOTHING";

/// Binds: n, event, customer, limit. Matches no row when the limit would be exceeded.
pub(super) const RAISE_CUSTOMER_USAGE: &str = "UPDATE customer_usage SET active = active + $1 \
     WHERE event_id = $2 AND customer_id = $3 AND active + $1 <= $4";

// --- transitions ------------------------------------------------------------------------------

/// Binds: target, order, source, now. Payment only strictly before the deadline.
pub(super) const CAS_ORDER_BEFORE_DEADLINE: &str =
    "UPDATE orders SET status = $1 WHERE id = $2 AND status = $3 AND expires_at > $4";

/// Binds: target, order, source, now. Expiry only at or after the deadline.
pub(super) const CAS_ORDER_AFTER_DEADLINE: &str =
    "UPDATE orders SET status = $1 WHERE id = $2 AND status = $3 AND expires_at <= $4";

/// Binds: target, order, source.
pub(super) const CAS_ORDER: &str = "UPDATE orders SET status = $1 WHERE id = $2 AND status = $3";

/// Binds: target, paid_at (NULL keeps), payment_ref (NULL keeps), order, source.
pub(super) const MOVE_TICKETS: &str = "UPDATE tickets SET status = $1, \
     paid_at = COALESCE($2, paid_at), payment_ref = COALESCE($3, payment_ref) \
     WHERE order_id = $4 AND status = $5";

/// Binds: n, event, customer.
pub(super) const LOWER_CUSTOMER_USAGE: &str =
    "UPDATE customer_usage SET active = active - $1 WHERE event_id = $2 AND customer_id = $3";

/// Binds: order ids. The general-admission places of these orders per `zone_usage` shard, in
/// key order; tickets without a shard count in shard 0.
pub(super) const PLACES_PER_SHARD: &str = "SELECT event_id, zone_code, \
     COALESCE(usage_shard, 0::smallint) AS shard, COUNT(*) AS n FROM tickets \
     WHERE order_id = ANY($1) AND seat_key IS NULL \
     GROUP BY event_id, zone_code, COALESCE(usage_shard, 0::smallint) \
     ORDER BY event_id, zone_code, shard";

// --- general-admission capacity (`zone_capacity`) ---------------------------------------------

/// Binds: event, zone, first shard, end shard (exclusive), how many rows. Shards with room in
/// that range, skipping rows other transactions hold.
pub(super) const TAKE_FREE_SHARDS: &str = "SELECT shard, capacity - active AS room \
     FROM zone_usage WHERE event_id = $1 AND zone_code = $2 AND shard >= $3 AND shard < $4 \
     AND active < capacity ORDER BY shard LIMIT $5 FOR UPDATE SKIP LOCKED";

/// Binds: event, zone. Every shard, waiting for the ones other transactions hold.
pub(super) const LOCK_ALL_SHARDS: &str = "SELECT shard, capacity - active AS room \
     FROM zone_usage WHERE event_id = $1 AND zone_code = $2 ORDER BY shard FOR UPDATE";

/// Binds: event, zone, slices (one per shard, in shard order). A concurrent first purchase may
/// create them too.
pub(super) const CREATE_SHARDS: &str = "INSERT INTO zone_usage \
     (event_id, zone_code, shard, capacity, active) \
     SELECT $1, $2, (s.ord - 1)::smallint, s.capacity, 0 \
     FROM unnest($3::bigint[]) WITH ORDINALITY AS s(capacity, ord) \
     ON CONFLICT (event_id, zone_code, shard) DO NOTHING";

/// Binds: n, event, zone, shard. Matches no row when the shard would overflow its slice.
pub(super) const RAISE_SHARD: &str = "UPDATE zone_usage SET active = active + $1 \
     WHERE event_id = $2 AND zone_code = $3 AND shard = $4 AND active + $1 <= capacity";

/// Binds: n, event, zone, shard.
pub(super) const LOWER_SHARD: &str = "UPDATE zone_usage SET active = active - $1 \
     WHERE event_id = $2 AND zone_code = $3 AND shard = $4";

// --- expiry -----------------------------------------------------------------------------------

/// Binds: now, limit. Due unpaid orders from the partial index `ix_orders_due`; rows another
/// sweeper (or a payment) holds are skipped, so concurrent sweepers take disjoint batches and
/// never wait for each other.
pub(super) const LOCK_DUE_ORDERS: &str = "SELECT id FROM orders \
     WHERE status = 'PENDING_PAYMENT' AND expires_at <= $1 \
     ORDER BY expires_at, id LIMIT $2 FOR UPDATE SKIP LOCKED";

/// Binds: EXPIRED, the order ids, PENDING_PAYMENT.
pub(super) const EXPIRE_ORDERS: &str =
    "UPDATE orders SET status = $1 WHERE id = ANY($2) AND status = $3";

/// Binds: EXPIRED, the order ids, PENDING_PAYMENT.
pub(super) const EXPIRE_TICKETS: &str =
    "UPDATE tickets SET status = $1 WHERE order_id = ANY($2) AND status = $3";

// --- reads ------------------------------------------------------------------------------------

pub(super) const SELECT_TICKET: &str =
    concat!("SELECT ", ticket_columns!(), " FROM tickets WHERE id = $1");

pub(super) const SELECT_ORDER_TICKETS: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE order_id = $1"
);

/// Binds: order ids.
pub(super) const SELECT_TICKETS_OF_ORDERS: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE order_id = ANY($1)"
);

/// Binds: event. Served by the partial index `ix_tickets_event_active`.
pub(super) const SELECT_ACTIVE_TICKETS: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE event_id = $1 AND status IN ('PENDING_PAYMENT', 'PAID')"
);

/// Binds: event, limit. The first page of [`SELECT_ACTIVE_TICKETS_PAGE`].
pub(super) const SELECT_ACTIVE_TICKETS_FIRST_PAGE: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE event_id = $1 AND status IN ('PENDING_PAYMENT', 'PAID') \
     ORDER BY id LIMIT $2"
);

/// Binds: event, after (a ticket id), limit. A keyset page of an event's active tickets: a range
/// of the partial index `ix_tickets_event_active (event_id, id)` in id order, which holds only
/// active tickets. The key is compared as the row `(event_id, id)` and ordered by it: written as
/// `id > $2 … ORDER BY id`, the generic plan took the primary key's range `id > $2`, which spans
/// every later ticket of every event (the check in `explain.rs` caught it; MySQL needs
/// `FORCE INDEX` for the same reason).
pub(super) const SELECT_ACTIVE_TICKETS_PAGE: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE event_id = $1 AND (event_id, id) > ($1, $2) \
     AND status IN ('PENDING_PAYMENT', 'PAID') ORDER BY event_id, id LIMIT $3"
);

/// Binds: event, status. Answered from `ix_tickets_event_status` alone.
pub(super) const COUNT_BY_STATUS: &str =
    "SELECT COUNT(*) AS n FROM tickets WHERE event_id = $1 AND status = $2";

/// Binds: event, PAID, venue. Answered from `ix_tickets_event_status` alone.
pub(super) const REVENUE_MINOR: &str = "SELECT COALESCE(SUM(price_minor), 0)::bigint AS revenue \
     FROM tickets WHERE event_id = $1 AND status = $2 AND venue_id = $3";

// --- payments ledger (`payments`): the statements of the shared flow ------------------------

impl Ledger for Postgres {
    const INSERT_PAYMENT: &'static str = "INSERT INTO payments \
         (reference, order_id, amount_minor, currency, received_at, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    const SELECT_PAYMENT: &'static str = "SELECT reference, order_id, amount_minor, currency, \
         received_at, outcome, refunded_at FROM payments WHERE reference = $1";
    const SELECT_PAYMENTS_OF_ORDER: &'static str = "SELECT reference, order_id, amount_minor, \
         currency, received_at, outcome, refunded_at FROM payments WHERE order_id = $1 \
         ORDER BY received_at, reference";
    /// Served by the partial index `ix_payments_refund_owed`, which holds only owed refunds
    /// (its condition is spelled out, so the planner matches it).
    const SELECT_REFUNDS_DUE: &'static str = "SELECT reference, order_id, amount_minor, \
         currency, received_at, outcome, refunded_at FROM payments \
         WHERE outcome NOT IN ('PAID', 'PAID_LATE') AND refunded_at IS NULL \
         ORDER BY received_at, reference LIMIT $1";
    const MARK_REFUNDED: &'static str = "UPDATE payments SET refunded_at = $1 \
         WHERE reference = $2 AND outcome NOT IN ('PAID', 'PAID_LATE') AND refunded_at IS NULL";
    const LOCK_ORDER_STATUS: &'static str =
        "SELECT status, expires_at FROM orders WHERE id = $1 FOR UPDATE";
    const CAS_ORDER_BEFORE_DEADLINE: &'static str = CAS_ORDER_BEFORE_DEADLINE;
    const CAS_ORDER: &'static str = CAS_ORDER;
    const MOVE_TICKETS: &'static str = MOVE_TICKETS;
    const SET_USAGE_SHARD: &'static str = "UPDATE tickets SET usage_shard = $1 WHERE id = $2";
}

// --- vouchers ---------------------------------------------------------------------------------

impl VoucherUses for Postgres {
    const ENSURE_VOUCHER_USAGE: &'static str = "INSERT INTO voucher_usage \
     (event_id, code, max_uses, max_per_customer, active) VALUES ($1, $2, $3, $4, 0) \
     ON CONFLICT (event_id, code) DO NOTHING";
    const RAISE_VOUCHER_USAGE: &'static str = "UPDATE voucher_usage SET active = active + 1 \
     WHERE event_id = $1 AND code = $2 AND active < max_uses";
    const ENSURE_VOUCHER_CUSTOMER: &'static str = "INSERT INTO voucher_customer_usage \
     (event_id, code, customer_id, active) VALUES ($1, $2, $3, 0) \
     ON CONFLICT (event_id, code, customer_id) DO NOTHING";
    const RAISE_VOUCHER_CUSTOMER: &'static str = "UPDATE voucher_customer_usage \
     SET active = active + 1 WHERE event_id = $1 AND code = $2 AND customer_id = $3 \
     AND active < $4";
    const LOWER_VOUCHER_USAGE: &'static str =
        "UPDATE voucher_usage SET active = active - $1 WHERE event_id = $2 AND code = $3";
    const LOWER_VOUCHER_CUSTOMER: &'static str = "UPDATE voucher_customer_usage \
     SET active = active - $1 WHERE event_id = $2 AND code = $3 AND customer_id = $4";
    const SET_ORDER_VOUCHER: &'static str = "UPDATE orders SET voucher_code = $1 WHERE id = $2";
    const SELECT_ORDER_VOUCHER: &'static str = "SELECT voucher_code FROM orders WHERE id = $1";
    const SELECT_VOUCHER_LIMITS: &'static str = "SELECT max_uses, max_per_customer \
     FROM voucher_usage WHERE event_id = $1 AND code = $2";
    const SELECT_VOUCHER_USES: &'static str =
        "SELECT code, active FROM voucher_usage WHERE event_id = $1 ORDER BY code";

    async fn order_vouchers(
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> StoreResult<Vec<OrderVoucher>> {
        let rows = sqlx::query(
            "SELECT event_id, customer_id, voucher_code FROM orders \
             WHERE voucher_code IS NOT NULL AND id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(conn)
        .await?;
        rows.iter().map(Self::order_voucher).collect()
    }

    fn stored_limit(count: i64) -> StoreResult<u32> {
        Ok(stored(u32::try_from(count))?)
    }
}

// --- price tiers (`tier_usage`): the statements of the shared flow ----------------------------

impl PriceTiers for Postgres {
    const TIER_ROOM: &'static str = "SELECT COUNT(*) AS shards, \
         COALESCE(SUM(capacity - active), 0)::bigint AS room FROM tier_usage \
         WHERE event_id = $1 AND zone_code = $2 AND tier = $3";
    const TAKE_FREE_TIER_SHARDS: &'static str = "SELECT shard, capacity - active AS room \
         FROM tier_usage WHERE event_id = $1 AND zone_code = $2 AND tier = $3 \
         AND shard >= $4 AND shard < $5 AND active < capacity \
         ORDER BY shard LIMIT $6 FOR UPDATE SKIP LOCKED";
    const LOCK_ALL_TIER_SHARDS: &'static str = "SELECT shard, capacity - active AS room \
         FROM tier_usage WHERE event_id = $1 AND zone_code = $2 AND tier = $3 \
         ORDER BY shard FOR UPDATE";
    const CREATE_TIER_SHARD: &'static str = "INSERT INTO tier_usage \
         (event_id, zone_code, tier, shard, capacity, active) VALUES ($1, $2, $3, $4, $5, 0) \
         ON CONFLICT (event_id, zone_code, tier, shard) DO NOTHING";
    const RAISE_TIER_SHARD: &'static str = "UPDATE tier_usage SET active = active + $1 \
         WHERE event_id = $2 AND zone_code = $3 AND tier = $4 AND shard = $5 \
         AND active + $6 <= capacity";
    const LOWER_TIER_SHARD: &'static str = "UPDATE tier_usage SET active = active - $1 \
         WHERE event_id = $2 AND zone_code = $3 AND tier = $4 AND shard = $5";
    const SET_TICKET_TIER: &'static str =
        "UPDATE tickets SET price_tier = $1, tier_shard = $2 WHERE id = $3";
    const SELECT_TICKET_TIERS: &'static str = "SELECT id, zone_code, price_tier FROM tickets \
         WHERE order_id = $1 AND price_tier IS NOT NULL ORDER BY zone_code, price_tier, id";
    const SELECT_TIER_SALES: &'static str = "SELECT zone_code, tier, SUM(active)::bigint AS active \
         FROM tier_usage WHERE event_id = $1 GROUP BY zone_code, tier ORDER BY zone_code, tier";

    async fn tier_places(conn: &mut PgConnection, ids: &[Uuid]) -> StoreResult<Vec<TierPlaces>> {
        let rows = sqlx::query(
            "SELECT event_id, zone_code, price_tier, tier_shard, COUNT(*) AS n FROM tickets \
             WHERE price_tier IS NOT NULL AND order_id = ANY($1) \
             GROUP BY event_id, zone_code, price_tier, tier_shard \
             ORDER BY event_id, zone_code, price_tier, tier_shard",
        )
        .bind(ids)
        .fetch_all(conn)
        .await?;
        rows.iter().map(Self::tier_place).collect()
    }
}

// --- hold extension (`orders.extensions`): the statements of the shared flow ----------------

impl HoldExtensions for Postgres {
    const LOCK_ORDER_DEADLINE: &'static str = "SELECT status, expires_at, \
         extensions::bigint AS extensions FROM orders WHERE id = $1 FOR UPDATE";
    const COUNT_PAYMENTS_SINCE: &'static str =
        "SELECT COUNT(*) AS n FROM payments WHERE order_id = $1 AND received_at >= $2";
    const EXTEND_ORDER: &'static str =
        "UPDATE orders SET expires_at = $1, extensions = extensions + 1 WHERE id = $2";
    const EXTEND_TICKETS: &'static str =
        "UPDATE tickets SET expires_at = $1 WHERE order_id = $2 AND status = $3";
}

// --- channel-reserved seats -----------------------------------------------------------------

impl Channels for Postgres {
    const INSERT_CHANNEL: &'static str =
        "INSERT INTO channels (event_id, code, key_hash) VALUES ($1, $2, $3)";
    const SELECT_CHANNELS: &'static str =
        "SELECT code, key_hash FROM channels WHERE event_id = $1 ORDER BY code";
    const SELECT_CHANNEL_SEATS: &'static str = "SELECT channel_code, seat_key, released \
         FROM channel_seats WHERE event_id = $1";
    const LOCK_CHANNEL: &'static str =
        "SELECT key_hash FROM channels WHERE event_id = $1 AND code = $2 FOR UPDATE";
    const SELECT_SEATS_OF_CHANNEL: &'static str = "SELECT seat_key, released FROM channel_seats \
         WHERE event_id = $1 AND channel_code = $2";

    async fn insert_channel_seats(
        conn: &mut PgConnection,
        event: Uuid,
        code: &str,
        seats: &[String],
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO channel_seats (event_id, seat_key, channel_code) \
             SELECT $1, seat, $3 FROM UNNEST($2::text[]) AS seat",
        )
        .bind(event)
        .bind(seats)
        .bind(code)
        .execute(conn)
        .await
        .map(|_| ())
    }

    async fn kept_among(
        conn: &mut PgConnection,
        event: Uuid,
        seats: &[String],
    ) -> StoreResult<Vec<(String, String, bool)>> {
        let rows = sqlx::query(
            "SELECT seat_key, channel_code, released FROM channel_seats \
             WHERE event_id = $1 AND seat_key = ANY($2) ORDER BY seat_key FOR SHARE",
        )
        .bind(event)
        .bind(seats)
        .fetch_all(conn)
        .await?;
        rows.iter().map(Self::kept_row).collect()
    }

    async fn mark_released(
        conn: &mut PgConnection,
        event: Uuid,
        code: &str,
        seats: &[String],
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE channel_seats SET released = true \
             WHERE event_id = $1 AND channel_code = $2 AND seat_key = ANY($3)",
        )
        .bind(event)
        .bind(code)
        .bind(seats)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn active_among(
        conn: &mut PgConnection,
        event: Uuid,
        seats: &[String],
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(SELECT_TAKEN_SEATS)
            .bind(event)
            .bind(seats)
            .fetch_all(conn)
            .await?;
        rows.iter()
            .map(|row| Ok(row.try_get("seat_key")?))
            .collect()
    }
}
