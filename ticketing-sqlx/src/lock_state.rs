//! What the SQL seat lock decides and reads the same way on both databases: the items of a
//! request (deduplicated, in the key order rows are locked in), a rebuild page grouped into
//! rows, and a snapshot read from its rows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Type};
use ticketing_core::Error;
use ticketing_core::domain::{OrderId, SeatRef, ZoneCode};
use ticketing_core::ports::{ActiveHold, HoldItem, LockSnapshot, SeatState};
use uuid::Uuid;

use crate::codec::{DomainRow, stored};

/// A hold's deadline; `None` for a sale.
pub(crate) type Deadline = Option<DateTime<Utc>>;

/// The items of a request, deduplicated and sorted: the order rows are locked in.
pub(crate) struct Wanted {
    pub(crate) seats: BTreeSet<SeatRef>,
    /// Zone → (quantity, capacity).
    pub(crate) zones: BTreeMap<ZoneCode, (u32, u32)>,
}

impl Wanted {
    /// The zone codes, sorted.
    pub(crate) fn zone_codes(&self) -> Vec<&str> {
        self.zones.keys().map(ZoneCode::as_str).collect()
    }

    /// The seat keys, in seat order.
    pub(crate) fn seat_keys(&self) -> Vec<String> {
        self.seats.iter().map(SeatRef::key).collect()
    }

    pub(crate) fn from_items(items: &[HoldItem]) -> Result<Self, Error> {
        let mut seats = BTreeSet::new();
        let mut zones = BTreeMap::new();
        for item in items {
            match item {
                HoldItem::Seat(seat) => {
                    if !seats.insert(seat.clone()) {
                        return Err(Error::invalid(
                            "seats",
                            format!("seat {seat} appears twice"),
                        ));
                    }
                }
                HoldItem::General {
                    zone,
                    quantity,
                    capacity,
                } => {
                    if zones.insert(zone.clone(), (*quantity, *capacity)).is_some() {
                        return Err(Error::invalid("zone", format!("zone {zone} appears twice")));
                    }
                }
            }
        }
        Ok(Self { seats, zones })
    }
}

/// A seat hold of a rebuild: key, order, deadline (`None` for a sale).
pub(crate) type SeatRow = (String, (Uuid, Deadline));

/// A zone hold of a rebuild: (zone, order), (places, deadline or `None` for a sale).
pub(crate) type ZoneRow = ((String, Uuid), (u32, Deadline));

/// One page of a rebuild's holds as rows: one per seat, one per (zone, order) with the order's
/// places of the page added up (sold if any is, else the latest deadline), each in key order.
pub(crate) fn group_page(holds: Vec<ActiveHold>) -> (Vec<SeatRow>, Vec<ZoneRow>) {
    // Seat key → (order, deadline); (zone, order) → (places, deadline). No deadline = sold.
    let mut seats: BTreeMap<String, (Uuid, Deadline)> = BTreeMap::new();
    let mut zones: BTreeMap<(String, Uuid), (u32, Deadline)> = BTreeMap::new();
    for hold in holds {
        let order = hold.order.as_uuid();
        match hold.item {
            HoldItem::Seat(seat) => {
                seats.insert(seat.key(), (order, hold.until));
            }
            HoldItem::General { zone, quantity, .. } => {
                let entry = zones
                    .entry((zone.as_str().to_owned(), order))
                    .or_insert((0, hold.until));
                entry.0 += quantity;
                // Sold wins over held; otherwise the later deadline.
                entry.1 = match (entry.1, hold.until) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
        }
    }
    (seats.into_iter().collect(), zones.into_iter().collect())
}

/// Reads the rows of a snapshot statement (`part`, `name`, `order_id`, `until`, `quantity`; the
/// marker 'M', held or sold seats 'S', taken places per zone 'Z'): `None` without the marker row.
pub(crate) fn snapshot_of_rows<R, E>(rows: &[R]) -> Result<Option<LockSnapshot>, E>
where
    E: From<sqlx::Error> + From<Error>,
    R: DomainRow,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> Uuid: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut loaded = false;
    let mut snapshot = LockSnapshot::default();
    for row in rows {
        let part: String = row.try_get("part")?;
        let name: Option<String> = row.try_get("name")?;
        match (part.as_str(), name) {
            ("M", _) => loaded = true,
            ("S", Some(key)) => {
                let order: Option<Uuid> = row.try_get("order_id")?;
                let until: Option<DateTime<Utc>> = row.try_get("until")?;
                let Some(order) = order.map(OrderId::from_uuid) else {
                    continue;
                };
                let state = match until {
                    Some(until) => SeatState::Held { order, until },
                    None => SeatState::Sold { order },
                };
                snapshot
                    .seats
                    .insert(stored(key.parse::<SeatRef>())?, state);
            }
            ("Z", Some(zone)) => {
                let taken: i64 = row.try_get("quantity")?;
                let taken =
                    u32::try_from(taken).map_err(|_| Error::internal("zone count out of range"))?;
                snapshot.general.insert(stored(ZoneCode::new(zone))?, taken);
            }
            (part, _) => {
                return Err(Error::internal(format!("unexpected snapshot row {part}")).into());
            }
        }
    }
    Ok(loaded.then_some(snapshot))
}
