//! The purchase of N seats or N general-admission places, as DESIGN.md "Purchase" describes it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::domain::{
    CustomerId, EventId, IdempotencyKey, SeatRef, Voucher, VoucherCode, ZoneCode, ZoneKind,
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
}

/// A purchase checked against its event: what to hold and what to charge.
pub(crate) struct CheckedPurchase {
    pub items: Vec<HoldItem>,
    /// One entry per ticket: its zone and seat (`None` for general admission).
    pub places: Vec<(ZoneCode, Option<SeatRef>)>,
    pub general_admission: Option<(ZoneCode, u32)>,
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
            let open = !event.is_hidden(zone) || voucher.is_some_and(|v| v.opens(zone));
            event
                .price(zone)
                .filter(|_| open)
                .map(|_| ())
                .ok_or_else(|| {
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
                Ok(CheckedPurchase {
                    items: sorted.iter().cloned().map(HoldItem::Seat).collect(),
                    places: sorted
                        .into_iter()
                        .map(|s| (s.zone.clone(), Some(s)))
                        .collect(),
                    general_admission: None,
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
        }
        // Appended only when present, so the fingerprints of purchases without a voucher (and
        // the idempotency records stored with them) stay what they were.
        if let Some(code) = &self.voucher {
            text.push_str(&format!("|voucher|{code}"));
        }
        let digest = Sha256::digest(text.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}
