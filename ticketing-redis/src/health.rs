//! The health check for the HTTP server's readiness probe.

use ticketing_core::Result;

use crate::error::RedisLockError;
use crate::lock::{RedisSeatLock, random_token};
use crate::values;

impl RedisSeatLock {
    /// Checks that Redis answers *through the script path*: runs a Lua script by EVALSHA (loading
    /// it on NOSCRIPT, as every operation does) and checks it echoes a random nonce. A plain PING
    /// would pass on a server whose scripting is broken or disabled.
    ///
    /// Fails with [`Error::Unavailable`](ticketing_core::Error::Unavailable) when Redis cannot be
    /// reached.
    pub async fn ping_scripts(&self) -> Result<()> {
        const SCRIPT: &str = "health";
        let nonce = random_token();
        let mut invocation = self.scripts.health.prepare_invoke();
        invocation.arg(&nonce);
        let reply = self.run(&invocation).await?;
        let echoed = values::text(SCRIPT, &reply)?;
        if echoed != nonce {
            return Err(RedisLockError::reply(SCRIPT, format!("echoed {echoed:?}")).into());
        }
        Ok(())
    }
}
