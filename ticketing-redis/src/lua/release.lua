-- Frees what one order holds or bought, fenced: entries of other orders are left alone.
--
-- KEYS[1]: loaded marker of the event (STRING)
-- KEYS[2]: seats of the event (HASH seat key -> "H|order|until_ms" or "S|order")
-- KEYS[3]: general-admission entries (HASH "zone|order" -> "H|quantity|until_ms" or "S|quantity")
-- KEYS[4]: general-admission taken places (HASH zone -> sum of the quantities in KEYS[3])
-- KEYS[5]: general-admission deadlines (ZSET "zone|order" scored by until_ms; held entries only)
-- ARGV[1]: the order id
-- ARGV[2]: S, the number of seats
-- ARGV[3 .. 2+S]: seat keys (zone:row:number)
-- ARGV[3+S ..]: general-admission zones
-- Returns: the number of seats and zones freed (0 when the event is not loaded).

local loaded, seats, general, general_taken, general_deadlines = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local order = ARGV[1]
local seat_count = tonumber(ARGV[2])

if redis.call('EXISTS', loaded) == 0 then
  return 0
end

local freed = 0
for i = 3, 2 + seat_count do
  local seat = ARGV[i]
  local value = redis.call('HGET', seats, seat)
  if value and string.match(value, '^[HS]|([^|]+)') == order then
    redis.call('HDEL', seats, seat)
    freed = freed + 1
  end
end

for i = 3 + seat_count, #ARGV do
  local zone = ARGV[i]
  local member = zone .. '|' .. order
  local value = redis.call('HGET', general, member)
  if value then
    local quantity = tonumber(string.match(value, '^[HS]|(%d+)')) or 0
    redis.call('HDEL', general, member)
    redis.call('ZREM', general_deadlines, member)
    redis.call('HINCRBY', general_taken, zone, -quantity)
    freed = freed + 1
  end
end

return freed
