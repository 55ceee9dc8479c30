-- Puts a customer in an event's waiting-room queue (idempotent) and says where they stand.
--
-- KEYS[1]: the event's policy (HASH mode, limit, order, window_ms, issued, arrivals, rate_second, rate_count)
-- KEYS[2]: the queue (ZSET customer scored by arrival number (fifo) or lottery number (random))
-- KEYS[3]: the admissions (HASH customer -> "id|expires_ms|state", state a = admitted, u = in use)
-- ARGV[1]: the customer
-- ARGV[2]: the customer's lottery number (below 2^52), used in the random order
-- ARGV[3]: now, ms since the epoch
-- Returns: {"none"} without a policy; {"admitted", id, expires_ms} with a live admission;
-- else {"waiting", position, mode, limit, order, window_ms}.

local policy, queue, admissions = KEYS[1], KEYS[2], KEYS[3]
local customer, lottery, now = ARGV[1], ARGV[2], tonumber(ARGV[3])

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
if not redis.call('ZSCORE', queue, customer) then
  local score = lottery
  if p[3] ~= 'random' then
    score = redis.call('HINCRBY', policy, 'arrivals', 1)
  end
  redis.call('ZADD', queue, score, customer)
end
local rank = redis.call('ZRANK', queue, customer)
return {'waiting', tostring(rank + 1), p[1], p[2], p[3], p[4]}
