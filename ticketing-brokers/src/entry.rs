//! The wire form of an outbox entry on every broker: the event as JSON in the body, the
//! sequence number beside it (a header, a message id), so a consumer can skip a repeat without
//! parsing the body.

use ticketing_core::domain::{OutboxEntry, OutboxEvent};
use ticketing_core::{Error, Result};

/// The body of `entry`: its event as JSON (the schema the Redis stream carries as `payload`).
pub(crate) fn body(entry: &OutboxEntry) -> Result<Vec<u8>> {
    serde_json::to_vec(&entry.event).map_err(|e| {
        Error::internal(format!(
            "outbox event {} does not serialise: {e}",
            entry.seq
        ))
    })
}

/// The entry with sequence number `seq` (a header or message id, `None` when missing) and
/// `body`. A message without a number or with a body that is no outbox event is
/// [`Error::Backend`]: whoever published it was not the relay, and retrying will not cure it.
pub(crate) fn parse(broker: &'static str, seq: Option<&str>, body: &[u8]) -> Result<OutboxEntry> {
    let seq = parse_seq(broker, seq)?;
    let event: OutboxEvent = serde_json::from_slice(body)
        .map_err(|e| Error::backend(broker, format!("message {seq} is no outbox event: {e}")))?;
    Ok(OutboxEntry { seq, event })
}

/// The sequence number a message carries (`None` when it has none): [`Error::Backend`] when
/// missing or not a number.
pub(crate) fn parse_seq(broker: &'static str, seq: Option<&str>) -> Result<u64> {
    seq.ok_or_else(|| Error::backend(broker, "a message without a sequence number"))?
        .trim()
        .parse::<u64>()
        .map_err(|e| Error::backend(broker, format!("a message with a bad sequence number: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_core::testkit::contracts::event_sink::entries;

    #[test]
    fn an_entry_round_trips_and_bad_messages_are_backend_errors() {
        let entry = entries(7..=7).remove(0);
        let bytes = body(&entry).unwrap();
        assert_eq!(parse("test", Some("7"), &bytes).unwrap(), entry);
        for (seq, bytes) in [
            (None, &bytes[..]),
            (Some("x"), &bytes[..]),
            (Some("7"), &b"{}"[..]),
        ] {
            let err = parse("test", seq, bytes).unwrap_err();
            assert!(matches!(err, Error::Backend { .. }), "{err:?}");
        }
    }
}
