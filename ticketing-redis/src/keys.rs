//! The Redis keys of one event. Every key shares the event's hash tag, so every script touches a
//! single Redis Cluster slot, and every key is passed to scripts in `KEYS`.

use ticketing_core::domain::EventId;

/// The keys of one event under a prefix: `<prefix>{ev:<event>}:<part>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventKeys {
    /// The event these keys belong to.
    pub event: EventId,
    /// STRING `"1"`: the event's state was loaded (missing after a data loss).
    pub loaded: String,
    /// HASH seat key → `H|order|until_ms` or `S|order`.
    pub seats: String,
    /// HASH `zone|order` → `H|quantity|until_ms` or `S|quantity`.
    pub general: String,
    /// HASH zone → sum of the quantities of the zone's entries in `general`.
    pub general_taken: String,
    /// ZSET `zone|order` scored by `until_ms`, for the held (not sold) entries of `general`.
    pub general_deadlines: String,
    /// STRING holding the rebuilder's random token, with a TTL: the rebuild lease.
    pub rebuild_lock: String,
    /// Where a rebuild writes its chunks before it puts them in place of the four state keys
    /// after `loaded`, in their order and layout.
    pub staging: [String; 4],
}

impl EventKeys {
    pub(crate) fn new(prefix: &str, event: EventId) -> Self {
        let base = format!("{prefix}{{ev:{event}}}");
        Self {
            event,
            loaded: format!("{base}:loaded"),
            seats: format!("{base}:seats"),
            general: format!("{base}:ga"),
            general_taken: format!("{base}:ga-taken"),
            general_deadlines: format!("{base}:ga-deadlines"),
            rebuild_lock: format!("{base}:rebuild-lock"),
            staging: [
                format!("{base}:rebuild:seats"),
                format!("{base}:rebuild:ga"),
                format!("{base}:rebuild:ga-taken"),
                format!("{base}:rebuild:ga-deadlines"),
            ],
        }
    }

    /// The five state keys in the order every state script expects them (`KEYS[1..5]`).
    pub(crate) fn state(&self) -> [&str; 5] {
        [
            &self.loaded,
            &self.seats,
            &self.general,
            &self.general_taken,
            &self.general_deadlines,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn keys_share_the_event_hash_tag_and_prefix() {
        let event = EventId::from_uuid(Uuid::nil());
        let keys = EventKeys::new("tkt:", event);
        assert_eq!(
            keys.seats,
            "tkt:{ev:00000000-0000-0000-0000-000000000000}:seats"
        );
        let others = [keys.rebuild_lock.as_str()]
            .into_iter()
            .chain(keys.staging.iter().map(String::as_str));
        for key in keys.state().into_iter().chain(others) {
            assert!(
                key.starts_with("tkt:{ev:00000000-0000-0000-0000-000000000000}:"),
                "{key}"
            );
        }
    }
}
