//! The catalog: venues and events. Written rarely (by an admin), read on every purchase, so the
//! services cache what they read.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use crate::domain::{Event, EventId, Venue, VenueId, Voucher, VoucherCode};

/// The catalog repository port. Implementations: in memory, MySQL/MariaDB.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait CatalogRepository: Send + Sync {
    /// Stores a new venue with its zones and rows. An existing id is
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest).
    async fn insert_venue(&self, venue: &Venue) -> Result<()>;

    /// A venue by id.
    async fn venue(&self, id: VenueId) -> Result<Option<Venue>>;

    /// Stores a new event (its venue must exist). An existing id is
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest).
    async fn insert_event(&self, event: &Event) -> Result<()>;

    /// An event by id.
    async fn event(&self, id: EventId) -> Result<Option<Event>>;

    /// Stores a new voucher of an event. A code the event has already is
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest).
    async fn insert_voucher(&self, voucher: &Voucher) -> Result<()>;

    /// The voucher of `event` with `code`.
    async fn voucher(&self, event: EventId, code: &VoucherCode) -> Result<Option<Voucher>>;

    /// Every voucher of `event`, by code.
    async fn vouchers(&self, event: EventId) -> Result<Vec<Voucher>>;

    /// Up to `limit` ids of events whose sale closed at or before `closed_by`, in
    /// (`sale_closes`, id) order, starting after the key `after` (a keyset page): what
    /// [`ClosedEventSweep`](crate::service::ClosedEventSweep) walks to drop the seat-lock state of
    /// events that are over.
    async fn events_closed(
        &self,
        after: Option<(DateTime<Utc>, EventId)>,
        closed_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<EventId>>;
}
