//! The uses of vouchers: taken by a purchase (or a late payment taking an expired order back)
//! and given back by the transition that makes an order terminal, each in that transaction.
//!
//! `voucher_usage` counts the active orders of a voucher and `voucher_customer_usage` those of
//! one customer; each is raised by a conditional `UPDATE … WHERE active < limit`, whose row lock
//! makes concurrent purchases of one voucher take their uses one after another, so the count
//! never passes the limit however many buyers race (docs/DESIGN.md, "Vouchers").

use std::collections::BTreeMap;
use std::future::Future;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::{EventId, Order, VoucherCode, VoucherProblem};
use ticketing_core::ports::{NewOrder, VoucherClaim};
use uuid::Uuid;

use crate::codec::stored;
use crate::dialect::Dialect;

/// The voucher an order uses, as the release reads it.
pub(crate) struct OrderVoucher {
    /// The order's event.
    pub event: Uuid,
    /// The order's customer.
    pub customer: String,
    /// The voucher's code.
    pub code: String,
}

/// Voucher uses on a database: its statements, and the steps of the purchase, the release and
/// the late payment over them.
pub(crate) trait VoucherUses: Dialect
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Uuid: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> Self::Count: Decode<'q, Self>,
{
    /// Binds: event, code, max uses, max per customer. Creates the voucher's counter at 0 if
    /// it has none (and keeps an existing one).
    const ENSURE_VOUCHER_USAGE: &'static str;
    /// Binds: event, code. One more use, only while `active < max_uses`.
    const RAISE_VOUCHER_USAGE: &'static str;
    /// Binds: event, code, customer. Creates the customer's counter at 0 if it has none.
    const ENSURE_VOUCHER_CUSTOMER: &'static str;
    /// Binds: event, code, customer, limit. One more use, only while `active < limit`.
    const RAISE_VOUCHER_CUSTOMER: &'static str;
    /// Binds: n, event, code.
    const LOWER_VOUCHER_USAGE: &'static str;
    /// Binds: n, event, code, customer.
    const LOWER_VOUCHER_CUSTOMER: &'static str;
    /// Binds: code, order. Notes the voucher on the order row.
    const SET_ORDER_VOUCHER: &'static str;
    /// Binds: order. The order's event, customer and voucher code (NULL without one).
    const SELECT_ORDER_VOUCHER: &'static str;
    /// Binds: event, code. The limits the voucher's first use copied (`max_uses`,
    /// `max_per_customer`).
    const SELECT_VOUCHER_LIMITS: &'static str;
    /// Binds: event. `code` and `active` of every voucher of the event ever used.
    const SELECT_VOUCHER_USES: &'static str;

    /// The vouchers of those of the orders `ids` that use one.
    fn order_vouchers(
        conn: &mut Self::Connection,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<Vec<OrderVoucher>, Self::Error>> + Send;

    /// The purchase's step: one use of `new`'s voucher, in total and for its customer, or
    /// [`VoucherProblem::UsedUp`] / [`VoucherProblem::CustomerLimit`]; the order row names the
    /// voucher. Runs right after the order row is inserted, so a buyer who finds the voucher
    /// used up has written nothing else yet.
    async fn claim_voucher(conn: &mut Self::Connection, new: &NewOrder) -> Result<(), Self::Error> {
        let Some(claim) = &new.voucher else {
            return Ok(());
        };
        let order = &new.order;
        sqlx::query(Self::ENSURE_VOUCHER_USAGE)
            .bind(order.event_id.as_uuid())
            .bind(claim.code.as_str())
            .bind(Self::count(claim.max_uses))
            .bind(Self::count(claim.max_per_customer))
            .execute(&mut *conn)
            .await?;
        Self::take_use(conn, order, claim).await?;
        sqlx::query(Self::SET_ORDER_VOUCHER)
            .bind(claim.code.as_str())
            .bind(order.id.as_uuid())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Raises the voucher's counters for `order`, or the problem that forbids it.
    async fn take_use(
        conn: &mut Self::Connection,
        order: &Order,
        claim: &VoucherClaim,
    ) -> Result<(), Self::Error> {
        let refused = |problem| -> Self::Error {
            Error::Voucher {
                code: claim.code.to_string(),
                problem,
            }
            .into()
        };
        let raised = sqlx::query(Self::RAISE_VOUCHER_USAGE)
            .bind(order.event_id.as_uuid())
            .bind(claim.code.as_str())
            .execute(&mut *conn)
            .await?;
        if Self::rows_affected(&raised) != 1 {
            return Err(refused(VoucherProblem::UsedUp));
        }
        sqlx::query(Self::ENSURE_VOUCHER_CUSTOMER)
            .bind(order.event_id.as_uuid())
            .bind(claim.code.as_str())
            .bind(order.customer.as_str())
            .execute(&mut *conn)
            .await?;
        let raised = sqlx::query(Self::RAISE_VOUCHER_CUSTOMER)
            .bind(order.event_id.as_uuid())
            .bind(claim.code.as_str())
            .bind(order.customer.as_str())
            .bind(Self::count(claim.max_per_customer))
            .execute(&mut *conn)
            .await?;
        if Self::rows_affected(&raised) != 1 {
            return Err(refused(VoucherProblem::CustomerLimit));
        }
        Ok(())
    }

    /// The release's step: gives back the uses of those of `orders` (just turned terminal) that
    /// use a voucher. Counters are lowered in key order, the same in every transaction, so
    /// sweepers do not deadlock each other.
    async fn give_back_vouchers(
        conn: &mut Self::Connection,
        orders: &[Order],
    ) -> Result<(), Self::Error> {
        let ids: Vec<Uuid> = orders.iter().map(|o| o.id.as_uuid()).collect();
        let used = Self::order_vouchers(conn, &ids).await?;
        let mut totals: BTreeMap<(Uuid, &str), u32> = BTreeMap::new();
        let mut customers: BTreeMap<(Uuid, &str, &str), u32> = BTreeMap::new();
        for v in &used {
            *totals.entry((v.event, &v.code)).or_default() += 1;
            *customers
                .entry((v.event, &v.code, &v.customer))
                .or_default() += 1;
        }
        for ((event, code), n) in totals {
            let lowered = sqlx::query(Self::LOWER_VOUCHER_USAGE)
                .bind(Self::count(n))
                .bind(event)
                .bind(code)
                .execute(&mut *conn)
                .await?;
            if Self::rows_affected(&lowered) != 1 {
                return Err(Error::internal(format!("no usage row for voucher {code}")).into());
            }
        }
        for ((event, code, customer), n) in customers {
            let lowered = sqlx::query(Self::LOWER_VOUCHER_CUSTOMER)
                .bind(Self::count(n))
                .bind(event)
                .bind(code)
                .bind(customer)
                .execute(&mut *conn)
                .await?;
            if Self::rows_affected(&lowered) != 1 {
                return Err(Error::internal(format!(
                    "no usage row for voucher {code} of customer {customer}"
                ))
                .into());
            }
        }
        Ok(())
    }

    /// A late payment's step: the expired `order` takes its voucher's use again, within the
    /// limits its first use stored, or the problem that forbids it (the payment is then a
    /// refund due, as when its seats are gone).
    async fn retake_voucher(conn: &mut Self::Connection, order: &Order) -> Result<(), Self::Error> {
        let row = sqlx::query(Self::SELECT_ORDER_VOUCHER)
            .bind(order.id.as_uuid())
            .fetch_one(&mut *conn)
            .await?;
        let Some(code) = row.try_get::<Option<String>, _>("voucher_code")? else {
            return Ok(());
        };
        let limits = sqlx::query(Self::SELECT_VOUCHER_LIMITS)
            .bind(order.event_id.as_uuid())
            .bind(code.as_str())
            .fetch_one(&mut *conn)
            .await?;
        let claim = VoucherClaim {
            code: stored(VoucherCode::new(code))?,
            max_uses: Self::stored_limit(limits.try_get("max_uses")?)?,
            max_per_customer: Self::stored_limit(limits.try_get("max_per_customer")?)?,
        };
        Self::take_use(conn, order, &claim).await
    }

    /// [`voucher_uses`](ticketing_core::ports::TicketRepository::voucher_uses), one attempt.
    async fn voucher_uses(
        pool: &Pool<Self>,
        event: EventId,
    ) -> Result<Vec<(VoucherCode, u32)>, Self::Error> {
        let rows = sqlx::query(Self::SELECT_VOUCHER_USES)
            .bind(event.as_uuid())
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|row| {
                let code: String = row.try_get("code")?;
                Ok((
                    stored(VoucherCode::new(code))?,
                    Self::stored_limit(row.try_get("active")?)?,
                ))
            })
            .collect()
    }

    /// An [`OrderVoucher`] from a row of `order_vouchers`' statement (`event_id`, `customer_id`,
    /// `voucher_code`).
    fn order_voucher(row: &Self::Row) -> Result<OrderVoucher, Self::Error> {
        Ok(OrderVoucher {
            event: row.try_get("event_id")?,
            customer: row.try_get("customer_id")?,
            code: row.try_get("voucher_code")?,
        })
    }

    /// A stored count as the domain's `u32`.
    fn stored_limit(count: Self::Count) -> Result<u32, Self::Error>;
}
