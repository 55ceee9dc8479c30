//! Persisting a new order: tickets, counters, idempotency record and outbox row in one
//! transaction, or nothing.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::TicketStatus;
use ticketing_core::domain::{CustomerId, IdempotencyKey, Order, OrderId, SeatRef, Ticket};
use ticketing_core::ports::{IdempotencyRecord, InsertOutcome, NewOrder};
use uuid::Uuid;

use super::OrderSteps;
use super::channel::Channels;
use super::outbox::Outbox;
use super::tier::PriceTiers;
use super::voucher::VoucherUses;
use crate::codec::stored;
use crate::dialect::is_unique_violation;
use crate::retry::{MAX_RETRIES, retry};
use crate::rules::{check, created_on, reserved_event};

/// The purchase on a database: its statements, and the flow of
/// [`insert_order`](ticketing_core::ports::TicketRepository::insert_order) over them.
pub(crate) trait Purchase:
    OrderSteps + Outbox + VoucherUses + PriceTiers + Channels
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> &'q String: Encode<'q, Self>,
    for<'q> Uuid: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> DateTime<Utc>: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> Self::Count: Decode<'q, Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> i32: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> Vec<u8>: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> bool: Decode<'q, Self> + Type<Self>,
{
    /// Binds: customer, key, fingerprint, order, created_at.
    const INSERT_IDEMPOTENCY: &'static str;
    /// Binds: customer, key.
    const SELECT_IDEMPOTENCY: &'static str;
    /// Binds: order, event, customer, PENDING_PAYMENT, deadline.
    const INSERT_ORDER: &'static str;

    /// Inserts tickets in one statement, each with the `zone_usage` shard its place counts in
    /// (general admission) or `None` (a seat).
    fn insert_tickets(
        conn: &mut Self::Connection,
        tickets: &[(&Ticket, Option<u16>)],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// The seats of `new` that have an active ticket now, sorted, read after the failed
    /// transaction ended.
    fn taken_seats(
        pool: &Pool<Self>,
        new: &NewOrder,
    ) -> impl Future<Output = Result<Vec<SeatRef>, Self::Error>> + Send;

    /// Inserts `new`; see
    /// [`TicketRepository::insert_order`](ticketing_core::ports::TicketRepository).
    async fn insert_order(pool: &Pool<Self>, new: &NewOrder) -> Result<InsertOutcome, Self::Error> {
        check(new)?;
        let mut vanished = 0;
        loop {
            match retry("insert_order", || Self::insert_once(pool, new)).await {
                Err(e) if Self::is_seat_conflict(&e) => {
                    let seats = Self::taken_seats(pool, new).await?;
                    if !seats.is_empty() {
                        return Err(Error::SeatsTaken { seats }.into());
                    }
                    // The conflicting ticket was released between our failed insert and the
                    // look-up: the seats may be free now, so try again (a bounded number of
                    // times).
                    vanished += 1;
                    if vanished > MAX_RETRIES {
                        let seats = new
                            .order
                            .tickets
                            .iter()
                            .filter_map(|t| t.seat.clone())
                            .collect();
                        return Err(Error::SeatsTaken { seats }.into());
                    }
                }
                other => return other,
            }
        }
    }

    /// The idempotency record of `customer`'s `key`.
    async fn idempotency_record(
        pool: &Pool<Self>,
        customer: &CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, Self::Error> {
        let row = sqlx::query(Self::SELECT_IDEMPOTENCY)
            .bind(customer.as_str())
            .bind(key.as_str())
            .fetch_optional(pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(IdempotencyRecord {
            customer: stored(CustomerId::new(row.try_get::<String, _>("customer_id")?))?,
            key: stored(IdempotencyKey::new(row.try_get::<String, _>("idem_key")?))?,
            fingerprint: row.try_get("fingerprint")?,
            order_id: OrderId::from_uuid(row.try_get::<Uuid, _>("order_id")?),
        }))
    }

    /// One attempt at the purchase transaction: the steps below in this order, all or nothing.
    async fn insert_once(pool: &Pool<Self>, new: &NewOrder) -> Result<InsertOutcome, Self::Error> {
        let order = &new.order;
        let mut tx = Self::begin(pool).await?;
        if let Some(record) = &new.idempotency
            && !Self::claim_key(&mut tx, record, created_on(order)).await?
        {
            tx.rollback().await?;
            return Self::stored_duplicate(pool, record).await;
        }
        Self::insert_order_row(&mut tx, new).await?;
        Self::check_reserved(&mut tx, new).await?;
        Self::claim_voucher(&mut tx, new).await?;
        // The tiers decide the prices before the tickets are written with them.
        let (priced, tiers) = Self::take_tier_places(&mut tx, new).await?;
        let shards = Self::take_order_places(&mut tx, new).await?;
        Self::insert_own_tickets(&mut tx, &priced, &shards).await?;
        Self::note_ticket_tiers(&mut tx, &tiers).await?;
        Self::raise_customer_usage(&mut tx, new).await?;
        // The outbox row: numbered after the commit, so it takes no lock another writer waits
        // for.
        Self::append(&mut tx, &[reserved_event(&priced)]).await?;
        tx.commit().await?;
        if new.price_tiers.is_empty() {
            Ok(InsertOutcome::Inserted)
        } else {
            Ok(InsertOutcome::Priced(priced))
        }
    }

    /// Step 1, the idempotency key first: a concurrent retry of the same request waits here for
    /// us and then finds our record, before doing any other work. `false` when the key is used
    /// already. (On PostgreSQL the failed INSERT aborts the transaction, which the caller then
    /// rolls back.)
    async fn claim_key(
        conn: &mut Self::Connection,
        record: &IdempotencyRecord,
        created: DateTime<Utc>,
    ) -> Result<bool, Self::Error> {
        let inserted = sqlx::query(Self::INSERT_IDEMPOTENCY)
            .bind(record.customer.as_str())
            .bind(record.key.as_str())
            .bind(&record.fingerprint)
            .bind(record.order_id.as_uuid())
            .bind(created)
            .execute(conn)
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The answer for a used key: the record stored for it (read after our rollback).
    async fn stored_duplicate(
        pool: &Pool<Self>,
        record: &IdempotencyRecord,
    ) -> Result<InsertOutcome, Self::Error> {
        match Self::idempotency_record(pool, &record.customer, &record.key).await? {
            Some(stored) => Ok(InsertOutcome::DuplicateKey(stored)),
            None => Err(Error::internal("idempotency key is duplicate but has no record").into()),
        }
    }

    /// Step 2, the order row: the row every later transition compares and sets. A keyed order
    /// whose id is stored already repeats a key whose record was pruned: an idempotency
    /// conflict.
    async fn insert_order_row(
        conn: &mut Self::Connection,
        new: &NewOrder,
    ) -> Result<(), Self::Error> {
        let order = &new.order;
        let inserted = sqlx::query(Self::INSERT_ORDER)
            .bind(order.id.as_uuid())
            .bind(order.event_id.as_uuid())
            .bind(order.customer.as_str())
            .bind(TicketStatus::PendingPayment.as_str())
            .bind(order.expires_at)
            .execute(conn)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(match &new.idempotency {
                Some(record) => Error::IdempotencyConflict {
                    key: record.key.as_str().to_owned(),
                },
                None => Error::internal(format!("order {} exists already", order.id)),
            }
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Step 3, invariant 2: the places of a general-admission order, from shards with room; the
    /// shard of each place (none for a seated order), or `SoldOut`.
    async fn take_order_places(
        conn: &mut Self::Connection,
        new: &NewOrder,
    ) -> Result<Vec<u16>, Self::Error> {
        let Some((zone, capacity)) = &new.general_admission else {
            return Ok(Vec::new());
        };
        let order = &new.order;
        let count = order.tickets.len() as u32;
        let start = order.id.as_uuid().as_u128() as u32;
        match Self::take_places(conn, order.event_id, zone, *capacity, count, start).await? {
            Some(shards) => Ok(shards),
            None => Err(Error::SoldOut {
                zone: zone.clone(),
                requested: count,
            }
            .into()),
        }
    }

    /// Step 4, the tickets, in seat order so competing orders meet on the unique key in one
    /// order. Invariant 1 is the unique key (MySQL) or partial unique index (PostgreSQL)
    /// itself: a hit is the dialect's seat conflict, resolved into the seats by
    /// [`Purchase::insert_order`].
    async fn insert_own_tickets(
        conn: &mut Self::Connection,
        order: &Order,
        shards: &[u16],
    ) -> Result<(), Self::Error> {
        let mut tickets: Vec<_> = order.tickets.iter().collect();
        tickets.sort_by(|a, b| a.seat.cmp(&b.seat).then(a.id.cmp(&b.id)));
        let placed: Vec<_> = tickets
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, shards.get(i).copied()))
            .collect();
        match Self::insert_tickets(conn, &placed).await {
            Ok(()) => Ok(()),
            Err(e) if Self::violates_unique_key(&e, Self::ACTIVE_SEAT_KEY) => {
                Err(Self::seat_conflict())
            }
            Err(e) if is_unique_violation(&e) => Err(Error::internal(format!(
                "a ticket of order {} exists already",
                order.id
            ))
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Step 5, invariant 6: the customer's active tickets for the event, within the limit.
    async fn raise_customer_usage(
        conn: &mut Self::Connection,
        new: &NewOrder,
    ) -> Result<(), Self::Error> {
        let count = new.order.tickets.len() as u32;
        Self::raise_usage_within(conn, &new.order, count, new.per_customer_limit).await
    }
}
