//! Money in integer minor units (cents) with an ISO 4217 currency code. Never floats.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// An ISO 4217 currency code: three upper-case ASCII letters, e.g. `EUR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses a code such as `"EUR"`.
    pub fn new(code: &str) -> Result<Self, Error> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(Error::invalid(
                "currency",
                "must be a three-letter upper-case ISO 4217 code",
            ));
        }
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = Error;

    fn try_from(value: String) -> Result<Self, Error> {
        Self::new(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> String {
        value.as_str().to_owned()
    }
}

/// An amount of money: minor units (cents) and a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Amount in minor units, e.g. 1250 for EUR 12.50.
    pub minor: i64,
    /// The currency of the amount.
    pub currency: Currency,
}

impl Money {
    /// An amount in minor units.
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// Adds two amounts; different currencies or an overflow are errors, never a silent wrong sum.
    pub fn checked_add(self, other: Money) -> Result<Money, Error> {
        if self.currency != other.currency {
            return Err(Error::invalid(
                "currency",
                format!("cannot add {} to {}", other.currency, self.currency),
            ));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or_else(|| Error::invalid("amount", "sum overflows"))?;
        Ok(Money::new(minor, self.currency))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_is_checked() {
        assert!(Currency::new("EUR").is_ok());
        assert!(Currency::new("eur").is_err());
        assert!(Currency::new("EURO").is_err());
    }

    #[test]
    fn adding_different_currencies_is_an_error() {
        let eur = Money::new(100, Currency::new("EUR").unwrap());
        let usd = Money::new(100, Currency::new("USD").unwrap());
        assert_eq!(eur.checked_add(eur).unwrap().minor, 200);
        assert!(matches!(
            eur.checked_add(usd),
            Err(Error::InvalidRequest {
                field: "currency",
                ..
            })
        ));
        assert!(Money::new(i64::MAX, eur.currency).checked_add(eur).is_err());
    }
}
