//! The waiting list of sold-out events (docs/DESIGN.md, "Waiting list"): entries in join order,
//! and the record of the offers the relay makes them.
//!
//! An offer is an ordinary pending order on the freed seats, made through the purchase; the
//! store only records which entry it was made to. Every state change is a compare-and-set, so
//! two relays processing the same freed seats record one offer, and a payment and an expiry of
//! the offer's order settle the entry once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use crate::domain::{EventId, Order, OrderId, WaitingEntry, WaitingEntryId, WaitingState};

/// The answer to a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// The entry was added, `Waiting`.
    Added(WaitingEntry),
    /// The customer already has an open entry (waiting or offered) for the event: that one.
    AlreadyOpen(WaitingEntry),
}

/// The waiting lists of every event.
#[async_trait]
pub trait WaitingList: Send + Sync {
    /// Adds `entry` (state `Waiting`) unless its customer has an open entry for its event, at
    /// most one of concurrent joins of one customer winning.
    async fn join(&self, entry: &WaitingEntry) -> Result<Joined>;

    /// The entry, `None` when there is none with this id.
    async fn entry(&self, id: WaitingEntryId) -> Result<Option<WaitingEntry>>;

    /// Moves an open entry to `Left`; a final one stays as it is. The entry as it is after,
    /// `None` when there is none. An offer already made stays an order its customer may pay
    /// or cancel; the entry is no longer settled by it.
    async fn leave(&self, id: WaitingEntryId) -> Result<Option<WaitingEntry>>;

    /// Up to `limit` entries of `event` still `Waiting`, in join order (`joined_at`, then id).
    async fn waiting(&self, event: EventId, limit: u32) -> Result<Vec<WaitingEntry>>;

    /// Records that `order` (pending, made for the entry's customer) is the entry's offer:
    /// `Waiting` → `Offered` with the order, one more offer counted, and a
    /// `WaitingListOffered` outbox event ([`OutboxEvent::for_offer`]) at `at`, in one
    /// transaction. `false`, writing nothing, when the entry is not `Waiting` (another relay
    /// recorded it first, or the customer left).
    ///
    /// [`OutboxEvent::for_offer`]: crate::domain::OutboxEvent::for_offer
    async fn record_offer(
        &self,
        entry: WaitingEntryId,
        order: &Order,
        at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Settles the entry whose offer is `order`: `Offered` → `outcome` (`Served` when it was
    /// paid, `Lapsed` when it expired or was cancelled). The entry as it is after; `None` when
    /// no entry holds `order` as an open offer (not an offer, settled already, or left).
    async fn settle_offer(
        &self,
        order: OrderId,
        outcome: WaitingState,
    ) -> Result<Option<WaitingEntry>>;
}
