//! Persisting a new order: tickets, counters, idempotency record and outbox row in one
//! transaction, or nothing.

use chrono::{DateTime, Utc};
use sqlx::{MySqlConnection, MySqlPool, Row};
use ticketing_core::Error;
use ticketing_core::domain::{
    CustomerId, IdempotencyKey, Order, OrderId, SeatRef, Ticket, TicketStatus,
};
use ticketing_core::ports::{IdempotencyRecord, InsertOutcome, NewOrder};
use uuid::Uuid;

use super::{sql, zone_capacity};
use crate::codec::stored;
use crate::error::{StoreError, StoreResult, is_unique_violation, violates_unique_key};
use crate::flows::outbox::Outbox;
use crate::pool::begin;
use crate::retry::{MAX_RETRIES, with_retry};
pub(super) use crate::rules::{check, created_on, reserved_event};
use sqlx::MySql;

/// Inserts `new`; see [`TicketRepository::insert_order`](ticketing_core::ports::TicketRepository).
pub(super) async fn insert_order(pool: &MySqlPool, new: &NewOrder) -> StoreResult<InsertOutcome> {
    check(new)?;
    let mut vanished = 0;
    loop {
        match with_retry("insert_order", || insert_once(pool, new)).await {
            Err(StoreError::SeatConflict) => {
                let seats = taken_seats(pool, new).await?;
                if !seats.is_empty() {
                    return Err(Error::SeatsTaken { seats }.into());
                }
                // The conflicting ticket was released between our failed insert and the look-up:
                // the seats may be free now, so try again (a bounded number of times).
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
pub(super) async fn idempotency_record(
    pool: &MySqlPool,
    customer: &CustomerId,
    key: &IdempotencyKey,
) -> StoreResult<Option<IdempotencyRecord>> {
    let row = sqlx::query(sql::SELECT_IDEMPOTENCY)
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
async fn insert_once(pool: &MySqlPool, new: &NewOrder) -> StoreResult<InsertOutcome> {
    let order = &new.order;
    let mut tx = begin(pool).await?;
    if let Some(record) = &new.idempotency
        && !claim_key(&mut tx, record, created_on(order)).await?
    {
        tx.rollback().await?;
        return stored_duplicate(pool, record).await;
    }
    insert_order_row(&mut tx, new).await?;
    let shards = take_places(&mut tx, new).await?;
    insert_own_tickets(&mut tx, order, &shards).await?;
    raise_customer_usage(&mut tx, new).await?;
    // The outbox row: numbered after the commit, so it takes no lock another writer waits for.
    MySql::append(&mut tx, &[reserved_event(order)]).await?;
    tx.commit().await?;
    Ok(InsertOutcome::Inserted)
}

/// Step 1, the idempotency key first: a concurrent retry of the same request waits here for us
/// and then finds our record, before doing any other work. `false` when the key is used already.
async fn claim_key(
    conn: &mut MySqlConnection,
    record: &IdempotencyRecord,
    created: DateTime<Utc>,
) -> StoreResult<bool> {
    let inserted = sqlx::query(sql::INSERT_IDEMPOTENCY)
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
    pool: &MySqlPool,
    record: &IdempotencyRecord,
) -> StoreResult<InsertOutcome> {
    match idempotency_record(pool, &record.customer, &record.key).await? {
        Some(stored) => Ok(InsertOutcome::DuplicateKey(stored)),
        None => Err(Error::internal("idempotency key is duplicate but has no record").into()),
    }
}

/// Step 2, the order row: the row every later transition compares and sets. A keyed order whose
/// id is stored already repeats a key whose record was pruned: an idempotency conflict.
async fn insert_order_row(conn: &mut MySqlConnection, new: &NewOrder) -> StoreResult<()> {
    let order = &new.order;
    let inserted = sqlx::query(sql::INSERT_ORDER)
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
async fn take_places(conn: &mut MySqlConnection, new: &NewOrder) -> StoreResult<Vec<u16>> {
    let Some((zone, capacity)) = &new.general_admission else {
        return Ok(Vec::new());
    };
    let order = &new.order;
    let count = order.tickets.len() as u32;
    let start = order.id.as_uuid().as_u128() as u32;
    match zone_capacity::take(conn, order.event_id, zone, *capacity, count, start).await? {
        Some(shards) => Ok(shards),
        None => Err(Error::SoldOut {
            zone: zone.clone(),
            requested: count,
        }
        .into()),
    }
}

/// Step 4, the tickets, in seat order so competing orders meet on the unique key in one order.
/// Invariant 1 is the unique key itself: a hit is [`StoreError::SeatConflict`].
async fn insert_own_tickets(
    conn: &mut MySqlConnection,
    order: &Order,
    shards: &[u16],
) -> StoreResult<()> {
    let mut tickets: Vec<_> = order.tickets.iter().collect();
    tickets.sort_by(|a, b| a.seat.cmp(&b.seat).then(a.id.cmp(&b.id)));
    let placed: Vec<_> = tickets
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, shards.get(i).copied()))
        .collect();
    match insert_tickets(conn, &placed).await {
        Ok(()) => Ok(()),
        Err(e) if violates_unique_key(&e, sql::ACTIVE_SEAT_KEY) => Err(StoreError::SeatConflict),
        Err(e) if is_unique_violation(&e) => {
            Err(Error::internal(format!("a ticket of order {} exists already", order.id)).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Step 5, invariant 6: the customer's active tickets for the event, within the limit.
async fn raise_customer_usage(conn: &mut MySqlConnection, new: &NewOrder) -> StoreResult<()> {
    let count = new.order.tickets.len() as u32;
    raise_usage_within(conn, &new.order, count, new.per_customer_limit).await
}

/// Counts `count` more active tickets of `order`'s customer for its event, or `LimitExceeded`
/// when that would pass `limit` (a purchase, and a late payment taking an order back).
pub(super) async fn raise_usage_within(
    conn: &mut MySqlConnection,
    order: &Order,
    count: u32,
    limit: u32,
) -> StoreResult<()> {
    sqlx::query(sql::ENSURE_CUSTOMER_USAGE)
        .bind(order.event_id.as_uuid())
        .bind(order.customer.as_str())
        .execute(&mut *conn)
        .await?;
    let raised = sqlx::query(sql::RAISE_CUSTOMER_USAGE)
        .bind(count)
        .bind(order.event_id.as_uuid())
        .bind(order.customer.as_str())
        .bind(count)
        .bind(limit)
        .execute(&mut *conn)
        .await?;
    if raised.rows_affected() != 1 {
        return Err(Error::LimitExceeded { limit }.into());
    }
    Ok(())
}

/// The seats of `new` that have an active ticket now, read after the failed transaction ended.
async fn taken_seats(pool: &MySqlPool, new: &NewOrder) -> StoreResult<Vec<SeatRef>> {
    let wanted = new
        .order
        .tickets
        .iter()
        .filter_map(|t| t.seat.as_ref().map(SeatRef::key));
    let mut select = sql::select_taken_seats(new.order.event_id.as_uuid(), wanted);
    let rows = select.build().fetch_all(pool).await?;
    let mut taken = Vec::new();
    for row in rows {
        let key: String = row.try_get("active_seat")?;
        taken.push(stored(key.parse::<SeatRef>())?);
    }
    taken.sort();
    Ok(taken)
}

/// Inserts tickets in one multi-row statement (the purchase and the batch writer share it), each
/// with the `zone_usage` shard its place counts in (general admission) or `None` (a seat).
pub(super) async fn insert_tickets(
    conn: &mut MySqlConnection,
    tickets: &[(&Ticket, Option<u16>)],
) -> sqlx::Result<()> {
    sql::insert_tickets(tickets)
        .build()
        .execute(conn)
        .await
        .map(|_| ())
}
