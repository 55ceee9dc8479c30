//! Channel-reserved inventory: seats an event keeps back for a sales channel (a box office, a
//! sponsor, a presale partner). The public cannot see or buy them; a buyer who shows the
//! channel's key can, until the shop releases them to the public (docs/DESIGN.md, "Channel
//! reservations").

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::event::Event;
use super::ids::{ChannelCode, CustomerId, EventId, OrderId};
use super::money::Money;
use super::outbox::{OUTBOX_SCHEMA_VERSION, OutboxEvent, OutboxKind};
use super::venue::{SeatRef, Venue};
use crate::Error;

/// Most seats one channel may keep back (one reservation, one release), so a request, a
/// transaction and an outbox event stay bounded.
pub const MAX_CHANNEL_SEATS: usize = 10_000;

/// The secret a channel's buyers show. Never stored: the catalog keeps its
/// [`ChannelKeyHash`]. Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelKey(String);

impl ChannelKey {
    /// Shortest key accepted: 16 characters.
    pub const MIN_LEN: usize = 16;
    /// Longest key accepted: 128 characters.
    pub const MAX_LEN: usize = 128;

    /// Checks a key given by a buyer or an admin: 16 to 128 visible ASCII characters.
    pub fn new(value: impl Into<String>) -> Result<Self, Error> {
        let value = value.into();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&value.len()) {
            return Err(Error::invalid(
                "key",
                format!(
                    "a channel key has {} to {} characters",
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "key",
                "a channel key has only visible ASCII characters",
            ));
        }
        Ok(Self(value))
    }

    /// A new random key: 64 hex digits from two random (version 4) UUIDs, 244 random bits,
    /// from the operating system's generator.
    pub fn generate() -> Self {
        Self(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
    }

    /// The key as text, to hand to the channel once.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelKey(…)")
    }
}

/// The SHA-256 of a [`ChannelKey`]: what the catalog stores, so a leaked catalog gives no key.
/// A key is random and long, so a plain hash (no salt, no stretching) cannot be searched back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelKeyHash([u8; 32]);

impl ChannelKeyHash {
    /// The hash of `key`.
    pub fn of(key: &ChannelKey) -> Self {
        Self(Sha256::digest(key.0.as_bytes()).into())
    }

    /// A stored hash; anything but 32 bytes is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::internal("a stored channel key hash is not 32 bytes"))?;
        Ok(Self(hash))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `key` is the key hashed, compared in constant time (every byte, whatever
    /// differs first), so timing tells a guesser nothing.
    pub fn matches(&self, key: &ChannelKey) -> bool {
        let other = Self::of(key);
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

/// A buyer's proof of belonging to a channel: its code and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelAccess {
    /// The channel.
    pub code: ChannelCode,
    /// Its key.
    pub key: ChannelKey,
}

/// A sales channel of an event and the seats kept back for it: `reserved` (the public cannot
/// buy them) and `released` (given to the public, for good). Built by [`Channel::new`] or, from
/// storage, [`Channel::from_stored`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    event: EventId,
    code: ChannelCode,
    key_hash: ChannelKeyHash,
    reserved: BTreeSet<SeatRef>,
    released: BTreeSet<SeatRef>,
}

impl Channel {
    /// A new channel of `event` keeping `seats` back: 1 to [`MAX_CHANNEL_SEATS`] distinct
    /// seats of the venue, each in a zone the event prices. Every refusal is
    /// [`Error::InvalidRequest`] naming the field.
    pub fn new(
        event: &Event,
        venue: &Venue,
        code: ChannelCode,
        key: &ChannelKey,
        seats: Vec<SeatRef>,
    ) -> Result<Self, Error> {
        if seats.is_empty() || seats.len() > MAX_CHANNEL_SEATS {
            return Err(Error::invalid(
                "seats",
                format!("a channel keeps 1 to {MAX_CHANNEL_SEATS} seats back"),
            ));
        }
        let mut reserved = BTreeSet::new();
        for seat in seats {
            if !venue.has_seat(&seat) {
                return Err(Error::invalid(
                    "seats",
                    format!("the venue has no seat {seat}"),
                ));
            }
            if event.price(&seat.zone).is_none() {
                return Err(Error::invalid(
                    "seats",
                    format!("zone {} is not on sale for this event", seat.zone),
                ));
            }
            if reserved.contains(&seat) {
                return Err(Error::invalid(
                    "seats",
                    format!("seat {seat} appears twice"),
                ));
            }
            reserved.insert(seat);
        }
        Ok(Self {
            event: event.id(),
            code,
            key_hash: ChannelKeyHash::of(key),
            reserved,
            released: BTreeSet::new(),
        })
    }

    /// A channel as stored; a seat both reserved and released is broken data.
    pub fn from_stored(
        event: EventId,
        code: ChannelCode,
        key_hash: ChannelKeyHash,
        reserved: BTreeSet<SeatRef>,
        released: BTreeSet<SeatRef>,
    ) -> Result<Self, Error> {
        if let Some(seat) = reserved.intersection(&released).next() {
            return Err(Error::internal(format!(
                "channel {code}: seat {seat} is both reserved and released"
            )));
        }
        Ok(Self {
            event,
            code,
            key_hash,
            reserved,
            released,
        })
    }

    /// The event.
    pub fn event(&self) -> EventId {
        self.event
    }

    /// The channel's code.
    pub fn code(&self) -> &ChannelCode {
        &self.code
    }

    /// The hash of its key.
    pub fn key_hash(&self) -> ChannelKeyHash {
        self.key_hash
    }

    /// Whether `key` is this channel's key (in constant time).
    pub fn accepts(&self, key: &ChannelKey) -> bool {
        self.key_hash.matches(key)
    }

    /// The seats still kept back, in seat order.
    pub fn reserved(&self) -> &BTreeSet<SeatRef> {
        &self.reserved
    }

    /// The seats given to the public, in seat order.
    pub fn released(&self) -> &BTreeSet<SeatRef> {
        &self.released
    }

    /// Releases `seats` (every reserved seat when `None`) and returns those that were reserved
    /// until now, in seat order: a seat released before is no error and is not returned again
    /// (a repeated release changes nothing). A seat the channel never kept is
    /// [`Error::InvalidRequest`], and nothing is released.
    pub fn release(&mut self, seats: Option<&[SeatRef]>) -> Result<Vec<SeatRef>, Error> {
        let wanted: Vec<SeatRef> = match seats {
            None => self.reserved.iter().cloned().collect(),
            Some(seats) => {
                if let Some(seat) = seats
                    .iter()
                    .find(|s| !self.reserved.contains(*s) && !self.released.contains(*s))
                {
                    return Err(Error::invalid(
                        "seats",
                        format!("channel {} keeps no seat {seat}", self.code),
                    ));
                }
                seats.to_vec()
            }
        };
        let mut newly: Vec<SeatRef> = wanted
            .into_iter()
            .filter(|s| self.reserved.remove(s))
            .collect();
        newly.sort();
        newly.dedup();
        self.released.extend(newly.iter().cloned());
        Ok(newly)
    }
}

/// A release of a channel's seats to the public, as the repository is asked to record it: the
/// seats marked released and, when any were still reserved, one `ChannelSeatsReleased` outbox
/// event ([`ChannelRelease::outbox_event`]) in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRelease {
    /// The event.
    pub event: EventId,
    /// The channel.
    pub channel: ChannelCode,
    /// The seats to release; `None` for every seat still reserved. At most
    /// [`MAX_CHANNEL_SEATS`].
    pub seats: Option<Vec<SeatRef>>,
    /// The id of the release, in the outbox event's `order_id` (a release has no order; a
    /// fresh id keeps the relay's per-order reads from finding one).
    pub id: OrderId,
    /// The event's venue, for the outbox event.
    pub venue: super::ids::VenueId,
    /// The event's currency, for the outbox event's zero amount.
    pub currency: super::money::Currency,
    /// When.
    pub at: DateTime<Utc>,
}

impl ChannelRelease {
    /// The outbox event recording that `seats` (those newly released) became public; of them,
    /// `free` (the seats without an active ticket) are named in its `seats`, so the live seat
    /// map shows exactly those free. The event's `customer` is the channel's code: a release
    /// has no buyer.
    pub fn outbox_event(&self, free: Vec<SeatRef>) -> Result<OutboxEvent, Error> {
        Ok(OutboxEvent {
            version: OUTBOX_SCHEMA_VERSION,
            kind: OutboxKind::ChannelSeatsReleased,
            order_id: self.id,
            event_id: self.event,
            venue_id: self.venue,
            customer: CustomerId::new(self.channel.as_str())?,
            ticket_ids: Vec::new(),
            seats: free,
            amount: Money::new(0, self.currency),
            at: self.at,
            lines: Vec::new(),
            payment: None,
            deadline: None,
            channel: Some(self.channel.clone()),
            offer: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(s: &str) -> SeatRef {
        s.parse().unwrap()
    }

    fn channel(seats: &[&str]) -> Channel {
        Channel::from_stored(
            EventId::from_uuid(uuid::Uuid::nil()),
            ChannelCode::new("BOX").unwrap(),
            ChannelKeyHash::of(&ChannelKey::new("k".repeat(16)).unwrap()),
            seats.iter().map(|s| seat(s)).collect(),
            BTreeSet::new(),
        )
        .unwrap()
    }

    #[test]
    fn a_key_matches_only_itself_and_is_bounded() {
        let key = ChannelKey::generate();
        assert_eq!(key.as_str().len(), 64);
        let hash = ChannelKeyHash::of(&key);
        assert!(hash.matches(&key));
        assert!(!hash.matches(&ChannelKey::generate()));
        assert!(ChannelKey::new("short").is_err());
        assert!(ChannelKey::new("x".repeat(129)).is_err());
        assert!(ChannelKey::new("with a space inside").is_err());
        assert!(format!("{key:?}").find(key.as_str()).is_none());
        assert_eq!(ChannelKeyHash::from_bytes(hash.as_bytes()).unwrap(), hash);
        assert!(ChannelKeyHash::from_bytes(&[0; 31]).is_err());
    }

    #[test]
    fn a_release_returns_only_seats_reserved_until_then() {
        let mut c = channel(&["A:1:1", "A:1:2", "A:1:3"]);
        assert_eq!(
            c.release(Some(&[seat("A:1:2")])).unwrap(),
            vec![seat("A:1:2")]
        );
        assert!(c.release(Some(&[seat("A:1:2")])).unwrap().is_empty());
        assert!(c.release(Some(&[seat("A:1:9")])).is_err());
        assert_eq!(c.release(None).unwrap(), vec![seat("A:1:1"), seat("A:1:3")]);
        assert!(c.reserved().is_empty());
        assert_eq!(c.released().len(), 3);
        assert!(c.release(None).unwrap().is_empty());
    }
}
