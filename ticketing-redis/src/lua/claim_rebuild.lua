-- Claims the right to rebuild one event: takes the rebuild lease (SET NX PX) unless the event is
-- loaded already, and clears what an earlier rebuilder, whose lease lapsed, left half written.
--
-- KEYS[1]: loaded marker of the event (STRING)
-- KEYS[2]: rebuild lease of the event (STRING holding the claimer's token, with a TTL)
-- KEYS[3..6]: the rebuild's staging keys (seats, general-admission entries, taken places,
--             deadlines), laid out as the event's state keys
-- ARGV[1]: the claimer's random token
-- ARGV[2]: lease TTL in milliseconds
-- ARGV[3]: "1" to claim even when the event is loaded (a forced reload), "0" otherwise
-- Returns: "loaded" (nothing done), "claimed" (the lease is now the caller's, the staging keys
--          empty), or "busy" (another caller holds the lease).
--
-- UNLINK frees a large staging key in the background, so this stays O(1) whatever was left.

local loaded, lease = KEYS[1], KEYS[2]
local token, ttl_ms, force = ARGV[1], ARGV[2], ARGV[3]

if force ~= '1' and redis.call('EXISTS', loaded) == 1 then
  return 'loaded'
end
if redis.call('SET', lease, token, 'NX', 'PX', ttl_ms) then
  redis.call('UNLINK', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
  return 'claimed'
end
return 'busy'
