-- Writes one chunk of a rebuild into the staging keys and renews the rebuild lease, fenced: does
-- nothing unless the lease is still the caller's. The chunk is bounded by the caller
-- (`RedisSeatLockConfig::rebuild_chunk` holds), so that no call blocks Redis for long.
--
-- KEYS[1]: rebuild lease of the event (STRING holding the claimer's token, with a TTL)
-- KEYS[2]: staged seats (HASH seat key -> "H|order|until_ms" or "S|order")
-- KEYS[3]: staged general-admission entries (HASH "zone|order" -> "H|quantity|until_ms" or
--          "S|quantity")
-- KEYS[4]: staged general-admission taken places (HASH zone -> sum of the quantities in KEYS[3])
-- KEYS[5]: staged general-admission deadlines (ZSET "zone|order" scored by until_ms; held only)
-- ARGV[1]: the claimer's token
-- ARGV[2]: lease TTL in milliseconds (the renewal)
-- ARGV[3]: S, the number of seats
-- ARGV[4 .. 3+2S]: seat pairs: seat key, encoded value ("H|order|until_ms" or "S|order")
-- ARGV[4+2S ..]: general-admission quadruples: zone, order, quantity, until_ms ("" when sold)
-- Returns: 1 when the chunk was written and the lease renewed, 0 when the lease is no longer the
--          caller's (nothing done).
--
-- Chunks merge with what earlier chunks staged: one order's places in a zone add up (sold if any
-- is, else held until the latest deadline); a seat staged twice, which the database forbids, keeps
-- the sold or the later hold.

local lease, seats, general, general_taken, general_deadlines = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local token, ttl_ms = ARGV[1], ARGV[2]
local seat_count = tonumber(ARGV[3])

if redis.call('GET', lease) ~= token then
  return 0
end
redis.call('PEXPIRE', lease, ttl_ms)

-- The deadline of a seat value, math.huge when sold, nil when unreadable.
local function seat_deadline(value)
  if string.sub(value, 1, 2) == 'S|' then return math.huge end
  return tonumber(string.match(value, '^H|[^|]+|(%d+)$'))
end

local last_seat_arg = 3 + 2 * seat_count
for i = 4, last_seat_arg, 2 do
  local seat, value = ARGV[i], ARGV[i + 1]
  -- One call for a seat not staged yet, the common case.
  if redis.call('HSETNX', seats, seat, value) == 0 then
    local staged = redis.call('HGET', seats, seat)
    if (seat_deadline(value) or 0) > (seat_deadline(staged) or 0) then
      redis.call('HSET', seats, seat, value)
    end
  end
end

for i = last_seat_arg + 1, #ARGV, 4 do
  local zone, order, quantity, until_ms = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local member = zone .. '|' .. order
  local staged = redis.call('HGET', general, member)
  local sold = until_ms == ''
  local total = quantity
  if staged then
    local staged_quantity, staged_until = string.match(staged, '^H|(%d+)|(%d+)$')
    if not staged_quantity then
      staged_quantity = string.match(staged, '^S|(%d+)$')
      sold = true
    elseif not sold and tonumber(staged_until) > tonumber(until_ms) then
      until_ms = staged_until
    end
    total = total + tonumber(staged_quantity)
  end
  if sold then
    redis.call('HSET', general, member, 'S|' .. total)
    redis.call('ZREM', general_deadlines, member)
  else
    redis.call('HSET', general, member, 'H|' .. total .. '|' .. until_ms)
    redis.call('ZADD', general_deadlines, until_ms, member)
  end
  redis.call('HINCRBY', general_taken, zone, quantity)
end

return 1
