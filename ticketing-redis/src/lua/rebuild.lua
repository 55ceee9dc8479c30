-- Replaces one event's state with the active holds read from the database, marks the event loaded
-- and frees the rebuild lock, all at once. Fenced: does nothing unless the lock is still the caller's.
--
-- KEYS[1]: loaded marker of the event (STRING)
-- KEYS[2]: seats of the event (HASH seat key -> "H|order|until_ms" or "S|order")
-- KEYS[3]: general-admission entries (HASH "zone|order" -> "H|quantity|until_ms" or "S|quantity")
-- KEYS[4]: general-admission taken places (HASH zone -> sum of the quantities in KEYS[3])
-- KEYS[5]: general-admission deadlines (ZSET "zone|order" scored by until_ms; held entries only)
-- KEYS[6]: rebuild lock of the event (STRING holding the claimer's token)
-- ARGV[1]: the claimer's token
-- ARGV[2]: S, the number of seats
-- ARGV[3 .. 2+2S]: seat pairs: seat key, encoded value ("H|order|until_ms" or "S|order")
-- ARGV[3+2S ..]: general-admission quadruples: zone, order, quantity, until_ms ("" when sold)
-- Returns: 1 when the state was replaced, 0 when the lock is no longer the caller's (nothing done).

local loaded, seats, general, general_taken, general_deadlines, lock =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token = ARGV[1]
local seat_count = tonumber(ARGV[2])

if redis.call('GET', lock) ~= token then
  return 0
end

redis.call('DEL', seats, general, general_taken, general_deadlines)

local last_seat_arg = 2 + 2 * seat_count
for i = 3, last_seat_arg, 2 do
  redis.call('HSET', seats, ARGV[i], ARGV[i + 1])
end

for i = last_seat_arg + 1, #ARGV, 4 do
  local zone, order, quantity, until_ms = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local member = zone .. '|' .. order
  if until_ms == '' then
    redis.call('HSET', general, member, 'S|' .. quantity)
  else
    redis.call('HSET', general, member, 'H|' .. quantity .. '|' .. until_ms)
    redis.call('ZADD', general_deadlines, until_ms, member)
  end
  redis.call('HINCRBY', general_taken, zone, quantity)
end

redis.call('SET', loaded, '1')
redis.call('DEL', lock)
return 1
