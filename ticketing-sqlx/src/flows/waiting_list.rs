//! The waiting list in one table, `waiting_list`, written once for both databases.
//!
//! One open entry (`WAITING` or `OFFERED`) per customer and event is a unique key of the
//! database (a generated column on MySQL, a partial index on PostgreSQL), so concurrent joins of
//! one customer add one entry. Every state change is one conditional `UPDATE`; an offer's
//! `UPDATE` and its `WaitingListOffered` outbox row commit together.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use ticketing_core::Error;
use ticketing_core::domain::{
    CustomerId, EventId, Order, OrderId, OutboxEvent, WaitingEntry, WaitingEntryId, WaitingState,
    ZoneCode,
};
use ticketing_core::ports::Joined;
use uuid::Uuid;

use super::outbox::Outbox;
use crate::codec::stored;
use crate::dialect::is_unique_violation;
use ticketing_core::service::settled_state;

/// Joins lost to a concurrent leave of the open entry they met before the join is answered.
const JOIN_ATTEMPTS: u32 = 3;

/// The waiting list on a database: its statements, and the port's calls over them.
pub(crate) trait DatabaseWaitingList: Outbox
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    for<'c> &'c Pool<Self>: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Option<String>: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> Option<Uuid>: Decode<'q, Self> + Type<Self>,
    for<'q> Uuid: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> DateTime<Utc>: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
{
    /// Binds: id, event, customer, zone (NULL for the whole event), party, joined_at. A
    /// `WAITING` entry; a second open entry of the customer violates [`Self::OPEN_KEY`].
    const INSERT: &'static str;
    /// The unique key (index) of one open entry per customer and event.
    const OPEN_KEY: &'static str;
    /// Binds: id. Reads the entry's columns (`id, event_id, customer, zone, party, joined_at,
    /// state, offer_order, offers`; party and offers as signed 64-bit integers).
    const BY_ID: &'static str;
    /// Binds: event, customer. The customer's open entry, read as [`Self::BY_ID`].
    const OPEN_OF: &'static str;
    /// Binds: event, limit. `WAITING` entries in join order (joined_at, id), read as
    /// [`Self::BY_ID`].
    const WAITING: &'static str;
    /// Binds: id. An open entry becomes `LEFT`.
    const LEAVE: &'static str;
    /// Binds: order, id. A `WAITING` entry becomes `OFFERED` with the order, one more offer.
    const OFFER: &'static str;
    /// Binds: outcome, order. The entry `OFFERED` the order becomes the outcome.
    const SETTLE: &'static str;
    /// Binds: order. The entry that was offered the order, read as [`Self::BY_ID`].
    const BY_OFFER: &'static str;

    /// A stored row as an entry.
    fn entry_of(row: &Self::Row) -> Result<WaitingEntry, Self::Error> {
        let zone: Option<String> = row.try_get("zone")?;
        let party: i64 = row.try_get("party")?;
        let offers: i64 = row.try_get("offers")?;
        let state: String = row.try_get("state")?;
        let customer: String = row.try_get("customer")?;
        let offer: Option<Uuid> = row.try_get("offer_order")?;
        Ok(WaitingEntry {
            id: WaitingEntryId::from_uuid(row.try_get("id")?),
            event: EventId::from_uuid(row.try_get("event_id")?),
            customer: stored(CustomerId::new(customer))?,
            zone: zone.map(|z| stored(z.parse::<ZoneCode>())).transpose()?,
            party: stored(u32::try_from(party))?,
            joined_at: row.try_get("joined_at")?,
            state: stored(state.parse::<WaitingState>())?,
            offer: offer.map(OrderId::from_uuid),
            offers: stored(u32::try_from(offers))?,
        })
    }

    /// One entry by a statement binding one id.
    async fn one(
        pool: &Pool<Self>,
        sql: &'static str,
        id: Uuid,
    ) -> Result<Option<WaitingEntry>, Self::Error> {
        let row = sqlx::query(sql).bind(id).fetch_optional(pool).await?;
        row.as_ref().map(Self::entry_of).transpose()
    }

    /// Adds the entry, or answers the customer's open one.
    async fn join(pool: &Pool<Self>, entry: &WaitingEntry) -> Result<Joined, Self::Error> {
        for _ in 0..JOIN_ATTEMPTS {
            let inserted = sqlx::query(Self::INSERT)
                .bind(entry.id.as_uuid())
                .bind(entry.event.as_uuid())
                .bind(entry.customer.as_str())
                .bind(entry.zone.as_ref().map(ToString::to_string))
                .bind(i64::from(entry.party))
                .bind(entry.joined_at)
                .execute(pool)
                .await;
            match inserted {
                Ok(_) => {
                    let added = Self::one(pool, Self::BY_ID, entry.id.as_uuid()).await?;
                    return added
                        .map(Joined::Added)
                        .ok_or_else(|| Error::internal("an added entry was not read back").into());
                }
                Err(e)
                    if is_unique_violation(&e) && Self::violates_unique_key(&e, Self::OPEN_KEY) =>
                {
                    let open = sqlx::query(Self::OPEN_OF)
                        .bind(entry.event.as_uuid())
                        .bind(entry.customer.as_str())
                        .fetch_optional(pool)
                        .await?;
                    if let Some(row) = open {
                        return Ok(Joined::AlreadyOpen(Self::entry_of(&row)?));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::unavailable("waiting list", "the open entry kept changing").into())
    }

    /// An open entry leaves; the entry as it is after.
    async fn leave(
        pool: &Pool<Self>,
        id: WaitingEntryId,
    ) -> Result<Option<WaitingEntry>, Self::Error> {
        sqlx::query(Self::LEAVE)
            .bind(id.as_uuid())
            .execute(pool)
            .await?;
        Self::one(pool, Self::BY_ID, id.as_uuid()).await
    }

    /// `WAITING` entries of the event in join order.
    async fn waiting(
        pool: &Pool<Self>,
        event: EventId,
        limit: u32,
    ) -> Result<Vec<WaitingEntry>, Self::Error> {
        let rows = sqlx::query(Self::WAITING)
            .bind(event.as_uuid())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
        rows.iter().map(Self::entry_of).collect()
    }

    /// The offer and its outbox event, in one transaction; `false` when the entry is not
    /// `WAITING`.
    async fn record_offer(
        pool: &Pool<Self>,
        entry: WaitingEntryId,
        order: &Order,
        at: DateTime<Utc>,
    ) -> Result<bool, Self::Error> {
        let mut tx = Self::begin(pool).await?;
        let done = sqlx::query(Self::OFFER)
            .bind(order.id.as_uuid())
            .bind(entry.as_uuid())
            .execute(&mut *tx)
            .await?;
        if Self::rows_affected(&done) != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let row = sqlx::query(Self::BY_ID)
            .bind(entry.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
        let offered = Self::entry_of(&row)?;
        let event = OutboxEvent::for_offer(order, entry, offered.offers, at);
        Self::append(&mut tx, std::slice::from_ref(&event)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Settles the entry offered `order`.
    async fn settle_offer(
        pool: &Pool<Self>,
        order: OrderId,
        outcome: WaitingState,
    ) -> Result<Option<WaitingEntry>, Self::Error> {
        settled_state(outcome)?;
        let done = sqlx::query(Self::SETTLE)
            .bind(outcome.as_str())
            .bind(order.as_uuid())
            .execute(pool)
            .await?;
        if Self::rows_affected(&done) == 0 {
            return Ok(None);
        }
        Self::one(pool, Self::BY_OFFER, order.as_uuid()).await
    }
}

/// `impl WaitingList for $adapter` over the flow on `$db`, the adapter holding its pool in
/// `pool`; the writes run again after a lost lock race (`$retry`, each database's `with_retry`).
/// One body for `MySqlWaitingList` and `PgWaitingList`.
macro_rules! waiting_list_adapter {
    ($adapter:ty, $db:ty, $retry:path) => {
        #[async_trait::async_trait]
        impl ticketing_core::ports::WaitingList for $adapter {
            async fn join(
                &self,
                entry: &ticketing_core::domain::WaitingEntry,
            ) -> ticketing_core::Result<ticketing_core::ports::Joined> {
                Ok($retry("waiting list join", || {
                    <$db as $crate::flows::waiting_list::DatabaseWaitingList>::join(
                        &self.pool, entry,
                    )
                })
                .await?)
            }

            async fn entry(
                &self,
                id: ticketing_core::domain::WaitingEntryId,
            ) -> ticketing_core::Result<Option<ticketing_core::domain::WaitingEntry>> {
                use $crate::flows::waiting_list::DatabaseWaitingList;
                Ok(<$db>::one(&self.pool, <$db>::BY_ID, id.as_uuid()).await?)
            }

            async fn leave(
                &self,
                id: ticketing_core::domain::WaitingEntryId,
            ) -> ticketing_core::Result<Option<ticketing_core::domain::WaitingEntry>> {
                Ok($retry("waiting list leave", || {
                    <$db as $crate::flows::waiting_list::DatabaseWaitingList>::leave(&self.pool, id)
                })
                .await?)
            }

            async fn waiting(
                &self,
                event: ticketing_core::domain::EventId,
                limit: u32,
            ) -> ticketing_core::Result<Vec<ticketing_core::domain::WaitingEntry>> {
                Ok(
                    <$db as $crate::flows::waiting_list::DatabaseWaitingList>::waiting(
                        &self.pool, event, limit,
                    )
                    .await?,
                )
            }

            async fn record_offer(
                &self,
                entry: ticketing_core::domain::WaitingEntryId,
                order: &ticketing_core::domain::Order,
                at: chrono::DateTime<chrono::Utc>,
            ) -> ticketing_core::Result<bool> {
                Ok($retry("waiting list offer", || {
                    <$db as $crate::flows::waiting_list::DatabaseWaitingList>::record_offer(
                        &self.pool, entry, order, at,
                    )
                })
                .await?)
            }

            async fn settle_offer(
                &self,
                order: ticketing_core::domain::OrderId,
                outcome: ticketing_core::domain::WaitingState,
            ) -> ticketing_core::Result<Option<ticketing_core::domain::WaitingEntry>> {
                Ok($retry("waiting list settle", || {
                    <$db as $crate::flows::waiting_list::DatabaseWaitingList>::settle_offer(
                        &self.pool, order, outcome,
                    )
                })
                .await?)
            }
        }
    };
}

pub(crate) use waiting_list_adapter;
