-- Holds seats and general-admission places for one order, all or nothing.
--
-- KEYS[1]: loaded marker of the event (STRING)
-- KEYS[2]: seats of the event (HASH seat key -> "H|order|until_ms" or "S|order")
-- KEYS[3]: general-admission entries (HASH "zone|order" -> "H|quantity|until_ms" or "S|quantity")
-- KEYS[4]: general-admission taken places (HASH zone -> sum of the quantities in KEYS[3])
-- KEYS[5]: general-admission deadlines (ZSET "zone|order" scored by until_ms; held entries only)
-- ARGV[1]: the order id (the holder)
-- ARGV[2]: now, milliseconds since the epoch (the caller's clock)
-- ARGV[3]: until, milliseconds since the epoch (when the new holds lapse)
-- ARGV[4]: S, the number of seats
-- ARGV[5 .. 4+S]: seat keys (zone:row:number)
-- ARGV[5+S ..]: general-admission triples: zone, quantity, capacity
-- Returns: {"not_loaded"} when the marker is missing (nothing changed),
--          {"held"} when every item is now held by the order,
--          {"taken", {seat keys}, {zones}} naming every conflict (no hold changed; lapsed
--          general-admission entries may have been purged, which nobody can observe).
--
-- A seat is free when absent, when its hold lapsed (until_ms <= now), when it belongs to this order,
-- or when its value is unreadable (unreadable values are overwritten). A seat this order bought
-- stays sold, and so do general-admission places it bought in a zone. Lapsed general-admission
-- entries are purged (all zones of the event) before counting.

local loaded, seats, general, general_taken, general_deadlines = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local order = ARGV[1]
local now_arg = ARGV[2]
local now = tonumber(now_arg)
local until_ms = ARGV[3]
local seat_count = tonumber(ARGV[4])

if redis.call('EXISTS', loaded) == 0 then
  return {'not_loaded'}
end

-- A hyphenated UUID, the only form order ids are written in.
local uuid = '%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x'

-- state ("H"/"S"), holder and deadline of a seat value; nil for a missing or unreadable value.
local function parse_seat(value)
  if not value then return nil end
  local holder, deadline = string.match(value, '^H|(' .. uuid .. ')|(%d+)$')
  if holder then return 'H', holder, tonumber(deadline) end
  holder = string.match(value, '^S|(' .. uuid .. ')$')
  if holder then return 'S', holder end
  return nil
end

-- state ("H"/"S"), quantity and deadline of a general-admission entry; nil when unreadable.
local function parse_general(value)
  if not value then return nil end
  local quantity, deadline = string.match(value, '^H|(%d+)|(%d+)$')
  if quantity then return 'H', tonumber(quantity), tonumber(deadline) end
  quantity = string.match(value, '^S|(%d+)$')
  if quantity then return 'S', tonumber(quantity) end
  return nil
end

local taken_seats = {}
local own_sold = {}
for i = 5, 4 + seat_count do
  local seat = ARGV[i]
  local state, holder, deadline = parse_seat(redis.call('HGET', seats, seat))
  if state and holder ~= order and (state == 'S' or deadline > now) then
    table.insert(taken_seats, seat)
  elseif state == 'S' and holder == order then
    own_sold[seat] = true
  end
end

local zones = {}
local first_zone_arg = 5 + seat_count
if first_zone_arg <= #ARGV then
  -- Lapsed holds count as free: drop them and their places before counting.
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', general_deadlines, '-inf', now_arg)) do
    local state, quantity, deadline = parse_general(redis.call('HGET', general, member))
    local zone = string.match(member, '^([^|]+)|')
    if state == 'H' and deadline and deadline <= now then
      redis.call('HDEL', general, member)
      if zone then redis.call('HINCRBY', general_taken, zone, -quantity) end
    end
    redis.call('ZREM', general_deadlines, member)
  end
end

local taken_zones = {}
for i = first_zone_arg, #ARGV, 3 do
  local zone, quantity, capacity = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local member = zone .. '|' .. order
  local own_state, own_quantity = parse_general(redis.call('HGET', general, member))
  own_quantity = own_quantity or 0
  local taken = tonumber(redis.call('HGET', general_taken, zone)) or 0
  if taken - own_quantity + quantity > capacity then
    table.insert(taken_zones, zone)
  end
  table.insert(zones, {zone = zone, member = member, quantity = quantity, own_state = own_state, own_quantity = own_quantity})
end

if #taken_seats > 0 or #taken_zones > 0 then
  return {'taken', taken_seats, taken_zones}
end

local held_value = 'H|' .. order .. '|' .. until_ms
for i = 5, 4 + seat_count do
  local seat = ARGV[i]
  if not own_sold[seat] then
    redis.call('HSET', seats, seat, held_value)
  end
end

for _, z in ipairs(zones) do
  -- Places this order bought already stay sold, as they are.
  if z.own_state ~= 'S' then
    redis.call('HSET', general, z.member, 'H|' .. z.quantity .. '|' .. until_ms)
    redis.call('ZADD', general_deadlines, until_ms, z.member)
    redis.call('HINCRBY', general_taken, z.zone, z.quantity - z.own_quantity)
  end
end

return {'held'}
