//! The race checks of `races.rs` on PostgreSQL: many tasks on a multi-threaded runtime, each on
//! its own pool connection, released together by a barrier. Outcomes are counted, never timed.

mod pg_support;
mod support;

use pg_support::database;
use support::{PRICE, Show, eur, ms, seat, t0, with_key, zone};
use ticketing_sqlx::postgres::PgTicketRepository;
use ticketing_sqlx::postgres::testing::TestDatabase;

/// The repository under test.
type Repo = PgTicketRepository;

fn repo(db: &TestDatabase) -> std::sync::Arc<Repo> {
    std::sync::Arc::new(PgTicketRepository::new(db.pool().clone()))
}

/// Binds: event. The places counted in the zone's shards, and the shards over their slice.
const ZONE_USAGE_TOTALS: &str = "SELECT SUM(active)::bigint, \
     COUNT(*) FILTER (WHERE active > capacity) FROM zone_usage WHERE event_id = $1";

/// Binds: event, code. The active orders using a voucher, counted from the order rows.
const ACTIVE_VOUCHER_ORDERS: &str = "SELECT COUNT(*) FROM orders \
     WHERE event_id = $1 AND voucher_code = $2 AND status IN ('PENDING_PAYMENT', 'PAID')";

/// Binds: event, price. The active tickets stored at a price, counted from the ticket rows.
const ACTIVE_TICKETS_AT_PRICE: &str = "SELECT COUNT(*) FROM tickets \
     WHERE event_id = $1 AND price_minor = $2 AND status IN ('PENDING_PAYMENT', 'PAID')";
/// Binds: event. Active tickets on seats a channel still keeps (every order here is public), in
/// one statement: one snapshot of the committed state.
const PUBLIC_TICKETS_ON_KEPT_SEATS: &str = "SELECT COUNT(*) FROM tickets t \
     JOIN channel_seats c ON c.event_id = t.event_id AND c.seat_key = t.seat_key \
     WHERE t.event_id = $1 AND NOT c.released AND t.status IN ('PENDING_PAYMENT', 'PAID')";

/// The catalog beside the repository (channels belong to a stored event).
fn catalog(db: &TestDatabase) -> std::sync::Arc<dyn ticketing_core::ports::CatalogRepository> {
    std::sync::Arc::new(ticketing_sqlx::postgres::PgCatalog::new(db.pool().clone()))
}

include!("races/checks.rs");
