//! Real concurrency against a real server: many tasks on a multi-threaded runtime, each on its
//! own pool connection, released together by a barrier. Outcomes are counted, never timed.
//! MySQL/MariaDB; the checks are shared with PostgreSQL (`pg_races.rs`).

mod support;

use support::*;
use ticketing_sqlx::MySqlTicketRepository;
use ticketing_sqlx::testing::TestDatabase;

/// The repository under test.
type Repo = MySqlTicketRepository;

fn repo(db: &TestDatabase) -> std::sync::Arc<Repo> {
    std::sync::Arc::new(MySqlTicketRepository::new(db.pool().clone()))
}

/// Binds: event. The places counted in the zone's shards, and the shards over their slice.
const ZONE_USAGE_TOTALS: &str = "SELECT CAST(SUM(active) AS SIGNED), \
     CAST(SUM(active > capacity) AS SIGNED) FROM zone_usage WHERE event_id = ?";

/// Binds: event, code. The active orders using a voucher, counted from the order rows.
const ACTIVE_VOUCHER_ORDERS: &str = "SELECT COUNT(*) FROM orders \
     WHERE event_id = ? AND voucher_code = ? AND status IN ('PENDING_PAYMENT', 'PAID')";

/// Binds: event, price. The active tickets stored at a price, counted from the ticket rows.
const ACTIVE_TICKETS_AT_PRICE: &str = "SELECT COUNT(*) FROM tickets \
     WHERE event_id = ? AND price_minor = ? AND status IN ('PENDING_PAYMENT', 'PAID')";
/// Binds: event. Active tickets on seats a channel still keeps (every order here is public), in
/// one statement: one snapshot of the committed state.
const PUBLIC_TICKETS_ON_KEPT_SEATS: &str = "SELECT COUNT(*) FROM tickets t \
     JOIN channel_seats c ON c.event_id = t.event_id AND c.seat_key = t.seat_key \
     WHERE t.event_id = ? AND c.released = FALSE AND t.status IN ('PENDING_PAYMENT', 'PAID')";

/// The catalog beside the repository (channels belong to a stored event).
fn catalog(db: &TestDatabase) -> std::sync::Arc<dyn ticketing_core::ports::CatalogRepository> {
    std::sync::Arc::new(ticketing_sqlx::MySqlCatalog::new(db.pool().clone()))
}

include!("races/checks.rs");
