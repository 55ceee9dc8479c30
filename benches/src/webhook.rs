//! Payment webhooks as a payment provider sends them to the example server: the JSON body of
//! `POST /api/payments/webhook` and its `webhook-signature` header,
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">` with the shared secret.
//!
//! The signature is computed here, independently of the server's code, so a test can hold it
//! against the server's verifier (`ticketing_server::webhook::WebhookSecret::verify`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use ticketing_core::domain::{EventId, Money, OrderId};
use ticketing_server::dto::PaymentWebhookDto;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The `webhook-signature` value for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The body confirming the payment of `amount` for `order` in the sale of `event`; `tag`
/// (letters and digits) is unique within the sale.
///
/// Webhook ids must be unique per server process for about 11 minutes (a repeated id is answered
/// as a replay of the first), so they carry the event id, which is new for every run.
pub fn payment_body(event: EventId, tag: &str, order: OrderId, amount: Money) -> Vec<u8> {
    let payload = PaymentWebhookDto {
        id: format!("bench-{}-{tag}", event.as_uuid().simple()),
        order_id: order.as_uuid(),
        payment_reference: format!("pi_bench_{tag}"),
        amount_minor: amount.minor,
        currency: amount.currency.to_string(),
    };
    serde_json::to_vec(&payload).unwrap_or_else(|_| unreachable!("the DTO serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_server::webhook::WebhookSecret;
    use uuid::Uuid;

    #[test]
    fn the_server_verifier_accepts_the_bench_signature() {
        let secret = b"whsec_bench";
        let event = EventId::from_uuid(Uuid::now_v7());
        let body = payment_body(
            event,
            "7",
            OrderId::from_uuid(Uuid::now_v7()),
            crate::setup::ticket_price(),
        );
        let now = chrono::Utc::now().timestamp();
        let header = signature(secret, now, &body);
        let server = WebhookSecret::new(secret);
        assert!(server.verify(Some(&header), &body, now).is_ok());
        // The same bytes are what the server's own signer produces.
        assert_eq!(header, server.sign(now, &body));
    }

    #[test]
    fn the_server_verifier_refuses_a_changed_body_secret_or_stale_time() {
        let secret = b"whsec_bench";
        let body = br#"{"id":"evt_1","orderId":"0190b7a2-0000-7000-8000-000000000000","paymentReference":"pi_1"}"#;
        let header = signature(secret, 1_000, body);
        let server = WebhookSecret::new(secret);
        assert!(server.verify(Some(&header), body, 1_000).is_ok());
        assert!(server.verify(Some(&header), b"{}", 1_000).is_err());
        assert!(server.verify(Some(&header), body, 1_301).is_err());
        assert!(
            WebhookSecret::new("another secret")
                .verify(Some(&header), body, 1_000)
                .is_err()
        );
    }

    #[test]
    fn the_body_is_what_the_server_parses() {
        let event = EventId::from_uuid(Uuid::now_v7());
        let order = OrderId::from_uuid(Uuid::now_v7());
        let body = payment_body(event, "3", order, crate::setup::ticket_price());
        let parsed: PaymentWebhookDto = serde_json::from_slice(&body).expect("server DTO parses");
        assert_eq!(parsed.order_id, order.as_uuid());
        assert!(parsed.id.ends_with("-3"));
        assert!(
            parsed
                .payment_reference
                .parse::<ticketing_core::domain::PaymentRef>()
                .is_ok()
        );
    }
}
