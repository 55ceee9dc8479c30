-- Reads the stored states of some seats of one event (one bounded chunk of a zone's seats).
-- Changes nothing.
--
-- KEYS[1]: loaded marker of the event (STRING)
-- KEYS[2]: seats of the event (HASH seat key -> "H|order|until_ms" or "S|order")
-- ARGV[1..n]: the seat keys to read
-- Returns: {0} when the event is not loaded, otherwise {1, {value or false, ...}} with one value
--          per seat key, in ARGV order (false for a free seat). Values are raw: the caller drops
--          lapsed holds.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0}
end
if #ARGV == 0 then
  return {1, {}}
end
return {1, redis.call('HMGET', KEYS[2], unpack(ARGV))}
