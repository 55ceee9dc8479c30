//! Venues, zones and seats.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ids::{RowLabel, VenueId, ZoneCode};
use crate::Error;

/// Largest number of seats in one row and places in one general-admission zone.
pub const MAX_ZONE_CAPACITY: u32 = 1_000_000;

/// Longest display name of a venue, a zone or an event, in characters (what a `VARCHAR(200)`
/// column of MySQL holds).
pub const MAX_NAME_CHARS: usize = 200;

/// Size caps of a venue, checked where venues are created
/// ([`CatalogService::create_venue`](crate::service::CatalogService::create_venue)): a seat map
/// costs time and memory in proportion to the seats it shows, so an unbounded layout would let one
/// event's map slow every sale. The defaults fit a big arena (and the flash-sale bench's largest
/// sale, 200,000 seats in 2,000 rows of 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueLimits {
    /// Most numbered seats in the whole venue (general-admission places are a count and cost
    /// nothing per place; each zone is bounded by [`MAX_ZONE_CAPACITY`]).
    pub max_seats: u32,
    /// Most rows in one seated zone.
    pub max_rows_per_zone: u32,
    /// Most seats in one row (at most [`MAX_ZONE_CAPACITY`]).
    pub max_seats_per_row: u32,
}

impl Default for VenueLimits {
    fn default() -> Self {
        Self {
            max_seats: 200_000,
            max_rows_per_zone: 2_000,
            max_seats_per_row: 1_000,
        }
    }
}

impl VenueLimits {
    /// `Ok` when `venue` keeps within every cap; else [`Error::InvalidRequest`] naming the cap.
    pub fn check(&self, venue: &Venue) -> Result<(), Error> {
        let mut seats: u64 = 0;
        for zone in venue.zones() {
            let ZoneKind::Seated { rows } = &zone.kind else {
                continue;
            };
            if rows.len() > self.max_rows_per_zone as usize {
                return Err(Error::invalid(
                    "rows",
                    format!(
                        "zone {} has {} rows; the cap is {} rows per zone",
                        zone.code,
                        rows.len(),
                        self.max_rows_per_zone
                    ),
                ));
            }
            if let Some(row) = rows.iter().find(|r| r.seats > self.max_seats_per_row) {
                return Err(Error::invalid(
                    "rows.seats",
                    format!(
                        "row {} of zone {} has {} seats; the cap is {} seats per row",
                        row.label, zone.code, row.seats, self.max_seats_per_row
                    ),
                ));
            }
            seats += zone.capacity();
        }
        if seats > u64::from(self.max_seats) {
            return Err(Error::invalid(
                "zones",
                format!(
                    "the venue has {seats} numbered seats; the cap is {} seats per venue",
                    self.max_seats
                ),
            ));
        }
        Ok(())
    }
}

/// One seat: (zone, row label, seat number). Its [`SeatRef::key`] is the seat's identity in storage.
///
/// It is part of the [`OutboxEvent`](super::OutboxEvent) wire format, so it deserialises, but only
/// through [`SeatRef::new`]: a payload with seat number 0 is refused, not let in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "SeatRefFields")]
pub struct SeatRef {
    /// The zone the seat is in.
    pub zone: ZoneCode,
    /// The row within the zone.
    pub row: RowLabel,
    /// The seat number within the row, starting at 1.
    pub number: u32,
}

impl SeatRef {
    /// A seat reference; the number must be at least 1.
    pub fn new(zone: ZoneCode, row: RowLabel, number: u32) -> Result<Self, Error> {
        if number == 0 {
            return Err(Error::invalid("seat", "seat numbers start at 1"));
        }
        Ok(Self { zone, row, number })
    }

    /// The storage key `zone:row:number`. Zone and row never contain `:`, so the key is unambiguous.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.zone, self.row, self.number)
    }
}

/// The serialised fields of a [`SeatRef`], before [`SeatRef::new`] checks them.
#[derive(Deserialize)]
struct SeatRefFields {
    zone: ZoneCode,
    row: RowLabel,
    number: u32,
}

impl TryFrom<SeatRefFields> for SeatRef {
    type Error = Error;

    fn try_from(fields: SeatRefFields) -> Result<Self, Error> {
        SeatRef::new(fields.zone, fields.row, fields.number)
    }
}

impl fmt::Display for SeatRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.zone, self.row, self.number)
    }
}

impl FromStr for SeatRef {
    type Err = Error;

    /// Parses a key such as `STALLS:A:12`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut parts = s.split(':');
        let (Some(zone), Some(row), Some(number), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::invalid("seat", "expected ZONE:ROW:NUMBER"));
        };
        let number = number
            .parse::<u32>()
            .map_err(|_| Error::invalid("seat", "seat number must be a positive integer"))?;
        SeatRef::new(zone.parse()?, row.parse()?, number)
    }
}

/// A row of a seated zone: seats are numbered `1..=seats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The row's label.
    pub label: RowLabel,
    /// How many seats the row has.
    pub seats: u32,
}

/// What kind of zone: rows of numbered seats, or a standing area with a capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneKind {
    /// Rows of numbered seats; every ticket names one seat.
    Seated {
        /// The rows, each with its seat count.
        rows: Vec<Row>,
    },
    /// General admission: tickets name no seat, at most `capacity` are active at once.
    GeneralAdmission {
        /// Places in the zone.
        capacity: u32,
    },
}

/// A zone of a venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The zone's code, unique within the venue.
    pub code: ZoneCode,
    /// A display name.
    pub name: String,
    /// Seated or general admission.
    pub kind: ZoneKind,
}

impl Zone {
    /// Number of places: seats in all rows, or the general-admission capacity.
    pub fn capacity(&self) -> u64 {
        match &self.kind {
            ZoneKind::Seated { rows } => rows.iter().map(|r| u64::from(r.seats)).sum(),
            ZoneKind::GeneralAdmission { capacity } => u64::from(*capacity),
        }
    }

    /// Every seat of a seated zone, row by row; empty for general admission.
    pub fn seats(&self) -> impl Iterator<Item = SeatRef> + '_ {
        let rows: &[Row] = match &self.kind {
            ZoneKind::Seated { rows } => rows,
            ZoneKind::GeneralAdmission { .. } => &[],
        };
        rows.iter().flat_map(move |row| {
            (1..=row.seats).map(move |number| SeatRef {
                zone: self.code.clone(),
                row: row.label.clone(),
                number,
            })
        })
    }
}

/// A venue with its zones. Built only through [`Venue::new`], which rejects inconsistent layouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venue {
    id: VenueId,
    name: String,
    zones: Vec<Zone>,
    /// Seats per row, by zone and row label: every purchase checks its seats here, and scanning
    /// a zone's rows label by label was a tenth of a flash sale's CPU time with 1,000 rows.
    row_seats: HashMap<ZoneCode, HashMap<RowLabel, u32>>,
}

impl Venue {
    /// Checks the layout: a name, at least one zone, unique zone codes and row labels, every row
    /// and general-admission zone holding between 1 and [`MAX_ZONE_CAPACITY`] places.
    pub fn new(id: VenueId, name: impl Into<String>, zones: Vec<Zone>) -> Result<Self, Error> {
        let name = name.into();
        check_name("venue.name", &name)?;
        if zones.is_empty() {
            return Err(Error::invalid("zones", "a venue needs at least one zone"));
        }
        let mut codes = HashSet::new();
        for zone in &zones {
            check_name("zone.name", &zone.name)?;
            if !codes.insert(&zone.code) {
                return Err(Error::invalid(
                    "zones",
                    format!("zone {} appears twice", zone.code),
                ));
            }
            match &zone.kind {
                ZoneKind::Seated { rows } => {
                    if rows.is_empty() {
                        return Err(Error::invalid(
                            "rows",
                            format!("seated zone {} has no rows", zone.code),
                        ));
                    }
                    let mut labels = HashSet::new();
                    for row in rows {
                        if !labels.insert(&row.label) {
                            return Err(Error::invalid(
                                "rows",
                                format!("row {} appears twice in zone {}", row.label, zone.code),
                            ));
                        }
                        check_places("rows.seats", row.seats)?;
                    }
                }
                ZoneKind::GeneralAdmission { capacity } => check_places("capacity", *capacity)?,
            }
        }
        let row_seats = zones
            .iter()
            .map(|zone| {
                let rows = match &zone.kind {
                    ZoneKind::Seated { rows } => {
                        rows.iter().map(|r| (r.label.clone(), r.seats)).collect()
                    }
                    ZoneKind::GeneralAdmission { .. } => HashMap::new(),
                };
                (zone.code.clone(), rows)
            })
            .collect();
        Ok(Self {
            id,
            name,
            zones,
            row_seats,
        })
    }

    /// The venue's id.
    pub fn id(&self) -> VenueId {
        self.id
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zones in the order they were given.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The zone with `code`, if the venue has one.
    pub fn zone(&self, code: &ZoneCode) -> Option<&Zone> {
        self.zones.iter().find(|z| &z.code == code)
    }

    /// Whether the seat exists in this venue (zone is seated, row exists, number within the row).
    pub fn has_seat(&self, seat: &SeatRef) -> bool {
        self.row_seats
            .get(&seat.zone)
            .and_then(|rows| rows.get(&seat.row))
            .is_some_and(|seats| (1..=*seats).contains(&seat.number))
    }
}

/// A display name: at least one character that is not white space, at most [`MAX_NAME_CHARS`]
/// characters.
pub(crate) fn check_name(field: &'static str, name: &str) -> Result<(), Error> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters, not all white space"),
        ));
    }
    Ok(())
}

fn check_places(field: &'static str, n: u32) -> Result<(), Error> {
    if n == 0 || n > MAX_ZONE_CAPACITY {
        return Err(Error::invalid(
            field,
            format!("must be between 1 and {MAX_ZONE_CAPACITY}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn zone(code: &str, kind: ZoneKind) -> Zone {
        Zone {
            code: code.parse().unwrap(),
            name: code.into(),
            kind,
        }
    }

    fn seated(rows: &[(&str, u32)]) -> ZoneKind {
        ZoneKind::Seated {
            rows: rows
                .iter()
                .map(|(l, n)| Row {
                    label: l.parse().unwrap(),
                    seats: *n,
                })
                .collect(),
        }
    }

    #[test]
    fn layout_is_checked() {
        let id = VenueId::from_uuid(Uuid::nil());
        assert!(Venue::new(id, "Hall", vec![]).is_err());
        assert!(Venue::new(id, "Hall", vec![zone("A", seated(&[("1", 0)]))]).is_err());
        assert!(Venue::new(id, "Hall", vec![zone("A", seated(&[("1", 2), ("1", 3)]))]).is_err());
        assert!(
            Venue::new(
                id,
                "Hall",
                vec![zone("A", seated(&[])), zone("B", seated(&[("1", 1)]))]
            )
            .is_err()
        );
        assert!(
            Venue::new(
                id,
                "Hall",
                vec![
                    zone("A", ZoneKind::GeneralAdmission { capacity: 5 }),
                    zone("A", ZoneKind::GeneralAdmission { capacity: 5 })
                ]
            )
            .is_err()
        );
        let v = Venue::new(
            id,
            "Hall",
            vec![
                zone("A", seated(&[("1", 2)])),
                zone("GA", ZoneKind::GeneralAdmission { capacity: 9 }),
            ],
        )
        .unwrap();
        assert!(v.has_seat(&"A:1:2".parse().unwrap()));
        assert!(!v.has_seat(&"A:1:3".parse().unwrap()));
        assert!(!v.has_seat(&"GA:1:1".parse().unwrap()));
        assert!(!v.has_seat(&"A:2:1".parse().unwrap()), "no row 2");
        assert!(!v.has_seat(&"B:1:1".parse().unwrap()), "no zone B");
        assert_eq!(v.zone(&"A".parse().unwrap()).unwrap().seats().count(), 2);
    }

    #[test]
    fn venue_limits_name_the_cap_they_refuse() {
        let id = VenueId::from_uuid(Uuid::nil());
        let limits = VenueLimits {
            max_seats: 10,
            max_rows_per_zone: 2,
            max_seats_per_row: 5,
        };
        let venue = |zones| Venue::new(id, "Hall", zones).unwrap();
        let refused = |venue: &Venue| match limits.check(venue) {
            Err(Error::InvalidRequest { reason, .. }) => reason,
            other => panic!("expected InvalidRequest, got {other:?}"),
        };
        let fits = venue(vec![
            zone("A", seated(&[("1", 5), ("2", 5)])),
            zone("GA", ZoneKind::GeneralAdmission { capacity: 1_000 }),
        ]);
        assert!(
            limits.check(&fits).is_ok(),
            "caps are inclusive; GA places do not count"
        );
        let many_rows = venue(vec![zone("A", seated(&[("1", 1), ("2", 1), ("3", 1)]))]);
        assert!(refused(&many_rows).contains("2 rows per zone"));
        let long_row = venue(vec![zone("A", seated(&[("1", 6)]))]);
        assert!(refused(&long_row).contains("5 seats per row"));
        let many_seats = venue(vec![
            zone("A", seated(&[("1", 5), ("2", 5)])),
            zone("B", seated(&[("1", 1)])),
        ]);
        assert!(refused(&many_seats).contains("11 numbered seats; the cap is 10 seats per venue"));
    }

    #[test]
    fn names_are_counted_in_characters() {
        assert!(check_name("name", &"é".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name("name", &"é".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(check_name("name", " \t\u{3000}").is_err());
        assert!(check_name("name", "\u{1c}").is_ok());
    }

    #[test]
    fn seat_keys_round_trip() {
        let seat: SeatRef = "STALLS:B:12".parse().unwrap();
        assert_eq!(seat.key().parse::<SeatRef>().unwrap(), seat);
        assert!("A:B".parse::<SeatRef>().is_err());
        assert!("A:B:0".parse::<SeatRef>().is_err());
        assert!("A:B:C:1".parse::<SeatRef>().is_err());
    }
}
