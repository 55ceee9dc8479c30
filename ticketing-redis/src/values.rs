//! How seat states and times are written in Redis, and how script replies are read back.
//!
//! Times are milliseconds since the Unix epoch (the caller's clock, never Redis `TIME`).
//! A seat value is `H|<order>|<until_ms>` (held) or `S|<order>` (sold).

use chrono::{DateTime, Utc};
use redis::Value;
use ticketing_core::domain::OrderId;
use ticketing_core::ports::SeatState;
use uuid::Uuid;

use crate::error::RedisLockError;

/// Milliseconds since the epoch; finer precision is cut off.
pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The stored value of a held seat.
pub(crate) fn held_value(order: OrderId, until: DateTime<Utc>) -> String {
    format!("H|{order}|{}", millis(until))
}

/// The stored value of a sold seat.
pub(crate) fn sold_value(order: OrderId) -> String {
    format!("S|{order}")
}

/// Reads a stored seat value; `None` when it is unreadable (such values count as free).
pub(crate) fn parse_seat_value(value: &str) -> Option<SeatState> {
    let mut parts = value.split('|');
    let state = parts.next()?;
    let order = parts.next().filter(|o| o.len() == 36)?;
    let order = OrderId::from_uuid(Uuid::parse_str(order).ok()?);
    match (state, parts.next(), parts.next()) {
        ("S", None, None) => Some(SeatState::Sold { order }),
        ("H", Some(until), None) => {
            let until = DateTime::from_timestamp_millis(until.parse().ok()?)?;
            Some(SeatState::Held { order, until })
        }
        _ => None,
    }
}

/// The text of a string reply.
pub(crate) fn text(script: &'static str, value: &Value) -> Result<String, RedisLockError> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| RedisLockError::reply(script, "a string is not UTF-8")),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::VerbatimString { text, .. } => Ok(text.clone()),
        Value::Okay => Ok("OK".into()),
        Value::Int(n) => Ok(n.to_string()),
        other => Err(RedisLockError::reply(
            script,
            format!("expected a string, got {other:?}"),
        )),
    }
}

/// The elements of an array reply.
pub(crate) fn array<'v>(
    script: &'static str,
    value: &'v Value,
) -> Result<&'v [Value], RedisLockError> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(RedisLockError::reply(
            script,
            format!("expected an array, got {other:?}"),
        )),
    }
}

/// An integer reply.
pub(crate) fn int(script: &'static str, value: &Value) -> Result<i64, RedisLockError> {
    match value {
        Value::Int(n) => Ok(*n),
        other => text(script, other)?.parse().map_err(|_| {
            RedisLockError::reply(script, format!("expected an integer, got {other:?}"))
        }),
    }
}

/// The strings of an array reply.
pub(crate) fn texts(script: &'static str, value: &Value) -> Result<Vec<String>, RedisLockError> {
    array(script, value)?
        .iter()
        .map(|v| text(script, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_values_round_trip() {
        let order = OrderId::from_uuid(Uuid::now_v7());
        let until = DateTime::from_timestamp_millis(1_900_000_000_123).unwrap();
        assert_eq!(
            parse_seat_value(&held_value(order, until)),
            Some(SeatState::Held { order, until })
        );
        assert_eq!(
            parse_seat_value(&sold_value(order)),
            Some(SeatState::Sold { order })
        );
    }

    #[test]
    fn unreadable_values_are_none() {
        let order = Uuid::nil();
        for bad in [
            "",
            "X",
            "H|not-a-uuid|1",
            &format!("H|{order}"),
            &format!("H|{order}|soon"),
            &format!("S|{order}|1"),
            &format!("Q|{order}|1"),
            &format!("S|{}", order.simple()),
        ] {
            assert_eq!(parse_seat_value(bad), None, "{bad}");
        }
    }
}
