//! The purchase's fast check of channel reservations: seats kept back for a channel are taken
//! for everyone else, refused before the hold and left out of best available (docs/DESIGN.md,
//! "Channel reservations"). The repository checks them again in the purchase's transaction.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::{Channel, ChannelAccess, ChannelCode, EventId, SeatRef, ZoneCode};
use crate::ports::TicketRepository;
use crate::{Error, Result};

use super::shared_reads::SharedReads;

/// An event's channels as one purchase sees them.
#[derive(Debug, Default)]
pub(crate) struct Reservations {
    channels: Vec<Channel>,
    /// The channel each still reserved seat is kept for.
    seats: HashMap<SeatRef, ChannelCode>,
}

impl Reservations {
    fn new(channels: Vec<Channel>) -> Self {
        let seats = channels
            .iter()
            .flat_map(|c| c.reserved().iter().map(|s| (s.clone(), c.code().clone())))
            .collect();
        Self { channels, seats }
    }

    /// The channel `access` names when its key is that channel's; otherwise
    /// [`Error::ChannelKeyInvalid`] (an unknown code and a wrong key look the same).
    pub(crate) fn verify(&self, access: &ChannelAccess) -> Result<ChannelCode> {
        self.channels
            .iter()
            .find(|c| c.code() == &access.code && c.accepts(&access.key))
            .map(|c| c.code().clone())
            .ok_or_else(|| Error::ChannelKeyInvalid {
                channel: access.code.to_string(),
            })
    }

    /// Those of `seats` kept back for a channel other than `buyer`'s, in the given order.
    pub(crate) fn refused<'a>(
        &self,
        seats: impl IntoIterator<Item = &'a SeatRef>,
        buyer: Option<&ChannelCode>,
    ) -> Vec<SeatRef> {
        seats
            .into_iter()
            .filter(|s| self.seats.get(*s).is_some_and(|c| Some(c) != buyer))
            .cloned()
            .collect()
    }

    /// The seats of `zone` kept back for a channel other than `buyer`'s, sorted: what a
    /// best-available choice must treat as taken.
    pub(crate) fn excluded(&self, zone: &ZoneCode, buyer: Option<&ChannelCode>) -> Vec<SeatRef> {
        let mut seats: Vec<SeatRef> = self
            .seats
            .iter()
            .filter(|(s, c)| &s.zone == zone && Some(*c) != buyer)
            .map(|(s, _)| s.clone())
            .collect();
        seats.sort();
        seats
    }
}

/// The reservations of each event, read from the repository and shared for
/// [`ServiceConfig::channel_max_age`](super::ServiceConfig::channel_max_age). A reservation made
/// since the read reaches the repository's check; a release made since is seen on the next read
/// (a refused buyer of a named seat reads again before the refusal stands, [`Self::get_fresh`]).
pub(crate) struct ReservationCache {
    reads: SharedReads<EventId, Arc<Reservations>>,
}

impl ReservationCache {
    pub(crate) fn new(max_age: std::time::Duration) -> Self {
        Self {
            reads: SharedReads::new(max_age),
        }
    }

    /// The event's reservations, perhaps as read up to the maximum age ago.
    pub(crate) async fn get(
        &self,
        tickets: &Arc<dyn TicketRepository>,
        event: EventId,
    ) -> Result<Arc<Reservations>> {
        let tickets = tickets.clone();
        self.reads
            .get(event, async move {
                Ok(Arc::new(Reservations::new(tickets.channels(event).await?)))
            })
            .await
    }

    /// Drops the shared read of `event`'s reservations: a release was published.
    pub(crate) fn forget(&self, event: EventId) {
        self.reads.forget(&event);
    }

    /// The event's reservations as the repository has them now.
    pub(crate) async fn get_fresh(
        tickets: &Arc<dyn TicketRepository>,
        event: EventId,
    ) -> Result<Arc<Reservations>> {
        Ok(Arc::new(Reservations::new(tickets.channels(event).await?)))
    }
}
