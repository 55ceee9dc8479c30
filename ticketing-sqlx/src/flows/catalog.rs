//! The catalog: venues with zones and seat rows, events with prices, each written in one
//! transaction and read back into the domain's checked types.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::{
    Currency, Discount, Event, EventId, EventSpec, Money, PriceTier, Row as SeatRow, RowLabel,
    Venue, VenueId, Voucher, VoucherCode, VoucherEffect, VoucherSpec, Zone, ZoneCode, ZoneKind,
};
use uuid::Uuid;

use crate::codec::stored;
use crate::dialect::{Dialect, is_foreign_key_violation, is_unique_violation};

/// Zone kinds as stored.
const SEATED: &str = "SEATED";
/// See [`SEATED`].
const GENERAL_ADMISSION: &str = "GENERAL_ADMISSION";

/// Voucher effects as stored.
const AMOUNT: &str = "AMOUNT";
/// See [`AMOUNT`].
const PERCENT: &str = "PERCENT";
/// See [`AMOUNT`].
const ZONE_ACCESS: &str = "ZONE_ACCESS";

/// The catalog on a database: its statements, and the writes and reads of
/// [`CatalogRepository`](ticketing_core::ports::CatalogRepository) over them.
pub(crate) trait Catalog: Dialect
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> &'q String: Encode<'q, Self>,
    for<'q> Uuid: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> DateTime<Utc>: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> Self::Count: Decode<'q, Self>,
    for<'q> Option<Self::Count>: Encode<'q, Self> + Type<Self>,
    for<'q> Option<i64>: Encode<'q, Self> + Decode<'q, Self>,
    for<'q> Option<&'q str>: Encode<'q, Self>,
    for<'q> Option<String>: Decode<'q, Self>,
    for<'q> bool: Decode<'q, Self> + Type<Self>,
    for<'q> i32: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
{
    /// A zone's position in its venue as bound: `u32` on MySQL, `i32` (`integer`) on
    /// PostgreSQL.
    type Position: for<'q> Encode<'q, Self> + Type<Self> + Send;

    /// Binds: venue, name.
    const INSERT_VENUE: &'static str;
    /// Binds: venue, code, position, name, kind, capacity (NULL for a seated zone).
    const INSERT_ZONE: &'static str;
    /// Binds: venue.
    const SELECT_VENUE: &'static str;
    /// Binds: venue. Its zones in position order.
    const SELECT_ZONES: &'static str;
    /// Binds: venue. Its seat rows by zone, in position order.
    const SELECT_SEAT_ROWS: &'static str;
    /// Binds: event, venue, name, sale opens, sale closes, currency, hold time (ms), per-customer
    /// limit.
    const INSERT_EVENT: &'static str;
    /// Binds: event.
    const SELECT_EVENT: &'static str;
    /// Binds: event. Its price per zone, and whether the zone is hidden.
    const SELECT_PRICES: &'static str;
    /// Binds: event, zone. Marks the zone's price row hidden.
    const HIDE_ZONE: &'static str;
    /// Binds: event, zone, tier, size, price. One price tier of a zone.
    const INSERT_PRICE_TIER: &'static str;
    /// Binds: event. Its price tiers (`zone_code`, `size`, `price_minor`), by zone and tier.
    const SELECT_PRICE_TIERS: &'static str;
    /// Binds: event, code, effect, amount (minor), basis points, zone, max uses, max per
    /// customer, valid from, valid until.
    const INSERT_VOUCHER: &'static str;
    /// Binds: event, code. The voucher's columns and its event's `currency`.
    const SELECT_VOUCHER: &'static str;
    /// Binds: event. Its vouchers' columns and the event's `currency`, by code.
    const SELECT_VOUCHERS: &'static str;

    /// A zone's position as bound.
    fn position(position: usize) -> Self::Position;

    /// A stored count (seats of a row, a capacity, a limit) as the domain's `u32`.
    fn stored_count(count: Self::Count) -> Result<u32, Error>;

    /// Inserts the rows of a seated zone, `position` numbering them from 0 in the order given.
    fn insert_seat_rows(
        conn: &mut Self::Connection,
        venue: Uuid,
        zone: &str,
        rows: &[SeatRow],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Inserts an event's price per zone (minor units; the currency is the event's).
    fn insert_prices(
        conn: &mut Self::Connection,
        event: Uuid,
        prices: &BTreeMap<ZoneCode, Money>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// One attempt at
    /// [`events_closed`](ticketing_core::ports::CatalogRepository::events_closed): a keyset
    /// page of the events closed by `closed_by`, by (sale_closes, id).
    fn events_closed(
        pool: &Pool<Self>,
        after: Option<(DateTime<Utc>, EventId)>,
        closed_by: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<EventId>, Self::Error>> + Send;

    /// One attempt at inserting `venue` with its zones and seat rows.
    async fn insert_venue(pool: &Pool<Self>, venue: &Venue) -> Result<(), Self::Error> {
        let mut tx = Self::begin(pool).await?;
        let inserted = sqlx::query(Self::INSERT_VENUE)
            .bind(venue.id().as_uuid())
            .bind(venue.name())
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            return Err(if is_unique_violation(&e) {
                Error::invalid("venue_id", "a venue with this id exists").into()
            } else {
                e.into()
            });
        }
        for (position, zone) in venue.zones().iter().enumerate() {
            let (kind, capacity) = match &zone.kind {
                ZoneKind::Seated { .. } => (SEATED, None),
                ZoneKind::GeneralAdmission { capacity } => {
                    (GENERAL_ADMISSION, Some(Self::count(*capacity)))
                }
            };
            sqlx::query(Self::INSERT_ZONE)
                .bind(venue.id().as_uuid())
                .bind(zone.code.as_str())
                .bind(Self::position(position))
                .bind(&zone.name)
                .bind(kind)
                .bind(capacity)
                .execute(&mut *tx)
                .await?;
            if let ZoneKind::Seated { rows } = &zone.kind {
                Self::insert_seat_rows(&mut tx, venue.id().as_uuid(), zone.code.as_str(), rows)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// One attempt at reading the venue `id` with its zones and seat rows.
    async fn venue(pool: &Pool<Self>, id: VenueId) -> Result<Option<Venue>, Self::Error> {
        let Some(venue) = sqlx::query(Self::SELECT_VENUE)
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await?
        else {
            return Ok(None);
        };
        let name: String = venue.try_get("name")?;
        let zone_rows = sqlx::query(Self::SELECT_ZONES)
            .bind(id.as_uuid())
            .fetch_all(pool)
            .await?;
        let seat_rows = sqlx::query(Self::SELECT_SEAT_ROWS)
            .bind(id.as_uuid())
            .fetch_all(pool)
            .await?;

        let mut rows_by_zone: HashMap<String, Vec<SeatRow>> = HashMap::new();
        for row in &seat_rows {
            let zone: String = row.try_get("zone_code")?;
            let label: String = row.try_get("label")?;
            rows_by_zone.entry(zone).or_default().push(SeatRow {
                label: stored(RowLabel::new(label))?,
                seats: Self::stored_count(row.try_get("seats")?)?,
            });
        }
        let mut zones = Vec::with_capacity(zone_rows.len());
        for row in &zone_rows {
            let code: String = row.try_get("code")?;
            let kind: String = row.try_get("kind")?;
            let capacity: Option<Self::Count> = row.try_get("capacity")?;
            let capacity = capacity.map(Self::stored_count).transpose()?;
            let kind = match (kind.as_str(), capacity) {
                (GENERAL_ADMISSION, Some(capacity)) => ZoneKind::GeneralAdmission { capacity },
                (SEATED, None) => ZoneKind::Seated {
                    rows: rows_by_zone.remove(&code).unwrap_or_default(),
                },
                (kind, _) => {
                    return Err(
                        Error::internal(format!("zone {code} has unknown kind {kind}")).into(),
                    );
                }
            };
            zones.push(Zone {
                code: stored(ZoneCode::new(code))?,
                name: row.try_get("name")?,
                kind,
            });
        }
        Ok(Some(stored(Venue::new(id, name, zones))?))
    }

    /// One attempt at inserting `event` with its prices.
    async fn insert_event(pool: &Pool<Self>, event: &Event) -> Result<(), Self::Error> {
        let mut tx = Self::begin(pool).await?;
        let inserted = sqlx::query(Self::INSERT_EVENT)
            .bind(event.id().as_uuid())
            .bind(event.venue_id().as_uuid())
            .bind(event.name())
            .bind(event.sale_opens())
            .bind(event.sale_closes())
            .bind(event.currency().as_str())
            .bind(event.hold_time().num_milliseconds())
            .bind(Self::count(event.per_customer_limit()))
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            return Err(if is_unique_violation(&e) {
                Error::invalid("event_id", "an event with this id exists").into()
            } else if is_foreign_key_violation(&e) {
                Error::not_found("venue", event.venue_id()).into()
            } else {
                e.into()
            });
        }
        Self::insert_prices(&mut tx, event.id().as_uuid(), event.prices()).await?;
        for zone in event.hidden_zones() {
            sqlx::query(Self::HIDE_ZONE)
                .bind(event.id().as_uuid())
                .bind(zone.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for (zone, tiers) in event.price_tiers() {
            for (tier, t) in tiers.iter().enumerate() {
                sqlx::query(Self::INSERT_PRICE_TIER)
                    .bind(event.id().as_uuid())
                    .bind(zone.as_str())
                    .bind(tier as i32)
                    .bind(i64::from(t.size))
                    .bind(t.price.minor)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// One attempt at inserting `voucher` (its event must exist; its code must be new).
    async fn insert_voucher(pool: &Pool<Self>, voucher: &Voucher) -> Result<(), Self::Error> {
        let (effect, amount, basis_points, zone) = match voucher.effect() {
            VoucherEffect::Discount(Discount::Amount(amount)) => {
                (AMOUNT, Some(amount.minor), None, None)
            }
            VoucherEffect::Discount(Discount::Percent { basis_points }) => {
                (PERCENT, None, Some(Self::count(*basis_points)), None)
            }
            VoucherEffect::ZoneAccess(zone) => (ZONE_ACCESS, None, None, Some(zone.as_str())),
        };
        let inserted = sqlx::query(Self::INSERT_VOUCHER)
            .bind(voucher.event().as_uuid())
            .bind(voucher.code().as_str())
            .bind(effect)
            .bind(amount)
            .bind(basis_points)
            .bind(zone)
            .bind(Self::count(voucher.max_uses()))
            .bind(Self::count(voucher.max_per_customer()))
            .bind(voucher.valid_from())
            .bind(voucher.valid_until())
            .execute(pool)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(Error::invalid("code", "the event has a voucher with this code").into())
            }
            Err(e) if is_foreign_key_violation(&e) => {
                Err(Error::not_found("event", voucher.event()).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One attempt at reading the voucher `code` of `event`.
    async fn voucher(
        pool: &Pool<Self>,
        event: EventId,
        code: &VoucherCode,
    ) -> Result<Option<Voucher>, Self::Error> {
        let row = sqlx::query(Self::SELECT_VOUCHER)
            .bind(event.as_uuid())
            .bind(code.as_str())
            .fetch_optional(pool)
            .await?;
        row.map(|row| Self::voucher_of(event, &row)).transpose()
    }

    /// One attempt at reading every voucher of `event`, by code.
    async fn vouchers(pool: &Pool<Self>, event: EventId) -> Result<Vec<Voucher>, Self::Error> {
        let rows = sqlx::query(Self::SELECT_VOUCHERS)
            .bind(event.as_uuid())
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|row| Self::voucher_of(event, row))
            .collect()
    }

    /// A stored voucher of `event` from its row.
    fn voucher_of(event: EventId, row: &Self::Row) -> Result<Voucher, Self::Error> {
        let currency: String = row.try_get("currency")?;
        let currency = stored(Currency::new(&currency))?;
        let effect: String = row.try_get("effect")?;
        let amount: Option<i64> = row.try_get("amount_minor")?;
        let basis_points: Option<Self::Count> = row.try_get("basis_points")?;
        let zone: Option<String> = row.try_get("zone_code")?;
        let effect = match (effect.as_str(), amount, basis_points, zone) {
            (AMOUNT, Some(minor), _, _) => {
                VoucherEffect::Discount(Discount::Amount(Money::new(minor, currency)))
            }
            (PERCENT, _, Some(bp), _) => VoucherEffect::Discount(Discount::Percent {
                basis_points: Self::stored_count(bp)?,
            }),
            (ZONE_ACCESS, _, _, Some(zone)) => {
                VoucherEffect::ZoneAccess(stored(ZoneCode::new(zone))?)
            }
            (effect, ..) => {
                return Err(Error::internal(format!("a voucher with effect {effect}")).into());
            }
        };
        let code: String = row.try_get("code")?;
        let spec = VoucherSpec {
            code: stored(VoucherCode::new(code))?,
            effect,
            max_uses: Self::stored_count(row.try_get("max_uses")?)?,
            max_per_customer: Self::stored_count(row.try_get("max_per_customer")?)?,
            valid_from: row.try_get::<DateTime<Utc>, _>("valid_from")?,
            valid_until: row.try_get::<DateTime<Utc>, _>("valid_until")?,
        };
        Ok(stored(Voucher::restore(event, spec))?)
    }

    /// One attempt at reading the event `id` with its prices (and its venue, which the event
    /// is checked against).
    async fn event(pool: &Pool<Self>, id: EventId) -> Result<Option<Event>, Self::Error> {
        let Some(row) = sqlx::query(Self::SELECT_EVENT)
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await?
        else {
            return Ok(None);
        };
        let venue_id = VenueId::from_uuid(row.try_get::<Uuid, _>("venue_id")?);
        let Some(venue) = Self::venue(pool, venue_id).await? else {
            return Err(
                Error::internal(format!("event {id} refers to missing venue {venue_id}")).into(),
            );
        };
        let currency: String = row.try_get("currency")?;
        let currency = stored(Currency::new(&currency))?;
        let mut prices = BTreeMap::new();
        let mut hidden = Vec::new();
        for price in sqlx::query(Self::SELECT_PRICES)
            .bind(id.as_uuid())
            .fetch_all(pool)
            .await?
        {
            let zone = stored(ZoneCode::new(price.try_get::<String, _>("zone_code")?))?;
            if price.try_get::<bool, _>("hidden")? {
                hidden.push(zone.clone());
            }
            prices.insert(zone, Money::new(price.try_get("price_minor")?, currency));
        }
        let spec = EventSpec {
            name: row.try_get("name")?,
            venue_id,
            sale_opens: row.try_get::<DateTime<Utc>, _>("sale_opens")?,
            sale_closes: row.try_get::<DateTime<Utc>, _>("sale_closes")?,
            prices,
            hold_time: TimeDelta::milliseconds(row.try_get("hold_time_ms")?),
            per_customer_limit: Self::stored_count(row.try_get("per_customer_limit")?)?,
        };
        let mut tiers: BTreeMap<ZoneCode, Vec<PriceTier>> = BTreeMap::new();
        for tier in sqlx::query(Self::SELECT_PRICE_TIERS)
            .bind(id.as_uuid())
            .fetch_all(pool)
            .await?
        {
            let zone = stored(ZoneCode::new(tier.try_get::<String, _>("zone_code")?))?;
            let size = u32::try_from(tier.try_get::<i64, _>("size")?).map_err(|_| {
                Error::internal(format!("event {id}: a tier's size is out of range"))
            })?;
            tiers.entry(zone).or_default().push(PriceTier {
                size,
                price: Money::new(tier.try_get("price_minor")?, currency),
            });
        }
        let event = stored(
            Event::new(id, spec, &venue)
                .and_then(|e| e.with_hidden_zones(hidden))
                .and_then(|e| e.with_price_tiers(tiers)),
        )?;
        Ok(Some(event))
    }
}
