//! The purchase of N seats or N general-admission places, as DESIGN.md "Purchase" describes it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::domain::{
    ChannelAccess, CustomerId, Event, EventId, IdempotencyKey, Money, Row, RowLabel, SeatRef,
    Voucher, VoucherCode, ZoneCode, ZoneKind,
};
use crate::ports::HoldItem;
use crate::{Error, Result};

use super::catalog::EventInfo;

/// What the buyer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These numbered seats, all or none.
    Seats(Vec<SeatRef>),
    /// `quantity` places in a general-admission zone.
    General {
        /// The zone.
        zone: ZoneCode,
        /// How many places.
        quantity: u32,
    },
    /// `quantity` seats side by side in one row, chosen by the seat lock (DESIGN.md, "Best
    /// available").
    BestAvailable(BestAvailable),
}

/// A best-available request: how many seats, and where they may be.
///
/// Name a seated `zone`, or leave it out and give `max_price`: the service then tries the event's
/// seated zones priced at most that, dearest first (price stands for quality; equal prices in
/// venue order), and holds in the first with a block. With a zone, `max_price` is a check: a zone
/// dearer than it is refused. A row range needs a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestAvailable {
    /// The seated zone, or `None` to choose by `max_price`.
    pub zone: Option<ZoneCode>,
    /// How many seats, at least 1 and at most the per-customer limit.
    pub quantity: u32,
    /// Only these rows of the zone.
    pub rows: Option<RowRange>,
    /// The most one seat may cost, in the event's currency.
    pub max_price: Option<Money>,
}

/// Rows `first` to `last` of a zone, both included, in the zone's row order (best first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRange {
    /// The first row of the range.
    pub first: RowLabel,
    /// The last row of the range; not before `first`.
    pub last: RowLabel,
}

/// A best-available request checked against the event: the zones to try, in order, each with the
/// rows to choose from (best first).
pub(crate) struct BestAvailablePlan {
    pub zones: Vec<(ZoneCode, Vec<Row>)>,
    pub quantity: u32,
}

/// A purchase: the buyer, the event, the selection, and an optional idempotency key that makes the
/// request safe to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRequest {
    /// The event.
    pub event: EventId,
    /// The buyer.
    pub customer: CustomerId,
    /// Seats or general-admission places.
    pub selection: Selection,
    /// Same key + same request → same order; same key + another request → conflict.
    pub idempotency_key: Option<IdempotencyKey>,
    /// A voucher of the event: a discount on every ticket, or access to a hidden zone. The
    /// order uses one of its uses while it is active.
    pub voucher: Option<VoucherCode>,
    /// The sales channel the buyer belongs to, with its key: the seats kept back for it are
    /// for sale to this purchase. A wrong key is
    /// [`Error::ChannelKeyInvalid`](crate::Error::ChannelKeyInvalid).
    pub channel: Option<ChannelAccess>,
}

/// A purchase checked against its event: what to hold and what to charge.
pub(crate) struct CheckedPurchase {
    pub items: Vec<HoldItem>,
    /// One entry per ticket: its zone and seat (`None` for general admission).
    pub places: Vec<(ZoneCode, Option<SeatRef>)>,
    pub general_admission: Option<(ZoneCode, u32)>,
    /// For a best-available request, what to ask the lock; `items` and `places` are empty until
    /// the lock chose ([`CheckedPurchase::seats`]).
    pub best_available: Option<BestAvailablePlan>,
}

impl CheckedPurchase {
    /// A purchase of these seats (distinct, sorted), one ticket each.
    pub(crate) fn seats(sorted: Vec<SeatRef>) -> Self {
        Self {
            items: sorted.iter().cloned().map(HoldItem::Seat).collect(),
            places: sorted
                .into_iter()
                .map(|s| (s.zone.clone(), Some(s)))
                .collect(),
            general_admission: None,
            best_available: None,
        }
    }
}

impl PurchaseRequest {
    /// Checks that the event is on sale at `now`, then the selection ([`PurchaseRequest::check`]).
    pub(crate) fn validate(
        &self,
        info: &EventInfo,
        voucher: Option<&Voucher>,
        now: DateTime<Utc>,
    ) -> Result<CheckedPurchase> {
        let event = &info.event;
        if !event.is_on_sale(now) {
            let reason = if now < event.sale_opens() {
                "the sale has not opened"
            } else {
                "the sale is over"
            };
            return Err(Error::NotOnSale {
                event: self.event,
                reason: reason.into(),
            });
        }
        self.check(info, voucher)
    }

    /// Checks the selection against the venue and prices: seats exist, appear once, are in zones
    /// on sale (a hidden zone only with a `voucher` that opens it); a general-admission zone
    /// exists, is on sale and the quantity is positive; the number of tickets is within the
    /// per-customer limit.
    pub(crate) fn check(
        &self,
        info: &EventInfo,
        voucher: Option<&Voucher>,
    ) -> Result<CheckedPurchase> {
        let event = &info.event;
        let limit = event.per_customer_limit();
        let on_sale = |zone: &ZoneCode| {
            sale_price(event, voucher, zone).map(|_| ()).ok_or_else(|| {
                Error::invalid("zone", format!("zone {zone} is not on sale for this event"))
            })
        };
        match &self.selection {
            Selection::Seats(seats) => {
                if seats.is_empty() {
                    return Err(Error::invalid("seats", "choose at least one seat"));
                }
                if seats.len() > limit as usize {
                    return Err(Error::LimitExceeded { limit });
                }
                let mut seen = HashSet::new();
                let mut sorted = seats.clone();
                sorted.sort();
                for seat in &sorted {
                    if !seen.insert(seat) {
                        return Err(Error::invalid(
                            "seats",
                            format!("seat {seat} appears twice"),
                        ));
                    }
                    if !info.venue.has_seat(seat) {
                        return Err(Error::invalid(
                            "seats",
                            format!("the venue has no seat {seat}"),
                        ));
                    }
                    on_sale(&seat.zone)?;
                }
                Ok(CheckedPurchase::seats(sorted))
            }
            Selection::BestAvailable(wanted) => {
                let plan = wanted.plan(info, voucher)?;
                Ok(CheckedPurchase {
                    items: Vec::new(),
                    places: Vec::new(),
                    general_admission: None,
                    best_available: Some(plan),
                })
            }
            Selection::General { zone, quantity } => {
                let capacity = match info.venue.zone(zone).map(|z| &z.kind) {
                    Some(ZoneKind::GeneralAdmission { capacity }) => *capacity,
                    Some(ZoneKind::Seated { .. }) => {
                        return Err(Error::invalid(
                            "zone",
                            format!("zone {zone} is seated: choose seats"),
                        ));
                    }
                    None => {
                        return Err(Error::invalid(
                            "zone",
                            format!("the venue has no zone {zone}"),
                        ));
                    }
                };
                on_sale(zone)?;
                if *quantity == 0 {
                    return Err(Error::invalid("quantity", "must be at least 1"));
                }
                if *quantity > limit {
                    return Err(Error::LimitExceeded { limit });
                }
                Ok(CheckedPurchase {
                    items: vec![HoldItem::General {
                        zone: zone.clone(),
                        quantity: *quantity,
                        capacity,
                    }],
                    places: (0..*quantity).map(|_| (zone.clone(), None)).collect(),
                    general_admission: Some((zone.clone(), capacity)),
                    best_available: None,
                })
            }
        }
    }

    /// A digest of everything that defines the request except the key, for idempotency checks.
    /// Seat order does not matter.
    pub(crate) fn fingerprint(&self) -> String {
        let mut text = format!("v1|{}|{}|", self.event, self.customer);
        match &self.selection {
            Selection::Seats(seats) => {
                let mut keys: Vec<String> = seats.iter().map(SeatRef::key).collect();
                keys.sort();
                text.push_str("seats|");
                text.push_str(&keys.join(","));
            }
            Selection::General { zone, quantity } => {
                text.push_str(&format!("general|{zone}|{quantity}"));
            }
            // The request, not the seats the lock chose: a retry may be given other seats and
            // must still meet its stored order.
            Selection::BestAvailable(wanted) => {
                let zone = wanted.zone.as_ref().map_or("", ZoneCode::as_str);
                let rows = wanted
                    .rows
                    .as_ref()
                    .map_or(String::new(), |r| format!("{}-{}", r.first, r.last));
                let max = wanted.max_price.map_or(String::new(), |m| m.to_string());
                text.push_str(&format!("best|{zone}|{}|{rows}|{max}", wanted.quantity));
            }
        }
        // Appended only when present, so the fingerprints of purchases without a voucher (and
        // the idempotency records stored with them) stay what they were.
        if let Some(code) = &self.voucher {
            text.push_str(&format!("|voucher|{code}"));
        }
        // The channel's code, not its key: a secret has no place in a stored fingerprint.
        if let Some(access) = &self.channel {
            text.push_str(&format!("|channel|{}", access.code));
        }
        let digest = Sha256::digest(text.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl BestAvailable {
    /// Checks the request against the venue, prices and limit, and lists the zones to try with
    /// their rows (a hidden zone only with a `voucher` that opens it); every refusal is
    /// [`Error::InvalidRequest`] naming the field, except a quantity over the limit
    /// ([`Error::LimitExceeded`]).
    pub(crate) fn plan(
        &self,
        info: &EventInfo,
        voucher: Option<&Voucher>,
    ) -> Result<BestAvailablePlan> {
        let event = &info.event;
        let limit = event.per_customer_limit();
        if self.quantity == 0 {
            return Err(Error::invalid("quantity", "must be at least 1"));
        }
        if self.quantity > limit {
            return Err(Error::LimitExceeded { limit });
        }
        if let Some(max) = self.max_price
            && max.currency != event.currency()
        {
            return Err(Error::invalid(
                "max_price",
                format!("the event is priced in {}", event.currency()),
            ));
        }
        let affordable = |price: Money| self.max_price.is_none_or(|max| price.minor <= max.minor);
        let zones = match (&self.zone, self.max_price) {
            (Some(code), _) => {
                let rows = match info.venue.zone(code).map(|z| &z.kind) {
                    Some(ZoneKind::Seated { rows }) => rows,
                    Some(ZoneKind::GeneralAdmission { .. }) => {
                        return Err(Error::invalid(
                            "zone",
                            format!("zone {code} is general admission: ask for places"),
                        ));
                    }
                    None => {
                        return Err(Error::invalid(
                            "zone",
                            format!("the venue has no zone {code}"),
                        ));
                    }
                };
                let price = sale_price(event, voucher, code).ok_or_else(|| {
                    Error::invalid("zone", format!("zone {code} is not on sale for this event"))
                })?;
                if !affordable(price) {
                    return Err(Error::invalid(
                        "max_price",
                        format!("a seat in zone {code} costs {price}"),
                    ));
                }
                vec![(code.clone(), self.row_range(code, rows)?)]
            }
            (None, Some(max)) => {
                if self.rows.is_some() {
                    return Err(Error::invalid("rows", "a row range needs a zone"));
                }
                let mut zones: Vec<(Money, usize, ZoneCode, Vec<Row>)> = Vec::new();
                for (position, zone) in info.venue.zones().iter().enumerate() {
                    if let (ZoneKind::Seated { rows }, Some(price)) =
                        (&zone.kind, sale_price(event, voucher, &zone.code))
                        && affordable(price)
                    {
                        zones.push((price, position, zone.code.clone(), rows.clone()));
                    }
                }
                if zones.is_empty() {
                    return Err(Error::invalid(
                        "max_price",
                        format!("no seated zone of this event costs {max} or less"),
                    ));
                }
                zones.sort_by(|a, b| b.0.minor.cmp(&a.0.minor).then(a.1.cmp(&b.1)));
                zones
                    .into_iter()
                    .map(|(_, _, code, rows)| (code, rows))
                    .collect()
            }
            (None, None) => {
                return Err(Error::invalid("zone", "name a zone or a maximum price"));
            }
        };
        Ok(BestAvailablePlan {
            zones,
            quantity: self.quantity,
        })
    }

    /// The zone's rows within the requested range (all of them without one).
    fn row_range(&self, zone: &ZoneCode, rows: &[Row]) -> Result<Vec<Row>> {
        let Some(range) = &self.rows else {
            return Ok(rows.to_vec());
        };
        let position = |label: &RowLabel| {
            rows.iter()
                .position(|r| &r.label == label)
                .ok_or_else(|| Error::invalid("rows", format!("zone {zone} has no row {label}")))
        };
        let (first, last) = (position(&range.first)?, position(&range.last)?);
        if first > last {
            return Err(Error::invalid(
                "rows",
                format!(
                    "row {} comes after row {} in zone {zone}",
                    range.first, range.last
                ),
            ));
        }
        Ok(rows[first..=last].to_vec())
    }
}

/// The price of a seat in `zone` when the zone is on sale to this buyer: priced for the event and,
/// when hidden, opened by the buyer's `voucher`; `None` otherwise (the public cannot tell a hidden
/// zone from one that is not sold).
fn sale_price(event: &Event, voucher: Option<&Voucher>, zone: &ZoneCode) -> Option<Money> {
    let open = !event.is_hidden(zone) || voucher.is_some_and(|v| v.opens(zone));
    event.price(zone).filter(|_| open)
}
