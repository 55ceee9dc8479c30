//! Count-based price tiers: each ticket of a tiered zone takes a place in the first tier with
//! one left, in the purchase's transaction, and is priced at that tier's price; the transition
//! that makes its order terminal gives the place back, and a late payment that takes an expired
//! order back takes it again in the same tier (docs/DESIGN.md, "Price tiers").
//!
//! A tier's size is split over up to 32 shard rows of `tier_usage`, as a general-admission
//! zone's capacity is over `zone_usage` ("General admission without a hot row"): a purchase
//! raises shards with room that no other transaction holds (`FOR UPDATE SKIP LOCKED`), and
//! locks every shard of the tier (the definite answer) only when those have too little. Every
//! raise is guarded by `active + n <= capacity` and the slices add up to the tier's size, so no
//! tier ever counts more active tickets than its size, however many buyers race.

use std::collections::BTreeMap;
use std::future::Future;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::{EventId, Order, ZoneCode};
use ticketing_core::ports::NewOrder;
use uuid::Uuid;

use crate::codec::stored;
use crate::dialect::Dialect;
use crate::shards::{Rooms, Scan, allocate, slices, total};

/// Places of terminal orders per tier shard, as the release reads them.
pub(crate) struct TierPlaces {
    /// The event.
    pub event: Uuid,
    /// The tiered zone.
    pub zone: String,
    /// The tier (0 is the first).
    pub tier: i32,
    /// The shard of the tier the places count in.
    pub shard: i32,
    /// How many places.
    pub n: i64,
}

/// Price tiers on a database: its statements, and the steps of the purchase, the release and
/// the late payment over them.
pub(crate) trait PriceTiers: Dialect
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Uuid: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> i32: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
{
    /// Binds: event, zone, tier. The tier's shards (`shards`) and the places they have left by
    /// committed data (`room`), read without locking.
    const TIER_ROOM: &'static str;
    /// Binds: event, zone, tier, first shard, end shard (exclusive), how many rows. Shards with
    /// room in that range (`shard`, `room`), skipping rows other transactions hold.
    const TAKE_FREE_TIER_SHARDS: &'static str;
    /// Binds: event, zone, tier. Every shard of the tier (`shard`, `room`), waiting for the
    /// ones other transactions hold: the definite answer.
    const LOCK_ALL_TIER_SHARDS: &'static str;
    /// Binds: event, zone, tier, shard, capacity. Creates the shard at 0 if it is missing (a
    /// concurrent first purchase may create it too).
    const CREATE_TIER_SHARD: &'static str;
    /// Binds: n, event, zone, tier, shard, n. Matches no row when the shard would pass its
    /// slice.
    const RAISE_TIER_SHARD: &'static str;
    /// Binds: n, event, zone, tier, shard.
    const LOWER_TIER_SHARD: &'static str;
    /// Binds: tier, shard, ticket. The tier and shard a ticket counts in.
    const SET_TICKET_TIER: &'static str;
    /// Binds: order. The order's tickets that count in a tier (`id`, `zone_code`,
    /// `price_tier`), by zone, tier and id.
    const SELECT_TICKET_TIERS: &'static str;
    /// Binds: event. Per tiered zone and tier that was ever sold (`zone_code`, `tier`), its
    /// active tickets (`active`).
    const SELECT_TIER_SALES: &'static str;

    /// The places per tier shard of those of the orders `ids` that count in a tier, in key
    /// order (event, zone, tier, shard).
    fn tier_places(
        conn: &mut Self::Connection,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<Vec<TierPlaces>, Self::Error>> + Send;

    /// The purchase's step: prices `new`'s tickets in its tiered zones, each at the price of
    /// the first tier of its zone with a place left (in seat order, then ticket id), counting
    /// the places; tickets past the last tier keep their price. Returns the priced order and,
    /// for each ticket counted in a tier, its id, tier and shard (to note on the ticket rows).
    async fn take_tier_places(
        conn: &mut Self::Connection,
        new: &NewOrder,
    ) -> Result<(Order, Vec<(Uuid, i32, i32)>), Self::Error> {
        let mut order = new.order.clone();
        let mut noted = Vec::new();
        let start = order.id.as_uuid().as_u128() as u32;
        let event = order.event_id;
        for claim in &new.price_tiers {
            let mut tickets = order.zone_tickets_mut(&claim.zone).into_iter();
            let mut left = tickets.len() as u32;
            for (tier, (size, price)) in claim.tiers.iter().enumerate() {
                if left == 0 {
                    break;
                }
                let tier = tier as i32;
                let taken =
                    Self::take_in_tier(conn, event, &claim.zone, tier, *size, left, start).await?;
                for (shard, count) in taken {
                    for ticket in tickets.by_ref().take(count as usize) {
                        ticket.price = *price;
                        noted.push((ticket.id.as_uuid(), tier, i32::from(shard)));
                    }
                    left -= count;
                }
            }
        }
        let order = Order::from_tickets(order.tickets)?
            .ok_or_else(|| Error::internal("a priced order without tickets"))?;
        Ok((order, noted))
    }

    /// Up to `want` places of tier `tier` of `zone` (of `size` places), for this transaction:
    /// the count taken per shard, nothing when the tier is full. The shards raised stay locked
    /// until the transaction ends.
    async fn take_in_tier(
        conn: &mut Self::Connection,
        event: EventId,
        zone: &ZoneCode,
        tier: i32,
        size: u32,
        want: u32,
        start: u32,
    ) -> Result<BTreeMap<u16, u32>, Self::Error> {
        let room = sqlx::query(Self::TIER_ROOM)
            .bind(event.as_uuid())
            .bind(zone.as_str())
            .bind(tier)
            .fetch_one(&mut *conn)
            .await?;
        let (shards, left): (i64, i64) = (room.try_get("shards")?, room.try_get("room")?);
        if shards == 0 {
            for (shard, slice) in slices(size).into_iter().enumerate() {
                sqlx::query(Self::CREATE_TIER_SHARD)
                    .bind(event.as_uuid())
                    .bind(zone.as_str())
                    .bind(tier)
                    .bind(shard as i32)
                    .bind(i64::from(slice))
                    .execute(&mut *conn)
                    .await?;
            }
        } else if left <= 0 {
            // Full by committed data: the places only come back by a release that commits
            // later, and the next buyer gets them (a tier full now is passed over without
            // locking its shards, so a sold-out early-bird wave is no hot spot).
            return Ok(BTreeMap::new());
        }
        let mut rooms = Self::free_tier_shards(conn, event, zone, tier, want, start).await?;
        if total(&rooms) < want {
            rooms = Self::tier_rooms(
                sqlx::query(Self::LOCK_ALL_TIER_SHARDS)
                    .bind(event.as_uuid())
                    .bind(zone.as_str())
                    .bind(tier)
                    .fetch_all(&mut *conn)
                    .await?,
            )?;
        }
        let plan = allocate(&rooms, want.min(total(&rooms)));
        for (&shard, &count) in &plan {
            let raised = sqlx::query(Self::RAISE_TIER_SHARD)
                .bind(i64::from(count))
                .bind(event.as_uuid())
                .bind(zone.as_str())
                .bind(tier)
                .bind(i32::from(shard))
                .bind(i64::from(count))
                .execute(&mut *conn)
                .await?;
            if Self::rows_affected(&raised) != 1 {
                return Err(Error::internal(format!(
                    "zone {zone} tier {tier} shard {shard}: no room though it was locked with room"
                ))
                .into());
            }
        }
        Ok(plan)
    }

    /// Unlocked shards of the tier with room, scanned from `start` until they hold `want` places
    /// or none is left ([`Scan`]).
    async fn free_tier_shards(
        conn: &mut Self::Connection,
        event: EventId,
        zone: &ZoneCode,
        tier: i32,
        want: u32,
        start: u32,
    ) -> Result<Rooms, Self::Error> {
        let mut scan = Scan::new(start, want);
        while let Some((from, end, rows)) = scan.next_read() {
            let found = sqlx::query(Self::TAKE_FREE_TIER_SHARDS)
                .bind(event.as_uuid())
                .bind(zone.as_str())
                .bind(tier)
                .bind(from as i32)
                .bind(end as i32)
                .bind(i64::from(rows))
                .fetch_all(&mut *conn)
                .await?;
            scan.found(Self::tier_rooms(found)?);
        }
        Ok(scan.rooms())
    }

    /// The shards with room among `rows` (`shard`, `room`).
    fn tier_rooms(rows: Vec<Self::Row>) -> Result<Rooms, Self::Error> {
        let mut rooms = Rooms::new();
        for row in rows {
            let shard: i32 = row.try_get("shard")?;
            let room: i64 = row.try_get("room")?;
            if room > 0 {
                let shard = u16::try_from(shard)
                    .map_err(|_| Error::internal(format!("tier shard {shard} out of range")))?;
                rooms.insert(shard, u32::try_from(room).unwrap_or(u32::MAX));
            }
        }
        Ok(rooms)
    }

    /// Notes on each ticket row the tier and shard it counts in, so the release lowers them.
    async fn note_ticket_tiers(
        conn: &mut Self::Connection,
        noted: &[(Uuid, i32, i32)],
    ) -> Result<(), Self::Error> {
        for (ticket, tier, shard) in noted {
            sqlx::query(Self::SET_TICKET_TIER)
                .bind(*tier)
                .bind(*shard)
                .bind(*ticket)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// The release's step: gives back the tier places of those of `orders` (just turned
    /// terminal) that count in a tier, shard by shard in key order, the same in every
    /// transaction, so releases do not deadlock each other.
    async fn give_back_tiers(
        conn: &mut Self::Connection,
        orders: &[Order],
    ) -> Result<(), Self::Error> {
        let ids: Vec<Uuid> = orders.iter().map(|o| o.id.as_uuid()).collect();
        for places in Self::tier_places(conn, &ids).await? {
            let lowered = sqlx::query(Self::LOWER_TIER_SHARD)
                .bind(places.n)
                .bind(places.event)
                .bind(places.zone.as_str())
                .bind(places.tier)
                .bind(places.shard)
                .execute(&mut *conn)
                .await?;
            if Self::rows_affected(&lowered) != 1 {
                return Err(Error::internal(format!(
                    "no usage row for zone {} tier {} shard {}",
                    places.zone, places.tier, places.shard
                ))
                .into());
            }
        }
        Ok(())
    }

    /// A late payment's step: the expired `order`'s tickets take their places back, each in
    /// the tier it was priced in (any shard of it), or `SoldOut` when a tier has too few left
    /// (the payment is then a refund due, as when its seats are gone).
    async fn retake_tiers(conn: &mut Self::Connection, order: &Order) -> Result<(), Self::Error> {
        let rows = sqlx::query(Self::SELECT_TICKET_TIERS)
            .bind(order.id.as_uuid())
            .fetch_all(&mut *conn)
            .await?;
        let mut wanted: BTreeMap<(String, i32), Vec<Uuid>> = BTreeMap::new();
        for row in &rows {
            wanted
                .entry((row.try_get("zone_code")?, row.try_get("price_tier")?))
                .or_default()
                .push(row.try_get("id")?);
        }
        let start = order.id.as_uuid().as_u128() as u32;
        for ((zone, tier), tickets) in wanted {
            let zone = stored(ZoneCode::new(zone))?;
            let want = tickets.len() as u32;
            // The tier's shards exist: this order was counted in them.
            let taken =
                Self::take_in_tier(conn, order.event_id, &zone, tier, 0, want, start).await?;
            if total(&taken) < want {
                return Err(Error::SoldOut {
                    zone,
                    requested: want,
                }
                .into());
            }
            let mut tickets = tickets.into_iter();
            let mut noted = Vec::new();
            for (shard, count) in taken {
                for ticket in tickets.by_ref().take(count as usize) {
                    noted.push((ticket, tier, i32::from(shard)));
                }
            }
            Self::note_ticket_tiers(conn, &noted).await?;
        }
        Ok(())
    }

    /// Active tickets per tier of `event`'s tiered zones, for every tier ever sold: (zone,
    /// tier, active).
    async fn tier_sales(
        pool: &Pool<Self>,
        event: EventId,
    ) -> Result<Vec<(ZoneCode, u16, u32)>, Self::Error> {
        let rows = sqlx::query(Self::SELECT_TIER_SALES)
            .bind(event.as_uuid())
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|row| {
                let zone: String = row.try_get("zone_code")?;
                let tier: i32 = row.try_get("tier")?;
                let active: i64 = row.try_get("active")?;
                Ok((
                    stored(ZoneCode::new(zone))?,
                    u16::try_from(tier).map_err(|_| Error::internal("tier out of range"))?,
                    u32::try_from(active).map_err(|_| Error::internal("count out of range"))?,
                ))
            })
            .collect()
    }

    /// A [`TierPlaces`] from a row of `tier_places`' statement (`event_id`, `zone_code`,
    /// `price_tier`, `tier_shard`, `n`).
    fn tier_place(row: &Self::Row) -> Result<TierPlaces, Self::Error> {
        Ok(TierPlaces {
            event: row.try_get("event_id")?,
            zone: row.try_get("zone_code")?,
            tier: row.try_get("price_tier")?,
            shard: row.try_get("tier_shard")?,
            n: row.try_get("n")?,
        })
    }
}
