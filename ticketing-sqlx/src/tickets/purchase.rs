//! Persisting a new order: tickets, counters, idempotency record and outbox row in one
//! transaction, or nothing.

use std::collections::HashSet;

use sqlx::{MySqlPool, Row};
use ticketing_core::Error;
use ticketing_core::domain::{
    CustomerId, IdempotencyKey, OrderId, OutboxEvent, OutboxKind, SeatRef, TicketStatus,
};
use ticketing_core::ports::{IdempotencyRecord, InsertOutcome, NewOrder};
use uuid::Uuid;

use super::{sql, zone_capacity};
use crate::codec::{expand, markers, stored, value_rows};
use crate::error::{StoreError, StoreResult, code, message, number};
use crate::outbox;
use crate::pool::begin;
use crate::retry::{MAX_RETRIES, with_retry};

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

/// Rejects orders that are not one well-formed purchase, before touching the database.
pub(super) fn check(new: &NewOrder) -> Result<(), Error> {
    let order = &new.order;
    if order.tickets.is_empty() {
        return Err(Error::invalid(
            "tickets",
            "an order needs at least one ticket",
        ));
    }
    let mut seats = HashSet::new();
    for t in &order.tickets {
        if t.order_id != order.id
            || t.event_id != order.event_id
            || t.venue_id != order.venue_id
            || t.customer != order.customer
        {
            return Err(Error::invalid(
                "tickets",
                "every ticket must belong to the order",
            ));
        }
        if t.status != TicketStatus::PendingPayment {
            return Err(Error::invalid(
                "tickets",
                "a new ticket must be PENDING_PAYMENT",
            ));
        }
        match (&t.seat, &new.general_admission) {
            (Some(seat), None) => {
                if !seats.insert(seat) {
                    return Err(Error::invalid(
                        "seats",
                        format!("seat {seat} appears twice"),
                    ));
                }
            }
            (None, Some((zone, _))) if *zone == t.zone => {}
            _ => {
                return Err(Error::invalid(
                    "tickets",
                    "an order is either seated or general admission in the zone it names",
                ));
            }
        }
    }
    if order.tickets.len() > new.per_customer_limit as usize {
        return Err(Error::LimitExceeded {
            limit: new.per_customer_limit,
        });
    }
    Ok(())
}

async fn insert_once(pool: &MySqlPool, new: &NewOrder) -> StoreResult<InsertOutcome> {
    let order = &new.order;
    let count = order.tickets.len() as u32;
    let mut tx = begin(pool).await?;

    // 1. The idempotency key first: a concurrent retry of the same request waits here for us and
    //    then finds our record, before doing any other work.
    if let Some(record) = &new.idempotency {
        let inserted = sqlx::query(sql::INSERT_IDEMPOTENCY)
            .bind(record.customer.as_str())
            .bind(record.key.as_str())
            .bind(&record.fingerprint)
            .bind(record.order_id.as_uuid())
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            if number(&e) != Some(code::DUPLICATE_KEY) {
                return Err(e.into());
            }
            tx.rollback().await?;
            return match idempotency_record(pool, &record.customer, &record.key).await? {
                Some(stored) => Ok(InsertOutcome::DuplicateKey(stored)),
                None => {
                    Err(Error::internal("idempotency key is duplicate but has no record").into())
                }
            };
        }
    }

    // 2. The order row: the row every later transition compares and sets.
    let inserted = sqlx::query(sql::INSERT_ORDER)
        .bind(order.id.as_uuid())
        .bind(order.event_id.as_uuid())
        .bind(order.customer.as_str())
        .bind(TicketStatus::PendingPayment.as_str())
        .bind(order.expires_at)
        .execute(&mut *tx)
        .await;
    if let Err(e) = inserted {
        return Err(match number(&e) {
            Some(code::DUPLICATE_KEY) => {
                Error::internal(format!("order {} exists already", order.id)).into()
            }
            _ => e.into(),
        });
    }

    // 3. Invariant 2: places of a general-admission zone, from shards with room.
    let shards = match &new.general_admission {
        Some((zone, capacity)) => {
            let start = order.id.as_uuid().as_u128() as u32;
            match zone_capacity::take(&mut tx, order.event_id, zone, *capacity, count, start)
                .await?
            {
                Some(shards) => shards,
                None => {
                    return Err(Error::SoldOut {
                        zone: zone.clone(),
                        requested: count,
                    }
                    .into());
                }
            }
        }
        None => Vec::new(),
    };

    // 4. The tickets, in seat order so competing orders meet on the unique key in one order.
    //    Invariant 1 is the unique key itself.
    let mut tickets: Vec<_> = order.tickets.iter().collect();
    tickets.sort_by(|a, b| a.seat.cmp(&b.seat).then(a.id.cmp(&b.id)));
    let placed: Vec<_> = tickets
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, shards.get(i).copied()))
        .collect();
    if let Err(e) = insert_tickets(&mut tx, &placed).await {
        return Err(match number(&e) {
            Some(code::DUPLICATE_KEY) if message(&e).contains(sql::ACTIVE_SEAT_KEY) => {
                StoreError::SeatConflict
            }
            Some(code::DUPLICATE_KEY) => {
                Error::internal(format!("a ticket of order {} exists already", order.id)).into()
            }
            _ => e.into(),
        });
    }

    // 5. Invariant 6: the customer's active tickets for the event, within the limit.
    sqlx::query(sql::ENSURE_CUSTOMER_USAGE)
        .bind(order.event_id.as_uuid())
        .bind(order.customer.as_str())
        .execute(&mut *tx)
        .await?;
    let raised = sqlx::query(sql::RAISE_CUSTOMER_USAGE)
        .bind(count)
        .bind(order.event_id.as_uuid())
        .bind(order.customer.as_str())
        .bind(count)
        .bind(new.per_customer_limit)
        .execute(&mut *tx)
        .await?;
    if raised.rows_affected() != 1 {
        return Err(Error::LimitExceeded {
            limit: new.per_customer_limit,
        }
        .into());
    }

    // 6. The outbox row: numbered after the commit, so it takes no lock another writer waits for.
    let at = order
        .tickets
        .iter()
        .map(|t| t.created_on)
        .min()
        .unwrap_or(order.expires_at);
    outbox::append(
        &mut tx,
        &[OutboxEvent::for_order(
            OutboxKind::TicketReserved,
            order,
            at,
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(InsertOutcome::Inserted)
}

/// The seats of `new` that have an active ticket now, read after the failed transaction ended.
async fn taken_seats(pool: &MySqlPool, new: &NewOrder) -> StoreResult<Vec<SeatRef>> {
    let wanted: Vec<&SeatRef> = new
        .order
        .tickets
        .iter()
        .filter_map(|t| t.seat.as_ref())
        .collect();
    let mut query = sqlx::query(expand(sql::SELECT_TAKEN_SEATS, &markers(wanted.len())))
        .bind(new.order.event_id.as_uuid());
    for seat in &wanted {
        query = query.bind(seat.key());
    }
    let mut taken = Vec::new();
    for row in query.fetch_all(pool).await? {
        let key: String = row.try_get("active_seat")?;
        taken.push(stored(key.parse::<SeatRef>())?);
    }
    taken.sort();
    Ok(taken)
}

/// Inserts tickets in one multi-row statement (the purchase and the batch writer share it), each
/// with the `zone_usage` shard its place counts in (general admission) or `None` (a seat).
pub(super) async fn insert_tickets(
    conn: &mut sqlx::MySqlConnection,
    tickets: &[(&ticketing_core::domain::Ticket, Option<u16>)],
) -> sqlx::Result<()> {
    let mut insert = sqlx::query(expand(sql::INSERT_TICKETS, &value_rows(tickets.len(), 15)));
    for (t, shard) in tickets {
        insert = insert
            .bind(t.id.as_uuid())
            .bind(t.order_id.as_uuid())
            .bind(t.event_id.as_uuid())
            .bind(t.venue_id.as_uuid())
            .bind(t.zone.as_str())
            .bind(t.seat.as_ref().map(SeatRef::key))
            .bind(t.customer.as_str())
            .bind(t.price.minor)
            .bind(t.price.currency.as_str())
            .bind(t.status.as_str())
            .bind(t.created_on)
            .bind(t.expires_at)
            .bind(t.paid_at)
            .bind(t.payment_ref.as_ref().map(|p| p.as_str()))
            .bind(*shard);
    }
    insert.execute(conn).await.map(|_| ())
}
