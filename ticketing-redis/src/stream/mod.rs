//! The event stream on Redis Streams: [`RedisEventSink`] (the relay's sink) and
//! [`RedisProjection`] (a consumer keeping a sales read model).
//!
//! Layout, all under one hash tag so every script touches a single Redis Cluster slot:
//!
//! | key | type | what |
//! |---|---|---|
//! | `<prefix>{events}:stream` | STREAM | one entry per outbox row, id `<seq>-0`, fields `seq`, `event`, `kind`, `payload` |
//! | `<prefix>{events}:rm:last-seq` | STRING | the last seq the projection applied |
//! | `<prefix>{events}:rm:event:<event id>` | HASH | `pending`, `sold`, `revenue`, `expired`, `cancelled`, `refunded`, `currency` |
//! | `<prefix>{events}:rm:zones:<event id>` | HASH | `<zone>:pending`, `<zone>:sold`, `<zone>:revenue` |
//!
//! The `rm:` keys are the read model ([`RedisSalesReadModel`]); consumers of other brokers keep it
//! there too.
//!
//! One stream for all events rather than one per event: the outbox sequence is global, so a single
//! stream keeps one total order whose entry ids *are* the sequence numbers. That makes a
//! republished entry a refused `XADD` (its id is not above the stream's top) and lets a consumer
//! check contiguity with one counter. Consumers interested in one event filter on the `event`
//! field.

mod projection;
mod read_model;
mod sink;

pub use projection::{ProjectionConfig, ProjectionRound, RedisProjection};
pub use read_model::RedisSalesReadModel;
pub use sink::{RedisEventSink, RedisEventSinkConfig};
pub use ticketing_core::domain::{EventTotals, ZoneTotals};

use redis::Script;
use ticketing_core::domain::EventId;
use ticketing_core::{Error, Result};

/// The keys of the event stream and the read model under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamKeys {
    base: String,
}

impl StreamKeys {
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        if prefix.contains(['{', '}']) {
            return Err(Error::config(
                "key_prefix",
                "must not contain { or } (the stream's hash tag must be the first one in each key)",
            ));
        }
        Ok(Self {
            base: format!("{prefix}{{events}}"),
        })
    }

    pub(crate) fn stream(&self) -> String {
        format!("{}:stream", self.base)
    }

    pub(crate) fn last_seq(&self) -> String {
        format!("{}:rm:last-seq", self.base)
    }

    pub(crate) fn event_totals(&self, event: EventId) -> String {
        format!("{}:rm:event:{event}", self.base)
    }

    pub(crate) fn zone_totals(&self, event: EventId) -> String {
        format!("{}:rm:zones:{event}", self.base)
    }
}

/// The scripts of the event stream, loaded once and run with EVALSHA.
pub(crate) struct StreamScripts {
    pub publish: Script,
    pub high_water: Script,
    pub project: Script,
    pub trim: Script,
}

impl StreamScripts {
    pub(crate) fn new() -> Self {
        Self {
            publish: Script::new(include_str!("../lua/stream_publish.lua")),
            high_water: Script::new(include_str!("../lua/stream_high_water.lua")),
            project: Script::new(include_str!("../lua/project.lua")),
            trim: Script::new(include_str!("../lua/stream_trim.lua")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = StreamKeys::new("tkt:").unwrap();
        let event = EventId::from_uuid(Uuid::nil());
        assert_eq!(keys.stream(), "tkt:{events}:stream");
        for key in [
            keys.last_seq(),
            keys.event_totals(event),
            keys.zone_totals(event),
        ] {
            assert!(key.starts_with("tkt:{events}:rm:"), "{key}");
        }
        assert!(StreamKeys::new("a{b").is_err());
    }
}
