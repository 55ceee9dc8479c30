//! The oversell audit, read back from the source of truth after the run (SQL on the tickets
//! table, the in-memory repository, or a server's read API), and the cost of a rejection counted
//! at the repository, at MariaDB (`Questions`) and at Redis (`commandstats`).

use serde::Serialize;
use sqlx::{MySqlPool, PgPool, Row};
use ticketing_core::domain::{EventId, SeatRef, TicketStatus};
use ticketing_core::ports::TicketRepository;

use crate::BenchError;
use crate::scenario::{Outcome, RawResult};

/// What the buyers were told, to hold against what the audit counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reported {
    /// Tickets of the orders the buyers were told they got.
    pub tickets_sold: u64,
    /// Tickets of failed attempts whose outcome is unknown (a timeout, a lost connection, a
    /// 5xx): each may or may not have been stored.
    pub tickets_outcome_unknown: u64,
    /// Tickets of the orders the payer was told are paid; `None` when the run did not pay.
    pub tickets_paid: Option<u64>,
    /// Tickets of payments whose outcome is unknown.
    pub payments_outcome_unknown: u64,
}

impl Reported {
    /// What `raw` told its buyers, with `seats_per_order` tickets per order.
    pub fn of(raw: &RawResult, seats_per_order: usize, paying: bool) -> Self {
        let per = seats_per_order.max(1) as u64;
        Reported {
            tickets_sold: raw.count(Outcome::Success) * per,
            tickets_outcome_unknown: raw.failures.outcome_unknown * per,
            tickets_paid: paying.then(|| raw.paid() * per),
            payments_outcome_unknown: raw.payment_failures.outcome_unknown * per,
        }
    }
}

/// What the audit found.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    /// `"sql"` when counted with SQL on the tickets table, `"repository"` through the in-memory
    /// repository, `"api"` through a server's read API.
    pub source: &'static str,
    /// Active (PENDING_PAYMENT or PAID) tickets of the event.
    pub active_tickets: u64,
    /// Seats or places of the venue.
    pub capacity: u64,
    /// Seats with more than one active ticket (must be 0).
    pub double_sold_seats: u64,
    /// General-admission zones with more active tickets than places (must be 0).
    pub zones_over_capacity: u64,
    /// What the buyers were told.
    pub reported: Reported,
    /// PAID tickets of the event, when the run paid.
    pub paid_tickets: Option<u64>,
    /// Acknowledged orders the read API does not show as active (`"api"` audits only).
    pub orders_missing: Option<u64>,
}

/// Whether `actual` is what was reported, give or take the requests of unknown outcome.
fn within(actual: u64, reported: u64, unknown: u64) -> bool {
    reported <= actual && actual <= reported + unknown
}

impl Audit {
    /// A seat sold twice, a zone over capacity, more tickets than places, an acknowledged sale
    /// or payment missing, or more stored than the buyers were told (beyond the requests whose
    /// outcome is unknown).
    pub fn failed(&self) -> bool {
        let r = &self.reported;
        let paid_ok = match (self.paid_tickets, r.tickets_paid) {
            (Some(paid), Some(reported)) => within(paid, reported, r.payments_outcome_unknown),
            _ => true,
        };
        self.double_sold_seats > 0
            || self.zones_over_capacity > 0
            || self.active_tickets > self.capacity
            || !within(
                self.active_tickets,
                r.tickets_sold,
                r.tickets_outcome_unknown,
            )
            || !paid_ok
            || self.orders_missing.unwrap_or(0) > 0
    }
}

/// Seats that appear in more than one entry of `seats` (each counted once).
pub fn repeated_seats(seats: &[SeatRef]) -> u64 {
    let mut keys: Vec<String> = seats.iter().map(SeatRef::key).collect();
    keys.sort_unstable();
    keys.chunk_by(|a, b| a == b)
        .filter(|same| same.len() > 1)
        .count() as u64
}

/// Counts with SQL on the database the tickets are stored in: active tickets, seats with two
/// active tickets (grouping on `seat_key`, not on the generated `active_seat` column the unique
/// key guards, so the audit does not merely trust that key), general-admission zones over their
/// capacity (from the catalog's `zones` table), and PAID tickets.
pub async fn audit_sql(
    pool: &MySqlPool,
    event: EventId,
    capacity: u64,
    reported: Reported,
) -> Result<Audit, BenchError> {
    let active = [
        TicketStatus::PendingPayment.as_str(),
        TicketStatus::Paid.as_str(),
    ];
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM tickets WHERE event_id = ? AND status IN (?, ?)")
            .bind(event.as_uuid())
            .bind(active[0])
            .bind(active[1])
            .fetch_one(pool)
            .await?;
    let active_tickets: i64 = row.try_get("n")?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT seat_key FROM tickets \
         WHERE event_id = ? AND status IN (?, ?) AND seat_key IS NOT NULL \
         GROUP BY seat_key HAVING COUNT(*) > 1) AS doubled",
    )
    .bind(event.as_uuid())
    .bind(active[0])
    .bind(active[1])
    .fetch_one(pool)
    .await?;
    let double_sold_seats: i64 = row.try_get("n")?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT t.zone_code FROM tickets t \
         JOIN events e ON e.id = t.event_id \
         JOIN zones z ON z.venue_id = e.venue_id AND z.code = t.zone_code \
         WHERE t.event_id = ? AND t.status IN (?, ?) AND t.seat_key IS NULL \
         AND z.kind = 'GENERAL_ADMISSION' \
         GROUP BY t.zone_code, z.capacity HAVING COUNT(*) > z.capacity) AS over_capacity",
    )
    .bind(event.as_uuid())
    .bind(active[0])
    .bind(active[1])
    .fetch_one(pool)
    .await?;
    let zones_over_capacity: i64 = row.try_get("n")?;
    let paid_tickets = match reported.tickets_paid {
        Some(_) => {
            let row =
                sqlx::query("SELECT COUNT(*) AS n FROM tickets WHERE event_id = ? AND status = ?")
                    .bind(event.as_uuid())
                    .bind(TicketStatus::Paid.as_str())
                    .fetch_one(pool)
                    .await?;
            Some(row.try_get::<i64, _>("n")? as u64)
        }
        None => None,
    };
    Ok(Audit {
        source: "sql",
        active_tickets: active_tickets as u64,
        capacity,
        double_sold_seats: double_sold_seats as u64,
        zones_over_capacity: zones_over_capacity as u64,
        reported,
        paid_tickets,
        orders_missing: None,
    })
}

/// [`audit_sql`] on PostgreSQL: the same four counts, on the tickets' own status and seat
/// columns (not on the partial unique index that guards them).
pub async fn audit_sql_postgres(
    pool: &PgPool,
    event: EventId,
    capacity: u64,
    reported: Reported,
) -> Result<Audit, BenchError> {
    let active = [
        TicketStatus::PendingPayment.as_str(),
        TicketStatus::Paid.as_str(),
    ];
    let active_tickets: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tickets WHERE event_id = $1 AND status IN ($2, $3)",
    )
    .bind(event.as_uuid())
    .bind(active[0])
    .bind(active[1])
    .fetch_one(pool)
    .await?;
    let double_sold_seats: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT seat_key FROM tickets \
         WHERE event_id = $1 AND status IN ($2, $3) AND seat_key IS NOT NULL \
         GROUP BY seat_key HAVING COUNT(*) > 1) AS doubled",
    )
    .bind(event.as_uuid())
    .bind(active[0])
    .bind(active[1])
    .fetch_one(pool)
    .await?;
    let zones_over_capacity: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT t.zone_code FROM tickets t \
         JOIN events e ON e.id = t.event_id \
         JOIN zones z ON z.venue_id = e.venue_id AND z.code = t.zone_code \
         WHERE t.event_id = $1 AND t.status IN ($2, $3) AND t.seat_key IS NULL \
         AND z.kind = 'GENERAL_ADMISSION' \
         GROUP BY t.zone_code, z.capacity HAVING COUNT(*) > z.capacity) AS over_capacity",
    )
    .bind(event.as_uuid())
    .bind(active[0])
    .bind(active[1])
    .fetch_one(pool)
    .await?;
    let paid_tickets = match reported.tickets_paid {
        Some(_) => {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM tickets WHERE event_id = $1 AND status = $2",
            )
            .bind(event.as_uuid())
            .bind(TicketStatus::Paid.as_str())
            .fetch_one(pool)
            .await?;
            Some(n as u64)
        }
        None => None,
    };
    Ok(Audit {
        source: "sql",
        active_tickets: active_tickets as u64,
        capacity,
        double_sold_seats: double_sold_seats as u64,
        zones_over_capacity: zones_over_capacity as u64,
        reported,
        paid_tickets,
        orders_missing: None,
    })
}

/// Whether `event` is in the database behind `pool` (a `--target` run checks that the servers
/// store their tickets where `--database-url` points before trusting an SQL audit).
pub async fn event_exists(pool: &MySqlPool, event: EventId) -> Result<bool, BenchError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM events WHERE id = ?")
        .bind(event.as_uuid())
        .fetch_one(pool)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Counts through the repository port (for the in-memory repository); `general_capacity` is the
/// places of the event's general-admission zone, if it has one.
pub async fn audit_repository(
    tickets: &dyn TicketRepository,
    event: EventId,
    capacity: u64,
    general_capacity: Option<u64>,
    reported: Reported,
) -> Result<Audit, BenchError> {
    let active = tickets.active_tickets(event).await?;
    let seats: Vec<SeatRef> = active.iter().filter_map(|t| t.seat.clone()).collect();
    let general = active.iter().filter(|t| t.seat.is_none()).count() as u64;
    let zones_over_capacity = u64::from(general_capacity.is_some_and(|places| general > places));
    let paid_tickets = match reported.tickets_paid {
        Some(_) => Some(tickets.count_by_status(event, TicketStatus::Paid).await?),
        None => None,
    };
    Ok(Audit {
        source: "repository",
        active_tickets: active.len() as u64,
        capacity,
        double_sold_seats: repeated_seats(&seats),
        zones_over_capacity,
        reported,
        paid_tickets,
        orders_missing: None,
    })
}

/// MariaDB's server-wide `Questions` counter (statements sent by clients).
pub async fn questions(pool: &MySqlPool) -> Result<u64, BenchError> {
    let row = sqlx::query("SHOW GLOBAL STATUS LIKE 'Questions'")
        .fetch_one(pool)
        .await?;
    let value: String = row.try_get(1)?;
    Ok(value.trim().parse()?)
}

/// Redis's server-wide count of `EVALSHA` + `EVAL` calls (`INFO commandstats`).
pub async fn script_calls(url: &str) -> Result<u64, BenchError> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await?;
    let mut calls = 0;
    for line in info.lines() {
        if let Some(rest) = line
            .strip_prefix("cmdstat_evalsha:")
            .or_else(|| line.strip_prefix("cmdstat_eval:"))
            && let Some(n) = rest
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))
        {
            calls += n.parse::<u64>()?;
        }
    }
    Ok(calls)
}
