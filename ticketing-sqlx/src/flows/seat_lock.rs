//! The seat lock in the database alone: seat inventory rows locked with `SELECT … FOR UPDATE`.
//!
//! A hold: in one transaction, the event's marker in share mode, then the zone and seat rows it
//! wants locked in key order, checked against the caller's `now`, and the holds written; all or
//! nothing. A rebuild takes the marker exclusively, replaces the event's rows with the holds
//! from the source and marks it loaded, in one transaction. The statements with a list of
//! variable length differ in shape between the databases (an `IN` list or multi-row `VALUES`
//! built on MySQL, arrays on PostgreSQL), so each database writes those; the rest is here.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type};
use ticketing_core::Error;
use ticketing_core::domain::{EventId, OrderId, SeatRef, Zone, ZoneCode};
use ticketing_core::ports::{
    BestAvailableOutcome, BestAvailableRequest, HoldItem, HoldOutcome, HoldRequest, HoldSource,
    LockSnapshot,
};
use uuid::Uuid;

use crate::codec::stored;
use crate::dialect::Dialect;
use crate::lock_state::{SeatRow, Wanted, ZoneRow, group_page, snapshot_of_rows};
use crate::retry::backoff;

/// How often a hold looks at a busy marker again before answering `NotLoaded`.
const MARKER_BUSY_RETRIES: u32 = 3;

/// How often a hold creates missing seat or zone rows before giving up.
const MAX_ROW_ROUNDS: u32 = 5;

/// How often a rebuild asks for the marker without queueing before it queues for it.
const MARKER_TAKE_TRIES: u32 = 20;

/// The seats of `rows` (`seat_key, order_id, until`) that a best-available choice of `order`
/// must avoid at `now`: sold ones, and live holds of other orders.
fn taken_for_choice<R: Row>(
    rows: &[R],
    order: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<SeatRef>, sqlx::Error>
where
    for<'r> &'r str: ColumnIndex<R>,
    for<'q> Uuid: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> DateTime<Utc>: Decode<'q, R::Database> + Type<R::Database>,
{
    let mut taken = Vec::new();
    for row in rows {
        let holder: Option<Uuid> = row.try_get("order_id")?;
        let until: Option<DateTime<Utc>> = row.try_get("until")?;
        let blocks = match (holder, until) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(holder), Some(until)) => holder != order && until > now,
        };
        if blocks {
            let key: String = row.try_get("seat_key")?;
            if let Ok(seat) = key.parse::<SeatRef>() {
                taken.push(seat);
            }
        }
    }
    Ok(taken)
}

/// The rows one hold locks and writes.
pub(crate) struct Target<'a> {
    /// The event.
    pub(crate) event: Uuid,
    /// The holding order.
    pub(crate) order: Uuid,
    wanted: &'a Wanted,
    /// Zone codes, sorted.
    pub(crate) zones: Vec<&'a str>,
    /// Seat keys, sorted.
    pub(crate) keys: Vec<String>,
}

/// What the event's marker row says.
pub(crate) enum Marker {
    Loaded,
    NotLoaded,
    /// Someone holds the marker exclusively: a rebuild, or a rebuilder that is about to find
    /// the event loaded.
    Busy,
}

/// The seat lock on a database: its statements, and the hold, release, sale, snapshot and
/// rebuild over them.
pub(crate) trait DatabaseSeatLock: Dialect
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    Self::Arguments: IntoArguments<Self>,
    for<'r> &'r str: ColumnIndex<Self::Row>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Uuid: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> i64: Decode<'q, Self> + Type<Self>,
    for<'q> bool: Decode<'q, Self> + Type<Self>,
    for<'q> String: Decode<'q, Self> + Type<Self>,
    for<'q> DateTime<Utc>: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
{
    /// Binds: event. Shared lock on the marker, failing at once while a rebuild holds it.
    const SHARE_MARKER_NOWAIT: &'static str;
    /// Binds: event. Shared lock on the marker, waiting for a rebuild or a wipe to finish.
    const SHARE_MARKER: &'static str;
    /// Binds: event. The marker row, not loaded, unless it exists.
    const ENSURE_MARKER: &'static str;
    /// Binds: event. Exclusive lock on the marker, queueing.
    const LOCK_MARKER: &'static str;
    /// Binds: event. [`DatabaseSeatLock::LOCK_MARKER`] without queueing: fails at once when
    /// the marker is busy.
    const LOCK_MARKER_NOWAIT: &'static str;
    /// Binds: event.
    const SET_LOADED: &'static str;
    /// Binds: event, zone, order, now. Places held or sold by other orders (`taken`).
    const TAKEN_BY_OTHERS: &'static str;
    /// Binds: event, first key of the zone (`zone:`), end of its keys (`zone;`). The zone's
    /// seat rows that have a holder, locked in key order: `seat_key, order_id, until`.
    const LOCK_ZONE_SEATS: &'static str;
    /// Binds: event, zone, now.
    const DROP_LAPSED_ZONE_HOLDS: &'static str;
    /// Binds: event, zone, order, quantity, until. Replaces the order's earlier hold; a sale
    /// stays.
    const HOLD_ZONE: &'static str;
    /// Binds: quantity, event, zone, order. Only the order's own entry turns sold.
    const SELL_ZONE: &'static str;
    /// Binds: event. The event's seats, zone holds, zones and marker, each.
    const FORGET_SEATS: &'static str;
    /// See [`DatabaseSeatLock::FORGET_SEATS`].
    const FORGET_ZONE_HOLDS: &'static str;
    /// See [`DatabaseSeatLock::FORGET_SEATS`].
    const FORGET_ZONES: &'static str;
    /// See [`DatabaseSeatLock::FORGET_SEATS`].
    const FORGET_MARKER: &'static str;
    /// No binds. Every event's state, in the order a hold locks it.
    const FORGET_ALL: [&'static str; 4];

    /// `NOWAIT` found the row locked (MySQL's lock-wait timeout, PostgreSQL's
    /// `lock_not_available`).
    fn is_lock_not_available(e: &sqlx::Error) -> bool;

    /// Locks the rows of these zones (sorted) in code order; how many exist.
    fn lock_zones(
        conn: &mut Self::Connection,
        event: Uuid,
        zones: &[&str],
    ) -> impl Future<Output = Result<usize, sqlx::Error>> + Send;

    /// Locks the rows of these seats (sorted) in key order: `seat_key, order_id, until`.
    fn lock_seats(
        conn: &mut Self::Connection,
        event: Uuid,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;

    /// Creates the missing zone rows (outside the hold's transaction).
    fn create_zones(
        pool: &Pool<Self>,
        event: Uuid,
        zones: &[&str],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Creates the missing seat rows (outside the hold's transaction).
    fn create_seats(
        pool: &Pool<Self>,
        event: Uuid,
        keys: &[String],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// [`DatabaseSeatLock::create_seats`] inside a transaction (a best-available hold creates
    /// the rows of the seats it chose while it holds the zone's row).
    fn insert_seats(
        conn: &mut Self::Connection,
        event: Uuid,
        keys: &[String],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Holds these seats for `order` until `until`; a seat this order bought stays sold.
    fn hold_seats(
        conn: &mut Self::Connection,
        event: Uuid,
        keys: &[String],
        order: Uuid,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Frees these seats. Fenced: only `order`'s seats.
    fn release_seats(
        conn: &mut Self::Connection,
        event: Uuid,
        keys: &[String],
        order: Uuid,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Drops `order`'s holds (or sales) in these zones.
    fn release_zones(
        conn: &mut Self::Connection,
        event: Uuid,
        zones: &[&str],
        order: Uuid,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Sells these seats to `order`, whoever holds them; a free seat stays free (a release
    /// that overtook this mark, e.g. a refund, must win).
    fn sell_seats(
        conn: &mut Self::Connection,
        event: Uuid,
        keys: &[String],
        order: Uuid,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// One consistent read of the event's lock state at `now`, as rows for
    /// [`snapshot_of_rows`].
    fn snapshot_rows(
        pool: &Pool<Self>,
        event: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;

    /// [`DatabaseSeatLock::snapshot_rows`] of one zone: the seats whose key lies in the zone's
    /// key range (`zone:` up to `zone;`) and the zone's holds.
    fn zone_snapshot_rows(
        pool: &Pool<Self>,
        event: Uuid,
        zone: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;

    /// Seat rows restored by a rebuild; a row a concurrent `mark_sold` wrote meanwhile (sold)
    /// is kept.
    fn restore_seats(
        conn: &mut Self::Connection,
        event: Uuid,
        rows: &[SeatRow],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Zone holds restored by a rebuild; an order's row that an earlier page wrote takes these
    /// places too.
    fn restore_zone_holds(
        conn: &mut Self::Connection,
        event: Uuid,
        rows: &[ZoneRow],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// One attempt at `request` (the caller retries it after a deadlock). Inside, it retries on
    /// a busy marker (a few times, then `NotLoaded`, so the caller rebuilds, which waits for
    /// the running rebuild) and on missing rows (created outside the transaction, then locked
    /// again).
    async fn hold_once(
        pool: &Pool<Self>,
        request: &HoldRequest,
    ) -> Result<HoldOutcome, Self::Error> {
        let wanted = Wanted::from_items(&request.items)?;
        let target = Target {
            event: request.event.as_uuid(),
            order: request.order.as_uuid(),
            wanted: &wanted,
            zones: wanted.zone_codes(),
            keys: wanted.seat_keys(),
        };
        let mut rows_created = 0;
        loop {
            let Some(mut tx) = Self::begin_loaded(pool, target.event).await? else {
                return Ok(HoldOutcome::NotLoaded);
            };
            let Some(seat_rows) = Self::lock_rows(&mut tx, &target).await? else {
                tx.rollback().await?;
                // Rows vanish only when the state is forgotten between our creating and
                // locking them; a few rounds settle that (the marker check then says NotLoaded
                // or the rebuilt state keeps the rows).
                rows_created += 1;
                if rows_created > MAX_ROW_ROUNDS {
                    return Err(
                        Error::internal("seat lock rows keep vanishing while holding").into(),
                    );
                }
                Self::create_rows(pool, &target).await?;
                continue;
            };
            if let Some(taken) = Self::taken(&mut tx, &target, &seat_rows, request.now).await? {
                tx.rollback().await?;
                return Ok(taken);
            }
            Self::write_holds(&mut tx, &target, request).await?;
            tx.commit().await?;
            return Ok(HoldOutcome::Held);
        }
    }

    /// One attempt at
    /// [`hold_best_available`](ticketing_core::ports::SeatLock::hold_best_available): in one
    /// transaction, the marker in share mode (as a hold), the zone's row exclusively (so
    /// best-available holds of one zone take turns), the zone's held seat rows locked, the choice
    /// ([`BestAvailableRequest::choose`]), then the chosen seats' rows created, locked and
    /// checked again (a hold of named seats does not take the zone's row, and may have taken one
    /// of them since, on a row the read could not lock because it did not exist yet; the choice
    /// is then made again), and held.
    async fn hold_best_available_once(
        pool: &Pool<Self>,
        request: &BestAvailableRequest,
    ) -> Result<BestAvailableOutcome, Self::Error> {
        let (event, order) = (request.event.as_uuid(), request.order.as_uuid());
        let zone = [request.zone.as_str()];
        let (from, to) = (format!("{}:", request.zone), format!("{};", request.zone));
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > MAX_ROW_ROUNDS {
                return Err(Error::internal(
                    "best-available seats keep being taken between choice and hold",
                )
                .into());
            }
            let Some(mut tx) = Self::begin_loaded(pool, event).await? else {
                return Ok(BestAvailableOutcome::NotLoaded);
            };
            if Self::lock_zones(&mut tx, event, &zone).await? == 0 {
                tx.rollback().await?;
                Self::create_zones(pool, event, &zone).await?;
                continue;
            }
            let rows = sqlx::query(Self::LOCK_ZONE_SEATS)
                .bind(event)
                .bind(from.as_str())
                .bind(to.as_str())
                .fetch_all(&mut *tx)
                .await?;
            let taken = taken_for_choice(&rows, order, request.now)?;
            let Some(seats) = request.choose(taken.iter()) else {
                tx.rollback().await?;
                return Ok(BestAvailableOutcome::NoBlock);
            };
            let keys: Vec<String> = seats.iter().map(SeatRef::key).collect();
            Self::insert_seats(&mut tx, event, &keys).await?;
            let locked = Self::lock_seats(&mut tx, event, &keys).await?;
            if locked.len() < keys.len()
                || !taken_for_choice(&locked, order, request.now)?.is_empty()
            {
                tx.rollback().await?;
                continue;
            }
            Self::hold_seats(&mut tx, event, &keys, order, request.until).await?;
            tx.commit().await?;
            return Ok(BestAvailableOutcome::Held { seats });
        }
    }

    /// A transaction holding the event's marker in share mode; `None` when the event is not
    /// loaded, or a rebuild keeps the marker busy for a few looks (the caller answers
    /// `NotLoaded`, so its caller rebuilds, which waits for the running rebuild).
    async fn begin_loaded(
        pool: &Pool<Self>,
        event: Uuid,
    ) -> Result<Option<Transaction<'static, Self>>, Self::Error> {
        let mut marker_busy = 0;
        loop {
            let mut tx = Self::begin(pool).await?;
            match Self::share_marker(&mut tx, event).await? {
                Marker::Loaded => return Ok(Some(tx)),
                Marker::NotLoaded => return Ok(None),
                Marker::Busy => {
                    // Look again a few times without holding a connection.
                    tx.rollback().await?;
                    marker_busy += 1;
                    if marker_busy > MARKER_BUSY_RETRIES {
                        return Ok(None);
                    }
                    tokio::time::sleep(backoff(marker_busy)).await;
                }
            }
        }
    }

    /// Reads the marker in share mode without waiting: a rebuild holding it exclusively is
    /// [`Marker::Busy`].
    async fn share_marker(conn: &mut Self::Connection, event: Uuid) -> Result<Marker, Self::Error> {
        let marker = sqlx::query(Self::SHARE_MARKER_NOWAIT)
            .bind(event)
            .fetch_optional(conn)
            .await;
        match marker {
            Ok(Some(row)) if row.try_get::<bool, _>("loaded")? => Ok(Marker::Loaded),
            Ok(_) => Ok(Marker::NotLoaded),
            Err(e) if Self::is_lock_not_available(&e) => Ok(Marker::Busy),
            Err(e) => Err(e.into()),
        }
    }

    /// Locks the wanted zone rows, then the seat rows, each in key order; the seat rows, or
    /// `None` when some rows do not exist yet.
    async fn lock_rows(
        conn: &mut Self::Connection,
        target: &Target<'_>,
    ) -> Result<Option<Vec<Self::Row>>, Self::Error> {
        let mut locked_zones = 0;
        if !target.zones.is_empty() {
            locked_zones = Self::lock_zones(&mut *conn, target.event, &target.zones).await?;
        }
        let mut seat_rows = Vec::new();
        if !target.keys.is_empty() {
            seat_rows = Self::lock_seats(&mut *conn, target.event, &target.keys).await?;
        }
        let complete = locked_zones >= target.zones.len() && seat_rows.len() >= target.keys.len();
        Ok(complete.then_some(seat_rows))
    }

    /// Creates missing seat and zone rows, each statement on its own (autocommit), so the
    /// brief locks of the duplicate checks end before the hold's transaction starts.
    async fn create_rows(pool: &Pool<Self>, target: &Target<'_>) -> Result<(), Self::Error> {
        if !target.zones.is_empty() {
            Self::create_zones(pool, target.event, &target.zones).await?;
        }
        if !target.keys.is_empty() {
            Self::create_seats(pool, target.event, &target.keys).await?;
        }
        Ok(())
    }

    /// The seats another order holds or bought at `now`, and the zones without room for the
    /// wanted places; `None` when everything is free for this order.
    async fn taken(
        conn: &mut Self::Connection,
        target: &Target<'_>,
        seat_rows: &[Self::Row],
        now: DateTime<Utc>,
    ) -> Result<Option<HoldOutcome>, Self::Error> {
        let mut seats = Vec::new();
        for row in seat_rows {
            let holder: Option<Uuid> = row.try_get("order_id")?;
            let until: Option<DateTime<Utc>> = row.try_get("until")?;
            let live = holder.is_some() && until.is_none_or(|u| u > now);
            if live && holder != Some(target.order) {
                let key: String = row.try_get("seat_key")?;
                seats.push(stored(key.parse::<SeatRef>())?);
            }
        }
        let mut zones: Vec<ZoneCode> = Vec::new();
        for (zone, (quantity, capacity)) in &target.wanted.zones {
            let taken: i64 = sqlx::query(Self::TAKEN_BY_OTHERS)
                .bind(target.event)
                .bind(zone.as_str())
                .bind(target.order)
                .bind(now)
                .fetch_one(&mut *conn)
                .await?
                .try_get("taken")?;
            if taken + i64::from(*quantity) > i64::from(*capacity) {
                zones.push(zone.clone());
            }
        }
        if seats.is_empty() && zones.is_empty() {
            return Ok(None);
        }
        seats.sort();
        Ok(Some(HoldOutcome::Taken { seats, zones }))
    }

    /// Writes the seat holds, then per zone drops lapsed holds and writes (or replaces) this
    /// order's hold.
    async fn write_holds(
        conn: &mut Self::Connection,
        target: &Target<'_>,
        request: &HoldRequest,
    ) -> Result<(), Self::Error> {
        if !target.keys.is_empty() {
            Self::hold_seats(
                &mut *conn,
                target.event,
                &target.keys,
                target.order,
                request.until,
            )
            .await?;
        }
        for (zone, (quantity, _)) in &target.wanted.zones {
            sqlx::query(Self::DROP_LAPSED_ZONE_HOLDS)
                .bind(target.event)
                .bind(zone.as_str())
                .bind(request.now)
                .execute(&mut *conn)
                .await?;
            sqlx::query(Self::HOLD_ZONE)
                .bind(target.event)
                .bind(zone.as_str())
                .bind(target.order)
                .bind(Self::count(*quantity))
                .bind(request.until)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// One attempt at [`release`](ticketing_core::ports::SeatLock::release).
    async fn release_once(
        pool: &Pool<Self>,
        event: EventId,
        order: OrderId,
        items: &[HoldItem],
    ) -> Result<(), Self::Error> {
        let wanted = Wanted::from_items(items)?;
        let (event, order) = (event.as_uuid(), order.as_uuid());
        let (zones, keys) = (wanted.zone_codes(), wanted.seat_keys());
        let mut tx = Self::begin(pool).await?;
        if !zones.is_empty() {
            Self::release_zones(&mut tx, event, &zones, order).await?;
        }
        if !keys.is_empty() {
            Self::release_seats(&mut tx, event, &keys, order).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One attempt at [`mark_sold`](ticketing_core::ports::SeatLock::mark_sold).
    async fn mark_sold_once(
        pool: &Pool<Self>,
        event: EventId,
        order: OrderId,
        items: &[HoldItem],
    ) -> Result<(), Self::Error> {
        let wanted = Wanted::from_items(items)?;
        let (event, order) = (event.as_uuid(), order.as_uuid());
        let mut tx = Self::begin(pool).await?;
        for (zone, (quantity, _)) in &wanted.zones {
            sqlx::query(Self::SELL_ZONE)
                .bind(Self::count(*quantity))
                .bind(event)
                .bind(zone.as_str())
                .bind(order)
                .execute(&mut *tx)
                .await?;
        }
        let keys = wanted.seat_keys();
        if !keys.is_empty() {
            Self::sell_seats(&mut tx, event, &keys, order).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One attempt at [`snapshot`](ticketing_core::ports::SeatLock::snapshot).
    async fn snapshot_once(
        pool: &Pool<Self>,
        event: EventId,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>, Self::Error> {
        let rows = Self::snapshot_rows(pool, event.as_uuid(), now).await?;
        snapshot_of_rows::<_, Self::Error>(&rows)
    }

    /// One attempt at [`zone_snapshot`](ticketing_core::ports::SeatLock::zone_snapshot).
    async fn zone_snapshot_once(
        pool: &Pool<Self>,
        event: EventId,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Option<LockSnapshot>, Self::Error> {
        let rows = Self::zone_snapshot_rows(pool, event.as_uuid(), zone.code.as_str(), now).await?;
        snapshot_of_rows::<_, Self::Error>(&rows)
    }

    /// One attempt at forgetting the lock state of `event`.
    async fn forget_once(pool: &Pool<Self>, event: EventId) -> Result<(), Self::Error> {
        let mut tx = Self::begin(pool).await?;
        for statement in [
            Self::FORGET_MARKER,
            Self::FORGET_ZONES,
            Self::FORGET_SEATS,
            Self::FORGET_ZONE_HOLDS,
        ] {
            sqlx::query(statement)
                .bind(event.as_uuid())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One attempt at forgetting the lock state of every event.
    async fn forget_all_once(pool: &Pool<Self>) -> Result<(), Self::Error> {
        let mut tx = Self::begin(pool).await?;
        for statement in Self::FORGET_ALL {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Locks the marker of a not-loaded event exclusively and returns the transaction holding
    /// it; `None` when the event is loaded (by whoever we waited for).
    ///
    /// An exclusive lock that is merely *requested* turns every hold away (a hold's `NOWAIT`
    /// share lock conflicts with a waiting exclusive request too), so rebuilders do not queue
    /// for it: they ask with `NOWAIT` and, when the marker is busy, wait with a shared lock for
    /// the running rebuild to finish and look again. Only after [`MARKER_TAKE_TRIES`] busy
    /// answers (a stream of holds keeps sharing it) does a rebuilder queue, so that it cannot
    /// starve.
    async fn take_marker(
        pool: &Pool<Self>,
        id: Uuid,
    ) -> Result<Option<Transaction<'static, Self>>, Self::Error> {
        let mut busy = 0;
        loop {
            // Loaded already: done, without locking the marker exclusively. The shared lock
            // waits for a rebuild or a wipe that holds the marker right now, so we answer
            // after it.
            let mut tx = Self::begin(pool).await?;
            let loaded: Option<bool> = sqlx::query(Self::SHARE_MARKER)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get("loaded"))
                .transpose()?;
            tx.commit().await?;
            if loaded == Some(true) {
                return Ok(None);
            }
            sqlx::query(Self::ENSURE_MARKER)
                .bind(id)
                .execute(pool)
                .await?;
            let queue = busy >= MARKER_TAKE_TRIES;
            let mut tx = Self::begin(pool).await?;
            let locked = sqlx::query(if queue {
                Self::LOCK_MARKER
            } else {
                Self::LOCK_MARKER_NOWAIT
            })
            .bind(id)
            .fetch_one(&mut *tx)
            .await;
            match locked {
                Ok(row) => {
                    if row.try_get::<bool, _>("loaded")? {
                        tx.commit().await?;
                        return Ok(None);
                    }
                    return Ok(Some(tx));
                }
                Err(e) if !queue && Self::is_lock_not_available(&e) => {
                    tx.rollback().await?;
                    busy += 1;
                    tokio::time::sleep(backoff(busy)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One attempt at [`rebuild`](ticketing_core::ports::SeatLock::rebuild), writing in
    /// INSERTs of at most `chunk` rows.
    async fn rebuild_once(
        pool: &Pool<Self>,
        event: EventId,
        source: &dyn HoldSource,
        chunk: usize,
    ) -> Result<(), Self::Error> {
        let id = event.as_uuid();
        let Some(mut tx) = Self::take_marker(pool, id).await? else {
            return Ok(()); // Someone else rebuilt it while we waited.
        };
        // Clear first, read the source second: a sale recorded before this point is in the
        // source; one marked after it waits for our row locks.
        for statement in [Self::FORGET_SEATS, Self::FORGET_ZONE_HOLDS] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        let mut after = None;
        loop {
            let page = source.active_holds(event, after).await?;
            // One page of holds in INSERTs of at most `chunk` rows. A zone hold of an order
            // that an earlier page restored adds its places to it.
            let (seats, zones) = group_page(page.holds);
            for rows in seats.chunks(chunk) {
                Self::restore_seats(&mut tx, id, rows).await?;
            }
            for rows in zones.chunks(chunk) {
                Self::restore_zone_holds(&mut tx, id, rows).await?;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        sqlx::query(Self::SET_LOADED)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
