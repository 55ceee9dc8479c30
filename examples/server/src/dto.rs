//! The wire types: the server's own serde structs, mapped to and from core's commands and
//! results. Core types never carry HTTP concerns; these carry nothing else.
//!
//! Requests reject unknown fields. Field names are camelCase. Each request's `to_core` checks
//! everything the OpenAPI document states about it ([`crate::contract`]), so that a service is
//! only ever called with a request the schema allows.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use ticketing_core::Error;
use ticketing_core::domain::{
    Currency, CustomerId, Event, EventId, EventSpec, MAX_HOLD_TIME, MAX_PER_CUSTOMER_LIMIT,
    MAX_PRICE_TIERS, MAX_ZONE_CAPACITY, MIN_HOLD_TIME, Money, Order, Payment, PriceTier, RowLabel,
    SeatRef, Ticket, TicketStatus, Venue, VenueId, VenueLimits, Zone, ZoneCode, ZoneKind,
};
use ticketing_core::service::{
    BestAvailable, GeneralAvailability, PurchaseRequest, RowRange, SeatMap, SeatRange, Selection,
    TierStanding,
};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::contract::{self, MAX_TICKETS_PER_ORDER, check_name, check_range, malformed, parse};
use crate::error::{ApiError, ApiResult};

/// Deserializes a UUID only in the hyphenated form `format: uuid` describes.
fn hyphenated<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
    let text = Cow::<str>::deserialize(deserializer)?;
    contract::hyphenated_uuid(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a hyphenated UUID")))
}

/// Deserializes an integer field. JSON Schema's `integer` is any number without a fractional
/// part, so `7.0` and `7e0` are integers as much as `7` (serde's own integer types refuse them).
pub(crate) fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    use serde::de::Error as _;
    let number = serde_json::Number::deserialize(deserializer)?;
    let value = if let Some(n) = number.as_u64() {
        i128::from(n)
    } else if let Some(n) = number.as_i64() {
        i128::from(n)
    } else {
        match number.as_f64() {
            // Beyond ±2^64 no target type holds it; the bound keeps the cast exact.
            Some(f) if f.fract() == 0.0 && f.abs() < 18_446_744_073_709_551_616.0 => f as i128,
            _ => return Err(D::Error::custom(format!("{number} is not an integer"))),
        }
    };
    T::try_from(value).map_err(|_| D::Error::custom(format!("{number} is out of range")))
}

/// An optional field that, when present, must be a value: `null` is not a string (the schema
/// does not allow it), while serde's `Option` would take it for absent.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// [`whole`] for an optional field.
pub(crate) fn whole_opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    #[derive(Deserialize)]
    struct Whole<T: TryFrom<i128>>(#[serde(deserialize_with = "whole")] T);
    Ok(Option::<Whole<T>>::deserialize(deserializer)?.map(|Whole(value)| value))
}

/// An object schema that allows no other properties (the requests deny unknown fields).
pub(crate) fn closed(object: ObjectBuilder) -> ObjectBuilder {
    object.additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
}

/// One numbered seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeatDto {
    /// Zone code, e.g. `STALLS`.
    #[schema(schema_with = contract::zone_code)]
    pub zone: String,
    /// Row label, e.g. `A`.
    #[schema(schema_with = contract::row_label)]
    pub row: String,
    /// Seat number in the row, from 1.
    #[schema(schema_with = contract::seat_number)]
    #[serde(deserialize_with = "whole")]
    pub number: u32,
}

impl From<&SeatRef> for SeatDto {
    fn from(seat: &SeatRef) -> Self {
        Self {
            zone: seat.zone.to_string(),
            row: seat.row.to_string(),
            number: seat.number,
        }
    }
}

impl SeatDto {
    /// The core seat reference (checks zone, row and number).
    pub fn to_core(&self) -> ApiResult<SeatRef> {
        SeatRef::new(parse(&self.zone)?, parse(&self.row)?, self.number).map_err(malformed)
    }

    /// The core seats of a request's list, in its order: 1 to `max` of them, each once.
    pub fn distinct(seats: &[SeatDto], max: i64) -> ApiResult<Vec<SeatRef>> {
        check_range("seats", seats.len() as i64, 1, max)?;
        let seats = seats
            .iter()
            .map(SeatDto::to_core)
            .collect::<ApiResult<Vec<_>>>()?;
        let mut unique = seats.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != seats.len() {
            return Err(malformed(Error::invalid("seats", "a seat appears twice")));
        }
        Ok(seats)
    }
}

/// An amount in minor units (cents) with its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoneyDto {
    /// Minor units, e.g. `4500` for EUR 45.00.
    #[schema(schema_with = contract::price_minor)]
    #[serde(deserialize_with = "whole")]
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
    #[schema(schema_with = contract::currency)]
    pub currency: String,
}

impl From<Money> for MoneyDto {
    fn from(money: Money) -> Self {
        Self {
            amount_minor: money.minor,
            currency: money.currency.to_string(),
        }
    }
}

/// General-admission places to buy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeneralAdmissionDto {
    /// The general-admission zone.
    #[schema(schema_with = contract::zone_code)]
    pub zone: String,
    /// How many places.
    #[schema(schema_with = contract::quantity)]
    #[serde(deserialize_with = "whole")]
    pub quantity: u32,
}

/// Rows `first` to `last` of a zone, both included, in the zone's row order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RowRangeDto {
    /// The first row of the range.
    #[schema(schema_with = contract::row_label)]
    pub first: String,
    /// The last row of the range (not before `first` in the zone).
    #[schema(schema_with = contract::row_label)]
    pub last: String,
}

/// Best available: `quantity` seats side by side in one row of a seated zone, chosen by the
/// server so that no single seat is left alone when a choice without one exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BestAvailableDto {
    /// The seated zone.
    #[schema(schema_with = contract::zone_code)]
    pub zone: String,
    /// How many seats.
    #[schema(schema_with = contract::quantity)]
    #[serde(deserialize_with = "whole")]
    pub quantity: u32,
    /// Only these rows of the zone (all rows when absent).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub rows: Option<RowRangeDto>,
    /// The most one seat may cost; a dearer zone is refused (422).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub max_price: Option<MoneyDto>,
}

impl BestAvailableDto {
    /// The core selection.
    fn to_core(&self, max: i64) -> ApiResult<Selection> {
        check_range("quantity", self.quantity.into(), 1, max)?;
        let rows = match &self.rows {
            Some(range) => Some(RowRange {
                first: parse(&range.first)?,
                last: parse(&range.last)?,
            }),
            None => None,
        };
        let max_price = match &self.max_price {
            Some(price) => {
                check_range("maxPrice", price.amount_minor, 0, i64::MAX)?;
                let currency = Currency::new(&price.currency).map_err(malformed)?;
                Some(Money::new(price.amount_minor, currency))
            }
            None => None,
        };
        Ok(Selection::BestAvailable(BestAvailable {
            zone: Some(parse(&self.zone)?),
            quantity: self.quantity,
            rows,
            max_price,
        }))
    }
}

/// `POST /api/tickets`: buy seats, or places in a general-admission zone (exactly one of the two;
/// the schema is a `oneOf`). The buyer is the customer of the bearer token, never a body field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PurchaseRequestDto {
    /// The event.
    #[serde(deserialize_with = "hyphenated")]
    pub event_id: Uuid,
    /// Numbered seats, all or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<Vec<SeatDto>>,
    /// Or general-admission places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub general_admission: Option<GeneralAdmissionDto>,
    /// A voucher code of the event: a discount on every ticket, or access to a hidden zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voucher: Option<String>,
    /// Or the best seats side by side in a seated zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_available: Option<BestAvailableDto>,
    /// The sales channel the buyer belongs to, with its key: its kept seats are for sale to
    /// this purchase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<crate::routes::channels::ChannelAccessDto>,
}

impl PurchaseRequestDto {
    /// The core purchase for `customer` (the token's), with the `Idempotency-Key` header's value
    /// if any.
    pub fn to_core(
        &self,
        customer: CustomerId,
        idempotency_key: Option<&str>,
    ) -> ApiResult<PurchaseRequest> {
        let max = i64::from(MAX_TICKETS_PER_ORDER);
        let selection = match (&self.seats, &self.general_admission, &self.best_available) {
            (Some(seats), None, None) => Selection::Seats(SeatDto::distinct(seats, max)?),
            (None, Some(ga), None) => {
                check_range("quantity", ga.quantity.into(), 1, max)?;
                Selection::General {
                    zone: parse(&ga.zone)?,
                    quantity: ga.quantity,
                }
            }
            (None, None, Some(best)) => best.to_core(max)?,
            _ => {
                return Err(malformed(Error::invalid(
                    "selection",
                    "give exactly one of seats, generalAdmission or bestAvailable",
                )));
            }
        };
        Ok(PurchaseRequest {
            event: EventId::from_uuid(self.event_id),
            customer,
            selection,
            idempotency_key: idempotency_key.map(parse).transpose()?,
            voucher: self.voucher.as_deref().map(parse).transpose()?,
            channel: self
                .channel
                .as_ref()
                .map(crate::routes::channels::ChannelAccessDto::to_core)
                .transpose()?,
        })
    }
}

impl PartialSchema for PurchaseRequestDto {
    /// `oneOf` a seats purchase and a general-admission purchase, each closed to other
    /// properties, so a body with both or neither selection matches no branch.
    fn schema() -> RefOr<Schema> {
        let branch = |title: &str, field: &str, selection: RefOr<Schema>| {
            closed(ObjectBuilder::new())
                .title(Some(title))
                .property("eventId", contract::uuid())
                .required("eventId")
                .property(field, selection)
                .required(field)
                .property("voucher", contract::voucher_code())
                .property(
                    "channel",
                    Ref::from_schema_name(crate::routes::channels::ChannelAccessDto::name()),
                )
                .build()
        };
        let seats = ArrayBuilder::new()
            .items(Ref::from_schema_name(SeatDto::name()))
            .min_items(Some(1))
            .max_items(Some(MAX_TICKETS_PER_ORDER as usize))
            .unique_items(true)
            .description(Some("Numbered seats, all or none; each at most once."))
            .build();
        let schema = OneOfBuilder::new()
            .description(Some(
                "Seats, general-admission places or the best seats side by side of one event, \
                 for the customer of the bearer token: exactly one of `seats`, \
                 `generalAdmission` and `bestAvailable`.",
            ))
            .item(branch("SeatsPurchase", "seats", seats.into()))
            .item(branch(
                "GeneralAdmissionPurchase",
                "generalAdmission",
                Ref::from_schema_name(GeneralAdmissionDto::name()).into(),
            ))
            .item(branch(
                "BestAvailablePurchase",
                "bestAvailable",
                Ref::from_schema_name(BestAvailableDto::name()).into(),
            ))
            .build();
        RefOr::T(Schema::OneOf(schema))
    }
}

impl ToSchema for PurchaseRequestDto {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((SeatDto::name().into(), SeatDto::schema()));
        schemas.push((
            GeneralAdmissionDto::name().into(),
            GeneralAdmissionDto::schema(),
        ));
        schemas.push((BestAvailableDto::name().into(), BestAvailableDto::schema()));
        schemas.push((RowRangeDto::name().into(), RowRangeDto::schema()));
        schemas.push((MoneyDto::name().into(), MoneyDto::schema()));
    }
}

/// A ticket's life-cycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatusDto {
    /// Seat reserved, waiting for payment until `expiresAt`.
    PendingPayment,
    /// Paid.
    Paid,
    /// Not paid in time.
    Expired,
    /// Cancelled before payment.
    Cancelled,
    /// Refunded after payment.
    Refunded,
}

impl From<TicketStatus> for TicketStatusDto {
    fn from(status: TicketStatus) -> Self {
        match status {
            TicketStatus::PendingPayment => Self::PendingPayment,
            TicketStatus::Paid => Self::Paid,
            TicketStatus::Expired => Self::Expired,
            TicketStatus::Cancelled => Self::Cancelled,
            TicketStatus::Refunded => Self::Refunded,
        }
    }
}

/// Ticket info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketDto {
    /// The ticket id (UUID v7).
    pub id: Uuid,
    /// The order it belongs to.
    pub order_id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// The venue.
    pub venue_id: Uuid,
    /// The zone.
    pub zone: String,
    /// The seat; absent for general admission.
    pub seat: Option<SeatDto>,
    /// The buyer.
    pub customer_id: String,
    /// The price paid or to pay.
    pub price: MoneyDto,
    /// Where the ticket is in its life.
    pub status: TicketStatusDto,
    /// When the ticket was created.
    pub created_on: DateTime<Utc>,
    /// Payment deadline.
    pub expires_at: DateTime<Utc>,
    /// When the payment was confirmed.
    pub paid_at: Option<DateTime<Utc>>,
    /// The payment provider's reference.
    pub payment_reference: Option<String>,
}

impl From<&Ticket> for TicketDto {
    fn from(t: &Ticket) -> Self {
        Self {
            id: t.id.as_uuid(),
            order_id: t.order_id.as_uuid(),
            event_id: t.event_id.as_uuid(),
            venue_id: t.venue_id.as_uuid(),
            zone: t.zone.to_string(),
            seat: t.seat.as_ref().map(SeatDto::from),
            customer_id: t.customer.to_string(),
            price: t.price.into(),
            status: t.status.into(),
            created_on: t.created_on,
            expires_at: t.expires_at,
            paid_at: t.paid_at,
            payment_reference: t.payment_ref.as_ref().map(ToString::to_string),
        }
    }
}

/// An order: the tickets of one purchase, which share a status and a payment deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDto {
    /// The order id.
    pub id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// The venue.
    pub venue_id: Uuid,
    /// The buyer.
    pub customer_id: String,
    /// The status of all its tickets.
    pub status: TicketStatusDto,
    /// Payment deadline.
    pub expires_at: DateTime<Utc>,
    /// Sum of the ticket prices.
    pub total: MoneyDto,
    /// The tickets.
    pub tickets: Vec<TicketDto>,
}

/// The answer of a hold extension: the order with its new payment deadline, and how many
/// extensions it has had and has left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtendedHoldDto {
    /// The new payment deadline (also the order's `expiresAt`).
    pub expires_at: DateTime<Utc>,
    /// Extensions of the order so far, this one included.
    pub extensions: u32,
    /// Extensions the server's policy still allows; its total cap may end them sooner.
    pub extensions_left: u32,
    /// The order.
    pub order: OrderDto,
}

impl From<&ticketing_core::service::ExtendedHold> for ExtendedHoldDto {
    fn from(e: &ticketing_core::service::ExtendedHold) -> Self {
        Self {
            expires_at: e.order.expires_at,
            extensions: e.extensions,
            extensions_left: e.extensions_left,
            order: OrderDto::from(&e.order),
        }
    }
}

impl From<&Order> for OrderDto {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id.as_uuid(),
            event_id: o.event_id.as_uuid(),
            venue_id: o.venue_id.as_uuid(),
            customer_id: o.customer.to_string(),
            status: o.status.into(),
            expires_at: o.expires_at,
            total: o.total.into(),
            tickets: o.tickets.iter().map(TicketDto::from).collect(),
        }
    }
}

/// Paid tickets of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SoldCountDto {
    /// The event.
    pub event_id: Uuid,
    /// How many tickets are PAID.
    pub sold_count: u64,
}

/// Revenue of an event at a venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevenueDto {
    /// The venue.
    pub venue_id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// Sum of the PAID ticket prices.
    pub revenue: MoneyDto,
}

/// Seats `first..=last` of a row, written `[first, last]`.
pub type SeatRangeDto = [u32; 2];

fn ranges(ranges: &[SeatRange]) -> Vec<SeatRangeDto> {
    ranges.iter().map(|r| [r.first, r.last]).collect()
}

/// One row on the seat map: its free and sold seats as ranges; every other seat is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowMapDto {
    /// Row label.
    pub row: String,
    /// Seats in the row, numbered from 1.
    pub seats: u32,
    /// Free seats: ascending `[first, last]` ranges that neither overlap nor touch.
    #[schema(schema_with = contract::seat_ranges)]
    pub free: Vec<SeatRangeDto>,
    /// Sold seats, in the same form. A seat in neither list is held by an order awaiting payment.
    #[schema(schema_with = contract::seat_ranges)]
    pub sold: Vec<SeatRangeDto>,
}

/// The rows of a seated zone on the seat map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatedZoneMapDto {
    /// Zone code.
    pub zone: String,
    /// Every row of the zone, in layout order.
    pub rows: Vec<RowMapDto>,
}

/// Places of a general-admission zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneralAvailabilityDto {
    /// Zone code.
    pub zone: String,
    /// Places in the zone.
    pub capacity: u32,
    /// Places held or sold.
    pub taken: u32,
    /// Places left.
    pub remaining: u32,
}

impl From<&GeneralAvailability> for GeneralAvailabilityDto {
    fn from(g: &GeneralAvailability) -> Self {
        Self {
            zone: g.zone.to_string(),
            capacity: g.capacity,
            taken: g.taken,
            remaining: g.remaining,
        }
    }
}

/// The seat map of an event (or of one zone of it): free and sold seats as ranges per row,
/// places left per general-admission zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatMapDto {
    /// The event.
    pub event_id: Uuid,
    /// The priced seated zones, in layout order.
    pub seated: Vec<SeatedZoneMapDto>,
    /// The priced general-admission zones.
    pub general_admission: Vec<GeneralAvailabilityDto>,
}

impl From<&SeatMap> for SeatMapDto {
    fn from(map: &SeatMap) -> Self {
        Self {
            event_id: map.event.as_uuid(),
            seated: map
                .seated
                .iter()
                .map(|zone| SeatedZoneMapDto {
                    zone: zone.zone.to_string(),
                    rows: zone
                        .rows
                        .iter()
                        .map(|row| RowMapDto {
                            row: row.row.to_string(),
                            seats: row.seats,
                            free: ranges(&row.free),
                            sold: ranges(&row.sold),
                        })
                        .collect(),
                })
                .collect(),
            general_admission: map.general.iter().map(Into::into).collect(),
        }
    }
}

/// Whether a zone has numbered seats or is general admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ZoneKindDto {
    /// Rows of numbered seats (`rows` required).
    Seated,
    /// A standing area (`capacity` required).
    GeneralAdmission,
}

/// A row of a seated zone: seats `1..=seats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RowDto {
    /// Row label.
    #[schema(schema_with = contract::row_label)]
    pub label: String,
    /// Number of seats.
    #[schema(schema_with = contract::row_seats)]
    #[serde(deserialize_with = "whole")]
    pub seats: u32,
}

/// A zone of a venue: seated with `rows`, or general admission with a `capacity` (the schema is a
/// `oneOf`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneDto {
    /// Zone code, unique in the venue (letters, digits, `_ - . @ +`).
    pub code: String,
    /// Display name.
    pub name: String,
    /// Seated or general admission.
    pub kind: ZoneKindDto,
    /// The rows of a seated zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<RowDto>>,
    /// The capacity of a general-admission zone.
    #[serde(
        default,
        deserialize_with = "whole_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub capacity: Option<u32>,
}

impl ZoneDto {
    /// The core zone, checked against the schema's bounds, which include the server's caps on
    /// rows per zone and seats per row.
    fn to_core(&self, limits: &VenueLimits) -> ApiResult<Zone> {
        let places = i64::from(MAX_ZONE_CAPACITY);
        let code: ZoneCode = parse(&self.code)?;
        check_name("zone.name", &self.name)?;
        let kind = match (self.kind, &self.rows, self.capacity) {
            (ZoneKindDto::Seated, Some(rows), None) => {
                if rows.is_empty() {
                    return Err(malformed(Error::invalid(
                        "rows",
                        format!("seated zone {code} has no rows"),
                    )));
                }
                if rows.len() > limits.max_rows_per_zone as usize {
                    return Err(malformed(Error::invalid(
                        "rows",
                        format!(
                            "zone {code} has {} rows; the cap is {} rows per zone",
                            rows.len(),
                            limits.max_rows_per_zone
                        ),
                    )));
                }
                let row_seats = limits.max_seats_per_row.min(MAX_ZONE_CAPACITY);
                let rows = rows
                    .iter()
                    .map(|r| {
                        if r.seats > row_seats {
                            return Err(malformed(Error::invalid(
                                "rows.seats",
                                format!(
                                    "row {} of zone {code} has {} seats; the cap is {row_seats} \
                                     seats per row",
                                    r.label, r.seats
                                ),
                            )));
                        }
                        check_range("rows.seats", r.seats.into(), 1, places)?;
                        Ok(ticketing_core::domain::Row {
                            label: parse::<RowLabel>(&r.label)?,
                            seats: r.seats,
                        })
                    })
                    .collect::<ApiResult<_>>()?;
                ZoneKind::Seated { rows }
            }
            (ZoneKindDto::GeneralAdmission, None, Some(capacity)) => {
                check_range("capacity", capacity.into(), 1, places)?;
                ZoneKind::GeneralAdmission { capacity }
            }
            (ZoneKindDto::Seated, _, _) => {
                return Err(malformed(Error::invalid(
                    "zones",
                    format!("seated zone {code} needs rows and no capacity"),
                )));
            }
            (ZoneKindDto::GeneralAdmission, _, _) => {
                return Err(malformed(Error::invalid(
                    "zones",
                    format!("general-admission zone {code} needs a capacity and no rows"),
                )));
            }
        };
        Ok(Zone {
            code,
            name: self.name.clone(),
            kind,
        })
    }
}

impl PartialSchema for ZoneDto {
    /// `oneOf` a seated zone (`kind: seated` with `rows`) and a general-admission zone
    /// (`kind: generalAdmission` with `capacity`), each closed to other properties.
    fn schema() -> RefOr<Schema> {
        let branch = |title: &str, kind: &str, field: &str, content: RefOr<Schema>| {
            closed(ObjectBuilder::new())
                .title(Some(title))
                .property("code", contract::zone_code())
                .required("code")
                .property("name", contract::name())
                .required("name")
                .property(
                    "kind",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([kind])),
                )
                .required("kind")
                .property(field, content)
                .required(field)
                .build()
        };
        let rows = ArrayBuilder::new()
            .items(Ref::from_schema_name(RowDto::name()))
            .min_items(Some(1))
            .max_items(Some(VenueLimits::default().max_rows_per_zone as usize))
            .description(Some("The rows; labels are unique in the zone."))
            .build();
        let schema = OneOfBuilder::new()
            .description(Some(
                "A zone of a venue; its code is unique in the venue. Seated zones have rows of \
                 numbered seats, general-admission zones a capacity.",
            ))
            .item(branch("SeatedZone", "seated", "rows", rows.into()))
            .item(branch(
                "GeneralAdmissionZone",
                "generalAdmission",
                "capacity",
                contract::places().into(),
            ))
            .build();
        RefOr::T(Schema::OneOf(schema))
    }
}

impl ToSchema for ZoneDto {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((RowDto::name().into(), RowDto::schema()));
    }
}

impl From<&Zone> for ZoneDto {
    fn from(zone: &Zone) -> Self {
        let (kind, rows, capacity) = match &zone.kind {
            ZoneKind::Seated { rows } => (
                ZoneKindDto::Seated,
                Some(
                    rows.iter()
                        .map(|r| RowDto {
                            label: r.label.to_string(),
                            seats: r.seats,
                        })
                        .collect(),
                ),
                None,
            ),
            ZoneKind::GeneralAdmission { capacity } => {
                (ZoneKindDto::GeneralAdmission, None, Some(*capacity))
            }
        };
        Self {
            code: zone.code.to_string(),
            name: zone.name.clone(),
            kind,
            rows,
            capacity,
        }
    }
}

/// `POST /api/admin/venues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateVenueDto {
    /// Display name.
    #[schema(schema_with = contract::name)]
    pub name: String,
    /// The zones; codes are unique in the venue.
    #[schema(min_items = 1)]
    pub zones: Vec<ZoneDto>,
}

impl CreateVenueDto {
    /// The core zones, after checking the name and the bounds of the schema (rows per zone and
    /// seats per row within `limits`; the seats of the whole venue are the service's check).
    pub fn zones(&self, limits: &VenueLimits) -> ApiResult<Vec<Zone>> {
        check_name("venue.name", &self.name)?;
        if self.zones.is_empty() {
            return Err(malformed(Error::invalid(
                "zones",
                "a venue needs at least one zone",
            )));
        }
        self.zones.iter().map(|z| z.to_core(limits)).collect()
    }
}

/// A venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VenueDto {
    /// The venue id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The zones.
    pub zones: Vec<ZoneDto>,
}

impl From<&Venue> for VenueDto {
    fn from(v: &Venue) -> Self {
        Self {
            id: v.id().as_uuid(),
            name: v.name().to_owned(),
            zones: v.zones().iter().map(ZoneDto::from).collect(),
        }
    }
}

/// The price of one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceDto {
    /// Zone code.
    #[schema(schema_with = contract::zone_code)]
    pub zone: String,
    /// Minor units.
    #[schema(schema_with = contract::price_minor)]
    #[serde(deserialize_with = "whole")]
    pub amount_minor: i64,
    /// ISO 4217 code; one currency for all prices of an event.
    #[schema(schema_with = contract::currency)]
    pub currency: String,
}

impl PriceDto {
    /// The wire form of `zone`'s price `money`.
    pub fn new(zone: &ZoneCode, money: &Money) -> Self {
        Self {
            zone: zone.to_string(),
            amount_minor: money.minor,
            currency: money.currency.to_string(),
        }
    }
}

/// `POST /api/admin/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEventDto {
    /// The venue.
    #[serde(deserialize_with = "hyphenated")]
    pub venue_id: Uuid,
    /// Display name.
    #[schema(schema_with = contract::name)]
    pub name: String,
    /// When the sale opens (inclusive).
    pub sale_opens: DateTime<Utc>,
    /// When the sale closes (exclusive); after `saleOpens`.
    pub sale_closes: DateTime<Utc>,
    /// Prices per zone of the venue, each zone once; zones without a price are not on sale.
    #[schema(min_items = 1)]
    pub prices: Vec<PriceDto>,
    /// The payment window in seconds.
    #[schema(schema_with = contract::hold_time_seconds)]
    #[serde(deserialize_with = "whole")]
    pub hold_time_seconds: u32,
    /// Most active tickets per customer.
    #[schema(schema_with = contract::per_customer_limit)]
    #[serde(deserialize_with = "whole")]
    pub per_customer_limit: u32,
    /// Priced zones sold only with a voucher that opens them, and left off the public seat
    /// map and event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = hidden_zones_schema)]
    pub hidden_zones: Option<Vec<String>>,
    /// Count-based price tiers (early-bird waves) of some priced zones, each zone once: the
    /// first `size` tickets of the zone at the first tier's price, the next at the second's,
    /// and after the last tier at the zone's price. A tier counts active tickets, so a place
    /// of an expired, cancelled or refunded ticket is sold again at its tier's price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = price_tiers_schema)]
    pub price_tiers: Option<Vec<ZoneTiersDto>>,
}

/// Most zones with price tiers an event names.
pub const MAX_TIERED_ZONES: usize = 64;

/// `priceTiers`: up to [`MAX_TIERED_ZONES`] zones' tiers.
fn price_tiers_schema() -> utoipa::openapi::schema::Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name(ZoneTiersDto::name()))
        .max_items(Some(MAX_TIERED_ZONES))
        .build()
}

/// A zone's `tiers`: 1 to [`MAX_PRICE_TIERS`].
fn zone_tiers_schema() -> utoipa::openapi::schema::Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name(PriceTierDto::name()))
        .min_items(Some(1))
        .max_items(Some(MAX_PRICE_TIERS))
        .build()
}

/// The price tiers of one zone, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneTiersDto {
    /// A priced zone of the event.
    #[schema(schema_with = contract::zone_code)]
    pub zone: String,
    /// The tiers, first first.
    #[schema(schema_with = zone_tiers_schema)]
    pub tiers: Vec<PriceTierDto>,
}

/// One price tier: `size` tickets at a price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceTierDto {
    /// How many active tickets the tier holds.
    #[schema(schema_with = contract::places)]
    #[serde(deserialize_with = "whole")]
    pub size: u32,
    /// Minor units.
    #[schema(schema_with = contract::price_minor)]
    #[serde(deserialize_with = "whole")]
    pub amount_minor: i64,
    /// ISO 4217 code: the event's currency.
    #[schema(schema_with = contract::currency)]
    pub currency: String,
}

/// Most hidden zones an event names.
pub const MAX_HIDDEN_ZONES: usize = 64;

/// `hiddenZones`: up to [`MAX_HIDDEN_ZONES`] zone codes.
fn hidden_zones_schema() -> utoipa::openapi::schema::Array {
    ArrayBuilder::new()
        .items(contract::zone_code())
        .max_items(Some(MAX_HIDDEN_ZONES))
        .build()
}

impl CreateEventDto {
    /// The zones to hide, each a zone code (`400` otherwise); whether each is priced is the
    /// service's rule (`422`).
    pub fn hidden_zones(&self) -> ApiResult<Vec<ZoneCode>> {
        let count = self.hidden_zones.as_ref().map_or(0, Vec::len);
        check_range("hidden_zones", count as i64, 0, MAX_HIDDEN_ZONES as i64)?;
        self.hidden_zones
            .iter()
            .flatten()
            .map(|zone| parse::<ZoneCode>(zone))
            .collect()
    }

    /// The price tiers per zone, after checking what the schema states (`400`); the rules
    /// between them and the event (a priced zone, given once, the event's currency) are the
    /// service's (`422`).
    pub fn price_tiers(&self) -> ApiResult<BTreeMap<ZoneCode, Vec<PriceTier>>> {
        let zones = self.price_tiers.as_deref().unwrap_or_default();
        check_range(
            "price_tiers",
            zones.len() as i64,
            0,
            MAX_TIERED_ZONES as i64,
        )?;
        let mut checked = BTreeMap::new();
        for zone in zones {
            check_range(
                "price_tiers",
                zone.tiers.len() as i64,
                1,
                MAX_PRICE_TIERS as i64,
            )?;
            let mut tiers = Vec::with_capacity(zone.tiers.len());
            for t in &zone.tiers {
                check_range("price_tiers", t.size.into(), 1, MAX_ZONE_CAPACITY.into())?;
                check_range("price_tiers", t.amount_minor, 0, i64::MAX)?;
                let currency = Currency::new(&t.currency).map_err(malformed)?;
                tiers.push(PriceTier {
                    size: t.size,
                    price: Money::new(t.amount_minor, currency),
                });
            }
            let code = parse::<ZoneCode>(&zone.zone)?;
            if checked.insert(code.clone(), tiers).is_some() {
                return Err(ApiError::from(Error::invalid(
                    "price_tiers",
                    format!("zone {code} is given tiers twice"),
                )));
            }
        }
        Ok(checked)
    }

    /// The core event spec, after checking what the schema states (`400`). A zone priced twice
    /// is a rule no schema can state: `422`, as a service would answer it.
    pub fn to_core(&self) -> ApiResult<EventSpec> {
        check_name("name", &self.name)?;
        if self.prices.is_empty() {
            return Err(malformed(Error::invalid(
                "prices",
                "at least one zone needs a price",
            )));
        }
        check_range(
            "hold_time",
            self.hold_time_seconds.into(),
            MIN_HOLD_TIME.num_seconds(),
            MAX_HOLD_TIME.num_seconds(),
        )?;
        check_range(
            "per_customer_limit",
            self.per_customer_limit.into(),
            1,
            MAX_PER_CUSTOMER_LIMIT.into(),
        )?;
        let mut checked = Vec::with_capacity(self.prices.len());
        for p in &self.prices {
            check_range("prices", p.amount_minor, 0, i64::MAX)?;
            let currency = Currency::new(&p.currency).map_err(malformed)?;
            checked.push((
                parse::<ZoneCode>(&p.zone)?,
                Money::new(p.amount_minor, currency),
            ));
        }
        let mut prices = BTreeMap::new();
        for (zone, money) in checked {
            if prices.contains_key(&zone) {
                return Err(ApiError::from(Error::invalid(
                    "prices",
                    format!("zone {zone} is priced twice"),
                )));
            }
            prices.insert(zone, money);
        }
        Ok(EventSpec {
            name: self.name.clone(),
            venue_id: VenueId::from_uuid(self.venue_id),
            sale_opens: self.sale_opens,
            sale_closes: self.sale_closes,
            prices,
            hold_time: TimeDelta::seconds(i64::from(self.hold_time_seconds)),
            per_customer_limit: self.per_customer_limit,
        })
    }
}

/// An event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDto {
    /// The event id.
    pub id: Uuid,
    /// The venue.
    pub venue_id: Uuid,
    /// Display name.
    pub name: String,
    /// When the sale opens.
    pub sale_opens: DateTime<Utc>,
    /// When the sale closes.
    pub sale_closes: DateTime<Utc>,
    /// Prices per zone.
    pub prices: Vec<PriceDto>,
    /// The payment window in seconds.
    pub hold_time_seconds: i64,
    /// Most active tickets per customer.
    pub per_customer_limit: u32,
    /// The hidden zones (on the admin's answer only; the public event leaves them and their
    /// prices out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden_zones: Vec<String>,
    /// The price tiers of its zones, in zone and tier order, with the places each has left as
    /// counted when the event was read (the public event leaves out hidden zones' tiers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub price_tiers: Vec<TierStandingDto>,
}

/// A price tier of a zone with the places it has left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierStandingDto {
    /// The zone.
    pub zone: String,
    /// The tier's number in the zone, 1 for the first.
    pub tier: u32,
    /// How many active tickets the tier holds.
    pub size: u32,
    /// The tier's price in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Places left at this price when the event was read.
    pub places_left: u32,
}

impl From<&TierStanding> for TierStandingDto {
    fn from(t: &TierStanding) -> Self {
        Self {
            zone: t.zone.to_string(),
            tier: u32::from(t.index) + 1,
            size: t.tier.size,
            amount_minor: t.tier.price.minor,
            currency: t.tier.price.currency.to_string(),
            places_left: t.places_left(),
        }
    }
}

impl EventDto {
    /// The same event with `tiers` shown, but those of hidden zones when `public`.
    pub fn with_tiers(mut self, event: &Event, tiers: &[TierStanding], public: bool) -> Self {
        self.price_tiers = tiers
            .iter()
            .filter(|t| !(public && event.is_hidden(&t.zone)))
            .map(TierStandingDto::from)
            .collect();
        self
    }

    /// The event as the admin sees it: every price, and the hidden zones named.
    pub fn admin(e: &Event) -> Self {
        Self {
            prices: e
                .prices()
                .iter()
                .map(|(zone, money)| PriceDto::new(zone, money))
                .collect(),
            hidden_zones: e.hidden_zones().iter().map(ToString::to_string).collect(),
            ..Self::from(e)
        }
    }
}

/// The event as the public sees it: hidden zones are left out.
impl From<&Event> for EventDto {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id().as_uuid(),
            venue_id: e.venue_id().as_uuid(),
            name: e.name().to_owned(),
            sale_opens: e.sale_opens(),
            sale_closes: e.sale_closes(),
            prices: e
                .prices()
                .iter()
                .filter(|(zone, _)| !e.is_hidden(zone))
                .map(|(zone, money)| PriceDto::new(zone, money))
                .collect(),
            hold_time_seconds: e.hold_time().num_seconds(),
            per_customer_limit: e.per_customer_limit(),
            hidden_zones: Vec::new(),
            price_tiers: Vec::new(),
        }
    }
}

/// The body of `POST /api/payments/webhook`: the provider confirms that an order was paid.
///
/// Unlike the other request bodies, it accepts (and ignores) fields it does not know: providers
/// add fields to their notifications without notice, and refusing them would stop every payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentWebhookDto {
    /// The provider's unique id of this notification; a replay with the same id has no second
    /// effect and gets the same answer.
    #[schema(schema_with = contract::webhook_id)]
    pub id: String,
    /// The order that was paid.
    #[serde(deserialize_with = "hyphenated")]
    pub order_id: Uuid,
    /// The provider's payment reference (e.g. a payment-intent id). The payments ledger keeps
    /// one entry per reference: its first outcome is final.
    #[schema(schema_with = contract::payment_reference)]
    pub payment_reference: String,
    /// The amount the provider took, in minor units; it must equal the order's total, or the
    /// payment is recorded as a refund due and does not pay the order.
    #[schema(schema_with = contract::price_minor)]
    pub amount_minor: i64,
    /// The ISO 4217 currency of `amountMinor`; it must be the order's.
    #[schema(schema_with = contract::currency)]
    pub currency: String,
}

impl PaymentWebhookDto {
    /// The amount as the domain's money.
    pub fn amount(&self) -> ApiResult<Money> {
        let currency = Currency::new(&self.currency).map_err(malformed)?;
        Ok(Money::new(self.amount_minor, currency))
    }
}

/// One entry of the payments ledger: a payment notification and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDto {
    /// The provider's reference (unique in the ledger).
    #[schema(schema_with = contract::payment_reference)]
    pub reference: String,
    /// The order it named (which may not exist: `UNKNOWN_ORDER`).
    pub order_id: Uuid,
    /// The amount the provider took.
    pub amount: MoneyDto,
    /// When the notification arrived; the deadline is judged by this instant.
    pub received_at: DateTime<Utc>,
    /// `PAID` or `PAID_LATE` (it paid the order), or why not — `AMOUNT_MISMATCH`, `TOO_LATE`,
    /// `NOT_PAYABLE`, `UNKNOWN_ORDER` — in which case the money is owed back.
    pub outcome: String,
    /// Whether the money is owed back.
    pub refund_due: bool,
    /// When the refund was reported sent; absent while it is owed (or none is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_at: Option<DateTime<Utc>>,
}

impl From<&Payment> for PaymentDto {
    fn from(p: &Payment) -> Self {
        Self {
            reference: p.reference.to_string(),
            order_id: p.order.as_uuid(),
            amount: p.amount.into(),
            received_at: p.received_at,
            outcome: p.outcome.as_str().to_owned(),
            refund_due: p.outcome.refund_due(),
            refunded_at: p.refunded_at,
        }
    }
}

/// The answer to a processed payment webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAnswerDto {
    /// The webhook id.
    pub webhook_id: String,
    /// The paid order.
    pub order: OrderDto,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthDto {
    /// `ok`.
    pub status: String,
    /// The ticket repository answered.
    pub repository: String,
    /// The seat lock ran its snapshot path.
    pub seat_lock: String,
}

/// `GET /demo/config`: what the demo page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DemoConfigDto {
    /// The demo event.
    pub event: EventDto,
    /// Its venue.
    pub venue: VenueDto,
}

/// `POST /demo/token`: a customer token for the demo page.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DemoTokenRequestDto {
    /// The demo customer, which must start with `demo-`; absent: a new random one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[schema(schema_with = contract::demo_customer_id)]
    pub customer_id: Option<String>,
}

/// A demo customer's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DemoTokenDto {
    /// The customer the token names.
    pub customer_id: String,
    /// The JWT to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}
