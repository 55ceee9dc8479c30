//! Hold extension: moving a pending order's payment deadline, in one transaction.
//!
//! The order row is locked first (`FOR UPDATE`), so an extension queues behind a payment, a
//! cancellation or the expiry sweep of the same order (the sweep locks the row too, skipping it
//! while we hold it) and then sees their outcome. The decision is made on the locked row: still
//! PENDING_PAYMENT, still the deadline the service decided on, that deadline still ahead of the
//! caller's `now`, and fewer extensions than the policy allows. Then the order row (deadline and
//! count), its tickets' deadlines and a `HoldExtended` outbox event, or nothing.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::{OutboxEvent, TicketStatus};
use ticketing_core::ports::{Extension, ExtensionOutcome};
use uuid::Uuid;

use super::OrderSteps;
use super::outbox::Outbox;
use crate::codec::stored;

/// Hold extension on a database: its statements, and the flow of
/// [`extend_deadline`](ticketing_core::ports::TicketRepository::extend_deadline).
pub(crate) trait HoldExtensions: OrderSteps + Outbox
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Uuid: Encode<'q, Self> + Type<Self>,
    for<'q> i64: Decode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> DateTime<Utc>: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
{
    /// Binds: order. Its `status`, `expires_at` and `extensions` (as a signed 64-bit integer),
    /// under a row lock until the transaction ends.
    const LOCK_ORDER_DEADLINE: &'static str;
    /// Binds: order, deadline. `n`: the order's ledger entries that arrived at or after the
    /// deadline (a payment judged late against it), as a signed 64-bit integer.
    const COUNT_PAYMENTS_SINCE: &'static str;
    /// Binds: new deadline, order. Moves the order's deadline and counts the extension.
    const EXTEND_ORDER: &'static str;
    /// Binds: new deadline, order, PENDING_PAYMENT. The order's tickets move with it.
    const EXTEND_TICKETS: &'static str;

    /// One attempt at
    /// [`extend_deadline`](ticketing_core::ports::TicketRepository::extend_deadline).
    async fn extend_once(
        pool: &Pool<Self>,
        e: &Extension,
    ) -> Result<ExtensionOutcome, Self::Error> {
        let mut tx = Self::begin(pool).await?;
        let locked = sqlx::query(Self::LOCK_ORDER_DEADLINE)
            .bind(e.order.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = locked else {
            tx.rollback().await?;
            return Ok(ExtensionOutcome::Stale);
        };
        let status: String = row.try_get("status")?;
        let status = stored(status.parse::<TicketStatus>())?;
        let deadline: DateTime<Utc> = row.try_get("expires_at")?;
        let done: i64 = row.try_get("extensions")?;
        if status != TicketStatus::PendingPayment || deadline != e.from || deadline <= e.now {
            tx.rollback().await?;
            return Ok(ExtensionOutcome::Stale);
        }
        let late: i64 = sqlx::query(Self::COUNT_PAYMENTS_SINCE)
            .bind(e.order.as_uuid())
            .bind(e.from)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if late > 0 {
            tx.rollback().await?;
            return Ok(ExtensionOutcome::DeadlinePassed);
        }
        if done >= i64::from(e.max_extensions) {
            tx.rollback().await?;
            return Ok(ExtensionOutcome::LimitReached);
        }
        sqlx::query(Self::EXTEND_ORDER)
            .bind(e.to)
            .bind(e.order.as_uuid())
            .execute(&mut *tx)
            .await?;
        let moved = sqlx::query(Self::EXTEND_TICKETS)
            .bind(e.to)
            .bind(e.order.as_uuid())
            .bind(TicketStatus::PendingPayment.as_str())
            .execute(&mut *tx)
            .await?;
        let order = Self::load_order(&mut tx, e.order).await?;
        if Self::rows_affected(&moved) != order.tickets.len() as u64 {
            return Err(Error::internal(format!(
                "order {}: extended {} of {} tickets; order and tickets disagree",
                e.order,
                Self::rows_affected(&moved),
                order.tickets.len()
            ))
            .into());
        }
        Self::append(&mut tx, &[OutboxEvent::for_extension(&order, e.now)]).await?;
        tx.commit().await?;
        let extensions = u32::try_from(done + 1)
            .map_err(|_| Error::internal(format!("order {}: extension count {done}", e.order)))?;
        Ok(ExtensionOutcome::Extended { extensions })
    }
}
