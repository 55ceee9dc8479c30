//! Vouchers and promo codes: a code of an event that lowers the price of an order's tickets or
//! opens a hidden zone to its holder, within a number of uses and a validity window.
//!
//! A voucher is used by an order: one use per order, whatever its number of tickets. The use
//! is counted while the order is active (PENDING_PAYMENT or PAID) and given back when it turns
//! terminal (expired, cancelled, refunded); the repositories keep that count exact in the
//! order's own transactions (docs/DESIGN.md, "Vouchers").

use std::fmt;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::event::Event;
use super::ids::{EventId, VoucherCode, ZoneCode};
use super::money::Money;
use crate::Error;

/// Most uses one voucher may allow in total.
pub const MAX_VOUCHER_USES: u32 = 1_000_000;
/// A percent discount in basis points: 10,000 is the whole price.
pub const FULL_PRICE_BASIS_POINTS: u32 = 10_000;

/// How a voucher lowers the price of each ticket of the order that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discount {
    /// This much off each ticket, never below zero.
    Amount(Money),
    /// This share off each ticket, in basis points (1..=10,000: 0.01 % to 100 %). The discount
    /// is rounded down to the minor unit, so the price is rounded up: the shop never gives more
    /// than the stated share.
    Percent {
        /// The share off, 1,500 for 15 %.
        basis_points: u32,
    },
}

impl Discount {
    /// The price of a ticket listed at `list` after this discount. A discount in another
    /// currency is refused when the voucher is created, so it is not checked here.
    pub fn apply(&self, list: Money) -> Money {
        let off = match self {
            Discount::Amount(amount) => amount.minor.min(list.minor),
            Discount::Percent { basis_points } => {
                // i128: a price up to i64::MAX times 10,000 does not overflow.
                let off = i128::from(list.minor) * i128::from(*basis_points)
                    / i128::from(FULL_PRICE_BASIS_POINTS);
                i64::try_from(off).unwrap_or(list.minor)
            }
        };
        Money::new(list.minor - off.max(0), list.currency)
    }
}

/// What a voucher gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoucherEffect {
    /// A lower price on every ticket of the order.
    Discount(Discount),
    /// The right to buy in this hidden zone of the event ([`Event::is_hidden`]), at its price.
    ZoneAccess(ZoneCode),
}

/// What an admin supplies to create a voucher; [`Voucher::new`] checks it against the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherSpec {
    /// The code buyers type.
    pub code: VoucherCode,
    /// The discount or the zone it opens.
    pub effect: VoucherEffect,
    /// Most orders that may use it at once (active orders: unpaid or paid).
    pub max_uses: u32,
    /// Most active orders of one customer that may use it.
    pub max_per_customer: u32,
    /// From when it may be used (inclusive).
    pub valid_from: DateTime<Utc>,
    /// Until when it may be used (exclusive).
    pub valid_until: DateTime<Utc>,
}

/// A voucher of an event. Built only through [`Voucher::new`] (or
/// [`Voucher::restore`] for stored values), so its limits and window are consistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    event: EventId,
    spec: VoucherSpec,
}

/// Why a voucher cannot be used by a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VoucherProblem {
    /// The event has no voucher with this code.
    Unknown,
    /// Its validity window has not opened.
    NotYetValid,
    /// Its validity window is over.
    Expired,
    /// Every use is taken by an active order.
    UsedUp,
    /// The customer's active orders use it as often as it allows per customer.
    CustomerLimit,
}

impl VoucherProblem {
    /// A stable, upper-case code for wire formats, e.g. `VOUCHER_USED_UP`.
    pub fn code(&self) -> &'static str {
        match self {
            VoucherProblem::Unknown => "VOUCHER_UNKNOWN",
            VoucherProblem::NotYetValid => "VOUCHER_NOT_YET_VALID",
            VoucherProblem::Expired => "VOUCHER_EXPIRED",
            VoucherProblem::UsedUp => "VOUCHER_USED_UP",
            VoucherProblem::CustomerLimit => "VOUCHER_CUSTOMER_LIMIT",
        }
    }
}

impl fmt::Display for VoucherProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VoucherProblem::Unknown => "no such voucher for this event",
            VoucherProblem::NotYetValid => "the voucher is not valid yet",
            VoucherProblem::Expired => "the voucher is no longer valid",
            VoucherProblem::UsedUp => "every use of the voucher is taken",
            VoucherProblem::CustomerLimit => "this customer used the voucher as often as allowed",
        })
    }
}

impl Voucher {
    /// Checks `spec` against `event`: a discount in the event's currency and positive (an amount
    /// above zero, a percentage within 1..=10,000 basis points), a zone access naming a hidden
    /// zone of the event, and the limits and window of [`Voucher::restore`].
    pub fn new(event: &Event, spec: VoucherSpec) -> Result<Self, Error> {
        match &spec.effect {
            VoucherEffect::Discount(Discount::Amount(amount)) => {
                if amount.currency != event.currency() {
                    return Err(Error::invalid(
                        "discount",
                        format!("must be in the event's currency {}", event.currency()),
                    ));
                }
            }
            VoucherEffect::Discount(Discount::Percent { .. }) => {}
            VoucherEffect::ZoneAccess(zone) => {
                if !event.is_hidden(zone) {
                    return Err(Error::invalid(
                        "zone",
                        format!("zone {zone} is not a hidden zone of the event"),
                    ));
                }
            }
        }
        Self::restore(event.id(), spec)
    }

    /// A voucher as stored: checks what does not need the event (a positive discount, limits
    /// `1 <= max_per_customer <= max_uses <= MAX_VOUCHER_USES`, a window that closes after it
    /// opens) and keeps the window to the millisecond, the precision every backend stores.
    pub fn restore(event: EventId, mut spec: VoucherSpec) -> Result<Self, Error> {
        match &spec.effect {
            VoucherEffect::Discount(Discount::Amount(amount)) if amount.minor <= 0 => {
                return Err(Error::invalid("discount", "an amount off must be positive"));
            }
            VoucherEffect::Discount(Discount::Percent { basis_points })
                if *basis_points == 0 || *basis_points > FULL_PRICE_BASIS_POINTS =>
            {
                return Err(Error::invalid(
                    "discount",
                    "a percentage must be between 1 and 10000 basis points",
                ));
            }
            _ => {}
        }
        if spec.max_uses == 0 || spec.max_uses > MAX_VOUCHER_USES {
            return Err(Error::invalid(
                "max_uses",
                format!("must be between 1 and {MAX_VOUCHER_USES}"),
            ));
        }
        if spec.max_per_customer == 0 || spec.max_per_customer > spec.max_uses {
            return Err(Error::invalid(
                "max_per_customer",
                "must be between 1 and max_uses",
            ));
        }
        spec.valid_from = to_millis(spec.valid_from);
        spec.valid_until = to_millis(spec.valid_until);
        if spec.valid_until <= spec.valid_from {
            return Err(Error::invalid("valid_until", "must be after valid_from"));
        }
        Ok(Self { event, spec })
    }

    /// The event it belongs to.
    pub fn event(&self) -> EventId {
        self.event
    }
    /// Its code.
    pub fn code(&self) -> &VoucherCode {
        &self.spec.code
    }
    /// What it gives.
    pub fn effect(&self) -> &VoucherEffect {
        &self.spec.effect
    }
    /// Most active orders using it.
    pub fn max_uses(&self) -> u32 {
        self.spec.max_uses
    }
    /// Most active orders of one customer using it.
    pub fn max_per_customer(&self) -> u32 {
        self.spec.max_per_customer
    }
    /// From when it may be used (inclusive).
    pub fn valid_from(&self) -> DateTime<Utc> {
        self.spec.valid_from
    }
    /// Until when it may be used (exclusive).
    pub fn valid_until(&self) -> DateTime<Utc> {
        self.spec.valid_until
    }

    /// Whether a purchase at `now` may use it, as far as its window tells (the uses are counted
    /// by the repository, in the purchase's transaction).
    pub fn check_window(&self, now: DateTime<Utc>) -> Result<(), VoucherProblem> {
        if now < self.spec.valid_from {
            Err(VoucherProblem::NotYetValid)
        } else if now >= self.spec.valid_until {
            Err(VoucherProblem::Expired)
        } else {
            Ok(())
        }
    }

    /// The price of a ticket listed at `list` for an order using this voucher.
    pub fn price(&self, list: Money) -> Money {
        match &self.spec.effect {
            VoucherEffect::Discount(discount) => discount.apply(list),
            VoucherEffect::ZoneAccess(_) => list,
        }
    }

    /// Whether it opens the hidden `zone`.
    pub fn opens(&self, zone: &ZoneCode) -> bool {
        matches!(&self.spec.effect, VoucherEffect::ZoneAccess(z) if z == zone)
    }
}

/// Times are kept to the millisecond, as an event's sale window is.
fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::new("EUR").unwrap())
    }

    #[test]
    fn a_percent_discount_rounds_the_discount_down_to_the_minor_unit() {
        let fifteen = Discount::Percent { basis_points: 1500 };
        // 15 % of 19.99 is 2.9985: 2.99 off, 17.00 to pay.
        assert_eq!(fifteen.apply(eur(1999)), eur(1700));
        // 15 % of 0.01 is 0.0015: nothing off.
        assert_eq!(fifteen.apply(eur(1)), eur(1));
        let third = Discount::Percent { basis_points: 3333 };
        // 33.33 % of 10.00 is 3.333: 3.33 off.
        assert_eq!(third.apply(eur(1000)), eur(667));
        let all = Discount::Percent {
            basis_points: 10_000,
        };
        assert_eq!(all.apply(eur(1999)), eur(0));
        let huge = Discount::Percent { basis_points: 5000 };
        assert_eq!(huge.apply(eur(i64::MAX)), eur(i64::MAX - i64::MAX / 2));
    }

    #[test]
    fn an_amount_discount_never_goes_below_zero() {
        let five = Discount::Amount(eur(500));
        assert_eq!(five.apply(eur(1999)), eur(1499));
        assert_eq!(five.apply(eur(300)), eur(0));
    }

    #[test]
    fn limits_and_window_are_checked() {
        let event = EventId::from_uuid(uuid::Uuid::nil());
        let now = Utc::now();
        let spec = VoucherSpec {
            code: VoucherCode::new("EARLY").unwrap(),
            effect: VoucherEffect::Discount(Discount::Percent { basis_points: 1000 }),
            max_uses: 3,
            max_per_customer: 1,
            valid_from: now,
            valid_until: now + TimeDelta::hours(1),
        };
        let voucher = Voucher::restore(event, spec.clone()).unwrap();
        assert_eq!(
            voucher.check_window(voucher.valid_from() - TimeDelta::milliseconds(1)),
            Err(VoucherProblem::NotYetValid)
        );
        assert_eq!(voucher.check_window(voucher.valid_from()), Ok(()));
        assert_eq!(
            voucher.check_window(voucher.valid_until()),
            Err(VoucherProblem::Expired)
        );
        for bad in [
            VoucherSpec {
                max_uses: 0,
                ..spec.clone()
            },
            VoucherSpec {
                max_per_customer: 4,
                ..spec.clone()
            },
            VoucherSpec {
                valid_until: spec.valid_from,
                ..spec.clone()
            },
            VoucherSpec {
                effect: VoucherEffect::Discount(Discount::Percent {
                    basis_points: 10_001,
                }),
                ..spec.clone()
            },
            VoucherSpec {
                effect: VoucherEffect::Discount(Discount::Amount(eur(0))),
                ..spec.clone()
            },
        ] {
            assert!(matches!(
                Voucher::restore(event, bad),
                Err(Error::InvalidRequest { .. })
            ));
        }
    }
}
