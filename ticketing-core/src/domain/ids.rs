//! Identifiers. Each is its own type so a ticket id can never be passed where an order id is expected.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| Error::invalid($field, "must be a UUID"))
            }
        }
    };
}

uuid_id!(
    /// A venue (a hall, a stadium, a train).
    VenueId,
    "venue_id"
);
uuid_id!(
    /// An event at a venue (one concert, one train departure).
    EventId,
    "event_id"
);
uuid_id!(
    /// One ticket. Generated as UUID v7, so ids are time-ordered and inserts stay index-local.
    TicketId,
    "ticket_id"
);
uuid_id!(
    /// One entry of an event's waiting list (docs/DESIGN.md, "Waiting list").
    WaitingEntryId,
    "entry_id"
);
uuid_id!(
    /// One purchase: the N tickets bought together share it, and it is the holder of their seat holds.
    OrderId,
    "order_id"
);

impl OrderId {
    /// The order id that an idempotent purchase gets: derived from the customer and the key, so two
    /// concurrent retries of one request hold seats as the *same* order and cannot lock each other out.
    ///
    /// The derivation is keyed ([`OrderIdSecret`], HMAC-SHA256 truncated to a UUID v8), so only
    /// a holder of the secret can compute the id of another customer's order from its key.
    pub fn for_idempotency_key(
        secret: &OrderIdSecret,
        customer: &CustomerId,
        key: &IdempotencyKey,
    ) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(customer.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(key.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

/// The secret that keys [`OrderId::for_idempotency_key`].
///
/// Every server of one deployment must use the same secret: a retry that reaches another server
/// must derive the same order id, or the two attempts hold seats as different orders and can
/// lock each other out (the repository's idempotency record still lets only one persist). The
/// [`Default`] is a fixed, public value that keeps ids deterministic in tests; with it anyone who
/// knows a customer's id and idempotency key can compute the order id, so a deployment sets its
/// own with [`OrderIdSecret::new`].
#[derive(Clone, PartialEq, Eq)]
pub struct OrderIdSecret(std::sync::Arc<[u8]>);

impl OrderIdSecret {
    /// A secret of the given bytes (any length; 32 random bytes are plenty).
    pub fn new(bytes: impl AsRef<[u8]>) -> Self {
        Self(bytes.as_ref().into())
    }
}

impl Default for OrderIdSecret {
    fn default() -> Self {
        Self::new(b"ticketing-core public default order-id secret")
    }
}

impl fmt::Debug for OrderIdSecret {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrderIdSecret(..)")
    }
}

/// Checks a short printable token: non-empty, at most `max` bytes, only `[A-Za-z0-9_.@+-]`.
///
/// The character set keeps these tokens safe inside seat keys (`zone:row:number`), Redis hash fields
/// and log lines.
pub(crate) fn check_token(field: &'static str, value: &str, max: usize) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@' | b'+'))
    {
        return Err(Error::invalid(
            field,
            "may contain only letters, digits and _ - . @ +",
        ));
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value, in bytes (every accepted character is one byte).
            pub const MAX_LEN: usize = $max;

            /// Parses and checks the value (letters, digits, `_ - . @ +`, bounded length).
            pub fn new(value: impl Into<String>) -> Result<Self, Error> {
                let value = value.into();
                check_token($field, &value, $max)?;
                Ok(Self(value))
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(value: String) -> Result<Self, Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

token_id!(
    /// The buyer, as the host application identifies them (an account id, an e-mail).
    CustomerId,
    "customer_id",
    128
);
token_id!(
    /// A client-chosen key that makes a purchase safe to retry (the `Idempotency-Key` header).
    IdempotencyKey,
    "idempotency_key",
    128
);

token_id!(
    /// The payment provider's reference for a confirmed payment (e.g. a payment-intent id).
    PaymentRef,
    "payment_ref",
    128
);
token_id!(
    /// A zone of a venue, unique within the venue (e.g. `STALLS`, `FLOOR`).
    ZoneCode,
    "zone",
    32
);
token_id!(
    /// A voucher or promo code of an event (e.g. `EARLY-BIRD`), unique within the event and
    /// compared exactly (case-sensitive), like every other token.
    VoucherCode,
    "voucher",
    64
);
token_id!(
    /// A sales channel of an event that seats are kept back for (e.g. `BOX-OFFICE`, `SPONSOR`),
    /// unique within the event.
    ChannelCode,
    "channel",
    64
);
token_id!(
    /// A row of a seated zone, unique within the zone (e.g. `A`, `12`).
    RowLabel,
    "row",
    16
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_reject_separators_and_empty() {
        assert!(CustomerId::new("alice@example.com").is_ok());
        assert!(CustomerId::new("").is_err());
        assert!(CustomerId::new("a:b").is_err());
        assert!(CustomerId::new("x".repeat(129)).is_err());
    }

    #[test]
    fn idempotent_order_id_is_stable_and_scoped_by_customer() {
        let secret = OrderIdSecret::default();
        let key = IdempotencyKey::new("k1").unwrap();
        let alice = CustomerId::new("alice").unwrap();
        let bob = CustomerId::new("bob").unwrap();
        assert_eq!(
            OrderId::for_idempotency_key(&secret, &alice, &key),
            OrderId::for_idempotency_key(&secret, &alice, &key)
        );
        assert_ne!(
            OrderId::for_idempotency_key(&secret, &alice, &key),
            OrderId::for_idempotency_key(&secret, &bob, &key)
        );
        // The separator keeps ("a", "bc") and ("ab", "c") apart.
        assert_ne!(
            OrderId::for_idempotency_key(&secret, &"a".parse().unwrap(), &"bc".parse().unwrap()),
            OrderId::for_idempotency_key(&secret, &"ab".parse().unwrap(), &"c".parse().unwrap())
        );
    }

    #[test]
    fn idempotent_order_ids_depend_on_the_deployment_secret() {
        let key = IdempotencyKey::new("checkout-42").unwrap();
        let alice = CustomerId::new("alice").unwrap();
        let one = OrderIdSecret::new(b"deployment one");
        // Two servers of one deployment: same secret, same id.
        assert_eq!(
            OrderId::for_idempotency_key(&one, &alice, &key),
            OrderId::for_idempotency_key(&OrderIdSecret::new(b"deployment one"), &alice, &key)
        );
        // Another deployment (or a party without the secret) derives another id.
        let other =
            OrderId::for_idempotency_key(&OrderIdSecret::new(b"deployment two"), &alice, &key);
        assert_ne!(OrderId::for_idempotency_key(&one, &alice, &key), other);
        assert_ne!(
            OrderId::for_idempotency_key(&OrderIdSecret::default(), &alice, &key),
            other
        );
        // Still a valid UUID of the custom version (8), not a guessable v5 name.
        assert_eq!(other.as_uuid().get_version_num(), 8);
        assert!(!format!("{:?}", one).contains("deployment"));
    }

    #[test]
    fn bad_uuid_is_a_typed_error() {
        let err = "nope".parse::<TicketId>().unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidRequest {
                field: "ticket_id",
                ..
            }
        ));
    }
}
