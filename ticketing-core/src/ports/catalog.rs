//! The catalog: venues and events. Written rarely (by an admin), read on every purchase, so the
//! services cache what they read.

use async_trait::async_trait;

use crate::Result;
use crate::domain::{Event, EventId, Venue, VenueId};

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
}
