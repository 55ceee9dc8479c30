-- Claims the right to rebuild one event: takes the short rebuild lock (SET NX PX) unless the event
-- is loaded already.
--
-- KEYS[1]: loaded marker of the event (STRING)
-- KEYS[2]: rebuild lock of the event (STRING holding the claimer's token, with a TTL)
-- ARGV[1]: the claimer's random token
-- ARGV[2]: lock TTL in milliseconds
-- ARGV[3]: "1" to claim even when the event is loaded (a forced reload), "0" otherwise
-- Returns: "loaded" (nothing done), "claimed" (the lock is now the caller's), or "busy" (another
--          caller holds the lock).

local loaded, lock = KEYS[1], KEYS[2]
local token, ttl_ms, force = ARGV[1], ARGV[2], ARGV[3]

if force ~= '1' and redis.call('EXISTS', loaded) == 1 then
  return 'loaded'
end
if redis.call('SET', lock, token, 'NX', 'PX', ttl_ms) then
  return 'claimed'
end
return 'busy'
