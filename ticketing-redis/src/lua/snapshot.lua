-- Reads the general-admission places taken in one event, and whether it is loaded. Changes
-- nothing. The seats are not read here: the caller scans their hash in bounded chunks (HSCAN), so
-- a large event's seat map never runs as one long script.
--
-- KEYS[1]: loaded marker of the event (STRING)
-- KEYS[2]: seats of the event (unused; passed so every state script takes the same five keys)
-- KEYS[3]: general-admission entries (HASH "zone|order" -> "H|quantity|until_ms" or "S|quantity")
-- KEYS[4]: general-admission taken places (HASH zone -> sum of the quantities in KEYS[3])
-- KEYS[5]: general-admission deadlines (ZSET "zone|order" scored by until_ms; held entries only)
-- ARGV[1]: now, milliseconds since the epoch (the caller's clock)
-- Returns: {0} when the event is not loaded, otherwise {1, {zone, taken places at now, ...}};
--          zones with no taken place are left out.
-- Cost: one entry per general-admission zone, plus one per lapsed hold that no hold in its zone
-- has purged yet (a hold purges its zone's lapsed entries before it counts).

local loaded, general, general_taken, general_deadlines = KEYS[1], KEYS[3], KEYS[4], KEYS[5]
local now_arg = ARGV[1]
local now = tonumber(now_arg)

if redis.call('EXISTS', loaded) == 0 then
  return {0}
end

local taken = {}
local order_of_zones = {}
local flat = redis.call('HGETALL', general_taken)
for i = 1, #flat, 2 do
  taken[flat[i]] = tonumber(flat[i + 1]) or 0
  table.insert(order_of_zones, flat[i])
end

-- Lapsed holds not purged yet still count in KEYS[4]; subtract them.
for _, member in ipairs(redis.call('ZRANGEBYSCORE', general_deadlines, '-inf', now_arg)) do
  local value = redis.call('HGET', general, member)
  local zone = string.match(member, '^([^|]+)|')
  if value and zone and taken[zone] then
    local quantity, deadline = string.match(value, '^H|(%d+)|(%d+)$')
    if quantity and tonumber(deadline) <= now then
      taken[zone] = taken[zone] - tonumber(quantity)
    end
  end
end

local zones = {}
for _, zone in ipairs(order_of_zones) do
  if taken[zone] > 0 then
    table.insert(zones, zone)
    table.insert(zones, taken[zone])
  end
end

return {1, zones}
