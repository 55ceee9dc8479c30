//! Count-based price tiers (early-bird waves): the first tickets of a zone sell at the first
//! tier's price, the next at the second's, and after the last tier at the zone's own price
//! (docs/DESIGN.md, "Price tiers").

use super::money::Money;
use crate::Error;

/// Most tiers one zone may have: enough for any wave plan, few enough that a purchase walks them
/// in a handful of statements.
pub const MAX_PRICE_TIERS: usize = 16;

/// One wave of a zone: `size` tickets at `price`. A tier counts active tickets (PENDING_PAYMENT
/// or PAID), so an expired, cancelled or refunded ticket gives its place in the tier back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceTier {
    /// How many active tickets the tier holds (at least 1).
    pub size: u32,
    /// The price of a ticket in this tier, before any voucher.
    pub price: Money,
}

/// Checks a zone's tiers against the zone's price `listed`: 1..=[`MAX_PRICE_TIERS`] tiers, each
/// of size at least 1, at a price that is not negative, in the event's currency, and at most the
/// zone's price. Tiers are the cheaper waves before the zone's price: a buyer's maximum price
/// (best available) is held to the zone's price before the hold, when the tier a ticket will
/// take is not known yet, so no tier may cost more than that.
pub(crate) fn check_tiers(tiers: &[PriceTier], listed: Money) -> Result<(), Error> {
    if tiers.is_empty() || tiers.len() > MAX_PRICE_TIERS {
        return Err(Error::invalid(
            "price_tiers",
            format!("a zone has between 1 and {MAX_PRICE_TIERS} tiers"),
        ));
    }
    for tier in tiers {
        if tier.size == 0 {
            return Err(Error::invalid("price_tiers", "a tier's size is at least 1"));
        }
        if tier.price.minor < 0 {
            return Err(Error::invalid("price_tiers", "a price cannot be negative"));
        }
        if tier.price.currency != listed.currency {
            return Err(Error::invalid(
                "price_tiers",
                "a tier's price must be in the event's currency",
            ));
        }
        if tier.price.minor > listed.minor {
            return Err(Error::invalid(
                "price_tiers",
                format!(
                    "a tier's price ({}) is at most the zone's price ({listed}): tiers are the \
                     cheaper waves before it",
                    tier.price
                ),
            ));
        }
    }
    Ok(())
}

/// The tier of each of `n` new tickets of a zone whose tiers have `sizes` and whose active
/// tickets per tier are `active` (missing entries are 0): each ticket takes the first tier with
/// a place left, in order, so an order may span tiers; `None` past the last tier (the zone's own
/// price).
pub fn assign_tiers(sizes: &[u32], active: &[u32], n: usize) -> Vec<Option<u16>> {
    let mut left: Vec<u32> = sizes
        .iter()
        .enumerate()
        .map(|(i, size)| size.saturating_sub(active.get(i).copied().unwrap_or(0)))
        .collect();
    (0..n)
        .map(|_| {
            let tier = left.iter().position(|room| *room > 0)?;
            left[tier] -= 1;
            u16::try_from(tier).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::new("EUR").unwrap())
    }

    #[test]
    fn tiers_are_checked() {
        let eur_ = eur(5000);
        let ok = [
            PriceTier {
                size: 100,
                price: eur(3000),
            },
            PriceTier {
                size: 200,
                price: eur(4000),
            },
        ];
        assert!(check_tiers(&ok, eur_).is_ok());
        assert!(check_tiers(&[], eur_).is_err());
        let zero = [PriceTier {
            size: 0,
            price: eur(1),
        }];
        assert!(check_tiers(&zero, eur_).is_err());
        let negative = [PriceTier {
            size: 1,
            price: eur(-1),
        }];
        assert!(check_tiers(&negative, eur_).is_err());
        let usd = [PriceTier {
            size: 1,
            price: Money::new(1, Currency::new("USD").unwrap()),
        }];
        assert!(check_tiers(&usd, eur_).is_err());
        let dearer = [PriceTier {
            size: 1,
            price: eur(5001),
        }];
        assert!(
            check_tiers(&dearer, eur_).is_err(),
            "a tier dearer than the zone would pass a buyer's maximum price checked at the zone's"
        );
        let many = vec![ok[0]; MAX_PRICE_TIERS + 1];
        assert!(check_tiers(&many, eur_).is_err());
        assert!(check_tiers(&many[..MAX_PRICE_TIERS], eur_).is_ok());
    }

    #[test]
    fn an_order_spans_tiers_and_ends_at_the_zone_price() {
        // 1 place left in tier 0, 2 in tier 1: 4 tickets are 0, 1, 1, then the zone's price.
        assert_eq!(
            assign_tiers(&[100, 200], &[99, 198], 4),
            vec![Some(0), Some(1), Some(1), None]
        );
        // A place given back in tier 0 is taken first again.
        assert_eq!(assign_tiers(&[2, 2], &[1, 2], 2), vec![Some(0), None]);
        assert_eq!(assign_tiers(&[3], &[], 2), vec![Some(0), Some(0)]);
        assert_eq!(assign_tiers(&[], &[], 1), vec![None]);
    }
}
