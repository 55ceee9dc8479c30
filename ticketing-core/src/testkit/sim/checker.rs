//! The invariant checker: after every step it reads the repository (its active tickets and the
//! outbox rows written since the last step) and the seat lock, and holds them against DESIGN.md's
//! invariants 1–8 and against what the simulated customers were told.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, TimeDelta, Utc};

use crate::Error;
use crate::domain::{
    CustomerId, EventId, Order, OrderId, OrderIdSecret, OutboxEntry, OutboxKind, PaymentOutcome,
    PaymentRef, SeatRef, TicketId, TicketStatus, VoucherCode, VoucherProblem, ZoneCode,
};
use crate::ports::{SeatLock, SeatState, TicketRepository};
use crate::service::{PurchaseRequest, SeatAvailability, SeatMap, Selection};

/// A broken invariant: which one, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant, e.g. `"1 one active ticket per seat"`.
    pub invariant: &'static str,
    /// What was seen.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} broken: {}", self.invariant, self.message)
    }
}

fn violation(invariant: &'static str, message: impl Into<String>) -> Violation {
    Violation {
        invariant,
        message: message.into(),
    }
}

/// Invariant names, as reports print them.
pub(crate) mod inv {
    pub(crate) const SEAT: &str = "1 (one active ticket per seat)";
    pub(crate) const CAPACITY: &str = "2 (general admission within capacity)";
    pub(crate) const PAYMENT: &str =
        "3 (payments: refused after the deadline, PAID changes only by refund)";
    pub(crate) const HOLDS: &str =
        "4 (no seat blocked without an active ticket beyond hold time + grace)";
    pub(crate) const IDEMPOTENCY: &str = "5 (idempotent purchase)";
    pub(crate) const LIMIT: &str = "6 (per-customer limit)";
    pub(crate) const REBUILD: &str = "7 (seat availability rebuilt from the database)";
    pub(crate) const DURABLE: &str =
        "durability (every acknowledged purchase is in the repository)";
    pub(crate) const HISTORY: &str = "history (state machine and outbox agree with the repository)";
    pub(crate) const LIVENESS: &str = "liveness (every operation finishes)";
    pub(crate) const EXTENSION: &str =
        "hold extension (a pending order, before its deadline, within count and cap)";
    pub(crate) const VOUCHER: &str = "8 (a voucher's uses within its limits)";
}

/// An extension moved a pending order's deadline forward, before it passed, within the policy's
/// count and cap; the model takes the new deadline, so a later expiry or payment is held to it.
fn extension_kept_the_policy(
    model: &mut ModelOrder,
    event: &crate::domain::OutboxEvent,
    shape: &Shape,
) -> Result<(), Violation> {
    let id = event.order_id;
    let deadline = event.deadline.ok_or_else(|| {
        violation(
            inv::HISTORY,
            format!("order {id}: HoldExtended without a deadline"),
        )
    })?;
    let broken = if model.status != TicketStatus::PendingPayment {
        Some(format!("a {} order was extended", model.status))
    } else if event.at >= model.expires_at {
        Some(format!(
            "extended at {} though its deadline {} had passed",
            event.at, model.expires_at
        ))
    } else if deadline <= model.expires_at {
        Some(format!(
            "deadline moved from {} back to {deadline}",
            model.expires_at
        ))
    } else if deadline > model.created + shape.max_hold {
        Some(format!(
            "deadline {deadline} beyond the cap, created {} + {}",
            model.created, shape.max_hold
        ))
    } else if model.extensions >= shape.max_extensions {
        Some(format!(
            "extended {} times, policy {}",
            model.extensions + 1,
            shape.max_extensions
        ))
    } else {
        None
    };
    if let Some(what) = broken {
        return Err(violation(inv::EXTENSION, format!("order {id}: {what}")));
    }
    model.extensions += 1;
    model.expires_at = deadline;
    Ok(())
}

/// Runs an in-memory adapter call, which never waits, to completion in one poll.
pub(crate) fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("an in-memory adapter call did not finish in one poll"),
    }
}

#[derive(Debug, Clone)]
struct ModelOrder {
    status: TicketStatus,
    expires_at: DateTime<Utc>,
    tickets: Vec<TicketId>,
    /// General-admission tickets of the order.
    general: u32,
    payment_ref: Option<PaymentRef>,
    /// When it was created, and how often its deadline was extended.
    created: DateTime<Utc>,
    extensions: u32,
    /// The buyer, and whether the order uses the voucher (its tickets are priced below the
    /// zone's listed price: the voucher is the only discount the simulated event has).
    customer: CustomerId,
    voucher: bool,
}

/// What the checker knows of the event.
pub(crate) struct Shape {
    pub event: EventId,
    pub capacity: u32,
    pub limit: u32,
    /// Hold time + grace: the longest a hold may block a seat.
    pub window: TimeDelta,
    /// Whether a sold mark left behind by a refunded order breaks invariant 4 (see
    /// [`SimConfig::strict_sold_marks`](super::SimConfig::strict_sold_marks)).
    pub strict_sold_marks: bool,
    /// Whether late payments may pay (`LatePaymentPolicy::AcceptIfAvailable`).
    pub accept_late: bool,
    /// The hold-extension policy: extensions per order, and the latest deadline after the
    /// purchase.
    pub max_extensions: u32,
    pub max_hold: TimeDelta,
    /// Each zone's listed price in minor units: a ticket priced below it used the voucher.
    pub prices: BTreeMap<ZoneCode, i64>,
    /// The event's voucher and its limits (invariant 8).
    pub voucher: VoucherCode,
    pub voucher_uses: u32,
    pub voucher_per_customer: u32,
    /// What the voucher takes off each ticket, in minor units.
    pub voucher_off: i64,
}

/// Counted (not a failure) for a late payment that paid an order the sweep had not expired yet.
pub const LATE_PAYMENT_ACCEPTED: &str = "late payment accepted for an unswept order (PAID_LATE)";
/// Counted (not a failure) for a late payment that took an expired order's seats back.
pub const LATE_PAYMENT_REACTIVATED: &str =
    "late payment took an expired order's seats back (PAID_LATE, reactivated)";

/// Counted (not a failure) for every extension of a payment deadline, each checked against the
/// policy.
pub const HOLD_EXTENDED: &str = "hold extended (within the policy's count and cap)";

/// Counted (not a failure) for every acknowledged purchase that used the voucher.
pub const VOUCHER_USED: &str = "purchase with the voucher acknowledged (priced with its discount)";
/// Counted (not a failure) for every purchase refused because the voucher was used up or the
/// customer had used it already.
pub const VOUCHER_REFUSED: &str = "purchase refused: voucher used up or customer's use taken";

/// The observation counted instead of a failure when sold marks of refunded orders are tolerated.
pub(crate) const STALE_SOLD_MARK: &str =
    "KNOWN BUG: seat lock keeps a refunded order's seat sold beyond hold time + grace";

/// The checker's memory: a model of every order rebuilt from the outbox, and every answer given.
pub(crate) struct Checker {
    shape: Shape,
    outbox_seq: u64,
    orders: BTreeMap<OrderId, ModelOrder>,
    acked_purchases: BTreeMap<OrderId, Vec<TicketId>>,
    acked_pays: BTreeMap<OrderId, PaymentRef>,
    refunds: BTreeSet<OrderId>,
    cancels: BTreeSet<OrderId>,
    refused: BTreeSet<(OrderId, PaymentRef)>,
    /// Seats (or `None` for the GA zone) that the lock blocks without an active ticket, since when.
    blocked_since: BTreeMap<Option<SeatRef>, DateTime<Utc>>,
    /// Invariant checks performed (one per step and per acknowledged answer).
    pub checks: u64,
    /// Things worth knowing that break no invariant.
    pub observations: BTreeMap<&'static str, u64>,
}

type Check = Result<(), Violation>;

impl Checker {
    pub(super) fn new(shape: Shape) -> Self {
        Self {
            shape,
            outbox_seq: 0,
            orders: BTreeMap::new(),
            acked_purchases: BTreeMap::new(),
            acked_pays: BTreeMap::new(),
            refunds: BTreeSet::new(),
            cancels: BTreeSet::new(),
            refused: BTreeSet::new(),
            blocked_since: BTreeMap::new(),
            checks: 0,
            observations: BTreeMap::new(),
        }
    }

    pub(super) fn observe(&mut self, what: &'static str) {
        *self.observations.entry(what).or_default() += 1;
    }

    /// A refund of `order` was asked for (it may or may not be acknowledged).
    pub(super) fn refund_requested(&mut self, order: OrderId) {
        self.refunds.insert(order);
    }

    /// A cancellation of `order` was asked for.
    pub(super) fn cancel_requested(&mut self, order: OrderId) {
        self.cancels.insert(order);
    }

    /// The orders whose purchase was acknowledged.
    pub(super) fn acked_purchases(&self) -> impl Iterator<Item = (&OrderId, &Vec<TicketId>)> {
        self.acked_purchases.iter()
    }

    /// Folds the outbox rows written since the last call into the model, checking every move.
    fn follow_outbox(&mut self, repo: &dyn TicketRepository) -> Check {
        let entries = ready(repo.outbox_after(self.outbox_seq, u32::MAX))
            .map_err(|e| violation(inv::HISTORY, format!("outbox unreadable: {e}")))?;
        for entry in entries {
            if entry.seq <= self.outbox_seq {
                return Err(violation(
                    inv::HISTORY,
                    format!(
                        "outbox sequence went from {} to {}",
                        self.outbox_seq, entry.seq
                    ),
                ));
            }
            self.outbox_seq = entry.seq;
            self.apply(repo, &entry)?;
        }
        Ok(())
    }

    fn apply(&mut self, repo: &dyn TicketRepository, entry: &OutboxEntry) -> Check {
        let event = &entry.event;
        let id = event.order_id;
        let first = event
            .ticket_ids
            .first()
            .and_then(|t| ready(repo.ticket(*t)).ok().flatten())
            .ok_or_else(|| {
                violation(
                    inv::HISTORY,
                    format!("outbox names order {id} without tickets"),
                )
            })?;
        if event.kind == OutboxKind::TicketReserved {
            if self.orders.contains_key(&id) {
                return Err(violation(
                    inv::HISTORY,
                    format!("order {id} reserved twice"),
                ));
            }
            self.orders.insert(
                id,
                ModelOrder {
                    status: TicketStatus::PendingPayment,
                    expires_at: first.expires_at,
                    tickets: event.ticket_ids.clone(),
                    general: (event.ticket_ids.len() - event.seats.len()) as u32,
                    payment_ref: None,
                    created: first.created_on,
                    extensions: 0,
                    customer: first.customer.clone(),
                    voucher: self
                        .shape
                        .prices
                        .get(&first.zone)
                        .is_some_and(|listed| first.price.minor < *listed),
                },
            );
            return Ok(());
        }
        let refused = &self.refused;
        let (refunds, cancels) = (&self.refunds, &self.cancels);
        let model = self.orders.get_mut(&id).ok_or_else(|| {
            violation(
                inv::HISTORY,
                format!("{:?} for unknown order {id}", event.kind),
            )
        })?;
        let payment = event.payment.as_ref();
        let reactivated = payment.is_some_and(|p| p.reactivated);
        let paid_late = payment.is_some_and(|p| p.outcome == PaymentOutcome::PaidLate);
        if (reactivated || paid_late) && !self.shape.accept_late {
            return Err(violation(
                inv::PAYMENT,
                format!("order {id} paid late though the policy rejects late payments"),
            ));
        }
        if event.kind == OutboxKind::HoldExtended {
            extension_kept_the_policy(model, event, &self.shape)?;
            self.observe(HOLD_EXTENDED);
            return Ok(());
        }
        let (from, to) = match event.kind {
            OutboxKind::TicketPaid if reactivated => (TicketStatus::Expired, TicketStatus::Paid),
            OutboxKind::TicketPaid => (TicketStatus::PendingPayment, TicketStatus::Paid),
            OutboxKind::TicketExpired => (TicketStatus::PendingPayment, TicketStatus::Expired),
            OutboxKind::TicketCancelled => (TicketStatus::PendingPayment, TicketStatus::Cancelled),
            OutboxKind::TicketRefunded => (TicketStatus::Paid, TicketStatus::Refunded),
            OutboxKind::TicketReserved => unreachable!("handled above"),
            // The order did not change: a refund is owed (checked against the ledger).
            OutboxKind::PaymentRejected => return Ok(()),
            // The simulator makes no waiting-list offers; one changes no order anyway.
            OutboxKind::WaitingListOffered => return Ok(()),
            OutboxKind::HoldExtended => unreachable!("handled above"),
            // The simulator keeps no seats back for channels.
            OutboxKind::ChannelSeatsReleased => return Ok(()),
        };
        if model.status != from {
            let invariant = if model.status == TicketStatus::Paid {
                inv::PAYMENT
            } else {
                inv::HISTORY
            };
            return Err(violation(
                invariant,
                format!("order {id} moved {} -> {to}", model.status),
            ));
        }
        let mut seen_refused_then_paid = false;
        match to {
            TicketStatus::Paid => {
                let paid_at = first.paid_at.ok_or_else(|| {
                    violation(inv::PAYMENT, format!("order {id} is PAID without paid_at"))
                })?;
                // Paid in time, or late under the policy; an order the sweep expired while its
                // payment was under way (the clock ran past the grace) is taken back as late.
                let late = paid_at >= model.expires_at || event.at >= model.expires_at;
                if late && !paid_late || paid_late && !late && !reactivated {
                    return Err(violation(
                        inv::PAYMENT,
                        format!(
                            "order {id} paid at {paid_at} (late: {paid_late}), deadline {}",
                            model.expires_at
                        ),
                    ));
                }
                model.payment_ref = first.payment_ref.clone();
                if let Some(r) = &model.payment_ref {
                    seen_refused_then_paid = refused.contains(&(id, r.clone()));
                }
            }
            TicketStatus::Expired if event.at < model.expires_at => {
                return Err(violation(
                    inv::HISTORY,
                    format!(
                        "order {id} expired at {} before its deadline {}",
                        event.at, model.expires_at
                    ),
                ));
            }
            TicketStatus::Refunded if !refunds.contains(&id) => {
                return Err(violation(
                    inv::PAYMENT,
                    format!("PAID order {id} became REFUNDED though nobody asked for a refund"),
                ));
            }
            TicketStatus::Cancelled if !cancels.contains(&id) => {
                return Err(violation(
                    inv::HISTORY,
                    format!("order {id} was CANCELLED though its customer never cancelled"),
                ));
            }
            _ => {}
        }
        model.status = to;
        if reactivated {
            self.observe(LATE_PAYMENT_REACTIVATED);
        } else if paid_late {
            self.observe(LATE_PAYMENT_ACCEPTED);
        }
        if seen_refused_then_paid {
            // The ledger keeps one outcome per reference: a provider told "refused" refunds.
            return Err(violation(
                inv::PAYMENT,
                format!(
                    "order {id}: a payment reference refused as late, then paid by a duplicate"
                ),
            ));
        }
        Ok(())
    }

    /// The per-step check of invariants 1–6 and the history, and invariant 4 against the lock.
    /// `now` is the clock; `latest` the latest time the clock ever showed.
    pub(super) fn check_step(
        &mut self,
        repo: &dyn TicketRepository,
        lock: &dyn SeatLock,
        latest: DateTime<Utc>,
    ) -> Check {
        self.checks += 1;
        self.follow_outbox(repo)?;
        let shape = &self.shape;
        let active = ready(repo.active_tickets(shape.event))
            .map_err(|e| violation(inv::HISTORY, format!("active tickets unreadable: {e}")))?;
        let mut per_seat: BTreeMap<SeatRef, Vec<OrderId>> = BTreeMap::new();
        let mut general = 0u32;
        let mut per_customer: BTreeMap<CustomerId, u32> = BTreeMap::new();
        for ticket in &active {
            match &ticket.seat {
                Some(seat) => per_seat
                    .entry(seat.clone())
                    .or_default()
                    .push(ticket.order_id),
                None => general += 1,
            }
            *per_customer.entry(ticket.customer.clone()).or_default() += 1;
            let model = self.orders.get(&ticket.order_id);
            if model.map(|m| m.status) != Some(ticket.status) {
                return Err(violation(
                    inv::HISTORY,
                    format!(
                        "ticket {} of order {} is {} in the repository but {:?} by its outbox",
                        ticket.id,
                        ticket.order_id,
                        ticket.status,
                        model.map(|m| m.status)
                    ),
                ));
            }
        }
        let modelled_active: usize = self
            .orders
            .values()
            .filter(|m| m.status.is_active())
            .map(|m| m.tickets.len())
            .sum();
        if modelled_active != active.len() {
            return Err(violation(
                inv::HISTORY,
                format!(
                    "{} active tickets in the repository, {modelled_active} by its outbox",
                    active.len()
                ),
            ));
        }
        if let Some((seat, orders)) = per_seat.iter().find(|(_, o)| o.len() > 1) {
            return Err(violation(
                inv::SEAT,
                format!(
                    "seat {seat} has {} active tickets (orders {orders:?})",
                    orders.len()
                ),
            ));
        }
        if general > shape.capacity {
            return Err(violation(
                inv::CAPACITY,
                format!("{general} active GA tickets, capacity {}", shape.capacity),
            ));
        }
        if let Some((customer, n)) = per_customer.iter().find(|(_, n)| **n > shape.limit) {
            return Err(violation(
                inv::LIMIT,
                format!(
                    "customer {customer} has {n} active tickets, limit {}",
                    shape.limit
                ),
            ));
        }
        self.check_vouchers(repo)?;
        for (order, payment_ref) in &self.acked_pays {
            let model = &self.orders[order];
            let kept = match model.status {
                TicketStatus::Paid => model.payment_ref.as_ref() == Some(payment_ref),
                TicketStatus::Refunded => self.refunds.contains(order),
                _ => false,
            };
            if !kept {
                return Err(violation(
                    inv::PAYMENT,
                    format!(
                        "payment {payment_ref} of order {order} was acknowledged, but the order is {} (ref {:?})",
                        model.status, model.payment_ref
                    ),
                ));
            }
        }
        self.check_lock(lock, latest, &per_seat, general)
    }

    /// Invariant 8: the active orders that used the voucher (by their discounted tickets) are
    /// within its total and per-customer limits, and the repository's count of its uses is
    /// exactly that number (a use not given back, or taken twice, would show here).
    fn check_vouchers(&self, repo: &dyn TicketRepository) -> Check {
        let shape = &self.shape;
        let mut per_customer: BTreeMap<&CustomerId, u32> = BTreeMap::new();
        for model in self.orders.values() {
            if model.voucher && model.status.is_active() {
                *per_customer.entry(&model.customer).or_default() += 1;
            }
        }
        let modelled: u32 = per_customer.values().sum();
        if modelled > shape.voucher_uses {
            return Err(violation(
                inv::VOUCHER,
                format!(
                    "{modelled} active orders use voucher {}, limit {}",
                    shape.voucher, shape.voucher_uses
                ),
            ));
        }
        if let Some((customer, n)) = per_customer
            .iter()
            .find(|(_, n)| **n > shape.voucher_per_customer)
        {
            return Err(violation(
                inv::VOUCHER,
                format!(
                    "customer {customer} has {n} active orders with voucher {}, limit {}",
                    shape.voucher, shape.voucher_per_customer
                ),
            ));
        }
        let counted = ready(repo.voucher_uses(shape.event))
            .map_err(|e| violation(inv::HISTORY, format!("voucher uses unreadable: {e}")))?
            .into_iter()
            .find(|(code, _)| *code == shape.voucher)
            .map_or(0, |(_, n)| n);
        if counted != modelled {
            return Err(violation(
                inv::VOUCHER,
                format!(
                    "the repository counts {counted} uses of voucher {}, its active discounted orders are {modelled}",
                    shape.voucher
                ),
            ));
        }
        Ok(())
    }

    /// Invariant 4: looks at the lock as it will be once every hold placed so far has lapsed.
    /// What is still blocked then must be a sold seat (or GA place) with an active ticket; a seat
    /// blocked without one is a violation once it stayed so for longer than hold time + grace.
    fn check_lock(
        &mut self,
        lock: &dyn SeatLock,
        latest: DateTime<Utc>,
        per_seat: &BTreeMap<SeatRef, Vec<OrderId>>,
        general: u32,
    ) -> Check {
        let window = self.shape.window;
        let horizon = latest + window + TimeDelta::milliseconds(1);
        let Ok(Some(snapshot)) = ready(lock.snapshot(self.shape.event, horizon)) else {
            self.blocked_since.clear();
            return Ok(()); // Not loaded: nothing is blocked.
        };
        let seats: BTreeMap<SeatRef, SeatState> = snapshot.seats.into_iter().collect();
        let mut blocked: BTreeSet<Option<SeatRef>> = BTreeSet::new();
        let mut stale: BTreeSet<Option<SeatRef>> = BTreeSet::new();
        for (seat, state) in &seats {
            match state {
                SeatState::Held { order, until } => {
                    return Err(violation(
                        inv::HOLDS,
                        format!(
                            "seat {seat} is held by order {order} until {until}, beyond {} (latest clock {latest} + hold time + grace)",
                            horizon - TimeDelta::milliseconds(1)
                        ),
                    ));
                }
                SeatState::Sold { order } => {
                    let owners = per_seat.get(seat).map(Vec::as_slice).unwrap_or_default();
                    if !owners.contains(order) {
                        blocked.insert(Some(seat.clone()));
                        if self.orders.get(order).map(|m| m.status) == Some(TicketStatus::Refunded)
                        {
                            stale.insert(Some(seat.clone()));
                        }
                    }
                }
            }
        }
        let taken: u32 = snapshot.general.values().sum();
        if taken > general {
            blocked.insert(None);
            let refunded: u32 = self
                .orders
                .values()
                .filter(|m| m.status == TicketStatus::Refunded)
                .map(|m| m.general)
                .sum();
            if taken - general <= refunded {
                stale.insert(None);
            }
        }
        self.blocked_since.retain(|key, _| blocked.contains(key));
        for key in blocked {
            let since = *self.blocked_since.entry(key.clone()).or_insert(latest);
            if latest - since > window && !self.shape.strict_sold_marks && stale.contains(&key) {
                self.blocked_since.remove(&key);
                self.observe(STALE_SOLD_MARK);
                continue;
            }
            if latest - since > window {
                let what = match &key {
                    Some(seat) => format!("seat {seat} ({:?})", seats[seat]),
                    None => format!("{taken} GA places (active GA tickets: {general})"),
                };
                return Err(violation(
                    inv::HOLDS,
                    format!(
                        "{what} blocked in the seat lock without an active ticket since {since}, now {latest}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A purchase was acknowledged with `order`.
    pub(super) fn purchase_acked(
        &mut self,
        repo: &dyn TicketRepository,
        request: &PurchaseRequest,
        order: &Order,
    ) -> Check {
        self.checks += 1;
        let ids: Vec<TicketId> = order.tickets.iter().map(|t| t.id).collect();
        let stored = ready(repo.order(order.id)).ok().flatten();
        match &stored {
            Some(stored) if stored.tickets.iter().map(|t| t.id).eq(ids.iter().copied()) => {}
            _ => {
                return Err(violation(
                    inv::DURABLE,
                    format!(
                        "purchase acknowledged as order {}, which the repository does not have",
                        order.id
                    ),
                ));
            }
        }
        if !matches_request(order, request) {
            return Err(violation(
                inv::IDEMPOTENCY,
                format!("order {} does not match the request {request:?}", order.id),
            ));
        }
        if let Some(ticket) = order.tickets.iter().find(|t| {
            let listed = self.shape.prices.get(&t.zone).copied().unwrap_or_default();
            let off = if request.voucher.is_some() {
                self.shape.voucher_off
            } else {
                0
            };
            t.price.minor != listed - off
        }) {
            return Err(violation(
                inv::VOUCHER,
                format!(
                    "order {} has ticket {} at {} for a request {} the voucher",
                    order.id,
                    ticket.id,
                    ticket.price,
                    if request.voucher.is_some() {
                        "with"
                    } else {
                        "without"
                    }
                ),
            ));
        }
        if request.voucher.is_some() {
            self.observe(VOUCHER_USED);
        }
        if let Some(key) = &request.idempotency_key {
            let expected =
                OrderId::for_idempotency_key(&OrderIdSecret::default(), &request.customer, key);
            if order.id != expected {
                return Err(violation(
                    inv::IDEMPOTENCY,
                    format!("key {key} answered with order {}, not {expected}", order.id),
                ));
            }
        }
        if let Some(before) = self.acked_purchases.insert(order.id, ids.clone())
            && before != ids
        {
            return Err(violation(
                inv::IDEMPOTENCY,
                format!(
                    "order {} acknowledged twice with different tickets",
                    order.id
                ),
            ));
        }
        Ok(())
    }

    /// A purchase was refused with `error`.
    pub(super) fn purchase_refused(
        &mut self,
        repo: &dyn TicketRepository,
        request: &PurchaseRequest,
        error: &Error,
    ) -> Check {
        if matches!(
            error,
            Error::Voucher {
                problem: VoucherProblem::UsedUp | VoucherProblem::CustomerLimit,
                ..
            }
        ) {
            self.observe(VOUCHER_REFUSED);
        }
        let (Error::IdempotencyConflict { .. }, Some(key)) = (error, &request.idempotency_key)
        else {
            return Ok(());
        };
        self.checks += 1;
        let record = ready(repo.idempotency_record(&request.customer, key))
            .ok()
            .flatten();
        // A best-available order is a block of seats, which a request naming those seats (or
        // another best-available request of that size) matches too: the record's fingerprint
        // tells the requests apart.
        let other_request = record
            .as_ref()
            .is_some_and(|r| r.fingerprint != request.fingerprint());
        let stored = record.and_then(|r| ready(repo.order(r.order_id)).ok().flatten());
        match stored {
            Some(stored) if !matches_request(&stored, request) || other_request => Ok(()),
            other => Err(violation(
                inv::IDEMPOTENCY,
                format!(
                    "key {key} answered IdempotencyConflict, but the stored order is {:?}",
                    other.map(|o| o.id)
                ),
            )),
        }
    }

    /// A hold extension of `order` answered, asked for by its owner or (`owner` false) another
    /// customer: another's is never extended, nor told more than "not found"; an owner's
    /// acknowledged order is never "not found"; an extension given keeps the policy.
    pub(super) fn extension_answered(
        &mut self,
        repo: &dyn TicketRepository,
        order: OrderId,
        owner: bool,
        result: &crate::Result<crate::service::ExtendedHold>,
    ) -> Check {
        self.checks += 1;
        let broken = match result {
            Ok(_) if !owner => Some("another customer extended the order".to_string()),
            Ok(extended) => {
                let created = ready(repo.order(order))
                    .ok()
                    .flatten()
                    .and_then(|o| o.tickets.iter().map(|t| t.created_on).min());
                if extended.extensions > self.shape.max_extensions {
                    Some(format!("answered {} extensions", extended.extensions))
                } else if created
                    .is_some_and(|c| extended.order.expires_at > c + self.shape.max_hold)
                {
                    Some(format!(
                        "answered a deadline {} beyond the cap",
                        extended.order.expires_at
                    ))
                } else {
                    None
                }
            }
            Err(Error::NotFound { .. }) if owner => {
                Some("its customer was told the acknowledged order does not exist".to_string())
            }
            Err(Error::NotFound { .. } | Error::Unavailable { .. }) => None,
            Err(error) if !owner => Some(format!("another customer was told {error}")),
            Err(_) => None,
        };
        match broken {
            Some(what) => Err(violation(
                inv::EXTENSION,
                format!("extension of order {order}: {what}"),
            )),
            None => Ok(()),
        }
    }

    /// A payment was acknowledged.
    pub(super) fn payment_acked(&mut self, order: &Order, payment_ref: &PaymentRef) -> Check {
        self.checks += 1;
        // The order read back after the payment committed may already be refunded by a refund
        // that ran in between: the payment happened, then the refund.
        let status_ok = order.status == TicketStatus::Paid
            || (order.status == TicketStatus::Refunded && self.refunds.contains(&order.id));
        let paid_with_ref = status_ok
            && order
                .tickets
                .iter()
                .all(|t| t.payment_ref.as_ref() == Some(payment_ref));
        if !paid_with_ref {
            return Err(violation(
                inv::PAYMENT,
                format!(
                    "payment {payment_ref} acknowledged, but order {} is {}",
                    order.id, order.status
                ),
            ));
        }
        if order.status == TicketStatus::Refunded {
            self.observe("payment acknowledged with the order already REFUNDED (a refund ran between its commit and its read-back; the payment still marks the seat sold)");
        }
        if let Some(before) = self.acked_pays.insert(order.id, payment_ref.clone())
            && before != *payment_ref
        {
            return Err(violation(
                inv::PAYMENT,
                format!(
                    "order {} acknowledged payments {before} and {payment_ref}",
                    order.id
                ),
            ));
        }
        Ok(())
    }

    /// An acknowledged payment is in the ledger as paying, and (the policy rejecting late
    /// payments) arrived before the deadline: a payment is judged by when it arrived, however
    /// long it then took, and the sweep's grace keeps it from being raced out.
    pub(super) fn payment_judged_by_arrival(
        &mut self,
        repo: &dyn TicketRepository,
        order: &Order,
        payment_ref: &PaymentRef,
    ) -> Check {
        self.checks += 1;
        let entry = ready(repo.payment(payment_ref))
            .ok()
            .flatten()
            .ok_or_else(|| {
                violation(
                    inv::PAYMENT,
                    format!("payment {payment_ref} acknowledged but not in the ledger"),
                )
            })?;
        let in_time = entry.received_at < order.expires_at;
        let fits = match entry.outcome {
            PaymentOutcome::Paid => in_time,
            PaymentOutcome::PaidLate => self.shape.accept_late,
            _ => false,
        };
        if !fits {
            return Err(violation(
                inv::PAYMENT,
                format!(
                    "payment {payment_ref} acknowledged as {} though it arrived at {}, deadline {}",
                    entry.outcome, entry.received_at, order.expires_at
                ),
            ));
        }
        Ok(())
    }

    /// A payment was refused with `error`; `latest` is the latest clock while it ran.
    pub(super) fn payment_refused(
        &mut self,
        repo: &dyn TicketRepository,
        order: OrderId,
        payment_ref: &PaymentRef,
        error: &Error,
        latest: DateTime<Utc>,
    ) -> Check {
        if matches!(error, Error::Unavailable { .. }) {
            return Ok(()); // Unknown result: it may have been applied.
        }
        self.checks += 1;
        let stored = ready(repo.order(order)).ok().flatten();
        if let Some(stored) = &stored
            && stored.status == TicketStatus::Paid
            && stored
                .tickets
                .iter()
                .all(|t| t.payment_ref.as_ref() == Some(payment_ref))
        {
            return Err(violation(
                inv::PAYMENT,
                format!(
                    "payment {payment_ref} refused ({error}), but order {order} is paid with it"
                ),
            ));
        }
        if let Error::PaymentTooLate { deadline } = error {
            self.refused.insert((order, payment_ref.clone()));
            let expires_at = stored.as_ref().map(|o| o.expires_at);
            if expires_at != Some(*deadline) || *deadline > latest {
                return Err(violation(
                    inv::PAYMENT,
                    format!(
                        "payment of order {order} refused as too late (deadline {deadline}), but the deadline is {expires_at:?} and the clock never passed {latest}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The final audit's durability check: every acknowledged purchase is in the repository with
    /// the tickets it was acknowledged with, and none is still unpaid past its deadline.
    pub(super) fn audit_purchases(
        &mut self,
        repo: &dyn TicketRepository,
        now: DateTime<Utc>,
    ) -> Check {
        self.checks += 1;
        for (order, ids) in &self.acked_purchases {
            let stored = ready(repo.order(*order)).ok().flatten().ok_or_else(|| {
                violation(inv::DURABLE, format!("acknowledged order {order} is gone"))
            })?;
            if !stored.tickets.iter().map(|t| t.id).eq(ids.iter().copied()) {
                return Err(violation(
                    inv::DURABLE,
                    format!("acknowledged order {order} lost tickets"),
                ));
            }
            if stored.status == TicketStatus::PendingPayment && stored.expires_at <= now {
                return Err(violation(
                    inv::HISTORY,
                    format!("order {order} is still unpaid after its deadline and a full sweep"),
                ));
            }
        }
        Ok(())
    }

    /// Invariant 7: after the lock lost everything, the seat map rebuilt from the repository
    /// shows every seat with an active ticket, and nothing else.
    pub(super) fn audit_rebuilt_map(
        &mut self,
        repo: &dyn TicketRepository,
        map: &SeatMap,
    ) -> Check {
        self.checks += 1;
        let active = ready(repo.active_tickets(self.shape.event))
            .map_err(|e| violation(inv::HISTORY, format!("active tickets unreadable: {e}")))?;
        let by_seat: BTreeMap<SeatRef, TicketStatus> = active
            .iter()
            .filter_map(|t| t.seat.clone().map(|s| (s, t.status)))
            .collect();
        for view in map.seats() {
            let expected = match by_seat.get(&view.seat) {
                None => SeatAvailability::Free,
                Some(TicketStatus::Paid) => SeatAvailability::Sold,
                Some(_) => SeatAvailability::Held,
            };
            if view.state != expected {
                return Err(violation(
                    inv::REBUILD,
                    format!(
                        "seat {} is {:?} on the rebuilt map, {expected:?} in the repository",
                        view.seat, view.state
                    ),
                ));
            }
        }
        let general = active.iter().filter(|t| t.seat.is_none()).count() as u32;
        let taken: u32 = map.general.iter().map(|g| g.taken).sum();
        if taken != general {
            return Err(violation(
                inv::REBUILD,
                format!(
                    "{taken} GA places taken on the rebuilt map, {general} active in the repository"
                ),
            ));
        }
        Ok(())
    }

    /// Counts paid seats the lock no longer shows as sold (it healed to free after a failed
    /// `mark_sold`, a crash, or a lost update): safe, as the database still refuses the seat, but
    /// the seat map is wrong until the next rebuild.
    pub(super) fn observe_lock_drift(
        &mut self,
        repo: &dyn TicketRepository,
        lock: &dyn SeatLock,
        now: DateTime<Utc>,
    ) {
        let Ok(Some(snapshot)) = ready(lock.snapshot(self.shape.event, now)) else {
            return;
        };
        let Ok(active) = ready(repo.active_tickets(self.shape.event)) else {
            return;
        };
        let drift = active
            .iter()
            .filter(|t| t.status == TicketStatus::Paid)
            .filter_map(|t| t.seat.as_ref())
            .filter(|s| !matches!(snapshot.seats.get(*s), Some(SeatState::Sold { .. })))
            .count();
        for _ in 0..drift {
            self.observe(
                "paid seat not shown sold by the lock at the end (healed by the next rebuild)",
            );
        }
    }
}

/// Whether `order` is what `request` asked for.
fn matches_request(order: &Order, request: &PurchaseRequest) -> bool {
    if order.event_id != request.event || order.customer != request.customer {
        return false;
    }
    match &request.selection {
        Selection::Seats(seats) => {
            let mut wanted = seats.clone();
            wanted.sort();
            let mut got: Vec<SeatRef> = order
                .tickets
                .iter()
                .filter_map(|t| t.seat.clone())
                .collect();
            got.sort();
            got == wanted && order.tickets.len() == wanted.len()
        }
        Selection::General { zone, quantity } => {
            order.tickets.len() == *quantity as usize
                && order
                    .tickets
                    .iter()
                    .all(|t| t.seat.is_none() && t.zone == *zone)
        }
        Selection::BestAvailable(wanted) => {
            let mut seats: Vec<&SeatRef> = order
                .tickets
                .iter()
                .filter_map(|t| t.seat.as_ref())
                .collect();
            seats.sort();
            seats.len() == wanted.quantity as usize
                && order.tickets.len() == seats.len()
                && wanted
                    .zone
                    .as_ref()
                    .is_none_or(|zone| seats.iter().all(|s| s.zone == *zone))
                && seats.windows(2).all(|pair| {
                    pair[0].zone == pair[1].zone
                        && pair[0].row == pair[1].row
                        && pair[0].number + 1 == pair[1].number
                })
        }
    }
}
