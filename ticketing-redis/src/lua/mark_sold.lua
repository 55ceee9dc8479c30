-- Marks seats and general-admission places sold to one order: no deadline, any other holder of a
-- seat is overwritten (the database recorded this order's payment). A free seat (no entry) and a
-- zone without this order's entry stay as they are: a release that overtook this mark (a refund
-- committed after the payment) must win, and a rebuild reads sold seats from the database.
--
-- KEYS[1]: loaded marker of the event (STRING)
-- KEYS[2]: seats of the event (HASH seat key -> "H|order|until_ms" or "S|order")
-- KEYS[3]: general-admission entries (HASH "zone|order" -> "H|quantity|until_ms" or "S|quantity")
-- KEYS[4]: general-admission taken places (HASH zone -> sum of the quantities in KEYS[3])
-- KEYS[5]: general-admission deadlines (ZSET "zone|order" scored by until_ms; held entries only)
-- ARGV[1]: the order id
-- ARGV[2]: S, the number of seats
-- ARGV[3 .. 2+S]: seat keys (zone:row:number)
-- ARGV[3+S ..]: general-admission pairs: zone, quantity
-- Returns: 1 when written, 0 when the event is not loaded (nothing written; the next rebuild reads
--          the payment from the database).

local loaded, seats, general, general_taken, general_deadlines = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local order = ARGV[1]
local seat_count = tonumber(ARGV[2])

if redis.call('EXISTS', loaded) == 0 then
  return 0
end

local sold_value = 'S|' .. order
for i = 3, 2 + seat_count do
  if redis.call('HEXISTS', seats, ARGV[i]) == 1 then
    redis.call('HSET', seats, ARGV[i], sold_value)
  end
end

for i = 3 + seat_count, #ARGV, 2 do
  local zone, quantity = ARGV[i], tonumber(ARGV[i + 1])
  local member = zone .. '|' .. order
  local value = redis.call('HGET', general, member)
  if value then
    local own_quantity = tonumber(string.match(value, '^[HS]|(%d+)')) or 0
    redis.call('HSET', general, member, 'S|' .. quantity)
    redis.call('ZREM', general_deadlines, member)
    redis.call('HINCRBY', general_taken, zone, quantity - own_quantity)
  end
end

return 1
