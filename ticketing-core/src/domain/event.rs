//! Events: a venue, a sale window, prices per zone, a payment window and a per-customer limit.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::ids::{EventId, VenueId, ZoneCode};
use super::money::{Currency, Money};
use super::price_tier::{PriceTier, check_tiers};
use super::venue::{Venue, check_name};
use crate::Error;

/// Shortest payment window an event may have.
pub const MIN_HOLD_TIME: TimeDelta = TimeDelta::seconds(1);
/// Longest payment window an event may have.
pub const MAX_HOLD_TIME: TimeDelta = TimeDelta::days(1);
/// Largest per-customer ticket limit.
pub const MAX_PER_CUSTOMER_LIMIT: u32 = 100;

/// What a caller supplies to create an event; [`Event::new`] checks it against the venue.
#[derive(Debug, Clone)]
pub struct EventSpec {
    /// Display name.
    pub name: String,
    /// The venue the event takes place at.
    pub venue_id: VenueId,
    /// When the sale opens (inclusive).
    pub sale_opens: DateTime<Utc>,
    /// When the sale closes (exclusive).
    pub sale_closes: DateTime<Utc>,
    /// Price per zone; zones without a price are not on sale. One currency for all.
    pub prices: BTreeMap<ZoneCode, Money>,
    /// How long a buyer has to pay after the purchase: the ticket's payment deadline.
    pub hold_time: TimeDelta,
    /// Most active tickets one customer may have for this event.
    pub per_customer_limit: u32,
}

/// An event on sale at a venue. Built only through [`Event::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    id: EventId,
    name: String,
    venue_id: VenueId,
    sale_opens: DateTime<Utc>,
    sale_closes: DateTime<Utc>,
    prices: BTreeMap<ZoneCode, Money>,
    currency: Currency,
    hold_time: TimeDelta,
    per_customer_limit: u32,
    hidden_zones: BTreeSet<ZoneCode>,
    price_tiers: BTreeMap<ZoneCode, Vec<PriceTier>>,
}

impl Event {
    /// Checks `spec` against `venue`: a non-empty name, a sale window that closes after it opens,
    /// at least one price, prices only for zones of the venue, one currency, no negative price,
    /// a hold time within [`MIN_HOLD_TIME`]..=[`MAX_HOLD_TIME`] and a limit within
    /// 1..=[`MAX_PER_CUSTOMER_LIMIT`].
    pub fn new(id: EventId, spec: EventSpec, venue: &Venue) -> Result<Self, Error> {
        check_name("name", &spec.name)?;
        if spec.venue_id != venue.id() {
            return Err(Error::invalid("venue_id", "does not match the venue"));
        }
        if spec.sale_closes <= spec.sale_opens {
            return Err(Error::invalid("sale_closes", "must be after sale_opens"));
        }
        let Some(currency) = spec.prices.values().next().map(|m| m.currency) else {
            return Err(Error::invalid("prices", "at least one zone needs a price"));
        };
        for (zone, price) in &spec.prices {
            if venue.zone(zone).is_none() {
                return Err(Error::invalid(
                    "prices",
                    format!("venue has no zone {zone}"),
                ));
            }
            if price.minor < 0 {
                return Err(Error::invalid("prices", "a price cannot be negative"));
            }
            if price.currency != currency {
                return Err(Error::invalid("prices", "all prices must use one currency"));
            }
        }
        if spec.hold_time < MIN_HOLD_TIME || spec.hold_time > MAX_HOLD_TIME {
            return Err(Error::invalid(
                "hold_time",
                "must be between 1 second and 1 day",
            ));
        }
        if spec.per_customer_limit == 0 || spec.per_customer_limit > MAX_PER_CUSTOMER_LIMIT {
            return Err(Error::invalid(
                "per_customer_limit",
                format!("must be between 1 and {MAX_PER_CUSTOMER_LIMIT}"),
            ));
        }
        Ok(Self {
            id,
            name: spec.name,
            venue_id: spec.venue_id,
            sale_opens: to_millis(spec.sale_opens),
            sale_closes: to_millis(spec.sale_closes),
            prices: spec.prices,
            currency,
            hold_time: spec.hold_time,
            per_customer_limit: spec.per_customer_limit,
            hidden_zones: BTreeSet::new(),
            price_tiers: BTreeMap::new(),
        })
    }

    /// The same event with `zones` hidden: not shown on the public seat map and sold only to
    /// orders using a voucher that opens them ([`VoucherEffect::ZoneAccess`]). Each must be a
    /// priced zone of the event.
    ///
    /// [`VoucherEffect::ZoneAccess`]: super::VoucherEffect::ZoneAccess
    pub fn with_hidden_zones(
        mut self,
        zones: impl IntoIterator<Item = ZoneCode>,
    ) -> Result<Self, Error> {
        for zone in zones {
            if !self.prices.contains_key(&zone) {
                return Err(Error::invalid(
                    "hidden_zones",
                    format!("zone {zone} has no price for this event"),
                ));
            }
            self.hidden_zones.insert(zone);
        }
        Ok(self)
    }

    /// The same event with count-based price tiers (early-bird waves) for some zones: the first
    /// tickets of each zone sell at its first tier's price, the next at the second's, and after
    /// the last tier at the zone's price. Each zone must be priced, given once, and have
    /// 1..=[`MAX_PRICE_TIERS`](super::MAX_PRICE_TIERS) tiers of size at least 1 in the event's
    /// currency, none dearer than the zone's price; seated and general-admission zones alike.
    pub fn with_price_tiers(
        mut self,
        tiers: impl IntoIterator<Item = (ZoneCode, Vec<PriceTier>)>,
    ) -> Result<Self, Error> {
        for (zone, zone_tiers) in tiers {
            let Some(listed) = self.prices.get(&zone).copied() else {
                return Err(Error::invalid(
                    "price_tiers",
                    format!("zone {zone} has no price for this event"),
                ));
            };
            check_tiers(&zone_tiers, listed)?;
            if self.price_tiers.insert(zone.clone(), zone_tiers).is_some() {
                return Err(Error::invalid(
                    "price_tiers",
                    format!("zone {zone} is given tiers twice"),
                ));
            }
        }
        Ok(self)
    }

    /// The event's id.
    pub fn id(&self) -> EventId {
        self.id
    }
    /// Display name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The venue.
    pub fn venue_id(&self) -> VenueId {
        self.venue_id
    }
    /// When the sale opens (inclusive).
    pub fn sale_opens(&self) -> DateTime<Utc> {
        self.sale_opens
    }
    /// When the sale closes (exclusive).
    pub fn sale_closes(&self) -> DateTime<Utc> {
        self.sale_closes
    }
    /// Prices per zone.
    pub fn prices(&self) -> &BTreeMap<ZoneCode, Money> {
        &self.prices
    }
    /// The price of a zone, if it is on sale.
    pub fn price(&self, zone: &ZoneCode) -> Option<Money> {
        self.prices.get(zone).copied()
    }
    /// The single currency of all prices.
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// The payment window.
    pub fn hold_time(&self) -> TimeDelta {
        self.hold_time
    }
    /// Most active tickets per customer.
    pub fn per_customer_limit(&self) -> u32 {
        self.per_customer_limit
    }
    /// The zones sold only with a voucher that opens them.
    pub fn hidden_zones(&self) -> &BTreeSet<ZoneCode> {
        &self.hidden_zones
    }
    /// Whether `zone` is hidden ([`Event::with_hidden_zones`]).
    pub fn is_hidden(&self, zone: &ZoneCode) -> bool {
        self.hidden_zones.contains(zone)
    }
    /// The price tiers of every tiered zone ([`Event::with_price_tiers`]).
    pub fn price_tiers(&self) -> &BTreeMap<ZoneCode, Vec<PriceTier>> {
        &self.price_tiers
    }
    /// The price tiers of `zone`, in order; empty when the zone has none.
    pub fn tiers_of(&self, zone: &ZoneCode) -> &[PriceTier] {
        self.price_tiers.get(zone).map_or(&[], Vec::as_slice)
    }
    /// Whether tickets can be bought at `now`.
    pub fn is_on_sale(&self, now: DateTime<Utc>) -> bool {
        self.sale_opens <= now && now < self.sale_closes
    }
}

/// Times are kept to the millisecond, the precision every backend stores and the services' clock
/// reads; otherwise a sale opening "now" would not have opened yet for a truncated clock.
fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}
