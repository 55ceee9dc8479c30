//! The catalog on PostgreSQL: venues with zones and seat rows, events with prices.

mod sql;

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{PgPool, Row};
use ticketing_core::domain::{
    Currency, Event, EventId, EventSpec, Money, Row as SeatRow, RowLabel, Venue, VenueId, Zone,
    ZoneCode, ZoneKind,
};
use ticketing_core::ports::CatalogRepository;
use ticketing_core::{Error, Result};
use uuid::Uuid;

use super::error::{StoreResult, is_foreign_key_violation, is_unique_violation, with_retry};
use super::pool::begin;
use crate::codec::stored;

/// The [`CatalogRepository`] on PostgreSQL.
///
/// Venues and events are written once (by an admin) and read on every purchase, so the services
/// cache them; this adapter simply reads and writes the tables of `migrations/postgres/`.
#[derive(Debug, Clone)]
pub struct PgCatalog {
    pool: PgPool,
}

impl PgCatalog {
    /// A catalog on `pool` (migrated with [`super::migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn insert_venue_once(&self, venue: &Venue) -> StoreResult<()> {
        let mut tx = begin(&self.pool).await?;
        let inserted = sqlx::query(sql::INSERT_VENUE)
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
                ZoneKind::Seated { .. } => (sql::SEATED, None),
                ZoneKind::GeneralAdmission { capacity } => {
                    (sql::GENERAL_ADMISSION, Some(i64::from(*capacity)))
                }
            };
            sqlx::query(sql::INSERT_ZONE)
                .bind(venue.id().as_uuid())
                .bind(zone.code.as_str())
                .bind(i32::try_from(position).unwrap_or(i32::MAX))
                .bind(&zone.name)
                .bind(kind)
                .bind(capacity)
                .execute(&mut *tx)
                .await?;
            if let ZoneKind::Seated { rows } = &zone.kind {
                let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
                let seats: Vec<i64> = rows.iter().map(|r| i64::from(r.seats)).collect();
                sqlx::query(sql::INSERT_SEAT_ROWS)
                    .bind(venue.id().as_uuid())
                    .bind(zone.code.as_str())
                    .bind(labels)
                    .bind(seats)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn venue_once(&self, id: VenueId) -> StoreResult<Option<Venue>> {
        let Some(venue) = sqlx::query(sql::SELECT_VENUE)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let name: String = venue.try_get("name")?;
        let zone_rows = sqlx::query(sql::SELECT_ZONES)
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await?;
        let seat_rows = sqlx::query(sql::SELECT_SEAT_ROWS)
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await?;

        let mut rows_by_zone: HashMap<String, Vec<SeatRow>> = HashMap::new();
        for row in &seat_rows {
            let zone: String = row.try_get("zone_code")?;
            let label: String = row.try_get("label")?;
            rows_by_zone.entry(zone).or_default().push(SeatRow {
                label: stored(RowLabel::new(label))?,
                seats: stored(u32::try_from(row.try_get::<i64, _>("seats")?))?,
            });
        }
        let mut zones = Vec::with_capacity(zone_rows.len());
        for row in &zone_rows {
            let code: String = row.try_get("code")?;
            let kind: String = row.try_get("kind")?;
            let capacity: Option<i64> = row.try_get("capacity")?;
            let capacity = capacity.map(|c| stored(u32::try_from(c))).transpose()?;
            let kind = match (kind.as_str(), capacity) {
                (sql::GENERAL_ADMISSION, Some(capacity)) => ZoneKind::GeneralAdmission { capacity },
                (sql::SEATED, None) => ZoneKind::Seated {
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

    async fn insert_event_once(&self, event: &Event) -> StoreResult<()> {
        let mut tx = begin(&self.pool).await?;
        let inserted = sqlx::query(sql::INSERT_EVENT)
            .bind(event.id().as_uuid())
            .bind(event.venue_id().as_uuid())
            .bind(event.name())
            .bind(event.sale_opens())
            .bind(event.sale_closes())
            .bind(event.currency().as_str())
            .bind(event.hold_time().num_milliseconds())
            .bind(i64::from(event.per_customer_limit()))
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
        let (zones, prices): (Vec<&str>, Vec<i64>) = event
            .prices()
            .iter()
            .map(|(zone, price)| (zone.as_str(), price.minor))
            .unzip();
        sqlx::query(sql::INSERT_PRICES)
            .bind(event.id().as_uuid())
            .bind(zones)
            .bind(prices)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn event_once(&self, id: EventId) -> StoreResult<Option<Event>> {
        let Some(row) = sqlx::query(sql::SELECT_EVENT)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let venue_id = VenueId::from_uuid(row.try_get::<Uuid, _>("venue_id")?);
        let Some(venue) = self.venue_once(venue_id).await? else {
            return Err(
                Error::internal(format!("event {id} refers to missing venue {venue_id}")).into(),
            );
        };
        let currency: String = row.try_get("currency")?;
        let currency = stored(Currency::new(&currency))?;
        let mut prices = BTreeMap::new();
        for price in sqlx::query(sql::SELECT_PRICES)
            .bind(id.as_uuid())
            .fetch_all(&self.pool)
            .await?
        {
            let zone: String = price.try_get("zone_code")?;
            prices.insert(
                stored(ZoneCode::new(zone))?,
                Money::new(price.try_get("price_minor")?, currency),
            );
        }
        let spec = EventSpec {
            name: row.try_get("name")?,
            venue_id,
            sale_opens: row.try_get::<DateTime<Utc>, _>("sale_opens")?,
            sale_closes: row.try_get::<DateTime<Utc>, _>("sale_closes")?,
            prices,
            hold_time: TimeDelta::milliseconds(row.try_get("hold_time_ms")?),
            per_customer_limit: stored(u32::try_from(
                row.try_get::<i64, _>("per_customer_limit")?,
            ))?,
        };
        Ok(Some(stored(Event::new(id, spec, &venue))?))
    }
}

#[async_trait]
impl CatalogRepository for PgCatalog {
    async fn insert_venue(&self, venue: &Venue) -> Result<()> {
        Ok(with_retry("insert_venue", || self.insert_venue_once(venue)).await?)
    }

    async fn venue(&self, id: VenueId) -> Result<Option<Venue>> {
        Ok(with_retry("venue", || self.venue_once(id)).await?)
    }

    async fn insert_event(&self, event: &Event) -> Result<()> {
        Ok(with_retry("insert_event", || self.insert_event_once(event)).await?)
    }

    async fn event(&self, id: EventId) -> Result<Option<Event>> {
        Ok(with_retry("event", || self.event_once(id)).await?)
    }

    async fn events_closed(
        &self,
        after: Option<(DateTime<Utc>, EventId)>,
        closed_by: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<EventId>> {
        Ok(with_retry("events_closed", || async {
            let query = match after {
                None => sqlx::query_scalar(sql::SELECT_CLOSED_FIRST).bind(closed_by),
                Some((closes, id)) => sqlx::query_scalar(sql::SELECT_CLOSED_AFTER)
                    .bind(closed_by)
                    .bind(closes)
                    .bind(id.as_uuid()),
            };
            let ids: Vec<Uuid> = query.bind(i64::from(limit)).fetch_all(&self.pool).await?;
            Ok(ids.into_iter().map(EventId::from_uuid).collect())
        })
        .await?)
    }
}
