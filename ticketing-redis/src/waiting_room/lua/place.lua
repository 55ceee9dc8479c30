-- Where a customer stands in an event's waiting room; changes nothing.
--
-- KEYS[1]: the event's policy (HASH, see join.lua)
-- KEYS[2]: the queue (ZSET customer -> arrival or lottery number)
-- KEYS[3]: the admissions (HASH customer -> "id|expires_ms|state")
-- ARGV[1]: the customer
-- ARGV[2]: now, ms since the epoch
-- Returns: {"none"} without a policy; {"admitted", id, expires_ms} with a live admission;
-- {"waiting", position, mode, limit, order, window_ms} in the queue; else {"absent"}.

local policy, queue, admissions = KEYS[1], KEYS[2], KEYS[3]
local customer, now = ARGV[1], tonumber(ARGV[2])

local p = redis.call('HMGET', policy, 'mode', 'limit', 'order', 'window_ms')
if not p[1] then
  return {'none'}
end
local entry = redis.call('HGET', admissions, customer)
if entry then
  local id, expires = string.match(entry, '^(%d+)|(%d+)|')
  if tonumber(expires) > now then
    return {'admitted', id, expires}
  end
end
local rank = redis.call('ZRANK', queue, customer)
if not rank then
  return {'absent'}
end
return {'waiting', tostring(rank + 1), p[1], p[2], p[3], p[4]}
