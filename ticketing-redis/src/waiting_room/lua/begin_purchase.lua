-- The purchase gate: marks a customer's live admission in use, if the purchase shows its id.
--
-- KEYS[1]: the event's policy (HASH, see join.lua)
-- KEYS[2]: the admissions (HASH customer -> "id|expires_ms|state", state a = admitted, u = in use)
-- ARGV[1]: the customer
-- ARGV[2]: the admission id the purchase shows ("" for none)
-- ARGV[3]: now, ms since the epoch
-- Returns: "not_required" (no policy), "missing", "not_admitted", "in_use" or "granted".

local policy, admissions = KEYS[1], KEYS[2]
local customer, shown, now = ARGV[1], ARGV[2], tonumber(ARGV[3])

if redis.call('HEXISTS', policy, 'mode') == 0 then
  return 'not_required'
end
if shown == '' then
  return 'missing'
end
local entry = redis.call('HGET', admissions, customer)
if not entry then
  return 'not_admitted'
end
local id, expires, state = string.match(entry, '^(%d+)|(%d+)|(%a)$')
if id ~= shown or tonumber(expires) <= now then
  return 'not_admitted'
end
if state == 'u' then
  return 'in_use'
end
redis.call('HSET', admissions, customer, id .. '|' .. expires .. '|u')
return 'granted'
