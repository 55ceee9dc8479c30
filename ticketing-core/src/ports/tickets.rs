//! The ticket repository: the source of truth. Every invariant is finally enforced here, inside one
//! transaction (or one compare-and-set) per call.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
#[cfg(doc)]
use crate::domain::PaymentEffect;
use crate::domain::{
    Channel, ChannelCode, ChannelRelease, CustomerId, EventId, IdempotencyKey, Money, Order,
    OrderId, OutboxEntry, Payment, PaymentRecorded, PaymentRef, PaymentWrite, SeatRef, Ticket,
    TicketAction, TicketId, TicketStatus, VenueId, VoucherCode, ZoneCode,
};

/// The idempotency record stored with an order: the key and a fingerprint of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The customer the key belongs to (keys are scoped per customer).
    pub customer: CustomerId,
    /// The client's key.
    pub key: IdempotencyKey,
    /// A digest of the request; the same key with another fingerprint is a conflict.
    pub fingerprint: String,
    /// The order the key produced.
    pub order_id: OrderId,
}

/// A new order to persist with [`TicketRepository::insert_order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The order; all its tickets are PENDING_PAYMENT.
    pub order: Order,
    /// The event's per-customer limit: active tickets of the customer for the event, including
    /// these, must not exceed it.
    pub per_customer_limit: u32,
    /// For a general-admission order, the zone and its capacity: active tickets in the zone,
    /// including these, must not exceed it.
    pub general_admission: Option<(ZoneCode, u32)>,
    /// The idempotency record to store in the same transaction, if the purchase had a key.
    pub idempotency: Option<IdempotencyRecord>,
    /// The voucher the order uses, if any: one use, taken in the same transaction.
    pub voucher: Option<VoucherClaim>,
    /// The price tiers of the order's tiered zones, one entry per zone (none without tiers):
    /// the repository decides each ticket's tier, and so its price, in the same transaction.
    pub price_tiers: Vec<TierClaim>,
    /// The sales channel whose key the buyer showed, if any: its reserved seats are the only
    /// reserved seats the order may have ([`TicketRepository::insert_channel`]).
    pub channel: Option<ChannelCode>,
}

/// The price tiers of one zone of a new order, with the prices this order pays in each.
///
/// Each ticket of the order in `zone` takes a place in the first tier that has one left (a
/// tier's active tickets, PENDING_PAYMENT or PAID, this order's included, must not exceed its
/// size) and is priced at that tier's price; past the last tier it keeps the price it was built
/// with (the zone's). The place is counted with the order, given back by the transaction that
/// makes the order terminal, and taken again in the same tier by a late payment that takes an
/// expired order back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierClaim {
    /// The tiered zone.
    pub zone: ZoneCode,
    /// Each tier's size and the price of a ticket of this order in it (any voucher's discount
    /// applied), in tier order.
    pub tiers: Vec<(u32, Money)>,
}

/// The use of a voucher by a new order, with the limits the repository enforces.
///
/// The voucher's active orders (PENDING_PAYMENT or PAID, this one included) must not exceed
/// `max_uses`, nor this customer's `max_per_customer`. The use is counted with the order and
/// given back by the transaction that makes the order terminal (expiry, cancellation, refund),
/// and taken again by a late payment that takes an expired order back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherClaim {
    /// The voucher's code (of the order's event).
    pub code: VoucherCode,
    /// Most active orders using it.
    pub max_uses: u32,
    /// Most active orders of one customer using it.
    pub max_per_customer: u32,
}

/// The answer of [`TicketRepository::insert_order`] when nothing was violated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The order, its idempotency record and its outbox row were written.
    Inserted,
    /// As [`InsertOutcome::Inserted`], for an order with price tiers
    /// ([`NewOrder::price_tiers`]): the order as written, each ticket at the price of the tier
    /// the repository counted it in.
    Priced(Order),
    /// Nothing was written: this customer already used this idempotency key; here is its record.
    DuplicateKey(IdempotencyRecord),
}

/// A compare-and-set on all tickets of an order.
///
/// The move is applied when every ticket of the order has `action`'s source status
/// ([`TicketAction::source`]) and, for [`TicketAction::Pay`], `expires_at > now`, or for
/// [`TicketAction::Expire`], `expires_at <= now`. These are the rules of
/// [`TicketStatus::apply`], restated as a guard the database can check atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The order.
    pub order: OrderId,
    /// The move.
    pub action: TicketAction,
    /// The caller's clock; also stored as `paid_at` on payment.
    pub now: DateTime<Utc>,
    /// The payment provider's reference, for [`TicketAction::Pay`].
    pub payment_ref: Option<PaymentRef>,
}

/// Moves the payment deadline of a pending order, with [`TicketRepository::extend_deadline`].
///
/// The service reads the order, decides the new deadline from its policy
/// ([`HoldExtension::next_deadline`](crate::domain::HoldExtension::next_deadline)) and holds the
/// seats in the seat lock until then; the repository then applies it as a compare-and-set on the
/// order: it moves only while the order is PENDING_PAYMENT with the deadline `from` the service
/// read, `from > now`, and fewer than `max_extensions` extensions so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The order.
    pub order: OrderId,
    /// The caller's clock: an order whose deadline is at or before it cannot be extended, even
    /// before the sweep expired it.
    pub now: DateTime<Utc>,
    /// The deadline the decision was made on; a deadline moved meanwhile makes the call stale.
    pub from: DateTime<Utc>,
    /// The new deadline, later than `from`.
    pub to: DateTime<Utc>,
    /// The policy's limit: an order extended this often already is refused.
    pub max_extensions: u32,
}

/// The answer of [`TicketRepository::extend_deadline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionOutcome {
    /// The deadline of every ticket of the order is now [`Extension::to`], the order counts
    /// `extensions` extensions, and the outbox has a `HoldExtended` event.
    Extended {
        /// The order's extensions, this one included.
        extensions: u32,
    },
    /// Nothing changed: the order is pending with the deadline decided on, but was extended
    /// [`Extension::max_extensions`] times already.
    LimitReached,
    /// Nothing changed: a payment of the order that arrived at or after the deadline
    /// [`Extension::from`] is in the ledger already (judged late, a refund due): the deadline
    /// passed by the payments' clock, so it is not moved behind that payment's back.
    DeadlinePassed,
    /// Nothing changed: the order is unknown, no longer PENDING_PAYMENT, its deadline is no
    /// longer [`Extension::from`], or that deadline is not after [`Extension::now`]. Read it
    /// again.
    Stale,
}

/// The ticket repository port. Implementations: in memory, MySQL/MariaDB.
///
/// Every call is atomic and safe to run from many tasks and processes at once. Each state change
/// (insert, transition, expiry) writes its outbox row in the same transaction.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait TicketRepository: Send + Sync {
    /// Persists a new order atomically: its tickets, its idempotency record and its outbox row, or
    /// nothing. Fails with [`Error::SeatsTaken`](crate::Error::SeatsTaken) naming the seats that
    /// have an active ticket already (invariant 1), [`Error::SoldOut`](crate::Error::SoldOut)
    /// when a general-admission zone is full (invariant 2), and
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) when the customer would exceed the
    /// per-customer limit (invariant 6), and [`Error::Voucher`](crate::Error::Voucher) with
    /// [`VoucherProblem::UsedUp`](crate::domain::VoucherProblem::UsedUp) or
    /// [`VoucherProblem::CustomerLimit`](crate::domain::VoucherProblem::CustomerLimit) when the
    /// order's voucher has no use left ([`VoucherClaim`]). An order whose idempotency key is
    /// stored already is answered [`InsertOutcome::DuplicateKey`] before any of these is
    /// counted, so a retry takes no voucher use. A keyed order whose id is stored already while its key
    /// has no record (the record was pruned, see
    /// [`prune_idempotency_keys`](Self::prune_idempotency_keys)) fails with
    /// [`Error::IdempotencyConflict`](crate::Error::IdempotencyConflict) and writes nothing.
    async fn insert_order(&self, order: &NewOrder) -> Result<InsertOutcome>;

    /// The idempotency record of `customer`'s `key`, if one was stored.
    async fn idempotency_record(
        &self,
        customer: &CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>>;

    /// Deletes up to `limit` idempotency records whose order was created before `before`,
    /// oldest first, and returns how many. The orders stay. Callers repeat it while it answers
    /// `limit`.
    ///
    /// A purchase that later repeats a pruned key derives the same order id, so
    /// [`insert_order`](Self::insert_order) refuses it as a conflict, never a second order.
    async fn prune_idempotency_keys(&self, before: DateTime<Utc>, limit: u32) -> Result<u64>;

    /// Applies `transition` as a compare-and-set. `true` when every ticket of the order moved,
    /// `false` when the guard did not hold (nothing changed). An unknown order is `false`.
    async fn transition(&self, transition: &Transition) -> Result<bool>;

    /// Moves the payment deadline of a pending order as [`Extension`] says, in one transaction:
    /// the new deadline on every ticket of the order, its extension count raised by one, and a
    /// `HoldExtended` outbox event carrying the new deadline; or nothing, answering why. The
    /// compare-and-set on the order serialises it with payments and the expiry sweep: an order
    /// the sweep expired, or whose deadline passed, is [`ExtensionOutcome::Stale`].
    async fn extend_deadline(&self, extension: &Extension) -> Result<ExtensionOutcome>;

    /// Records a payment notification in the ledger together with its effect on the order, in
    /// one transaction, or nothing:
    ///
    /// - a reference already in the ledger writes nothing and answers
    ///   [`PaymentRecorded::Replayed`] with the stored entry (replays are idempotent);
    /// - an order whose status is no longer [`PaymentWrite::decided_on`] (or an order that now
    ///   exists where none did) writes nothing and answers [`PaymentRecorded::Stale`]; so does a
    ///   [`PaymentEffect::Pay`] whose deadline is not after `received_at`;
    /// - [`PaymentEffect::Pay`] and [`PaymentEffect::PayLate`] move the order PENDING_PAYMENT →
    ///   PAID with `paid_at = received_at`; [`PaymentEffect::Reactivate`] moves it EXPIRED → PAID
    ///   and fails with [`Error::SeatsTaken`](crate::Error::SeatsTaken),
    ///   [`Error::SoldOut`](crate::Error::SoldOut) or
    ///   [`Error::LimitExceeded`](crate::Error::LimitExceeded) when its seats, places or the
    ///   customer's limit no longer allow it (invariants 1, 2 and 6);
    /// - the entry is stored, and the outbox gets a `TicketPaid` (it paid) or `PaymentRejected`
    ///   (refund due) event carrying it; an unknown order gets no outbox event.
    async fn record_payment(&self, write: &PaymentWrite) -> Result<PaymentRecorded>;

    /// The ledger entry of `reference`.
    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>>;

    /// The ledger entries naming `order`, oldest first (ties by reference).
    async fn payments_of(&self, order: OrderId) -> Result<Vec<Payment>>;

    /// Up to `limit` ledger entries whose money is owed back and not yet reported refunded,
    /// oldest first.
    async fn refunds_due(&self, limit: u32) -> Result<Vec<Payment>>;

    /// Notes that the refund owed under `reference` was sent at `at`. `false` when no refund is
    /// owed under it (unknown reference, a payment that paid, or refunded already).
    async fn mark_refunded(&self, reference: &PaymentRef, at: DateTime<Utc>) -> Result<bool>;

    /// Expires up to `limit` orders whose deadline is at or before `now`, each by compare-and-set,
    /// and returns them (with status EXPIRED). Several sweepers may run at once: each order is
    /// returned by exactly one of them.
    async fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Order>>;

    /// One ticket.
    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>>;

    /// All tickets of an order, as an order.
    async fn order(&self, id: OrderId) -> Result<Option<Order>>;

    /// The active (PENDING_PAYMENT or PAID) tickets of an event, to rebuild the seat lock and to
    /// audit invariants.
    async fn active_tickets(&self, event: EventId) -> Result<Vec<Ticket>>;

    /// How many tickets of the event have `status`.
    async fn count_by_status(&self, event: EventId, status: TicketStatus) -> Result<u64>;

    /// Sum of the prices of PAID tickets of the event at the venue, in minor units.
    async fn revenue_minor(&self, venue: VenueId, event: EventId) -> Result<i64>;

    /// The sequence number of the newest committed outbox entry (0 when there is none), or
    /// `None` when the repository cannot tell. A seat-lock rebuild notes it before reading the
    /// active tickets and then catches up with the orders changed since. Required: a wrapper
    /// that forgot to forward it would silently turn that catch-up off.
    async fn outbox_head(&self) -> Result<Option<u64>>;

    /// Up to `limit` outbox entries with a sequence number greater than `after`, in order.
    async fn outbox_after(&self, after: u64, limit: u32) -> Result<Vec<OutboxEntry>>;

    /// How many active orders (PENDING_PAYMENT or PAID) use each voucher of `event` that was
    /// ever used, by code; a voucher missing from the answer has no use.
    async fn voucher_uses(&self, event: EventId) -> Result<Vec<(VoucherCode, u32)>>;

    /// How many active tickets (PENDING_PAYMENT or PAID) count in each price tier of `event`'s
    /// tiered zones that ever sold, as (zone, tier index from 0, active), by zone and tier; a
    /// tier missing from the answer has sold nothing.
    async fn tier_sales(&self, event: EventId) -> Result<Vec<(ZoneCode, u16, u32)>>;
    /// Stores a new sales channel of an event with the seats it keeps back. From then on
    /// [`insert_order`](Self::insert_order) refuses, with
    /// [`Error::SeatsTaken`](crate::Error::SeatsTaken) naming them, an order with a seat still
    /// reserved for a channel other than the order's [`NewOrder::channel`] (checked with a
    /// locking read, so a concurrent release is either wholly before the order or wholly
    /// after). A code the event has already, or a seat another channel of the event keeps
    /// back (reserved or released), is [`Error::InvalidRequest`](crate::Error::InvalidRequest)
    /// and stores nothing.
    async fn insert_channel(&self, channel: &Channel) -> Result<()>;

    /// Every channel of `event` with its reserved and released seats, by code.
    async fn channels(&self, event: EventId) -> Result<Vec<Channel>>;

    /// Releases seats of a channel to the public in one transaction: the seats still reserved
    /// among `release.seats` (all when `None`) become released, decided by
    /// [`Channel::release`], and, when there is any, one `ChannelSeatsReleased` outbox event
    /// ([`ChannelRelease::outbox_event`], naming those without an active ticket) is written with
    /// them. Returns the seats newly released, in seat order; empty (and no event) when all were
    /// released before. An unknown channel is [`Error::NotFound`](crate::Error::NotFound).
    async fn release_channel_seats(&self, release: &ChannelRelease) -> Result<Vec<SeatRef>>;

    /// Up to `limit` active tickets of `event` whose id is greater than `after` (from the first
    /// when `None`), in ticket-id order: the pages a seat-lock rebuild reads. Keyset pagination
    /// over an index, so a page costs the same on a full event as on an empty one.
    async fn active_tickets_page(
        &self,
        event: EventId,
        after: Option<TicketId>,
        limit: u32,
    ) -> Result<Vec<Ticket>>;
}
