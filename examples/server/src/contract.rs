//! The bounds of the wire format, stated once: each field's JSON schema for the OpenAPI document
//! and the check the server applies before it calls a service, built from the same core
//! constants. A request that breaks one of them is `400 INVALID_REQUEST`; what is left for the
//! services to refuse are rules no schema can state (`422`, see [`crate::error`]).

use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Type};
use utoipa::openapi::{KnownFormat, SchemaFormat};
use uuid::Uuid;

use ticketing_core::Error;
use ticketing_core::domain::{
    ChannelCode, ChannelKey, CustomerId, IdempotencyKey, MAX_HOLD_TIME, MAX_NAME_CHARS, MAX_PARTY,
    MAX_PER_CUSTOMER_LIMIT, MAX_ZONE_CAPACITY, MIN_HOLD_TIME, PaymentRef, RowLabel, VenueLimits,
    VoucherCode, ZoneCode,
};

use crate::error::{ApiError, ApiResult};

/// Every token (ids the host chooses, zone codes, row labels, keys, references): letters,
/// digits and `_ . @ + -`, as `ticketing_core::domain` checks them.
pub const TOKEN_PATTERN: &str = "^[A-Za-z0-9_.@+-]+$";

/// A display name has at least one character that is not white space. The class lists Unicode's
/// `White_Space` characters (what Rust's `str::trim` removes) explicitly, so every regex dialect
/// reads it the same way (`\s` differs between them).
pub const NAME_PATTERN: &str =
    r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// An ISO 4217 currency code, as `Currency::new` checks it.
pub const CURRENCY_PATTERN: &str = "^[A-Z]{3}$";

/// Most seats or places in one purchase: no event allows a customer more.
pub const MAX_TICKETS_PER_ORDER: u32 = MAX_PER_CUSTOMER_LIMIT;

/// Longest payment-webhook id, in characters.
pub const MAX_WEBHOOK_ID_CHARS: usize = 255;

fn token(max: usize, example: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(TOKEN_PATTERN))
        .examples([example])
        .build()
}

fn integer(min: i64, max: i64, example: i64) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min as f64))
        .maximum(Some(max as f64))
        .examples([example])
        .build()
}

/// The prefix of every demo customer: a demo token never names a real customer.
pub const DEMO_CUSTOMER_PREFIX: &str = "demo-";

/// A demo customer id: a [`CustomerId`] starting with [`DEMO_CUSTOMER_PREFIX`].
pub fn demo_customer_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(DEMO_CUSTOMER_PREFIX.len() + 1))
        .max_length(Some(CustomerId::MAX_LEN))
        .pattern(Some("^demo-[A-Za-z0-9_.@+-]+$"))
        .examples(["demo-alice"])
        .build()
}

/// A zone code ([`ZoneCode`]).
pub fn zone_code() -> Object {
    token(ZoneCode::MAX_LEN, "STALLS")
}

/// A voucher code ([`VoucherCode`]).
pub fn voucher_code() -> Object {
    token(VoucherCode::MAX_LEN, "EARLY-BIRD")
}

/// A sales channel's code ([`ChannelCode`]).
pub fn channel_code() -> Object {
    token(ChannelCode::MAX_LEN, "BOX-OFFICE")
}

/// A sales channel's key ([`ChannelKey`]): visible ASCII characters.
pub fn channel_key() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(ChannelKey::MIN_LEN))
        .max_length(Some(ChannelKey::MAX_LEN))
        .pattern(Some("^[!-~]+$"))
        .examples(["3f2a9c1e0b7d4e5f8a6b2c3d4e5f6a7b"])
        .build()
}

/// A row label ([`RowLabel`]).
pub fn row_label() -> Object {
    token(RowLabel::MAX_LEN, "A")
}

/// The `Idempotency-Key` header ([`IdempotencyKey`]).
pub fn idempotency_key() -> Object {
    token(IdempotencyKey::MAX_LEN, "checkout-42")
}

/// A payment provider's reference ([`PaymentRef`]).
pub fn payment_reference() -> Object {
    token(PaymentRef::MAX_LEN, "pi_3Nabc")
}

/// A display name of a venue, zone or event.
pub fn name() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_CHARS))
        .pattern(Some(NAME_PATTERN))
        .description(Some(format!(
            "1 to {MAX_NAME_CHARS} characters, at least one of them not white space"
        )))
        .examples(["Town Hall"])
        .build()
}

/// A seat number in its row.
pub fn seat_number() -> Object {
    integer(1, u32::MAX.into(), 7)
}

/// The seats of a row, or the places of a general-admission zone.
pub fn places() -> Object {
    integer(1, MAX_ZONE_CAPACITY.into(), 12)
}

/// The seats of a row, up to the default cap ([`VenueLimits::max_seats_per_row`]; the document
/// a server serves states its configured cap, see [`crate::openapi::document_with_limits`]).
pub fn row_seats() -> Object {
    integer(1, VenueLimits::default().max_seats_per_row.into(), 12)
}

/// Seat ranges on the seat map: `[first, last]` pairs.
pub fn seat_ranges() -> Array {
    let seat = integer(1, u32::MAX.into(), 1);
    ArrayBuilder::new()
        .items(
            ArrayBuilder::new()
                .items(seat)
                .min_items(Some(2))
                .max_items(Some(2))
                .description(Some("[first, last]: seats first to last, both included")),
        )
        .examples([serde_json::json!([[1, 12], [15, 20]])])
        .build()
}

/// General-admission places in one purchase.
pub fn quantity() -> Object {
    integer(1, MAX_TICKETS_PER_ORDER.into(), 2)
}

/// A waiting-list party: seats side by side or places wanted together ([`MAX_PARTY`]).
pub fn party_size() -> Object {
    integer(1, MAX_PARTY.into(), 2)
}

/// An event's per-customer limit.
pub fn per_customer_limit() -> Object {
    integer(1, MAX_PER_CUSTOMER_LIMIT.into(), 4)
}

/// An event's payment window in seconds.
pub fn hold_time_seconds() -> Object {
    integer(
        MIN_HOLD_TIME.num_seconds(),
        MAX_HOLD_TIME.num_seconds(),
        600,
    )
}

/// An integer within `min..=max`, with an example.
pub fn bounded(min: i64, max: i64, example: i64) -> Object {
    integer(min, max, example)
}

/// A price in minor units.
pub fn price_minor() -> Object {
    integer(0, i64::MAX, 4500)
}

/// An ISO 4217 currency code.
pub fn currency() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(CURRENCY_PATTERN))
        .examples(["EUR"])
        .build()
}

/// A payment webhook's id.
pub fn webhook_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_WEBHOOK_ID_CHARS))
        .examples(["evt_001"])
        .build()
}

/// A UUID in its hyphenated form (`format: uuid`).
pub fn uuid() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .examples(["01936a6e-70aa-7cde-8a11-5b6c7d8e9f00"])
        .build()
}

/// A `400 INVALID_REQUEST` for a request that breaks the schema, naming the field.
pub fn malformed(error: Error) -> ApiError {
    let field = match &error {
        Error::InvalidRequest { field, .. } => Some(*field),
        _ => None,
    };
    let error = ApiError::invalid(error.to_string());
    match field {
        Some(field) => error.with_details(serde_json::json!({ "field": field })),
        None => error,
    }
}

/// Parses `raw` as a core value with its own check; a failure is [`malformed`].
pub fn parse<T: std::str::FromStr<Err = Error>>(raw: &str) -> ApiResult<T> {
    raw.parse().map_err(malformed)
}

/// A UUID in the hyphenated form `format: uuid` describes; `uuid`'s own parser also takes the
/// simple, braced and URN forms, which the schema does not allow.
pub fn hyphenated_uuid(raw: &str) -> Option<Uuid> {
    (raw.len() == 36)
        .then(|| Uuid::try_parse(raw).ok())
        .flatten()
}

/// A display name as [`name`] states it.
pub fn check_name(field: &'static str, value: &str) -> ApiResult<()> {
    if value.trim().is_empty() || value.chars().count() > MAX_NAME_CHARS {
        return Err(malformed(Error::invalid(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters, not all white space"),
        )));
    }
    Ok(())
}

/// An integer within `min..=max`.
pub fn check_range(field: &'static str, value: i64, min: i64, max: i64) -> ApiResult<()> {
    if value < min || value > max {
        return Err(malformed(Error::invalid(
            field,
            format!("must be between {min} and {max}"),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hyphenated_form_is_a_uuid() {
        let id = Uuid::now_v7();
        assert_eq!(hyphenated_uuid(&id.to_string()), Some(id));
        assert_eq!(hyphenated_uuid(&id.to_string().to_uppercase()), Some(id));
        assert_eq!(hyphenated_uuid(&id.simple().to_string()), None);
        assert_eq!(hyphenated_uuid(&id.braced().to_string()), None);
        assert_eq!(hyphenated_uuid(&id.urn().to_string()), None);
        assert_eq!(hyphenated_uuid("0"), None);
    }

    #[test]
    fn names_follow_the_domain_rule() {
        use ticketing_core::domain::{Venue, VenueId, Zone, ZoneKind};
        let venue = |name: &str| {
            let zone = Zone {
                code: "GA".parse().unwrap(),
                name: "Floor".into(),
                kind: ZoneKind::GeneralAdmission { capacity: 1 },
            };
            Venue::new(VenueId::from_uuid(Uuid::nil()), name, vec![zone])
        };
        let long = "é".repeat(MAX_NAME_CHARS);
        let too_long = "é".repeat(MAX_NAME_CHARS + 1);
        for name in [
            "Hall",
            "",
            " ",
            "\t\n",
            "\u{3000}\u{2028}",
            "\u{1c}",
            &long,
            &too_long,
        ] {
            assert_eq!(
                check_name("name", name).is_ok(),
                venue(name).is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn the_name_pattern_is_the_domain_s_white_space() {
        let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let text = c.to_string();
            assert_eq!(
                pattern.is_match(&text),
                !text.trim().is_empty(),
                "U+{:04X}",
                c as u32
            );
        }
    }
}
