-- One admission step: drops the admissions whose window is over, then moves buyers from the head
-- of the queue to admitted, up to the cap minus the live admissions ("concurrent") or up to the
-- rate minus the admissions of now's second ("rate"). One script, so concurrent steps on any
-- number of servers never exceed either.
--
-- KEYS[1]: the event's policy (HASH, see join.lua; this script updates issued, rate_second, rate_count)
-- KEYS[2]: the queue (ZSET customer -> arrival or lottery number; lowest leaves first)
-- KEYS[3]: the live admissions (ZSET customer -> expires_ms): what the cap counts
-- KEYS[4]: the admissions (HASH customer -> "id|expires_ms|state")
-- ARGV[1]: now, ms since the epoch
-- Returns: the new admissions in queue order, flat: {customer, id, expires_ms, ...}.

local policy, queue, live, admissions = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])

local p = redis.call('HMGET', policy, 'mode', 'limit', 'window_ms', 'rate_second', 'rate_count')
if not p[1] then
  return {}
end
local lapsed = redis.call('ZRANGEBYSCORE', live, '-inf', now)
for _, customer in ipairs(lapsed) do
  redis.call('HDEL', admissions, customer)
end
if #lapsed > 0 then
  redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
end

local limit = tonumber(p[2])
local second = math.floor(now / 1000)
local used = 0
if p[1] == 'concurrent' then
  used = redis.call('ZCARD', live)
elseif tonumber(p[4]) == second then
  used = tonumber(p[5])
end
local room = limit - used
if room <= 0 then
  return {}
end
local popped = redis.call('ZPOPMIN', queue, room)
local expires = now + tonumber(p[3])
local out = {}
for i = 1, #popped, 2 do
  local customer = popped[i]
  local id = redis.call('HINCRBY', policy, 'issued', 1)
  redis.call('ZADD', live, expires, customer)
  redis.call('HSET', admissions, customer, string.format('%d|%d|a', id, expires))
  out[#out + 1] = customer
  out[#out + 1] = string.format('%d', id)
  out[#out + 1] = string.format('%d', expires)
end
if p[1] == 'rate' then
  redis.call('HSET', policy, 'rate_second', string.format('%d', second),
    'rate_count', string.format('%d', used + #popped / 2))
end
return out
