//! The oversell audit, read back from the source of truth after the run, and the cost of a
//! rejection counted at the repository, at MariaDB (`Questions`) and at Redis (`commandstats`).

use serde::Serialize;
use sqlx::{MySqlPool, Row};
use ticketing_core::domain::{EventId, TicketStatus};
use ticketing_core::ports::TicketRepository;

use crate::BenchError;

/// What the audit found.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    /// `"sql"` when counted with SQL on the tickets table, `"repository"` for the in-memory one.
    pub source: &'static str,
    /// Active (PENDING_PAYMENT or PAID) tickets of the event.
    pub active_tickets: u64,
    /// Seats of the venue.
    pub capacity: u64,
    /// Seats with more than one active ticket (must be 0).
    pub double_sold_seats: u64,
    /// Tickets the buyers were told they got (successful orders × seats per order).
    pub tickets_reported_sold: u64,
}

impl Audit {
    /// A seat sold twice, more tickets than seats, or a success without its tickets.
    pub fn failed(&self) -> bool {
        self.double_sold_seats > 0
            || self.active_tickets > self.capacity
            || self.active_tickets != self.tickets_reported_sold
    }
}

/// Counts with SQL, grouping on `seat_key` (not on the generated `active_seat` column the
/// unique key guards, so the audit does not merely trust that key).
pub async fn audit_sql(
    pool: &MySqlPool,
    event: EventId,
    capacity: u64,
    tickets_reported_sold: u64,
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
    Ok(Audit {
        source: "sql",
        active_tickets: active_tickets as u64,
        capacity,
        double_sold_seats: double_sold_seats as u64,
        tickets_reported_sold,
    })
}

/// Counts through the repository port (for the in-memory repository).
pub async fn audit_repository(
    tickets: &dyn TicketRepository,
    event: EventId,
    capacity: u64,
    tickets_reported_sold: u64,
) -> Result<Audit, BenchError> {
    let active = tickets.active_tickets(event).await?;
    let mut seats: Vec<String> = active
        .iter()
        .filter_map(|t| t.seat.as_ref().map(|s| s.key()))
        .collect();
    seats.sort();
    let mut double = 0;
    for pair in seats.chunk_by(|a, b| a == b) {
        if pair.len() > 1 {
            double += 1;
        }
    }
    Ok(Audit {
        source: "repository",
        active_tickets: active.len() as u64,
        capacity,
        double_sold_seats: double,
        tickets_reported_sold,
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
