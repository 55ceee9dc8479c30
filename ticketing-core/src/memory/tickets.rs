use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::lock;
use crate::domain::{
    Channel, ChannelCode, ChannelRelease, CustomerId, EventId, IdempotencyKey, Order, OrderId,
    OutboxEntry, OutboxEvent, OutboxKind, Payment, PaymentRecorded, PaymentRef, PaymentWrite,
    SeatRef, Ticket, TicketAction, TicketId, TicketStatus, VenueId, VoucherCode, VoucherProblem,
    ZoneCode, assign_tiers,
};
use crate::ports::{
    Extension, ExtensionOutcome, IdempotencyRecord, InsertOutcome, NewOrder, OutboxStore,
    TicketRepository, TierClaim, Transition, VoucherClaim,
};
use crate::{Error, Result};

mod ledger;

/// Tier places per (zone, tier index).
type TierPlaces = BTreeMap<(ZoneCode, u16), u32>;

/// Tickets, idempotency records and the outbox in memory. One mutex makes every call one
/// transaction, so this is the reference model the database adapters are compared with.
///
/// No call scans every ticket or outbox entry: the sweep and the read side use indexes kept next
/// to the tickets (as a database keeps its indexes) and the relay reads from its cursor, so a
/// purchase, a payment or a relay round costs the same on a full event as on an empty one.
///
/// It is also the relay's [`OutboxStore`]: the sent cursor and the relay lease live next to the
/// outbox.
#[derive(Debug, Default)]
pub struct InMemoryTicketRepository {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tickets: HashMap<TicketId, Ticket>,
    orders: HashMap<OrderId, Vec<TicketId>>,
    /// The active ticket of each seat (invariant 1).
    active_seats: HashMap<(EventId, SeatRef), TicketId>,
    /// Active tickets per general-admission zone (invariant 2).
    general_active: HashMap<(EventId, ZoneCode), u32>,
    /// Active tickets per customer (invariant 6).
    customer_active: HashMap<(EventId, CustomerId), u32>,
    /// The voucher each order uses, with its limits (for a late payment taking it back).
    order_vouchers: HashMap<OrderId, VoucherClaim>,
    /// Active orders per voucher, and per voucher and customer.
    voucher_active: HashMap<(EventId, VoucherCode), u32>,
    voucher_customer_active: HashMap<(EventId, VoucherCode, CustomerId), u32>,
    /// Active tickets per price tier of each tiered zone, by tier index.
    tier_active: HashMap<(EventId, ZoneCode), Vec<u32>>,
    /// The tier sizes of each tiered zone, as its first order's claim gave them (for a late
    /// payment taking a place back).
    tier_sizes: HashMap<(EventId, ZoneCode), Vec<u32>>,
    /// The tier each tiered ticket counts in; kept after the ticket ends, so a late payment
    /// takes the same tier back.
    ticket_tiers: HashMap<TicketId, u16>,
    idempotency: HashMap<(CustomerId, IdempotencyKey), IdempotencyRecord>,
    /// (order created, customer, key) of every idempotency record, oldest first, for pruning.
    idempotency_by_age: BTreeSet<(DateTime<Utc>, CustomerId, IdempotencyKey)>,
    /// Indexes over `tickets` for the sweep and the read side, kept by [`State::store_ticket`].
    index: TicketIndex,
    /// The entry with sequence number `n` is at `n - 1 - pruned`: reads after a cursor are
    /// ranges.
    outbox: VecDeque<OutboxEntry>,
    /// How many entries were pruned from the front of `outbox`.
    pruned: u64,
    /// Every entry up to this sequence number was published.
    sent_up_to: u64,
    /// The relay lease: holder and valid until.
    lease: Option<(String, DateTime<Utc>)>,
    /// The payments ledger.
    ledger: ledger::Ledger,
    /// How often each order's deadline was extended (orders never extended are absent).
    extensions: HashMap<OrderId, u32>,
    /// The sales channels, by event and code.
    channels: HashMap<EventId, BTreeMap<ChannelCode, Channel>>,
    /// The channel each seat is still reserved for (released seats are absent).
    reserved_seats: HashMap<(EventId, SeatRef), ChannelCode>,
}

/// What the sweep and the read side ask of the tickets, kept up to date on every write of a
/// ticket so that no call scans them all.
#[derive(Debug, Default)]
struct TicketIndex {
    /// (payment deadline, order) of every unpaid ticket: the sweep reads the due orders from the
    /// front, in the order it expires them. An order's tickets leave PENDING_PAYMENT together,
    /// so one key stands for all its tickets with that deadline.
    pending_by_deadline: BTreeSet<(DateTime<Utc>, OrderId)>,
    /// The active tickets of each event in id order, for seat-lock rebuilds (read in pages) and
    /// audits.
    active_by_event: HashMap<EventId, BTreeSet<TicketId>>,
    /// Tickets per event and status.
    by_status: HashMap<(EventId, TicketStatus), u64>,
    /// Sum of the prices of PAID tickets per venue and event, in minor units (wrapping, as the
    /// sum it replaces did in release builds).
    paid_minor: HashMap<(VenueId, EventId), i64>,
}

impl TicketIndex {
    /// Counts `ticket` in.
    fn add(&mut self, ticket: &Ticket) {
        if ticket.status == TicketStatus::PendingPayment {
            self.pending_by_deadline
                .insert((ticket.expires_at, ticket.order_id));
        }
        if ticket.status.is_active() {
            self.active_by_event
                .entry(ticket.event_id)
                .or_default()
                .insert(ticket.id);
        }
        *self
            .by_status
            .entry((ticket.event_id, ticket.status))
            .or_default() += 1;
        if ticket.status == TicketStatus::Paid {
            let paid = self
                .paid_minor
                .entry((ticket.venue_id, ticket.event_id))
                .or_default();
            *paid = paid.wrapping_add(ticket.price.minor);
        }
    }

    /// Counts `ticket` out again, undoing [`add`](Self::add).
    fn remove(&mut self, ticket: &Ticket) {
        if ticket.status == TicketStatus::PendingPayment {
            self.pending_by_deadline
                .remove(&(ticket.expires_at, ticket.order_id));
        }
        if ticket.status.is_active()
            && let Some(active) = self.active_by_event.get_mut(&ticket.event_id)
        {
            active.remove(&ticket.id);
        }
        if let Some(n) = self.by_status.get_mut(&(ticket.event_id, ticket.status)) {
            *n -= 1;
        }
        if ticket.status == TicketStatus::Paid
            && let Some(paid) = self.paid_minor.get_mut(&(ticket.venue_id, ticket.event_id))
        {
            *paid = paid.wrapping_sub(ticket.price.minor);
        }
    }

    /// Up to `limit` orders with an unpaid ticket due at `now`, by (deadline, order id) without
    /// repeating an order in a row: the orders the sweep expires, in its order.
    fn due_orders(&self, now: DateTime<Utc>, limit: u32) -> Vec<OrderId> {
        let mut due: Vec<OrderId> = Vec::new();
        let due_keys = self
            .pending_by_deadline
            .iter()
            .take_while(|(deadline, _)| *deadline <= now);
        for (_, order) in due_keys {
            if due.len() >= limit as usize {
                break;
            }
            if due.last() != Some(order) {
                due.push(*order);
            }
        }
        due
    }
}

impl InMemoryTicketRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `event` to the outbox: the in-memory waiting list's offer events, written under
    /// the waiting list's mutex with the entry's change.
    pub(crate) fn append_outbox(&self, event: OutboxEvent) {
        lock(&self.state).append(event);
    }
}

impl State {
    fn holds_lease(&self, relay: &str) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|(holder, _)| holder == relay)
    }

    fn order(&self, id: OrderId) -> Option<Order> {
        let ids = self.orders.get(&id)?;
        let tickets = ids
            .iter()
            .filter_map(|t| self.tickets.get(t).cloned())
            .collect();
        Order::from_tickets(tickets).ok().flatten()
    }

    /// Writes `ticket`, new or changed, and keeps the index in step.
    fn store_ticket(&mut self, ticket: Ticket) {
        if let Some(old) = self.tickets.get(&ticket.id) {
            self.index.remove(old);
        }
        self.index.add(&ticket);
        self.tickets.insert(ticket.id, ticket);
    }

    fn active_tickets(&self, event: EventId) -> Vec<Ticket> {
        self.index
            .active_by_event
            .get(&event)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tickets.get(id).cloned())
            .collect()
    }

    /// Up to `limit` active tickets of `event` after `after`, in id order: a range of the index.
    fn active_tickets_page(
        &self,
        event: EventId,
        after: Option<TicketId>,
        limit: u32,
    ) -> Vec<Ticket> {
        let Some(active) = self.index.active_by_event.get(&event) else {
            return Vec::new();
        };
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        active
            .range((from, Bound::Unbounded))
            .take(limit as usize)
            .filter_map(|id| self.tickets.get(id).cloned())
            .collect()
    }

    /// Up to `limit` outbox entries with a sequence number above `after`, in order: a range, so
    /// the relay's cursor costs nothing however long the outbox grew.
    fn outbox_after(&self, after: u64, limit: u32) -> Vec<OutboxEntry> {
        let len = self.outbox.len();
        let start = usize::try_from(after.saturating_sub(self.pruned)).map_or(len, |a| a.min(len));
        self.outbox
            .range(start..)
            .take(limit as usize)
            .cloned()
            .collect()
    }

    /// The sequence number of the newest outbox entry, 0 when there was none.
    fn outbox_head(&self) -> u64 {
        self.pruned + self.outbox.len() as u64
    }

    /// Drops up to `limit` published entries recorded before `before` from the front.
    fn prune_outbox(&mut self, before: DateTime<Utc>, limit: u32) -> u64 {
        let mut pruned = 0;
        while pruned < u64::from(limit)
            && self
                .outbox
                .front()
                .is_some_and(|e| e.seq <= self.sent_up_to && e.event.at < before)
        {
            self.outbox.pop_front();
            self.pruned += 1;
            pruned += 1;
        }
        pruned
    }

    /// Drops up to `limit` idempotency records of orders created before `before`, oldest first.
    fn prune_idempotency(&mut self, before: DateTime<Utc>, limit: u32) -> u64 {
        let mut pruned = 0;
        while pruned < u64::from(limit)
            && let Some(oldest) = self.idempotency_by_age.first()
            && oldest.0 < before
        {
            let (_, customer, key) = self.idempotency_by_age.pop_first().expect("first exists");
            self.idempotency.remove(&(customer, key));
            pruned += 1;
        }
        pruned
    }

    /// Whether `order` may use the voucher of `claim`: a use left in total and for its customer.
    fn check_voucher(&self, order: &Order, claim: &VoucherClaim) -> Result<()> {
        let code = &claim.code;
        let total = self
            .voucher_active
            .get(&(order.event_id, code.clone()))
            .copied()
            .unwrap_or(0);
        let problem = if total >= claim.max_uses {
            VoucherProblem::UsedUp
        } else if self
            .voucher_customer_active
            .get(&(order.event_id, code.clone(), order.customer.clone()))
            .is_some_and(|n| *n >= claim.max_per_customer)
        {
            VoucherProblem::CustomerLimit
        } else {
            return Ok(());
        };
        Err(Error::Voucher {
            code: code.to_string(),
            problem,
        })
    }

    /// Counts one use of `claim`'s voucher by `order` (checked by [`State::check_voucher`]).
    fn take_voucher(&mut self, order: &Order, claim: &VoucherClaim) {
        *self
            .voucher_active
            .entry((order.event_id, claim.code.clone()))
            .or_default() += 1;
        *self
            .voucher_customer_active
            .entry((order.event_id, claim.code.clone(), order.customer.clone()))
            .or_default() += 1;
    }

    /// Gives back the voucher use of `order`, which just turned terminal.
    fn give_voucher_back(&mut self, order: &Order) {
        let Some(claim) = self.order_vouchers.get(&order.id) else {
            return;
        };
        let code = claim.code.clone();
        if let Some(n) = self.voucher_active.get_mut(&(order.event_id, code.clone())) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) =
            self.voucher_customer_active
                .get_mut(&(order.event_id, code, order.customer.clone()))
        {
            *n = n.saturating_sub(1);
        }
    }

    /// Prices the tickets of `order` in its tiered zones: each takes a place in the first tier
    /// of its zone with one left (in [`Order::zone_tickets_mut`]'s order) at that tier's
    /// price, or keeps its price past the last tier. Counts the places taken.
    fn take_tiers(&mut self, order: &mut Order, claims: &[TierClaim]) -> Result<()> {
        for claim in claims {
            let key = (order.event_id, claim.zone.clone());
            let sizes: Vec<u32> = claim.tiers.iter().map(|(size, _)| *size).collect();
            let tickets = order.zone_tickets_mut(&claim.zone);
            let active = self.tier_active.entry(key.clone()).or_default();
            let tiers = assign_tiers(&sizes, active, tickets.len());
            active.resize(sizes.len(), 0);
            for (ticket, tier) in tickets.into_iter().zip(tiers) {
                let Some(tier) = tier else { continue };
                active[usize::from(tier)] += 1;
                ticket.price = claim.tiers[usize::from(tier)].1;
                self.ticket_tiers.insert(ticket.id, tier);
            }
            self.tier_sizes.entry(key).or_insert(sizes);
        }
        if !claims.is_empty() {
            // The total follows the tickets' new prices.
            *order = Order::from_tickets(std::mem::take(&mut order.tickets))?
                .ok_or_else(|| Error::internal("a priced order without tickets"))?;
        }
        Ok(())
    }

    /// Gives back the tier places of `order`'s tickets, which just turned terminal.
    fn give_tiers_back(&mut self, order: &Order) {
        for ticket in &order.tickets {
            if let Some(tier) = self.ticket_tiers.get(&ticket.id)
                && let Some(active) = self
                    .tier_active
                    .get_mut(&(ticket.event_id, ticket.zone.clone()))
                && let Some(n) = active.get_mut(usize::from(*tier))
            {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// A late payment's check: the tier places the expired `order`'s tickets take back, each in
    /// the tier it was priced in, or `SoldOut` when a tier has no place left for them (the
    /// payment is then a refund due, as when its seats are gone). Counts nothing; the places
    /// are then counted by [`State::count_tiers`].
    pub(super) fn check_tiers_back(&self, order: &Order) -> Result<TierPlaces> {
        let mut wanted: BTreeMap<(ZoneCode, u16), u32> = BTreeMap::new();
        for ticket in &order.tickets {
            if let Some(tier) = self.ticket_tiers.get(&ticket.id) {
                *wanted.entry((ticket.zone.clone(), *tier)).or_default() += 1;
            }
        }
        for ((zone, tier), n) in &wanted {
            let key = (order.event_id, zone.clone());
            let size = self
                .tier_sizes
                .get(&key)
                .and_then(|s| s.get(usize::from(*tier)))
                .copied()
                .unwrap_or(0);
            let active = self
                .tier_active
                .get(&key)
                .and_then(|a| a.get(usize::from(*tier)))
                .copied()
                .unwrap_or(0);
            if active + n > size {
                return Err(Error::SoldOut {
                    zone: zone.clone(),
                    requested: *n,
                });
            }
        }
        Ok(wanted)
    }

    /// Counts the tier places [`State::check_tiers_back`] allowed for `order`.
    pub(super) fn count_tiers(&mut self, order: &Order, places: TierPlaces) {
        for ((zone, tier), n) in places {
            if let Some(active) = self.tier_active.get_mut(&(order.event_id, zone))
                && let Some(count) = active.get_mut(usize::from(tier))
            {
                *count += n;
            }
        }
    }

    fn record(&mut self, kind: OutboxKind, order: &Order, at: DateTime<Utc>) {
        self.append(OutboxEvent::for_order(kind, order, at));
    }

    fn append(&mut self, event: OutboxEvent) {
        let seq = self.outbox_head() + 1;
        self.outbox.push_back(OutboxEntry { seq, event });
    }

    /// Moves the order's deadline if [`TicketRepository::extend_deadline`]'s guard holds.
    fn extend(&mut self, e: &Extension) -> ExtensionOutcome {
        let Some(order) = self.order(e.order) else {
            return ExtensionOutcome::Stale;
        };
        if order.status != TicketStatus::PendingPayment
            || order.expires_at != e.from
            || order.expires_at <= e.now
        {
            return ExtensionOutcome::Stale;
        }
        let judged_late = self
            .ledger
            .of_order(e.order)
            .iter()
            .any(|p| p.received_at >= e.from);
        if judged_late {
            return ExtensionOutcome::DeadlinePassed;
        }
        let done = self.extensions.get(&e.order).copied().unwrap_or(0);
        if done >= e.max_extensions {
            return ExtensionOutcome::LimitReached;
        }
        for ticket in &order.tickets {
            self.store_ticket(Ticket {
                expires_at: e.to,
                ..ticket.clone()
            });
        }
        self.extensions.insert(e.order, done + 1);
        if let Some(order) = self.order(e.order) {
            self.append(OutboxEvent::for_extension(&order, e.now));
        }
        ExtensionOutcome::Extended {
            extensions: done + 1,
        }
    }

    /// Applies `action` to every ticket of the order if the compare-and-set guard holds.
    fn transition(
        &mut self,
        id: OrderId,
        action: TicketAction,
        now: DateTime<Utc>,
        payment_ref: Option<&crate::domain::PaymentRef>,
    ) -> Option<Order> {
        let order = self.order(id)?;
        let guard = order.tickets.iter().all(|t| {
            t.status == action.source()
                && match action {
                    TicketAction::Pay => t.expires_at > now,
                    TicketAction::Expire => t.expires_at <= now,
                    TicketAction::Cancel | TicketAction::Refund => true,
                }
        });
        if !guard {
            return None;
        }
        let to = action.target();
        for ticket in &order.tickets {
            let mut moved = ticket.clone();
            moved.status = to;
            if action == TicketAction::Pay {
                moved.paid_at = Some(now);
                moved.payment_ref = payment_ref.cloned();
            }
            self.store_ticket(moved);
            if to.is_terminal() {
                if let Some(seat) = &ticket.seat {
                    self.active_seats.remove(&(ticket.event_id, seat.clone()));
                } else if let Some(n) = self
                    .general_active
                    .get_mut(&(ticket.event_id, ticket.zone.clone()))
                {
                    *n = n.saturating_sub(1);
                }
                if let Some(n) = self
                    .customer_active
                    .get_mut(&(ticket.event_id, ticket.customer.clone()))
                {
                    *n = n.saturating_sub(1);
                }
            }
        }
        if to.is_terminal() {
            self.give_voucher_back(&order);
            self.give_tiers_back(&order);
        }
        let order = self.order(id)?;
        self.record(OutboxKind::for_action(action), &order, now);
        Some(order)
    }
}

#[async_trait]
impl TicketRepository for InMemoryTicketRepository {
    async fn insert_order(&self, new: &NewOrder) -> Result<InsertOutcome> {
        let mut state = lock(&self.state);
        let order = &new.order;
        if let Some(idem) = &new.idempotency
            && let Some(stored) = state
                .idempotency
                .get(&(idem.customer.clone(), idem.key.clone()))
        {
            return Ok(InsertOutcome::DuplicateKey(stored.clone()));
        }
        if state.orders.contains_key(&order.id) {
            if let Some(idem) = &new.idempotency {
                // The key's record was pruned; its order stays, under the derived id.
                return Err(Error::IdempotencyConflict {
                    key: idem.key.as_str().to_owned(),
                });
            }
            return Err(Error::internal(format!(
                "order {} exists already",
                order.id
            )));
        }
        // Seats with an active ticket, then seats still kept for another channel: either is
        // taken for this order.
        let active = |seat: &SeatRef| {
            state
                .active_seats
                .contains_key(&(order.event_id, seat.clone()))
        };
        let kept = |seat: &SeatRef| {
            state
                .reserved_seats
                .get(&(order.event_id, seat.clone()))
                .is_some_and(|channel| Some(channel) != new.channel.as_ref())
        };
        for refused in [&active as &dyn Fn(&SeatRef) -> bool, &kept] {
            let seats: Vec<SeatRef> = order
                .tickets
                .iter()
                .filter_map(|t| t.seat.clone())
                .filter(|seat| refused(seat))
                .collect();
            if !seats.is_empty() {
                return Err(Error::SeatsTaken { seats });
            }
        }
        let count = order.tickets.len() as u32;
        if let Some((zone, capacity)) = &new.general_admission {
            let active = state
                .general_active
                .get(&(order.event_id, zone.clone()))
                .copied()
                .unwrap_or(0);
            if active + count > *capacity {
                return Err(Error::SoldOut {
                    zone: zone.clone(),
                    requested: count,
                });
            }
        }
        let customer_key = (order.event_id, order.customer.clone());
        let mine = state
            .customer_active
            .get(&customer_key)
            .copied()
            .unwrap_or(0);
        if mine + count > new.per_customer_limit {
            return Err(Error::LimitExceeded {
                limit: new.per_customer_limit,
            });
        }
        if let Some(claim) = &new.voucher {
            state.check_voucher(order, claim)?;
        }
        // Every check passed: write everything, the tickets at their tiers' prices.
        let mut priced = order.clone();
        state.take_tiers(&mut priced, &new.price_tiers)?;
        let order = &priced;
        for ticket in &order.tickets {
            if let Some(seat) = &ticket.seat {
                state
                    .active_seats
                    .insert((order.event_id, seat.clone()), ticket.id);
            }
            state.store_ticket(ticket.clone());
        }
        if let Some((zone, _)) = &new.general_admission {
            *state
                .general_active
                .entry((order.event_id, zone.clone()))
                .or_default() += count;
        }
        *state.customer_active.entry(customer_key).or_default() += count;
        if let Some(claim) = &new.voucher {
            state.take_voucher(order, claim);
            state.order_vouchers.insert(order.id, claim.clone());
        }
        state
            .orders
            .insert(order.id, order.tickets.iter().map(|t| t.id).collect());
        if let Some(idem) = &new.idempotency {
            state
                .idempotency
                .insert((idem.customer.clone(), idem.key.clone()), idem.clone());
        }
        let created = order
            .tickets
            .first()
            .map_or_else(Utc::now, |t| t.created_on);
        if let Some(idem) = &new.idempotency {
            state
                .idempotency_by_age
                .insert((created, idem.customer.clone(), idem.key.clone()));
        }
        state.record(OutboxKind::TicketReserved, order, created);
        if new.price_tiers.is_empty() {
            Ok(InsertOutcome::Inserted)
        } else {
            Ok(InsertOutcome::Priced(priced))
        }
    }

    async fn idempotency_record(
        &self,
        customer: &CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>> {
        Ok(lock(&self.state)
            .idempotency
            .get(&(customer.clone(), key.clone()))
            .cloned())
    }

    async fn prune_idempotency_keys(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(lock(&self.state).prune_idempotency(before, limit))
    }

    async fn transition(&self, transition: &Transition) -> Result<bool> {
        let mut state = lock(&self.state);
        Ok(state
            .transition(
                transition.order,
                transition.action,
                transition.now,
                transition.payment_ref.as_ref(),
            )
            .is_some())
    }

    async fn extend_deadline(&self, extension: &Extension) -> Result<ExtensionOutcome> {
        Ok(lock(&self.state).extend(extension))
    }

    async fn record_payment(&self, write: &PaymentWrite) -> Result<PaymentRecorded> {
        lock(&self.state).record_payment(write)
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>> {
        Ok(lock(&self.state).ledger.get(reference).cloned())
    }

    async fn payments_of(&self, order: OrderId) -> Result<Vec<Payment>> {
        Ok(lock(&self.state).ledger.of_order(order))
    }

    async fn refunds_due(&self, limit: u32) -> Result<Vec<Payment>> {
        Ok(lock(&self.state).ledger.refunds_due(limit))
    }

    async fn mark_refunded(&self, reference: &PaymentRef, at: DateTime<Utc>) -> Result<bool> {
        Ok(lock(&self.state).ledger.mark_refunded(reference, at))
    }

    async fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>> {
        let mut state = lock(&self.state);
        let due = state.index.due_orders(now, limit);
        let mut expired = Vec::new();
        for order in due {
            if let Some(order) = state.transition(order, TicketAction::Expire, now, None) {
                expired.push(order);
            }
        }
        Ok(expired)
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        Ok(lock(&self.state).tickets.get(&id).cloned())
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        Ok(lock(&self.state).order(id))
    }

    async fn active_tickets(&self, event: EventId) -> Result<Vec<Ticket>> {
        Ok(lock(&self.state).active_tickets(event))
    }

    async fn count_by_status(&self, event: EventId, status: TicketStatus) -> Result<u64> {
        Ok(lock(&self.state)
            .index
            .by_status
            .get(&(event, status))
            .copied()
            .unwrap_or(0))
    }

    async fn revenue_minor(&self, venue: VenueId, event: EventId) -> Result<i64> {
        Ok(lock(&self.state)
            .index
            .paid_minor
            .get(&(venue, event))
            .copied()
            .unwrap_or(0))
    }

    async fn outbox_head(&self) -> Result<Option<u64>> {
        Ok(Some(lock(&self.state).outbox_head()))
    }

    async fn outbox_after(&self, after: u64, limit: u32) -> Result<Vec<OutboxEntry>> {
        Ok(lock(&self.state).outbox_after(after, limit))
    }

    async fn voucher_uses(&self, event: EventId) -> Result<Vec<(VoucherCode, u32)>> {
        let state = lock(&self.state);
        let mut uses: Vec<(VoucherCode, u32)> = state
            .voucher_active
            .iter()
            .filter(|((e, _), _)| *e == event)
            .map(|((_, code), n)| (code.clone(), *n))
            .collect();
        uses.sort();
        Ok(uses)
    }

    async fn tier_sales(&self, event: EventId) -> Result<Vec<(ZoneCode, u16, u32)>> {
        let state = lock(&self.state);
        let mut sales: Vec<(ZoneCode, u16, u32)> = state
            .tier_active
            .iter()
            .filter(|((e, _), _)| *e == event)
            .flat_map(|((_, zone), active)| {
                active
                    .iter()
                    .enumerate()
                    .map(|(tier, n)| (zone.clone(), u16::try_from(tier).unwrap_or(u16::MAX), *n))
            })
            .collect();
        sales.sort();
        Ok(sales)
    }

    async fn insert_channel(&self, channel: &Channel) -> Result<()> {
        let mut state = lock(&self.state);
        let event = channel.event();
        let of_event = state.channels.entry(event).or_default();
        if of_event.contains_key(channel.code()) {
            return Err(Error::invalid(
                "code",
                format!("the event has a channel {} already", channel.code()),
            ));
        }
        let kept = of_event
            .values()
            .flat_map(|c| c.reserved().iter().chain(c.released()))
            .find(|seat| channel.reserved().contains(*seat));
        if let Some(seat) = kept {
            return Err(Error::invalid(
                "seats",
                format!("seat {seat} is kept for another channel"),
            ));
        }
        of_event.insert(channel.code().clone(), channel.clone());
        for seat in channel.reserved() {
            state
                .reserved_seats
                .insert((event, seat.clone()), channel.code().clone());
        }
        Ok(())
    }

    async fn channels(&self, event: EventId) -> Result<Vec<Channel>> {
        let state = lock(&self.state);
        Ok(state
            .channels
            .get(&event)
            .map(|of_event| of_event.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn release_channel_seats(&self, release: &ChannelRelease) -> Result<Vec<SeatRef>> {
        let mut state = lock(&self.state);
        let Some(channel) = state
            .channels
            .get(&release.event)
            .and_then(|of_event| of_event.get(&release.channel))
        else {
            return Err(Error::not_found("channel", &release.channel));
        };
        let mut channel = channel.clone();
        let released = channel.release(release.seats.as_deref())?;
        if released.is_empty() {
            return Ok(released);
        }
        let free: Vec<SeatRef> = released
            .iter()
            .filter(|seat| {
                !state
                    .active_seats
                    .contains_key(&(release.event, (*seat).clone()))
            })
            .cloned()
            .collect();
        let event = release.outbox_event(free)?;
        for seat in &released {
            state.reserved_seats.remove(&(release.event, seat.clone()));
        }
        state
            .channels
            .entry(release.event)
            .or_default()
            .insert(release.channel.clone(), channel);
        state.append(event);
        Ok(released)
    }

    async fn active_tickets_page(
        &self,
        event: EventId,
        after: Option<TicketId>,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        Ok(lock(&self.state).active_tickets_page(event, after, limit))
    }
}

#[async_trait]
impl OutboxStore for InMemoryTicketRepository {
    async fn try_acquire_lease(
        &self,
        relay: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool> {
        let mut state = lock(&self.state);
        let free = match &state.lease {
            None => true,
            Some((holder, until)) => holder == relay || *until <= now,
        };
        if free {
            state.lease = Some((relay.to_owned(), now + ttl));
        }
        Ok(free)
    }

    async fn release_lease(&self, relay: &str) -> Result<()> {
        let mut state = lock(&self.state);
        if state.holds_lease(relay) {
            state.lease = None;
        }
        Ok(())
    }

    async fn unsent(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
        let state = lock(&self.state);
        Ok(state.outbox_after(state.sent_up_to, limit))
    }

    async fn mark_sent(&self, relay: &str, up_to: u64) -> Result<bool> {
        let mut state = lock(&self.state);
        if !state.holds_lease(relay) {
            return Ok(false);
        }
        state.sent_up_to = state.sent_up_to.max(up_to);
        Ok(true)
    }

    async fn rewind(&self, relay: &str, to: u64) -> Result<bool> {
        let mut state = lock(&self.state);
        if !state.holds_lease(relay) {
            return Ok(false);
        }
        state.sent_up_to = state.sent_up_to.min(to);
        Ok(true)
    }

    async fn sent_up_to(&self) -> Result<u64> {
        Ok(lock(&self.state).sent_up_to)
    }

    async fn prune(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        Ok(lock(&self.state).prune_outbox(before, limit))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use futures::executor::block_on;
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{Currency, Money, OrderIdSecret, PaymentRef};

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(second)
    }

    fn event(n: usize) -> EventId {
        EventId::from_uuid(Uuid::from_u128(10 + n as u128))
    }

    fn venue(n: usize) -> VenueId {
        VenueId::from_uuid(Uuid::from_u128(20 + n as u128))
    }

    const ACTIONS: [TicketAction; 4] = [
        TicketAction::Pay,
        TicketAction::Expire,
        TicketAction::Cancel,
        TicketAction::Refund,
    ];

    #[derive(Debug, Clone)]
    enum Step {
        /// Seats by number out of a small pool (none = `places` general-admission places); the
        /// last ticket's deadline is `skew` seconds after the others'.
        Insert {
            event: usize,
            seats: Vec<u8>,
            places: u32,
            customer: u8,
            deadline: i64,
            skew: i64,
            price: i64,
            key: Option<u8>,
        },
        Transition {
            order: usize,
            action: usize,
            now: i64,
        },
        ExpireDue {
            now: i64,
            limit: u32,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        let insert = (
            0usize..2,
            proptest::collection::vec(0u8..6, 0..3),
            (
                1u32..4,
                0u8..3,
                0i64..20,
                prop_oneof![4 => Just(0i64), 1 => -2i64..3],
            ),
            (0i64..500, proptest::option::weighted(0.3, 0u8..3)),
        )
            .prop_map(
                |(event, seats, (places, customer, deadline, skew), (price, key))| Step::Insert {
                    event,
                    seats,
                    places,
                    customer,
                    deadline,
                    skew,
                    price,
                    key,
                },
            );
        prop_oneof![
            3 => insert,
            3 => (0usize..40, 0usize..4, 0i64..25)
                .prop_map(|(order, action, now)| Step::Transition { order, action, now }),
            1 => (0i64..25, 1u32..4).prop_map(|(now, limit)| Step::ExpireDue { now, limit }),
        ]
    }

    /// Builds the order of an insert step; ids come from `next_id`.
    fn new_order(step: &Step, next_id: &mut u128) -> Option<NewOrder> {
        let Step::Insert {
            event: e,
            seats,
            places,
            customer,
            deadline,
            skew,
            price,
            key,
        } = step
        else {
            return None;
        };
        let mut seats: Vec<SeatRef> = seats
            .iter()
            .map(|n| format!("A:1:{}", n + 1).parse().expect("seat"))
            .collect();
        seats.sort();
        seats.dedup();
        let customer = CustomerId::new(format!("c{customer}")).expect("customer");
        let key = key.map(|k| IdempotencyKey::new(format!("k{k}")).expect("key"));
        *next_id += 1;
        let order_id = match &key {
            Some(key) => OrderId::for_idempotency_key(&OrderIdSecret::default(), &customer, key),
            None => OrderId::from_uuid(Uuid::from_u128(1 << 64 | *next_id)),
        };
        let ga_zone: ZoneCode = "GA".parse().expect("zone");
        let places: Vec<(ZoneCode, Option<SeatRef>)> = if seats.is_empty() {
            (0..*places).map(|_| (ga_zone.clone(), None)).collect()
        } else {
            seats
                .into_iter()
                .map(|s| (s.zone.clone(), Some(s)))
                .collect()
        };
        let count = places.len();
        let tickets = places
            .into_iter()
            .enumerate()
            .map(|(i, (zone, seat))| {
                *next_id += 1;
                let late = if i + 1 == count { *skew } else { 0 };
                Ticket {
                    id: TicketId::from_uuid(Uuid::from_u128(*next_id)),
                    order_id,
                    event_id: event(*e),
                    venue_id: venue(*e),
                    zone,
                    seat,
                    customer: customer.clone(),
                    price: Money::new(*price, Currency::new("EUR").expect("currency")),
                    status: TicketStatus::PendingPayment,
                    created_on: at(0),
                    expires_at: at(deadline + late),
                    paid_at: None,
                    payment_ref: None,
                }
            })
            .collect();
        let order = Order::from_tickets(tickets).expect("one order")?;
        let general_admission = order
            .tickets
            .iter()
            .all(|t| t.seat.is_none())
            .then_some((ga_zone, 1_000));
        Some(NewOrder {
            per_customer_limit: 100,
            general_admission,
            idempotency: key.map(|key| IdempotencyRecord {
                customer,
                key,
                fingerprint: "f".into(),
                order_id,
            }),
            voucher: None,
            price_tiers: Vec::new(),
            channel: None,
            order,
        })
    }

    /// The expiry sweep's choice as it was made by scanning every ticket.
    fn due_by_scan(state: &State, now: DateTime<Utc>, limit: u32) -> Vec<OrderId> {
        let mut due: Vec<(DateTime<Utc>, OrderId)> = state
            .tickets
            .values()
            .filter(|t| t.status == TicketStatus::PendingPayment && t.expires_at <= now)
            .map(|t| (t.expires_at, t.order_id))
            .collect();
        due.sort();
        due.dedup_by_key(|(_, order)| *order);
        due.into_iter()
            .take(limit as usize)
            .map(|(_, order)| order)
            .collect()
    }

    /// Every answer the index gives equals a scan of every ticket and every outbox entry.
    fn assert_index_matches_a_scan(repo: &InMemoryTicketRepository) -> Result<(), TestCaseError> {
        for e in 0..2 {
            for status in TicketStatus::ALL {
                let scanned = lock(&repo.state)
                    .tickets
                    .values()
                    .filter(|t| t.event_id == event(e) && t.status == status)
                    .count() as u64;
                let counted = block_on(repo.count_by_status(event(e), status)).expect("count");
                prop_assert_eq!(counted, scanned, "{:?} of event {}", status, e);
            }
            for v in 0..2 {
                let scanned: i64 = lock(&repo.state)
                    .tickets
                    .values()
                    .filter(|t| {
                        t.venue_id == venue(v)
                            && t.event_id == event(e)
                            && t.status == TicketStatus::Paid
                    })
                    .map(|t| t.price.minor)
                    .sum();
                let summed = block_on(repo.revenue_minor(venue(v), event(e))).expect("revenue");
                prop_assert_eq!(summed, scanned);
            }
            let mut scanned: Vec<TicketId> = lock(&repo.state)
                .tickets
                .values()
                .filter(|t| t.event_id == event(e) && t.status.is_active())
                .map(|t| t.id)
                .collect();
            let mut indexed: Vec<TicketId> = block_on(repo.active_tickets(event(e)))
                .expect("active")
                .iter()
                .map(|t| t.id)
                .collect();
            scanned.sort();
            indexed.sort();
            prop_assert_eq!(&indexed, &scanned);
            for limit in [1, 2, 7] {
                let mut paged = Vec::new();
                let mut after = None;
                loop {
                    let page =
                        block_on(repo.active_tickets_page(event(e), after, limit)).expect("page");
                    paged.extend(page.iter().map(|t| t.id));
                    if page.len() < limit as usize {
                        break;
                    }
                    after = page.last().map(|t| t.id);
                }
                prop_assert_eq!(&paged, &scanned, "pages of {}", limit);
            }
        }
        let state = lock(&repo.state);
        for now in [0, 5, 10, 19, 30] {
            for limit in [1, 2, 100] {
                prop_assert_eq!(
                    state.index.due_orders(at(now), limit),
                    due_by_scan(&state, at(now), limit)
                );
            }
        }
        let len = state.outbox_head();
        for after in [0, len / 2, len.saturating_sub(1), len, len + 3] {
            let scanned: Vec<OutboxEntry> = state
                .outbox
                .iter()
                .filter(|e| e.seq > after)
                .take(2)
                .cloned()
                .collect();
            prop_assert_eq!(state.outbox_after(after, 2), scanned);
        }
        Ok(())
    }

    proptest! {
        /// Random orders (seated and general admission, some with a straggling deadline, some
        /// retried by idempotency key), transitions at random instants and expiry sweeps: the
        /// counters, the active-ticket index, the sweep's choice and outbox reads always equal a
        /// scan of everything.
        #[test]
        fn indexes_match_a_scan(steps in proptest::collection::vec(step(), 1..60)) {
            let repo = InMemoryTicketRepository::new();
            let (mut next_id, mut orders) = (0u128, Vec::new());
            for step in steps {
                match &step {
                    Step::Insert { .. } => {
                        if let Some(new) = new_order(&step, &mut next_id)
                            && let Ok(InsertOutcome::Inserted) = block_on(repo.insert_order(&new))
                        {
                            orders.push(new.order.id);
                        }
                    }
                    Step::Transition { order, action, now } => {
                        if !orders.is_empty() {
                            let transition = Transition {
                                order: orders[order % orders.len()],
                                action: ACTIONS[*action],
                                now: at(*now),
                                payment_ref: Some(PaymentRef::new("p").expect("ref")),
                            };
                            block_on(repo.transition(&transition)).expect("transition");
                        }
                    }
                    Step::ExpireDue { now, limit } => {
                        block_on(repo.expire_due(at(*now), *limit)).expect("sweep");
                    }
                }
                assert_index_matches_a_scan(&repo)?;
            }
        }
    }

    #[tokio::test]
    async fn the_relay_reads_from_its_cursor() {
        let repo = InMemoryTicketRepository::new();
        let mut next_id = 0;
        for deadline in 0..5 {
            let step = Step::Insert {
                event: 0,
                seats: Vec::new(),
                places: 1,
                customer: 0,
                deadline,
                skew: 0,
                price: 100,
                key: None,
            };
            let new = new_order(&step, &mut next_id).expect("an order");
            repo.insert_order(&new).await.expect("insert");
        }
        assert!(
            repo.try_acquire_lease("r", at(0), TimeDelta::seconds(5))
                .await
                .unwrap()
        );
        assert!(repo.mark_sent("r", 3).await.unwrap());
        let seqs = |entries: Vec<OutboxEntry>| entries.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(repo.unsent(10).await.unwrap()), [4, 5]);
        assert_eq!(seqs(repo.unsent(1).await.unwrap()), [4]);
        assert!(repo.rewind("r", 1).await.unwrap());
        assert_eq!(seqs(repo.unsent(10).await.unwrap()), [2, 3, 4, 5]);
        assert_eq!(
            seqs(repo.outbox_after(5, 10).await.unwrap()),
            Vec::<u64>::new()
        );
    }
}
