//! Payment webhooks signed like Stripe's: the `webhook-signature` header is
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">` (several `v1` entries are allowed,
//! for secret rotation). Timestamps more than [`TOLERANCE_SECONDS`] away from now are refused, the
//! comparison is constant-time, and each webhook id is processed once per process
//! ([`WebhookLog`]); across processes, paying an order again with the same reference has no
//! second effect either, so a replay that reaches another server gets the same answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use crate::dto::OrderDto;
use crate::error::ApiError;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// Largest accepted distance between the signed timestamp and now, in seconds.
pub const TOLERANCE_SECONDS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// The shared secret webhooks are signed with.
#[derive(Clone)]
pub struct WebhookSecret(Arc<[u8]>);

impl WebhookSecret {
    /// A secret from its bytes.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self(secret.as_ref().into())
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The header value a provider would send for `body` at `timestamp`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(timestamp, body).finalize().into_bytes();
        format!("t={timestamp},v1={}", hex::encode(tag))
    }

    /// Checks the header against `body` at `now` (unix seconds). Every failure is a `401`.
    pub fn verify(&self, header: Option<&str>, body: &[u8], now: i64) -> Result<(), ApiError> {
        let header =
            header.ok_or_else(|| ApiError::unauthorized("missing webhook-signature header"))?;
        let mut timestamp = None;
        let mut candidates = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) if timestamp.is_none() => {
                    timestamp = Some(value.parse::<i64>().map_err(|_| {
                        ApiError::unauthorized("webhook-signature timestamp is not a number")
                    })?);
                }
                Some(("t", _)) => {
                    return Err(ApiError::unauthorized(
                        "webhook-signature has two timestamps",
                    ));
                }
                Some(("v1", value)) => candidates.push(value),
                _ => {}
            }
        }
        let timestamp = timestamp
            .ok_or_else(|| ApiError::unauthorized("webhook-signature has no timestamp"))?;
        if candidates.is_empty() {
            return Err(ApiError::unauthorized(
                "webhook-signature has no v1 signature",
            ));
        }
        if now.abs_diff(timestamp) > TOLERANCE_SECONDS as u64 {
            return Err(ApiError::unauthorized(
                "webhook timestamp is outside the 300 s tolerance",
            ));
        }
        let expected = self.mac(timestamp, body).finalize().into_bytes();
        let mut matched = subtle::Choice::from(0u8);
        for candidate in candidates {
            if let Ok(bytes) = hex::decode(candidate)
                && bytes.len() == expected.len()
            {
                matched |= bytes.as_slice().ct_eq(expected.as_slice());
            }
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("webhook signature does not match"))
        }
    }
}

/// A final answer to a webhook: the paid order or a definitive refusal (never a retryable 5xx).
pub type WebhookAnswer = Result<OrderDto, ApiError>;

/// Webhook ids already processed by this process, with their answers.
///
/// Ids are forgotten after twice the timestamp tolerance: a replay older than that carries a
/// stale timestamp and is refused before it gets here.
#[derive(Default)]
pub struct WebhookLog {
    entries: Mutex<LogEntries>,
}

#[derive(Default)]
struct LogEntries {
    by_id: HashMap<String, (Instant, Arc<OnceCell<WebhookAnswer>>)>,
    last_prune: Option<Instant>,
}

/// How long a webhook id is remembered.
const MEMORY: Duration = Duration::from_secs(2 * TOLERANCE_SECONDS as u64 + 60);

impl WebhookLog {
    /// Answers webhook `id` by running `process` once; concurrent and later calls with the same id
    /// wait for and return the same answer, with `true` for "replayed". A retryable failure
    /// (`Err` from `process`) is not remembered, so the provider's retry runs again.
    pub async fn answer<F, Fut>(
        &self,
        id: &str,
        process: F,
    ) -> Result<(WebhookAnswer, bool), ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<WebhookAnswer, ApiError>>,
    {
        let cell = self.cell(id);
        let mut ran = false;
        let answer = cell
            .get_or_try_init(|| {
                ran = true;
                process()
            })
            .await?;
        Ok((answer.clone(), !ran))
    }

    fn cell(&self, id: &str) -> Arc<OnceCell<WebhookAnswer>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if entries
            .last_prune
            .is_none_or(|at| now.duration_since(at) > Duration::from_secs(10))
        {
            entries
                .by_id
                .retain(|_, (seen, _)| now.duration_since(*seen) < MEMORY);
            entries.last_prune = Some(now);
        }
        entries
            .by_id
            .entry(id.to_owned())
            .or_insert_with(|| (now, Arc::new(OnceCell::new())))
            .1
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let secret = WebhookSecret::new("whsec_test");
        let body = br#"{"id":"evt_1"}"#;
        let header = secret.sign(1_000, body);
        assert!(secret.verify(Some(&header), body, 1_000).is_ok());
        assert!(secret.verify(Some(&header), body, 1_300).is_ok());
        assert!(secret.verify(Some(&header), body, 1_301).is_err());
        assert!(secret.verify(Some(&header), body, 699).is_err());
        assert!(secret.verify(Some(&header), b"{}", 1_000).is_err());
        assert!(
            WebhookSecret::new("other")
                .verify(Some(&header), body, 1_000)
                .is_err()
        );
        assert!(secret.verify(None, body, 1_000).is_err());
        assert!(secret.verify(Some("t=1000"), body, 1_000).is_err());
        assert!(secret.verify(Some("v1=00"), body, 1_000).is_err());
        let rotated = format!("{},v1={}", header, "ab".repeat(32));
        assert!(secret.verify(Some(&rotated), body, 1_000).is_ok());
    }
}
