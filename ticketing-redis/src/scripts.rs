//! The Lua scripts, one per operation, loaded once and run with EVALSHA.
//!
//! [`redis::Script`] sends `EVALSHA` and, on `NOSCRIPT` (an empty script cache after a Redis
//! restart, a failover or `SCRIPT FLUSH`), loads the script and retries, so callers never see it.

use redis::Script;

/// Every script of the adapter.
pub(crate) struct Scripts {
    pub hold: Script,
    pub best_available: Script,
    pub release: Script,
    pub mark_sold: Script,
    pub snapshot: Script,
    pub seat_states: Script,
    pub claim_rebuild: Script,
    pub write_rebuild_chunk: Script,
    pub finish_rebuild: Script,
    pub unclaim_rebuild: Script,
    pub health: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            hold: Script::new(include_str!("lua/hold.lua")),
            best_available: Script::new(include_str!("lua/best_available.lua")),
            release: Script::new(include_str!("lua/release.lua")),
            mark_sold: Script::new(include_str!("lua/mark_sold.lua")),
            snapshot: Script::new(include_str!("lua/snapshot.lua")),
            seat_states: Script::new(include_str!("lua/seat_states.lua")),
            claim_rebuild: Script::new(include_str!("lua/claim_rebuild.lua")),
            write_rebuild_chunk: Script::new(include_str!("lua/write_rebuild_chunk.lua")),
            finish_rebuild: Script::new(include_str!("lua/finish_rebuild.lua")),
            unclaim_rebuild: Script::new(include_str!("lua/unclaim_rebuild.lua")),
            health: Script::new(include_str!("lua/health.lua")),
        }
    }
}
