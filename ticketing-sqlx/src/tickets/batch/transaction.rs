//! The batch transaction: every order of the batch in one READ COMMITTED transaction of
//! multi-row statements, steps 1–6 of the [module documentation](super).

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{Connection, MySqlConnection, MySqlPool};
use ticketing_core::domain::{EventId, OutboxEvent, Ticket, TicketId, ZoneCode};
use ticketing_core::ports::NewOrder;

use super::culprits::{self, Conflict};
use super::customer_limit;
use crate::error::{StoreResult, is_unique_violation, violates_unique_key};
use crate::flows::channel::Channels;
use crate::flows::outbox::Outbox;
use crate::pool::BEGIN_READ_COMMITTED;
use crate::tickets::{purchase, sql, zone_capacity};
use sqlx::MySql;

/// What one attempt at a batch transaction ended with, when no statement failed unexpectedly.
pub(super) enum Attempt {
    /// Every order of the batch is committed.
    Committed,
    /// Rolled back: these orders (indexes into the batch) broke a rule. Empty when the conflict
    /// vanished before it could be attributed.
    Culprits(Vec<usize>),
}

/// Runs the batch transaction on `conn`. When a rule breaks it rolls back and names the orders
/// that broke it, read on `pool` after the rollback.
pub(super) async fn run(
    conn: &mut MySqlConnection,
    pool: &MySqlPool,
    orders: &[&NewOrder],
) -> StoreResult<Attempt> {
    let mut tx = conn.begin_with(BEGIN_READ_COMMITTED).await?;
    match insert_all(&mut tx, orders).await? {
        None => {
            tx.commit().await?;
            Ok(Attempt::Committed)
        }
        Some(conflict) => {
            tx.rollback().await?;
            Ok(Attempt::Culprits(
                culprits::find(pool, orders, conflict).await?,
            ))
        }
    }
}

/// Steps 1–6 inside the transaction; the conflict when a rule broke (the caller rolls back).
async fn insert_all(
    conn: &mut MySqlConnection,
    orders: &[&NewOrder],
) -> StoreResult<Option<Conflict>> {
    let reserved = reserved_orders(conn, orders).await?;
    if !reserved.is_empty() {
        return Ok(Some(Conflict::Orders(reserved)));
    }
    let shards = match take_places(conn, orders).await? {
        Ok(shards) => shards,
        Err(members) => return Ok(Some(Conflict::Orders(members))),
    };
    if let Some(conflict) = insert_tickets(conn, orders, &shards).await? {
        return Ok(Some(conflict));
    }
    if let Some(conflict) = insert_keys(conn, orders).await? {
        return Ok(Some(conflict));
    }
    let over = customer_limit::raise(conn, orders).await?;
    if !over.is_empty() {
        return Ok(Some(Conflict::Orders(over)));
    }
    if let Some(conflict) = insert_orders(conn, orders).await? {
        return Ok(Some(conflict));
    }
    // The outbox rows: numbered after the commit, so they take no lock other writers wait for.
    let events: Vec<OutboxEvent> = orders
        .iter()
        .map(|new| purchase::reserved_event(&new.order))
        .collect();
    MySql::append(conn, &events).await?;
    Ok(None)
}

/// Step 0: the orders with a seat a sales channel still keeps (a batch has no channel's order:
/// those run alone), read in share mode like the unbatched purchase's check, so a release
/// commits wholly before or after the batch. They leave the batch and run alone, to be refused.
async fn reserved_orders(
    conn: &mut MySqlConnection,
    orders: &[&NewOrder],
) -> StoreResult<Vec<usize>> {
    let mut kept: HashSet<(EventId, String)> = HashSet::new();
    for (event, keys) in culprits::seat_keys(orders) {
        for (seat, _, released) in MySql::kept_among(conn, event.as_uuid(), &keys).await? {
            if !released {
                kept.insert((event, seat));
            }
        }
    }
    Ok(culprits::orders_with_seat_in(orders, &kept))
}

/// Step 1, invariant 2: the general-admission places of the batch, per zone (in key order) the
/// sum of its orders' places, taken from the zone's shards. `Ok(shard of each ticket)`, or
/// `Err(orders)` naming the orders of the zones that lack room (they then run alone and get
/// their exact answer).
async fn take_places(
    conn: &mut MySqlConnection,
    orders: &[&NewOrder],
) -> StoreResult<Result<HashMap<TicketId, u16>, Vec<usize>>> {
    let mut zones: BTreeMap<(EventId, &ZoneCode), (u32, Vec<usize>)> = BTreeMap::new();
    for (i, new) in orders.iter().enumerate() {
        if let Some((zone, capacity)) = &new.general_admission {
            let entry = zones
                .entry((new.order.event_id, zone))
                .or_insert((*capacity, Vec::new()));
            entry.0 = entry.0.min(*capacity);
            entry.1.push(i);
        }
    }
    let mut shards = HashMap::new();
    for ((event, zone), (capacity, members)) in zones {
        let tickets: Vec<TicketId> = members
            .iter()
            .flat_map(|&i| orders[i].order.tickets.iter().map(|t| t.id))
            .collect();
        let start = orders[members[0]].order.id.as_uuid().as_u128() as u32;
        let n = tickets.len() as u32;
        match zone_capacity::take(conn, event, zone, capacity, n, start).await? {
            Some(taken) => shards.extend(tickets.into_iter().zip(taken)),
            None => return Ok(Err(members)),
        }
    }
    Ok(Ok(shards))
}

/// Step 2, invariant 1: the tickets of all orders, in seat order (competing batches meet on the
/// unique key in one order). A seat with an active ticket is [`Conflict::TakenSeat`].
async fn insert_tickets(
    conn: &mut MySqlConnection,
    orders: &[&NewOrder],
    shards: &HashMap<TicketId, u16>,
) -> StoreResult<Option<Conflict>> {
    let mut tickets: Vec<&Ticket> = orders.iter().flat_map(|o| &o.order.tickets).collect();
    tickets.sort_by(|a, b| (a.event_id, &a.seat, a.id).cmp(&(b.event_id, &b.seat, b.id)));
    let placed: Vec<_> = tickets
        .iter()
        .map(|t| (*t, shards.get(&t.id).copied()))
        .collect();
    match purchase::insert_tickets(conn, &placed).await {
        Ok(()) => Ok(None),
        Err(e) if violates_unique_key(&e, sql::ACTIVE_SEAT_KEY) => Ok(Some(Conflict::TakenSeat)),
        Err(e) => Err(e.into()),
    }
}

/// Step 3: the idempotency records of the orders that carry a key. A key stored already is
/// [`Conflict::UsedKey`].
async fn insert_keys(
    conn: &mut MySqlConnection,
    orders: &[&NewOrder],
) -> StoreResult<Option<Conflict>> {
    let records: Vec<_> = orders
        .iter()
        .filter_map(|o| {
            o.idempotency
                .as_ref()
                .map(|r| (r, purchase::created_on(&o.order)))
        })
        .collect();
    if records.is_empty() {
        return Ok(None);
    }
    let mut insert = sql::insert_idempotency_rows(records);
    match insert.build().execute(conn).await {
        Ok(_) => Ok(None),
        Err(e) if is_unique_violation(&e) => Ok(Some(Conflict::UsedKey)),
        Err(e) => Err(e.into()),
    }
}

/// Step 5: the order rows, in id order. An order id stored already is
/// [`Conflict::UsedOrderId`] (a keyed order repeated after its key's record was pruned).
async fn insert_orders(
    conn: &mut MySqlConnection,
    orders: &[&NewOrder],
) -> StoreResult<Option<Conflict>> {
    let mut by_id: Vec<&NewOrder> = orders.to_vec();
    by_id.sort_by_key(|o| o.order.id);
    let mut insert = sql::insert_order_rows(by_id.iter().map(|o| &o.order));
    match insert.build().execute(conn).await {
        Ok(_) => Ok(None),
        Err(e) if is_unique_violation(&e) => Ok(Some(Conflict::UsedOrderId)),
        Err(e) => Err(e.into()),
    }
}
