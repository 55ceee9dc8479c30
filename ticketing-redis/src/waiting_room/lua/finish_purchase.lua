-- Ends a purchase the gate granted: a bought admission is used up (deleted, so its token is
-- refused and it no longer counts against the cap); otherwise it is live again.
--
-- KEYS[1]: the admissions (HASH customer -> "id|expires_ms|state")
-- KEYS[2]: the live admissions (ZSET customer -> expires_ms)
-- ARGV[1]: the customer
-- ARGV[2]: the admission id
-- ARGV[3]: "1" when the purchase bought, "0" otherwise
-- Returns: 1 when the admission was in use by this id, else 0 (nothing changed).

local admissions, live = KEYS[1], KEYS[2]
local customer, shown, bought = ARGV[1], ARGV[2], ARGV[3]

local entry = redis.call('HGET', admissions, customer)
if not entry then
  return 0
end
local id, expires, state = string.match(entry, '^(%d+)|(%d+)|(%a)$')
if id ~= shown or state ~= 'u' then
  return 0
end
if bought == '1' then
  redis.call('HDEL', admissions, customer)
  redis.call('ZREM', live, customer)
else
  redis.call('HSET', admissions, customer, id .. '|' .. expires .. '|a')
end
return 1
