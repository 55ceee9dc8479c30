//! [`SalesReadModel`]: where a projection of the event stream keeps the sales read model, so
//! that a consumer of any broker (NATS JetStream, RabbitMQ, …) can keep the same model.

use async_trait::async_trait;

use crate::Result;
use crate::domain::{EventId, EventTotals, OutboxEntry};

/// What [`SalesReadModel::apply`] did with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The entry was the next one and changed the model.
    Applied,
    /// Its sequence number was applied before: nothing changed (a redelivery or a republish).
    Duplicate,
    /// An earlier entry is still missing (`expected` is the next sequence number the model
    /// needs): nothing changed; the consumer takes the entry up again later.
    Gap {
        /// The sequence number the model needs next.
        expected: u64,
    },
}

/// The sales read model (per event and per zone: tickets pending, sold, expired, cancelled,
/// refunded, and the revenue), changed by outbox entries strictly in sequence order.
///
/// Applying is atomic and idempotent by sequence number: the model keeps the last sequence
/// number it applied together with the counters, so an entry delivered twice, or published
/// twice, changes it once, and a consumer that dies between applying and acknowledging loses
/// nothing.
#[async_trait]
pub trait SalesReadModel: Send + Sync {
    /// Applies `entry` if its sequence number is the next one (last applied + 1); a number not
    /// above the last applied one is a [`Applied::Duplicate`], one further on a
    /// [`Applied::Gap`]. Either way nothing else changed.
    async fn apply(&self, entry: &OutboxEntry) -> Result<Applied>;

    /// The last sequence number applied (0 before the first).
    async fn last_applied(&self) -> Result<u64>;

    /// The read model of `event` (all zeros when nothing of it was applied).
    async fn totals(&self, event: EventId) -> Result<EventTotals>;
}
