//! Which orders of a batch must leave it: before the transaction, the orders that overlap an
//! earlier one; after a rollback, the orders that broke the rule the rollback was for.

use std::collections::{BTreeMap, HashSet};

use sqlx::{MySqlPool, Row};
use ticketing_core::domain::{EventId, SeatRef};
use ticketing_core::ports::NewOrder;

use super::Pending;
use crate::error::StoreResult;
use crate::tickets::sql;

/// The rule a batch transaction broke, as far as the transaction could tell.
pub(super) enum Conflict {
    /// These orders (indexes into the batch) broke it: a full zone or a customer over the limit.
    Orders(Vec<usize>),
    /// A seat has an active ticket; which orders want it is read after the rollback.
    TakenSeat,
    /// An idempotency key is stored already; whose is read after the rollback.
    UsedKey,
    /// An order id is stored already (a key repeated after its record was pruned); whose is
    /// read after the rollback.
    UsedOrderId,
}

/// The orders of the batch behind `conflict`, read on `pool` after the rollback.
pub(super) async fn find(
    pool: &MySqlPool,
    orders: &[&NewOrder],
    conflict: Conflict,
) -> StoreResult<Vec<usize>> {
    match conflict {
        Conflict::Orders(orders) => Ok(orders),
        Conflict::TakenSeat => taken_seat_orders(pool, orders).await,
        Conflict::UsedKey => used_key_orders(pool, orders).await,
        Conflict::UsedOrderId => stored_orders(pool, orders).await,
    }
}

/// Splits off orders that overlap an earlier order of the same batch (a seat, an idempotency
/// key or an order id): they cannot both commit, and running them alone afterwards gives the
/// later one its exact answer. Orders that use a voucher run alone too: their use is taken by
/// the unbatched flow's conditional update (`crate::flows::voucher`), so a voucher's count has
/// one writer path, and a stampede on a used-up voucher cannot roll back batches of other
/// buyers. Orders in a zone with price tiers run alone for the same reason: their tiers are
/// counted, and their prices decided, by the unbatched flow (`crate::flows::tier`) alone.
/// Orders of a sales channel run alone as well, so a batch is all public. Returns
/// (members, alone).
pub(super) fn separate_overlaps(batch: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let mut seats: HashSet<(EventId, &SeatRef)> = HashSet::new();
    let mut keys = HashSet::new();
    let mut ids = HashSet::new();
    let mut overlapping = vec![false; batch.len()];
    for (i, pending) in batch.iter().enumerate() {
        let order = &pending.order.order;
        let seat_clash = order
            .tickets
            .iter()
            .filter_map(|t| t.seat.as_ref())
            .any(|s| seats.contains(&(order.event_id, s)));
        let key = pending
            .order
            .idempotency
            .as_ref()
            .map(|r| (r.customer.as_str(), r.key.as_str()));
        let key_clash = key.is_some_and(|k| keys.contains(&k));
        // A channel's order too: the batch's check of reserved seats takes the public's view.
        let alone = pending.order.voucher.is_some()
            || !pending.order.price_tiers.is_empty()
            || pending.order.channel.is_some();
        if seat_clash || key_clash || alone || ids.contains(&order.id) {
            overlapping[i] = true;
            continue;
        }
        seats.extend(
            order
                .tickets
                .iter()
                .filter_map(|t| t.seat.as_ref())
                .map(|s| (order.event_id, s)),
        );
        keys.extend(key);
        ids.insert(order.id);
    }
    let mut members = Vec::with_capacity(batch.len());
    let mut alone = Vec::new();
    for (pending, overlaps) in batch.into_iter().zip(overlapping) {
        if overlaps {
            alone.push(pending);
        } else {
            members.push(pending);
        }
    }
    (members, alone)
}

/// The seat keys of the batch's orders, per event (events with seats only), in key order.
pub(super) fn seat_keys(orders: &[&NewOrder]) -> BTreeMap<EventId, Vec<String>> {
    let mut wanted: BTreeMap<EventId, Vec<String>> = BTreeMap::new();
    for new in orders {
        wanted.entry(new.order.event_id).or_default().extend(
            new.order
                .tickets
                .iter()
                .filter_map(|t| t.seat.as_ref().map(SeatRef::key)),
        );
    }
    wanted.retain(|_, keys| !keys.is_empty());
    for keys in wanted.values_mut() {
        keys.sort();
        keys.dedup();
    }
    wanted
}

/// The orders (indexes into the batch) with a seat among `seats` (event, seat key).
pub(super) fn orders_with_seat_in(
    orders: &[&NewOrder],
    seats: &HashSet<(EventId, String)>,
) -> Vec<usize> {
    orders
        .iter()
        .enumerate()
        .filter(|(_, new)| {
            new.order.tickets.iter().any(|t| {
                t.seat
                    .as_ref()
                    .is_some_and(|s| seats.contains(&(new.order.event_id, s.key())))
            })
        })
        .map(|(i, _)| i)
        .collect()
}

/// The orders of the batch with a seat that has an active ticket now (read after the rollback).
async fn taken_seat_orders(pool: &MySqlPool, orders: &[&NewOrder]) -> StoreResult<Vec<usize>> {
    let mut taken: HashSet<(EventId, String)> = HashSet::new();
    for (event, keys) in seat_keys(orders) {
        let rows = sql::select_taken_seats(event.as_uuid(), keys)
            .build()
            .fetch_all(pool)
            .await?;
        for row in rows {
            taken.insert((event, row.try_get("active_seat")?));
        }
    }
    Ok(orders_with_seat_in(orders, &taken))
}

/// The orders of the batch whose idempotency key is stored already.
async fn used_key_orders(pool: &MySqlPool, orders: &[&NewOrder]) -> StoreResult<Vec<usize>> {
    let records: Vec<_> = orders
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.idempotency.as_ref().map(|r| (i, r)))
        .collect();
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut select = sql::select_used_keys(records.iter().map(|(_, r)| (&r.customer, &r.key)));
    let rows = select.build().fetch_all(pool).await?;
    let mut used = HashSet::new();
    for row in rows {
        let customer: String = row.try_get("customer_id")?;
        let key: String = row.try_get("idem_key")?;
        used.insert((customer, key));
    }
    Ok(records
        .iter()
        .filter(|(_, r)| {
            used.contains(&(r.customer.as_str().to_owned(), r.key.as_str().to_owned()))
        })
        .map(|(i, _)| *i)
        .collect())
}

/// The orders of the batch whose id is stored already.
async fn stored_orders(pool: &MySqlPool, orders: &[&NewOrder]) -> StoreResult<Vec<usize>> {
    let rows = sql::select_stored_orders(orders.iter().map(|o| o.order.id.as_uuid()))
        .build()
        .fetch_all(pool)
        .await?;
    let mut stored = HashSet::new();
    for row in rows {
        stored.insert(row.try_get::<uuid::Uuid, _>("id")?);
    }
    Ok(orders
        .iter()
        .enumerate()
        .filter(|(_, o)| stored.contains(&o.order.id.as_uuid()))
        .map(|(i, _)| i)
        .collect())
}
