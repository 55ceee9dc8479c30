//! Admission control for an on-sale: an event's waiting-room policy, and the signed admission
//! token a buyer shows at purchase (docs/DESIGN.md, "Waiting room").

use std::fmt;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::ids::{CustomerId, EventId};
use crate::Error;

/// Largest admission rate or concurrent cap a policy may have.
pub const MAX_ADMISSION_LIMIT: u32 = 1_000_000;
/// Shortest purchase window an admission may have.
pub const MIN_ADMISSION_WINDOW: TimeDelta = TimeDelta::seconds(1);
/// Longest purchase window an admission may have.
pub const MAX_ADMISSION_WINDOW: TimeDelta = TimeDelta::days(1);
/// Lottery numbers are below this (2^52), so every backend stores them exactly (a Redis sorted
/// set scores with doubles).
pub const LOTTERY_BOUND: u64 = 1 << 52;

/// How fast buyers leave the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdmissionMode {
    /// At most this many admissions per second of the clock (whole seconds since the epoch, so
    /// every server and backend counts the same window).
    PerSecond(u32),
    /// At most this many buyers admitted at once. An admitted buyer counts until their
    /// admission's purchase window ends or they buy.
    Concurrent(u32),
}

impl AdmissionMode {
    /// The rate or the cap.
    pub fn limit(self) -> u32 {
        match self {
            AdmissionMode::PerSecond(n) | AdmissionMode::Concurrent(n) => n,
        }
    }

    /// `"rate"` or `"concurrent"`: the name adapters store.
    pub fn kind(self) -> &'static str {
        match self {
            AdmissionMode::PerSecond(_) => "rate",
            AdmissionMode::Concurrent(_) => "concurrent",
        }
    }
}

/// In which order buyers leave the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueOrder {
    /// First come, first admitted.
    Fifo,
    /// A uniformly random order: each joiner draws a lottery number and the lowest leaves first,
    /// so among the buyers waiting at any moment each is equally likely to be next. A buyer's
    /// position can grow when later joiners draw lower numbers.
    Random,
}

impl QueueOrder {
    /// `"fifo"` or `"random"`: the name adapters store.
    pub fn name(self) -> &'static str {
        match self {
            QueueOrder::Fifo => "fifo",
            QueueOrder::Random => "random",
        }
    }
}

/// The waiting-room settings of one event: how buyers are admitted, in which order, and how long
/// an admission lasts. An event without a policy needs no admission. Built by
/// [`AdmissionPolicy::new`], so a stored policy is always usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdmissionPolicy {
    mode: AdmissionMode,
    order: QueueOrder,
    window: TimeDelta,
}

impl AdmissionPolicy {
    /// Checks the settings: a rate or cap within 1..=[`MAX_ADMISSION_LIMIT`], a purchase window
    /// within [`MIN_ADMISSION_WINDOW`]..=[`MAX_ADMISSION_WINDOW`], in whole milliseconds.
    pub fn new(mode: AdmissionMode, order: QueueOrder, window: TimeDelta) -> Result<Self, Error> {
        if mode.limit() == 0 || mode.limit() > MAX_ADMISSION_LIMIT {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_ADMISSION_LIMIT}"),
            ));
        }
        if !(MIN_ADMISSION_WINDOW..=MAX_ADMISSION_WINDOW).contains(&window)
            || window.subsec_nanos() % 1_000_000 != 0
        {
            return Err(Error::invalid(
                "window",
                "must be whole milliseconds between 1 second and 1 day",
            ));
        }
        Ok(Self {
            mode,
            order,
            window,
        })
    }

    /// A policy from the parts an adapter stores ([`AdmissionMode::kind`], the limit,
    /// [`QueueOrder::name`], the window in milliseconds); anything else is
    /// [`Error::Internal`] (broken stored data).
    pub fn from_stored(kind: &str, limit: u32, order: &str, window_ms: i64) -> Result<Self, Error> {
        let mode = match kind {
            "rate" => AdmissionMode::PerSecond(limit),
            "concurrent" => AdmissionMode::Concurrent(limit),
            other => return Err(Error::internal(format!("stored admission mode {other:?}"))),
        };
        let order = match order {
            "fifo" => QueueOrder::Fifo,
            "random" => QueueOrder::Random,
            other => return Err(Error::internal(format!("stored queue order {other:?}"))),
        };
        Self::new(mode, order, TimeDelta::milliseconds(window_ms))
            .map_err(|e| Error::internal(format!("stored admission policy: {e}")))
    }

    /// The rate or the cap.
    pub fn mode(&self) -> AdmissionMode {
        self.mode
    }
    /// The queue order.
    pub fn order(&self) -> QueueOrder {
        self.order
    }
    /// How long an admission lasts: the buyer's purchase window.
    pub fn window(&self) -> TimeDelta {
        self.window
    }
    /// The window in milliseconds, as adapters store it.
    pub fn window_ms(&self) -> i64 {
        self.window.num_milliseconds()
    }

    /// How long a buyer at `position` (1 = next) waits at most, if no one ahead gives up:
    /// `ceil(position / rate)` seconds at a rate; at a cap, every admitted buyer using their whole
    /// window, `ceil(position / cap)` windows.
    pub fn estimated_wait(&self, position: u64) -> TimeDelta {
        let limit = u64::from(self.mode.limit());
        let rounds = position.div_ceil(limit);
        let round = match self.mode {
            AdmissionMode::PerSecond(_) => TimeDelta::seconds(1),
            AdmissionMode::Concurrent(_) => self.window,
        };
        round * i32::try_from(rounds).unwrap_or(i32::MAX)
    }
}

/// Why a purchase was refused admission: [`Error::NotAdmitted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AdmissionRefusal {
    /// The event requires admission and the purchase showed no token.
    Missing,
    /// The token is not one this library issues (wrong shape).
    Malformed,
    /// The token was not issued to this customer for this event (or was forged).
    Foreign,
    /// The token's purchase window is over.
    Expired,
    /// The waiting room holds no live admission with this token: it was used for a purchase,
    /// replaced, or has lapsed.
    NotAdmitted,
    /// Another purchase with this token is running.
    InUse,
}

impl AdmissionRefusal {
    /// A stable lower-case name for logs and wire formats.
    pub fn name(self) -> &'static str {
        match self {
            AdmissionRefusal::Missing => "missing",
            AdmissionRefusal::Malformed => "malformed",
            AdmissionRefusal::Foreign => "foreign",
            AdmissionRefusal::Expired => "expired",
            AdmissionRefusal::NotAdmitted => "not_admitted",
            AdmissionRefusal::InUse => "in_use",
        }
    }
}

impl fmt::Display for AdmissionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdmissionRefusal::Missing => "the event requires an admission token",
            AdmissionRefusal::Malformed => "the admission token is malformed",
            AdmissionRefusal::Foreign => {
                "the admission token was not issued to this customer for this event"
            }
            AdmissionRefusal::Expired => "the admission token's purchase window is over",
            AdmissionRefusal::NotAdmitted => {
                "the admission was already used for a purchase, or has lapsed"
            }
            AdmissionRefusal::InUse => "another purchase with this admission token is running",
        })
    }
}

/// The key of admission tokens and of the random queue order's lottery (HMAC-SHA256).
///
/// Every server of a deployment must share it: a token signed by one server is checked by
/// another. There is no default: a public key would let anyone mint admissions. Use
/// [`AdmissionSecret::new`] with the deployment's secret, or [`AdmissionSecret::random`] for one
/// process.
#[derive(Clone, PartialEq, Eq)]
pub struct AdmissionSecret(std::sync::Arc<[u8]>);

impl AdmissionSecret {
    /// A secret of the given bytes (32 random bytes are plenty); an empty one is
    /// [`Error::Config`].
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self, Error> {
        let bytes = bytes.as_ref();
        if bytes.is_empty() {
            return Err(Error::config("admission_secret", "must not be empty"));
        }
        Ok(Self(bytes.into()))
    }

    /// 32 random bytes from the operating system: fine for a single process.
    pub fn random() -> Self {
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self(bytes.into())
    }

    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// The lottery number of `customer` joining `event` at `now` for the random order: below
    /// [`LOTTERY_BOUND`], uniform, and unpredictable without the secret.
    pub fn lottery(&self, event: EventId, customer: &CustomerId, now: DateTime<Utc>) -> u64 {
        let digest = self
            .mac(&[
                b"lottery-v1",
                event.as_uuid().as_bytes(),
                customer.as_str().as_bytes(),
                &now.timestamp_millis().to_be_bytes(),
            ])
            .finalize()
            .into_bytes();
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(head) % LOTTERY_BOUND
    }

    fn token_mac(
        &self,
        event: EventId,
        customer: &CustomerId,
        id: u64,
        expires_ms: i64,
    ) -> Hmac<Sha256> {
        self.mac(&[
            b"admission-v1",
            event.as_uuid().as_bytes(),
            customer.as_str().as_bytes(),
            &id.to_be_bytes(),
            &expires_ms.to_be_bytes(),
        ])
    }

    /// The token of admission `id` of `customer` to `event`, valid until `expires`:
    /// `<id>.<expires, ms since the epoch>.<HMAC-SHA256, hex>`. The same admission always
    /// gives the same token.
    pub fn sign(
        &self,
        event: EventId,
        customer: &CustomerId,
        id: u64,
        expires: DateTime<Utc>,
    ) -> String {
        let expires_ms = expires.timestamp_millis();
        let tag = self
            .token_mac(event, customer, id, expires_ms)
            .finalize()
            .into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("{id}.{expires_ms}.{hex}")
    }

    /// Checks `token` for `customer` buying for `event` at `now` and gives its admission id.
    /// The signature is checked first (in constant time), then the expiry; the waiting room
    /// still has to confirm that the admission is live and unused
    /// ([`WaitingRoom::begin_purchase`](crate::ports::WaitingRoom::begin_purchase)).
    pub fn verify(
        &self,
        token: &str,
        event: EventId,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<u64, AdmissionRefusal> {
        let mut parts = token.split('.');
        let (Some(id), Some(expires), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AdmissionRefusal::Malformed);
        };
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(id) || !digits(expires) || tag.len() != 64 {
            return Err(AdmissionRefusal::Malformed);
        }
        let (Ok(id), Ok(expires_ms)) = (id.parse::<u64>(), expires.parse::<i64>()) else {
            return Err(AdmissionRefusal::Malformed);
        };
        let Some(tag) = decode_hex(tag) else {
            return Err(AdmissionRefusal::Malformed);
        };
        self.token_mac(event, customer, id, expires_ms)
            .verify_slice(&tag)
            .map_err(|_| AdmissionRefusal::Foreign)?;
        let expires = Utc
            .timestamp_millis_opt(expires_ms)
            .single()
            .ok_or(AdmissionRefusal::Malformed)?;
        if expires <= now {
            return Err(AdmissionRefusal::Expired);
        }
        Ok(id)
    }
}

impl fmt::Debug for AdmissionSecret {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdmissionSecret(..)")
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(*pair.get(1)?)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn event(n: u128) -> EventId {
        EventId::from_uuid(Uuid::from_u128(n))
    }

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).unwrap()
    }

    #[test]
    fn a_token_verifies_only_for_its_customer_event_and_window() {
        let secret = AdmissionSecret::new(b"test").unwrap();
        let alice = CustomerId::new("alice").unwrap();
        let bob = CustomerId::new("bob").unwrap();
        let token = secret.sign(event(1), &alice, 7, at(10_000));
        assert_eq!(secret.verify(&token, event(1), &alice, at(9_999)), Ok(7));
        assert_eq!(
            secret.verify(&token, event(1), &alice, at(10_000)),
            Err(AdmissionRefusal::Expired)
        );
        assert_eq!(
            secret.verify(&token, event(1), &bob, at(0)),
            Err(AdmissionRefusal::Foreign)
        );
        assert_eq!(
            secret.verify(&token, event(2), &alice, at(0)),
            Err(AdmissionRefusal::Foreign)
        );
        let other = AdmissionSecret::new(b"other").unwrap();
        assert_eq!(
            other.verify(&token, event(1), &alice, at(0)),
            Err(AdmissionRefusal::Foreign)
        );
        // A later expiry with the old signature is a forgery.
        let stretched = token.replacen(".10000.", ".99999.", 1);
        assert_eq!(
            secret.verify(&stretched, event(1), &alice, at(0)),
            Err(AdmissionRefusal::Foreign)
        );
        for bad in [
            "",
            "1.2",
            "1.2.3.4",
            "x.1.ab",
            &token.to_uppercase(),
            "1.2.zz",
        ] {
            assert_eq!(
                secret.verify(bad, event(1), &alice, at(0)),
                Err(AdmissionRefusal::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn policies_check_their_bounds() {
        let window = TimeDelta::seconds(60);
        assert!(
            AdmissionPolicy::new(AdmissionMode::Concurrent(0), QueueOrder::Fifo, window).is_err()
        );
        assert!(
            AdmissionPolicy::new(
                AdmissionMode::PerSecond(MAX_ADMISSION_LIMIT + 1),
                QueueOrder::Fifo,
                window
            )
            .is_err()
        );
        assert!(
            AdmissionPolicy::new(
                AdmissionMode::Concurrent(1),
                QueueOrder::Fifo,
                TimeDelta::milliseconds(999)
            )
            .is_err()
        );
        let policy =
            AdmissionPolicy::new(AdmissionMode::Concurrent(200), QueueOrder::Random, window)
                .unwrap();
        let stored = AdmissionPolicy::from_stored(
            policy.mode().kind(),
            policy.mode().limit(),
            policy.order().name(),
            policy.window_ms(),
        )
        .unwrap();
        assert_eq!(stored, policy);
        assert_eq!(policy.estimated_wait(1), window);
        assert_eq!(policy.estimated_wait(201), window * 2);
        let rate =
            AdmissionPolicy::new(AdmissionMode::PerSecond(10), QueueOrder::Fifo, window).unwrap();
        assert_eq!(rate.estimated_wait(25), TimeDelta::seconds(3));
    }

    #[test]
    fn lottery_numbers_fit_a_double_and_differ_per_customer() {
        let secret = AdmissionSecret::random();
        let alice = CustomerId::new("alice").unwrap();
        let bob = CustomerId::new("bob").unwrap();
        let a = secret.lottery(event(1), &alice, at(0));
        assert!(a < LOTTERY_BOUND);
        assert_eq!(a, secret.lottery(event(1), &alice, at(0)));
        assert_ne!(a, secret.lottery(event(1), &bob, at(0)));
        assert!(AdmissionSecret::new(b"").is_err());
    }
}
