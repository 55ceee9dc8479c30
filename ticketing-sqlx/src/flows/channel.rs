//! Channel-reserved seats: a channel and its seats stored in one transaction, the purchase's
//! check of its seats (a locking read, so a concurrent release is wholly before or after it),
//! and a release with its outbox row (docs/DESIGN.md, "Channel reservations").

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::{
    Channel, ChannelCode, ChannelKeyHash, ChannelRelease, EventId, SeatRef,
};
use ticketing_core::ports::NewOrder;
use uuid::Uuid;

use super::outbox::Outbox;
use crate::codec::stored;
use crate::dialect::is_unique_violation;

/// Channels on a database: its statements, and the flows over them.
pub(crate) trait Channels: Outbox
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Uuid: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> Vec<u8>: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> bool: Decode<'q, Self> + Type<Self>,
    for<'q> DateTime<Utc>: Decode<'q, Self> + Type<Self>,
{
    /// Binds: event, code, key hash.
    const INSERT_CHANNEL: &'static str;
    /// Binds: event. `code`, `key_hash` of every channel of the event.
    const SELECT_CHANNELS: &'static str;
    /// Binds: event. `channel_code`, `seat_key`, `released` of every seat kept by the event.
    const SELECT_CHANNEL_SEATS: &'static str;
    /// Binds: event, code. The channel's `key_hash`, its row locked: one release of a channel
    /// at a time.
    const LOCK_CHANNEL: &'static str;
    /// Binds: event, code. `seat_key`, `released` of the channel's seats.
    const SELECT_SEATS_OF_CHANNEL: &'static str;

    /// Inserts the rows of `seats` (keys) kept for channel `code`, all reserved.
    fn insert_channel_seats(
        conn: &mut Self::Connection,
        event: Uuid,
        code: &str,
        seats: &[String],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// `(seat_key, channel_code, released)` of those of `seats` (keys) that a channel keeps,
    /// in key order, read in share mode: a release of one of them waits for this transaction,
    /// and this read waits for a release that changed one and reads its committed state.
    fn kept_among(
        conn: &mut Self::Connection,
        event: Uuid,
        seats: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String, bool)>, Self::Error>> + Send;

    /// Marks `seats` (keys) of channel `code` released.
    fn mark_released(
        conn: &mut Self::Connection,
        event: Uuid,
        code: &str,
        seats: &[String],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Those of `seats` (keys) with an active ticket.
    fn active_among(
        conn: &mut Self::Connection,
        event: Uuid,
        seats: &[String],
    ) -> impl Future<Output = Result<Vec<String>, Self::Error>> + Send;

    /// The kept seats of `rows` (each with `seat_key` and `released`): (still reserved,
    /// released).
    #[allow(clippy::type_complexity)]
    fn seat_sets<'r>(
        rows: impl IntoIterator<Item = &'r Self::Row>,
    ) -> Result<(BTreeSet<SeatRef>, BTreeSet<SeatRef>), Self::Error> {
        let (mut reserved, mut released) = (BTreeSet::new(), BTreeSet::new());
        for row in rows {
            let seat: String = row.try_get("seat_key")?;
            let seat = stored(seat.parse::<SeatRef>())?;
            if row.try_get::<bool, _>("released")? {
                released.insert(seat);
            } else {
                reserved.insert(seat);
            }
        }
        Ok((reserved, released))
    }

    /// A row of [`kept_among`](Self::kept_among)'s statement: `seat_key`, `channel_code`,
    /// `released`.
    fn kept_row(row: &Self::Row) -> Result<(String, String, bool), Self::Error> {
        Ok((
            row.try_get("seat_key")?,
            row.try_get("channel_code")?,
            row.try_get("released")?,
        ))
    }

    /// [`insert_channel`](ticketing_core::ports::TicketRepository::insert_channel): the channel
    /// row, then its seats, or nothing. A duplicate code or a seat kept already (the seats'
    /// primary key is the event and the seat) is `InvalidRequest`.
    async fn insert_channel(pool: &Pool<Self>, channel: &Channel) -> Result<(), Self::Error> {
        let event = channel.event().as_uuid();
        let code = channel.code().as_str();
        let mut tx = Self::begin(pool).await?;
        let inserted = sqlx::query(Self::INSERT_CHANNEL)
            .bind(event)
            .bind(code)
            .bind(channel.key_hash().as_bytes().to_vec())
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::invalid(
                    "code",
                    format!("the event has a channel {code} already"),
                )
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        let keys: Vec<String> = channel.reserved().iter().map(SeatRef::key).collect();
        for chunk in keys.chunks(1_000) {
            match Self::insert_channel_seats(&mut tx, event, code, chunk).await {
                Ok(()) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::invalid(
                        "seats",
                        "a seat is kept for another channel of the event",
                    )
                    .into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// [`channels`](ticketing_core::ports::TicketRepository::channels), one attempt.
    async fn channels(pool: &Pool<Self>, event: EventId) -> Result<Vec<Channel>, Self::Error> {
        let heads = sqlx::query(Self::SELECT_CHANNELS)
            .bind(event.as_uuid())
            .fetch_all(pool)
            .await?;
        let seats = sqlx::query(Self::SELECT_CHANNEL_SEATS)
            .bind(event.as_uuid())
            .fetch_all(pool)
            .await?;
        let mut by_channel: HashMap<String, Vec<&Self::Row>> = HashMap::new();
        for row in &seats {
            by_channel
                .entry(row.try_get("channel_code")?)
                .or_default()
                .push(row);
        }
        let mut channels = Vec::with_capacity(heads.len());
        for head in &heads {
            let code: String = head.try_get("code")?;
            let hash: Vec<u8> = head.try_get("key_hash")?;
            let rows = by_channel.remove(&code).unwrap_or_default();
            let (reserved, released) = Self::seat_sets(rows)?;
            channels.push(Channel::from_stored(
                event,
                stored(ChannelCode::new(code))?,
                ChannelKeyHash::from_bytes(&hash)?,
                reserved,
                released,
            )?);
        }
        Ok(channels)
    }

    /// The purchase's step: `SeatsTaken` naming the seats of `new` still reserved for a channel
    /// other than its own, read in share mode and held to COMMIT, so a release cannot commit
    /// between this check and the order's tickets.
    async fn check_reserved(
        conn: &mut Self::Connection,
        new: &NewOrder,
    ) -> Result<(), Self::Error> {
        let mut keys: Vec<String> = new
            .order
            .tickets
            .iter()
            .filter_map(|t| t.seat.as_ref().map(SeatRef::key))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        keys.sort();
        let own = new.channel.as_ref().map(ChannelCode::as_str);
        let mut refused = Vec::new();
        for (seat, channel, released) in
            Self::kept_among(conn, new.order.event_id.as_uuid(), &keys).await?
        {
            if !released && Some(channel.as_str()) != own {
                refused.push(stored(seat.parse::<SeatRef>())?);
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Error::SeatsTaken { seats: refused }.into())
        }
    }

    /// [`release_channel_seats`](ticketing_core::ports::TicketRepository::release_channel_seats),
    /// one attempt: the channel's row locked, its seats read and released by
    /// [`Channel::release`], the rows marked and the outbox row written, or nothing (no event
    /// when no seat was still reserved).
    async fn release_once(
        pool: &Pool<Self>,
        release: &ChannelRelease,
    ) -> Result<Vec<SeatRef>, Self::Error> {
        let event = release.event.as_uuid();
        let code = release.channel.as_str();
        let mut tx = Self::begin(pool).await?;
        let Some(head) = sqlx::query(Self::LOCK_CHANNEL)
            .bind(event)
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.rollback().await?;
            return Err(Error::not_found("channel", code).into());
        };
        let hash: Vec<u8> = head.try_get("key_hash")?;
        let rows = sqlx::query(Self::SELECT_SEATS_OF_CHANNEL)
            .bind(event)
            .bind(code)
            .fetch_all(&mut *tx)
            .await?;
        let (reserved, released) = Self::seat_sets(&rows)?;
        let mut channel = Channel::from_stored(
            release.event,
            release.channel.clone(),
            ChannelKeyHash::from_bytes(&hash)?,
            reserved,
            released,
        )?;
        let newly = match channel.release(release.seats.as_deref()) {
            Ok(newly) if !newly.is_empty() => newly,
            other => {
                tx.rollback().await?;
                return Ok(other?);
            }
        };
        let keys: Vec<String> = newly.iter().map(SeatRef::key).collect();
        let mut active = HashSet::new();
        for chunk in keys.chunks(1_000) {
            Self::mark_released(&mut tx, event, code, chunk).await?;
            active.extend(Self::active_among(&mut tx, event, chunk).await?);
        }
        let free = newly
            .iter()
            .filter(|seat| !active.contains(&seat.key()))
            .cloned()
            .collect();
        Self::append(&mut tx, &[release.outbox_event(free)?]).await?;
        tx.commit().await?;
        Ok(newly)
    }
}
