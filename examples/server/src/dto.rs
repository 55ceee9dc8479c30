//! The wire types: the server's own serde structs, mapped to and from core's commands and
//! results. Core types never carry HTTP concerns; these carry nothing else.
//!
//! Requests reject unknown fields. Field names are camelCase.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use ticketing_core::domain::{
    Currency, Event, EventId, EventSpec, Money, Order, RowLabel, SeatRef, Ticket, TicketStatus,
    Venue, VenueId, Zone, ZoneCode, ZoneKind,
};
use ticketing_core::service::{
    GeneralAvailability, PurchaseRequest, SeatAvailability, SeatMap, Selection,
};
use ticketing_core::{Error, Result};
use utoipa::ToSchema;
use uuid::Uuid;

/// One numbered seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeatDto {
    /// Zone code, e.g. `STALLS`.
    pub zone: String,
    /// Row label, e.g. `A`.
    pub row: String,
    /// Seat number in the row, from 1.
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
    pub fn to_core(&self) -> Result<SeatRef> {
        SeatRef::new(self.zone.parse()?, self.row.parse()?, self.number)
    }
}

/// An amount in minor units (cents) with its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoneyDto {
    /// Minor units, e.g. `4500` for EUR 45.00.
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
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
    pub zone: String,
    /// How many places.
    pub quantity: u32,
}

/// `POST /api/tickets`: buy seats, or places in a general-admission zone (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PurchaseRequestDto {
    /// The event.
    pub event_id: Uuid,
    /// The buyer as the host identifies them (letters, digits, `_ - . @ +`).
    pub customer_id: String,
    /// Numbered seats, all or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<Vec<SeatDto>>,
    /// Or general-admission places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub general_admission: Option<GeneralAdmissionDto>,
}

impl PurchaseRequestDto {
    /// The core purchase, with the `Idempotency-Key` header's value if any.
    pub fn to_core(&self, idempotency_key: Option<&str>) -> Result<PurchaseRequest> {
        let selection = match (&self.seats, &self.general_admission) {
            (Some(seats), None) => Selection::Seats(
                seats
                    .iter()
                    .map(SeatDto::to_core)
                    .collect::<Result<Vec<_>>>()?,
            ),
            (None, Some(ga)) => Selection::General {
                zone: ga.zone.parse()?,
                quantity: ga.quantity,
            },
            _ => {
                return Err(Error::invalid(
                    "selection",
                    "give exactly one of seats or generalAdmission",
                ));
            }
        };
        Ok(PurchaseRequest {
            event: EventId::from_uuid(self.event_id),
            customer: self.customer_id.parse()?,
            selection,
            idempotency_key: idempotency_key.map(str::parse).transpose()?,
        })
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

/// Availability of a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatStateDto {
    /// Can be bought.
    Free,
    /// Held by an order waiting for payment.
    Held,
    /// Paid.
    Sold,
}

/// One seat on the seat map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatViewDto {
    /// Zone code.
    pub zone: String,
    /// Row label.
    pub row: String,
    /// Seat number.
    pub number: u32,
    /// Availability.
    pub state: SeatStateDto,
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

/// The seat map of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatMapDto {
    /// The event.
    pub event_id: Uuid,
    /// Every seat of the priced seated zones, row by row.
    pub seats: Vec<SeatViewDto>,
    /// Every priced general-admission zone.
    pub general_admission: Vec<GeneralAvailabilityDto>,
}

impl From<&SeatMap> for SeatMapDto {
    fn from(map: &SeatMap) -> Self {
        Self {
            event_id: map.event.as_uuid(),
            seats: map
                .seats
                .iter()
                .map(|view| SeatViewDto {
                    zone: view.seat.zone.to_string(),
                    row: view.seat.row.to_string(),
                    number: view.seat.number,
                    state: match view.state {
                        SeatAvailability::Free => SeatStateDto::Free,
                        SeatAvailability::Held => SeatStateDto::Held,
                        SeatAvailability::Sold => SeatStateDto::Sold,
                    },
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
    pub label: String,
    /// Number of seats.
    pub seats: u32,
}

/// A zone of a venue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
}

impl ZoneDto {
    fn to_core(&self) -> Result<Zone> {
        let kind = match (self.kind, &self.rows, self.capacity) {
            (ZoneKindDto::Seated, Some(rows), None) => ZoneKind::Seated {
                rows: rows
                    .iter()
                    .map(|r| {
                        Ok(ticketing_core::domain::Row {
                            label: r.label.parse::<RowLabel>()?,
                            seats: r.seats,
                        })
                    })
                    .collect::<Result<_>>()?,
            },
            (ZoneKindDto::GeneralAdmission, None, Some(capacity)) => {
                ZoneKind::GeneralAdmission { capacity }
            }
            (ZoneKindDto::Seated, _, _) => {
                return Err(Error::invalid(
                    "zones",
                    format!("seated zone {} needs rows and no capacity", self.code),
                ));
            }
            (ZoneKindDto::GeneralAdmission, _, _) => {
                return Err(Error::invalid(
                    "zones",
                    format!(
                        "general-admission zone {} needs a capacity and no rows",
                        self.code
                    ),
                ));
            }
        };
        Ok(Zone {
            code: self.code.parse()?,
            name: self.name.clone(),
            kind,
        })
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
    pub name: String,
    /// The zones.
    pub zones: Vec<ZoneDto>,
}

impl CreateVenueDto {
    /// The core zones.
    pub fn zones(&self) -> Result<Vec<Zone>> {
        self.zones.iter().map(ZoneDto::to_core).collect()
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
    pub zone: String,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// `POST /api/admin/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEventDto {
    /// The venue.
    pub venue_id: Uuid,
    /// Display name.
    pub name: String,
    /// When the sale opens (inclusive).
    pub sale_opens: DateTime<Utc>,
    /// When the sale closes (exclusive).
    pub sale_closes: DateTime<Utc>,
    /// Prices per zone; zones without a price are not on sale.
    pub prices: Vec<PriceDto>,
    /// The payment window in seconds.
    pub hold_time_seconds: u32,
    /// Most active tickets per customer.
    pub per_customer_limit: u32,
}

impl CreateEventDto {
    /// The core event spec.
    pub fn to_core(&self) -> Result<EventSpec> {
        let mut prices = BTreeMap::new();
        for p in &self.prices {
            let zone: ZoneCode = p.zone.parse()?;
            let money = Money::new(p.amount_minor, Currency::new(&p.currency)?);
            if prices.insert(zone, money).is_some() {
                return Err(Error::invalid(
                    "prices",
                    format!("zone {} is priced twice", p.zone),
                ));
            }
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
}

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
                .map(|(zone, money)| PriceDto {
                    zone: zone.to_string(),
                    amount_minor: money.minor,
                    currency: money.currency.to_string(),
                })
                .collect(),
            hold_time_seconds: e.hold_time().num_seconds(),
            per_customer_limit: e.per_customer_limit(),
        }
    }
}

/// The body of `POST /api/payments/webhook`: the provider confirms that an order was paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentWebhookDto {
    /// The provider's unique id of this notification; a replay with the same id has no second
    /// effect and gets the same answer.
    pub id: String,
    /// The order that was paid.
    pub order_id: Uuid,
    /// The provider's payment reference (e.g. a payment-intent id).
    pub payment_reference: String,
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
