//! `TicketService`: purchase, pay, cancel, refund and the expiry sweep.

use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::{
    ChannelCode, Event, EventId, Order, OrderId, SeatRef, Ticket, TicketAction, TicketStatus,
    Voucher, VoucherProblem, ZoneCode,
};
use crate::ports::{
    BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldRequest,
    IdempotencyRecord, InsertOutcome, NewOrder, TierClaim, Transition, VoucherClaim,
};
use crate::{Error, Result};

use super::catalog::{EventCache, EventInfo};
use super::channels::{ReservationCache, Reservations};
use super::holds::{
    RepositoryHolds, best_available_with_rebuild, hold_with_rebuild, items_of,
    snapshot_with_rebuild,
};
use super::purchase::{BestAvailablePlan, CheckedPurchase, PurchaseRequest};
use super::{Backends, ServiceConfig};

/// How often a transition re-reads the order after losing a compare-and-set race.
const TRANSITION_ATTEMPTS: u32 = 3;
/// Most sweep batches one [`TicketService::expire_due`] call runs, so one call stays bounded.
const MAX_SWEEP_BATCHES: u32 = 100;

/// The write side: everything that changes tickets.
#[derive(Clone)]
pub struct TicketService {
    pub(super) backends: Backends,
    pub(super) config: ServiceConfig,
    pub(super) events: Arc<EventCache>,
    pub(super) channels: Arc<ReservationCache>,
}

impl TicketService {
    /// A ticket service over `backends`.
    pub fn new(backends: Backends, config: ServiceConfig) -> Self {
        Self {
            channels: Arc::new(ReservationCache::new(config.channel_max_age)),
            backends,
            config,
            events: Arc::new(EventCache::default()),
        }
    }

    pub(super) fn hold_source(&self, info: &EventInfo) -> RepositoryHolds {
        RepositoryHolds::new(
            self.backends.tickets.clone(),
            self.config.hold_grace,
            info.capacities.clone(),
        )
        .with_page_size(self.config.rebuild_page)
    }

    /// Holds every item of the stored `order` as the order itself until `until`, rebuilding a
    /// lock that lost the event: an extension and a late payment's take-back both ask this.
    /// Returns the request made (to release it later) and the lock's answer.
    pub(super) async fn hold_order(
        &self,
        order: &Order,
        info: &EventInfo,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<(HoldRequest, HoldOutcome)> {
        let hold = HoldRequest {
            event: order.event_id,
            order: order.id,
            items: items_of(order, &info.capacities),
            now,
            until,
        };
        let outcome = hold_with_rebuild(
            &*self.backends.seat_lock,
            || self.hold_source(info),
            &hold,
            self.config.rebuild_attempts,
        )
        .await?;
        Ok((hold, outcome))
    }

    /// Buys the selected seats or places: validate, hold all in the seat lock (a loser costs one
    /// lock round trip and no database work), persist the tickets, and release the holds if
    /// persisting fails. Returns the order, PENDING_PAYMENT until [`TicketService::pay`].
    pub async fn purchase(&self, request: PurchaseRequest) -> Result<Order> {
        self.purchase_with_hold(request, None).await
    }

    /// [`purchase`](Self::purchase) with the payment window `hold_time` instead of the
    /// event's: a waiting-list offer is paid within the list's offer time.
    pub(super) async fn purchase_with_hold(
        &self,
        request: PurchaseRequest,
        hold_time: Option<TimeDelta>,
    ) -> Result<Order> {
        let b = &self.backends;
        let info = self.events.get(&*b.catalog, request.event).await?;
        let now = b.now();
        let voucher = match self.voucher(&request, now).await? {
            ControlFlow::Continue(voucher) => voucher,
            ControlFlow::Break(replayed) => return Ok(replayed),
        };
        let mut checked = request.validate(&info, voucher.as_ref(), now)?;
        let (reservations, channel) = match self.channel(&request, &checked).await? {
            ControlFlow::Continue(found) => found,
            ControlFlow::Break(replayed) => return Ok(replayed),
        };
        let order_id = match &request.idempotency_key {
            Some(key) => {
                OrderId::for_idempotency_key(&self.config.order_id_secret, &request.customer, key)
            }
            None => b.ids.order_id(),
        };
        let expires_at = now + hold_time.unwrap_or_else(|| info.event.hold_time());
        let mut hold = HoldRequest {
            event: request.event,
            order: order_id,
            items: checked.items.clone(),
            now,
            until: expires_at + self.config.grace(),
        };
        if let Some(plan) = checked.best_available.take() {
            match self
                .hold_best_available(&request, &info, &hold, plan, |zone| {
                    reservations.excluded(zone, channel.as_ref())
                })
                .await?
            {
                ControlFlow::Break(answer) => return Ok(answer),
                ControlFlow::Continue(seats) => {
                    checked = CheckedPurchase::seats(seats);
                    hold.items = checked.items.clone();
                }
            }
        } else {
            let requested = checked.places.len() as u32;
            if let ControlFlow::Break(answer) = self.hold(&request, &info, &hold, requested).await?
            {
                return Ok(answer);
            }
        }
        let mut new_order = self.new_order(
            &request,
            &info,
            voucher.as_ref(),
            checked,
            &hold,
            expires_at,
        )?;
        new_order.channel = channel;
        let persisted = b.tickets.insert_order(&new_order).await;
        self.settle(&request, &hold, new_order.order, persisted)
            .await
    }

    /// The purchase's voucher, looked up and checked against its window at `now`; `None`
    /// without one. Its uses are counted by the repository in the purchase's transaction.
    /// A keyed retry of a purchase that was stored is answered with its order (`Break`) even
    /// when the voucher has expired since: a retry must get the same answer.
    async fn voucher(
        &self,
        request: &PurchaseRequest,
        now: DateTime<Utc>,
    ) -> Result<ControlFlow<Order, Option<Voucher>>> {
        let Some(code) = &request.voucher else {
            return Ok(ControlFlow::Continue(None));
        };
        let voucher = self.backends.catalog.voucher(request.event, code).await?;
        let checked = match &voucher {
            None => Err(VoucherProblem::Unknown),
            Some(voucher) => voucher.check_window(now),
        };
        match checked {
            Ok(()) => Ok(ControlFlow::Continue(voucher)),
            Err(problem) => match self.replay(request).await? {
                Some(order) => Ok(ControlFlow::Break(order)),
                None => Err(Error::Voucher {
                    code: code.to_string(),
                    problem,
                }),
            },
        }
    }

    /// The event's channel reservations and the buyer's channel (its key checked), before any
    /// hold: a wrong key is [`Error::ChannelKeyInvalid`], and named seats kept back for another
    /// channel are [`Error::SeatsTaken`] naming them (to the public a reserved seat looks
    /// taken). A refusal read from a shared (older) read is read again first, so a release is
    /// never refused; a keyed retry of a stored purchase gets its order (`Break`), as after a
    /// lost hold.
    async fn channel(
        &self,
        request: &PurchaseRequest,
        checked: &CheckedPurchase,
    ) -> Result<ControlFlow<Order, (Arc<Reservations>, Option<ChannelCode>)>> {
        let tickets = &self.backends.tickets;
        let mut reservations = self.channels.get(tickets, request.event).await?;
        let mut fresh = self.config.channel_max_age.is_zero();
        loop {
            let refusal = match &request.channel {
                Some(access) => reservations.verify(access).map(Some),
                None => Ok(None),
            }
            .and_then(|channel| {
                let seats = checked.places.iter().filter_map(|(_, seat)| seat.as_ref());
                let refused = reservations.refused(seats, channel.as_ref());
                if refused.is_empty() {
                    Ok(channel)
                } else {
                    Err(Error::SeatsTaken { seats: refused })
                }
            });
            match refusal {
                Ok(channel) => return Ok(ControlFlow::Continue((reservations, channel))),
                Err(_) if !fresh => {
                    reservations = ReservationCache::get_fresh(tickets, request.event).await?;
                    fresh = true;
                }
                Err(error) => {
                    return match self.replay(request).await? {
                        Some(order) => Ok(ControlFlow::Break(order)),
                        None => Err(error),
                    };
                }
            }
        }
    }

    /// Holds every item of the purchase, or none. `Break` carries the request's answer when the
    /// hold is lost: the order an identical earlier request with the same idempotency key
    /// produced (a replay); otherwise the loss is `SoldOut` (only zones taken) or `SeatsTaken`.
    async fn hold(
        &self,
        request: &PurchaseRequest,
        info: &EventInfo,
        hold: &HoldRequest,
        requested: u32,
    ) -> Result<ControlFlow<Order>> {
        let outcome = hold_with_rebuild(
            &*self.backends.seat_lock,
            || self.hold_source(info),
            hold,
            self.config.rebuild_attempts,
        )
        .await?;
        match outcome {
            HoldOutcome::Held => Ok(ControlFlow::Continue(())),
            HoldOutcome::Taken { seats, zones } => {
                if let Some(order) = self.replay(request).await? {
                    return Ok(ControlFlow::Break(order));
                }
                Err(match zones.into_iter().next() {
                    Some(zone) if seats.is_empty() => Error::SoldOut { zone, requested },
                    _ => Error::SeatsTaken { seats },
                })
            }
            HoldOutcome::NotLoaded => {
                Err(Error::internal("hold answered NotLoaded after a rebuild"))
            }
        }
    }

    /// Asks the lock to choose and hold a block in each of the plan's zones in turn (the hold
    /// request gives order, times and event). `Continue` carries the held seats, sorted; `Break`
    /// the answer when no zone has a block: a replayed order, as for a lost hold, or
    /// [`Error::NoAdjacentSeats`].
    async fn hold_best_available(
        &self,
        request: &PurchaseRequest,
        info: &EventInfo,
        hold: &HoldRequest,
        plan: BestAvailablePlan,
        excluded: impl Fn(&ZoneCode) -> Vec<SeatRef>,
    ) -> Result<ControlFlow<Order, Vec<SeatRef>>> {
        let first_zone = plan.zones.first().map(|(zone, _)| zone.clone());
        for (zone, rows) in plan.zones {
            let wanted = BestAvailableRequest {
                event: hold.event,
                order: hold.order,
                excluded: excluded(&zone),
                zone,
                rows,
                quantity: plan.quantity,
                now: hold.now,
                until: hold.until,
            };
            let outcome = best_available_with_rebuild(
                &*self.backends.seat_lock,
                || self.hold_source(info),
                &wanted,
                self.config.rebuild_attempts,
            )
            .await?;
            if let BestAvailableOutcome::Held { mut seats } = outcome {
                seats.sort();
                return Ok(ControlFlow::Continue(seats));
            }
        }
        if let Some(order) = self.replay(request).await? {
            return Ok(ControlFlow::Break(order));
        }
        let zone =
            first_zone.ok_or_else(|| Error::internal("a best-available plan without zones"))?;
        Err(Error::NoAdjacentSeats {
            zone,
            requested: plan.quantity,
        })
    }

    /// The order to persist for the held purchase: one PENDING_PAYMENT ticket per place at the
    /// zone's price (after the voucher's discount), the idempotency record when the request has
    /// a key, the voucher's use, and the tiers of its tiered zones, which the repository prices
    /// the tickets by.
    fn new_order(
        &self,
        request: &PurchaseRequest,
        info: &EventInfo,
        voucher: Option<&Voucher>,
        checked: CheckedPurchase,
        hold: &HoldRequest,
        expires_at: DateTime<Utc>,
    ) -> Result<NewOrder> {
        let ids = &self.backends.ids;
        let tickets: Vec<Ticket> = checked
            .places
            .into_iter()
            .map(|(zone, seat)| -> Result<Ticket> {
                let list = info
                    .event
                    .price(&zone)
                    .ok_or_else(|| Error::internal("checked zone lost its price"))?;
                let price = voucher.map_or(list, |v| v.price(list));
                Ok(Ticket {
                    id: ids.ticket_id(),
                    order_id: hold.order,
                    event_id: request.event,
                    venue_id: info.event.venue_id(),
                    zone,
                    seat,
                    customer: request.customer.clone(),
                    price,
                    status: TicketStatus::PendingPayment,
                    created_on: hold.now,
                    expires_at,
                    paid_at: None,
                    payment_ref: None,
                })
            })
            .collect::<Result<_>>()?;
        let order = Order::from_tickets(tickets)?
            .ok_or_else(|| Error::internal("an order without tickets"))?;
        let price_tiers = tier_claims(&info.event, &order, voucher);
        Ok(NewOrder {
            order,
            per_customer_limit: info.event.per_customer_limit(),
            general_admission: checked.general_admission,
            idempotency: request
                .idempotency_key
                .as_ref()
                .map(|key| IdempotencyRecord {
                    customer: request.customer.clone(),
                    key: key.clone(),
                    fingerprint: request.fingerprint(),
                    order_id: hold.order,
                }),
            voucher: voucher.map(|v| VoucherClaim {
                code: v.code().clone(),
                max_uses: v.max_uses(),
                max_per_customer: v.max_per_customer(),
            }),
            price_tiers,
            channel: None,
        })
    }

    /// Answers the purchase from what persisting `order` returned, and puts the seat lock in
    /// line with it: stored → re-assert the hold; another request with the same key won → that
    /// request's order; outcome unknown → look before releasing; refused → release what the
    /// refusal shows is not ours.
    async fn settle(
        &self,
        request: &PurchaseRequest,
        hold: &HoldRequest,
        order: Order,
        persisted: Result<InsertOutcome>,
    ) -> Result<Order> {
        match persisted {
            Ok(InsertOutcome::Inserted) => {
                self.reassert_hold(hold).await;
                Ok(order)
            }
            Ok(InsertOutcome::Priced(priced)) => {
                self.reassert_hold(hold).await;
                Ok(priced)
            }
            Ok(InsertOutcome::DuplicateKey(record)) => {
                self.resolve_duplicate(request, record, &hold.items).await
            }
            Err(error) if error.is_retryable() => {
                self.settle_unknown_outcome(order, error, &hold.items).await
            }
            Err(error) => {
                let release = releasable_after_failure(&hold.items, &error);
                if !release.is_empty() {
                    self.release_quietly(&release, hold.order, request.event)
                        .await;
                }
                Err(error)
            }
        }
    }

    /// Holds the committed order's seats once more. If the lock lost its state between the hold
    /// and the commit, and its rebuild read the repository before the commit, nothing else would
    /// tell the lock about this order: the seats would show free (and, once paid, `mark_sold`
    /// leaves free seats free). Re-holding by the same order only extends its own hold.
    async fn reassert_hold(&self, hold: &HoldRequest) {
        match self.backends.seat_lock.hold(hold).await {
            Ok(HoldOutcome::Held) => {}
            Ok(outcome) => {
                tracing::debug!(order = %hold.order, ?outcome, "re-holding a committed order")
            }
            Err(error) => {
                tracing::warn!(order = %hold.order, %error, "re-holding a committed order failed")
            }
        }
    }

    /// Persisting failed with a backend error, so the commit may or may not have happened (a
    /// connection lost during COMMIT). Releasing the holds of a committed order would show its
    /// seats free, so look first: stored → the purchase succeeded after all; not stored → release;
    /// cannot tell → keep the holds, which lapse by themselves at their deadline.
    async fn settle_unknown_outcome(
        &self,
        order: Order,
        error: Error,
        held: &[HoldItem],
    ) -> Result<Order> {
        match self.backends.tickets.order(order.id).await {
            Ok(Some(stored)) if same_tickets(&stored, &order) => {
                tracing::info!(order = %order.id, %error, "persist reported an error but committed");
                Ok(stored)
            }
            Ok(Some(_)) => Err(error), // A concurrent retry's order owns these holds now.
            Ok(None) => {
                self.release_quietly(held, order.id, order.event_id).await;
                Err(error)
            }
            Err(lookup) => {
                tracing::warn!(order = %order.id, %error, %lookup, "persist outcome unknown; holds lapse at their deadline");
                Err(error)
            }
        }
    }

    /// For a request with an idempotency key that lost its hold: the order an earlier identical
    /// request produced, an [`Error::IdempotencyConflict`], or `None` when the key is new.
    async fn replay(&self, request: &PurchaseRequest) -> Result<Option<Order>> {
        let Some(key) = &request.idempotency_key else {
            return Ok(None);
        };
        let Some(record) = self
            .backends
            .tickets
            .idempotency_record(&request.customer, key)
            .await?
        else {
            return Ok(None);
        };
        if record.fingerprint != request.fingerprint() {
            return Err(Error::IdempotencyConflict {
                key: key.to_string(),
            });
        }
        self.backends.tickets.order(record.order_id).await
    }

    /// Another request with the same key was persisted first. Our holds carry the same order id
    /// (it is derived from the key), so release only what the stored order does not own.
    async fn resolve_duplicate(
        &self,
        request: &PurchaseRequest,
        record: IdempotencyRecord,
        held: &[HoldItem],
    ) -> Result<Order> {
        let stored = self
            .backends
            .tickets
            .order(record.order_id)
            .await?
            .ok_or_else(|| {
                Error::internal(format!(
                    "idempotency record names missing order {}",
                    record.order_id
                ))
            })?;
        let owned: HashSet<HoldItem> = if stored.status.is_active() {
            let info = self
                .events
                .get(&*self.backends.catalog, stored.event_id)
                .await?;
            items_of(&stored, &info.capacities).into_iter().collect()
        } else {
            HashSet::new()
        };
        // Our hold replaced the stored order's own hold in a general-admission zone it holds:
        // put its quantity back instead of releasing the zone (which would free its places).
        let (mut restore, mut release) = (Vec::new(), Vec::new());
        for item in held.iter().filter(|i| !owned.contains(*i)) {
            let stored_zone_hold = match item {
                HoldItem::General { zone, .. } => owned
                    .iter()
                    .find(|o| matches!(o, HoldItem::General { zone: z, .. } if z == zone)),
                HoldItem::Seat(_) => None,
            };
            match stored_zone_hold {
                Some(own) => restore.push(own.clone()),
                None => release.push(item.clone()),
            }
        }
        if !release.is_empty() {
            self.release_quietly(&release, record.order_id, request.event)
                .await;
        }
        if !restore.is_empty() {
            let hold = HoldRequest {
                event: request.event,
                order: record.order_id,
                items: restore,
                now: self.backends.now(),
                until: stored.expires_at + self.config.grace(),
            };
            if let Err(error) = self.backends.seat_lock.hold(&hold).await {
                tracing::warn!(order = %record.order_id, %error, "restoring the stored order's hold failed");
            }
        }
        if record.fingerprint != request.fingerprint() {
            let key = request
                .idempotency_key
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            return Err(Error::IdempotencyConflict { key });
        }
        Ok(stored)
    }

    /// Releases holds after a failure. If the release fails too, the hold's deadline frees the
    /// seats, so the failure is logged and the caller sees the original error.
    pub(super) async fn release_quietly(
        &self,
        items: &[HoldItem],
        order: OrderId,
        event: crate::domain::EventId,
    ) {
        if let Err(error) = self.backends.seat_lock.release(event, order, items).await {
            tracing::warn!(%order, %event, %error, "releasing holds failed; they lapse at their deadline");
        }
    }

    /// Cancels an unpaid order and frees its seats. Cancelling a cancelled order returns it.
    pub async fn cancel(&self, order: OrderId) -> Result<Order> {
        self.transition(order, TicketAction::Cancel).await
    }

    /// Refunds a paid order and frees its seats. Refunding a refunded order returns it.
    pub async fn refund(&self, order: OrderId) -> Result<Order> {
        self.transition(order, TicketAction::Refund).await
    }

    /// Read, decide with [`TicketStatus::apply`], compare-and-set; on a lost race, read again.
    async fn transition(&self, id: OrderId, action: TicketAction) -> Result<Order> {
        let b = &self.backends;
        for _ in 0..TRANSITION_ATTEMPTS {
            let order = b
                .tickets
                .order(id)
                .await?
                .ok_or_else(|| Error::not_found("order", id))?;
            // Read after the order, as close to the compare-and-set as possible: a payment is
            // judged by the time it is applied, not the time its request started.
            let now = b.now();
            if let Some(done) = already_done(&order, action) {
                // The earlier attempt may have committed and failed before it told the lock (its
                // caller saw an error and retried): mirror the transition again. Idempotent.
                self.sync_lock(&done, action).await;
                return Ok(done);
            }
            order.status.apply(action, order.expires_at, now)?;
            if action == TicketAction::Refund {
                // A sold mark never lapses, so a refund frees the seats before it commits as well
                // as after: if the process dies or the lock fails after the commit, the seats are
                // not left sold in the lock for good (invariant 4). Freed early, a seat costs at
                // most a buyer's wasted database attempt, which the unique key refuses.
                self.sync_lock(&order, action).await;
            }
            let transition = Transition {
                order: id,
                action,
                now,
                payment_ref: None,
            };
            if b.tickets.transition(&transition).await? {
                let updated = b
                    .tickets
                    .order(id)
                    .await?
                    .ok_or_else(|| Error::not_found("order", id))?;
                self.sync_lock(&updated, action).await;
                return Ok(updated);
            }
            tracing::debug!(order = %id, ?action, "lost a compare-and-set race, re-reading");
        }
        Err(Error::unavailable(
            "repository",
            format!("order {id} kept changing under {action:?}"),
        ))
    }

    /// Mirrors a committed transition into the seat lock. A failure is logged, not returned: the
    /// database is the truth, and the lock heals by deadline or rebuild.
    pub(super) async fn sync_lock(&self, order: &Order, action: TicketAction) {
        let info = match self
            .events
            .get(&*self.backends.catalog, order.event_id)
            .await
        {
            Ok(info) => info,
            Err(error) => {
                tracing::warn!(order = %order.id, %error, "cannot load the event to update the seat lock");
                return;
            }
        };
        let items = items_of(order, &info.capacities);
        let lock = &self.backends.seat_lock;
        let result = match action {
            TicketAction::Pay => lock.mark_sold(order.event_id, order.id, &items).await,
            _ => lock.release(order.event_id, order.id, &items).await,
        };
        if let Err(error) = result {
            tracing::warn!(order = %order.id, ?action, %error, "seat lock update failed after commit");
        }
    }

    /// Expires every order whose payment deadline has passed and frees its seats. Safe to run
    /// on many instances at once. Returns how many orders this call expired.
    pub async fn expire_due(&self) -> Result<u64> {
        let mut expired = 0;
        for _ in 0..MAX_SWEEP_BATCHES {
            // An order expires only once its deadline plus the payment grace has passed, so a
            // payment that arrived in time is not raced out while it is being applied.
            let due = self.backends.now() - self.config.payment_grace();
            let batch = self
                .backends
                .tickets
                .expire_due(due, self.config.sweep_batch)
                .await?;
            for order in &batch {
                self.sync_lock(order, TicketAction::Expire).await;
            }
            expired += batch.len() as u64;
            if batch.len() < self.config.sweep_batch as usize {
                break;
            }
        }
        Ok(expired)
    }

    /// Loads `event` into the seat lock from the repository if the lock does not hold it, as
    /// the first purchase would: call it before an on-sale so that the first buyers do not wait
    /// for the rebuild. Reads the event's whole lock state once, so it is not for the hot path.
    pub async fn load_seat_lock(&self, event: EventId) -> Result<()> {
        let info = self.events.get(&*self.backends.catalog, event).await?;
        snapshot_with_rebuild(
            &*self.backends.seat_lock,
            || self.hold_source(&info),
            event,
            None,
            self.backends.now(),
            self.config.rebuild_attempts,
        )
        .await
        .map(drop)
    }
}

/// The price tiers of the zones of `order` that have tiers, with each tier's price after
/// `voucher`'s discount (the voucher applies on top of the tier's price).
fn tier_claims(event: &Event, order: &Order, voucher: Option<&Voucher>) -> Vec<TierClaim> {
    let zones: BTreeSet<&ZoneCode> = order.tickets.iter().map(|t| &t.zone).collect();
    zones
        .into_iter()
        .filter_map(|zone| {
            let tiers = event.tiers_of(zone);
            (!tiers.is_empty()).then(|| TierClaim {
                zone: zone.clone(),
                tiers: tiers
                    .iter()
                    .map(|t| (t.size, voucher.map_or(t.price, |v| v.price(t.price))))
                    .collect(),
            })
        })
        .collect()
}

/// Whether two versions of an order hold the same tickets.
fn same_tickets(a: &Order, b: &Order) -> bool {
    let ids = |o: &Order| o.tickets.iter().map(|t| t.id).collect::<HashSet<_>>();
    ids(a) == ids(b)
}

/// What to release after persisting failed. Seats the database reports taken stay held by this
/// order until the hold lapses: the lock had them as free, so it was stale (after a data loss, or
/// a lost `mark_sold`), and keeping the hold turns the next buyers of those seats away in the lock
/// instead of in the database. The hold lapses by itself within hold time + grace (invariant 4).
///
/// An idempotency conflict releases nothing: the holds were made under an order id that is
/// stored already (a key repeated after its record was pruned), so releasing would free that
/// order's seats; what the retry added lapses by itself.
fn releasable_after_failure(held: &[HoldItem], error: &Error) -> Vec<HoldItem> {
    match error {
        Error::IdempotencyConflict { .. } => Vec::new(),
        Error::SeatsTaken { seats } => held
            .iter()
            .filter(|item| !matches!(item, HoldItem::Seat(seat) if seats.contains(seat)))
            .cloned()
            .collect(),
        _ => held.to_vec(),
    }
}

/// Retries are harmless: an order already in the action's target status is returned as it is.
fn already_done(order: &Order, action: TicketAction) -> Option<Order> {
    let done = order.status == action.target() && action != TicketAction::Expire;
    done.then(|| order.clone())
}
