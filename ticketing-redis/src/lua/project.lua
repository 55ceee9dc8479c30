-- Applies one event-stream entry to the read model and acknowledges it, atomically and at most
-- once per seq.
--
-- KEYS[1]: the event stream (STREAM)
-- KEYS[2]: the last applied seq (STRING)
-- KEYS[3]: the event's totals (HASH field -> integer; plus "currency")
-- KEYS[4]: the event's per-zone totals (HASH "<zone>:<field>" -> integer)
-- ARGV[1]: the consumer group, or "" when the entry came from another broker (nothing to acknowledge)
-- ARGV[2]: the entry id ("" with no group)
-- ARGV[3]: the entry's seq
-- ARGV[4]: the currency code of the amounts
-- ARGV[5]: E, the number of event field/delta pairs that follow
-- ARGV[6 .. 5+2E]: event field, delta, …
-- ARGV[6+2E ..]: zone field, delta, …
-- Returns: "applied" (changed and acknowledged),
--          "duplicate" (seq <= last applied: nothing changed, acknowledged),
--          "gap" (seq > last applied + 1: an earlier entry is still to come; nothing changed,
--          not acknowledged, so it is delivered again).
--
-- Entries are applied strictly in seq order, so several consumers of one group (which split the
-- entries between them) can never apply a later change before an earlier one.

local stream, last_key, totals, zones = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, id = ARGV[1], ARGV[2]
local seq = tonumber(ARGV[3])
local last = tonumber(redis.call('GET', last_key) or '0')
local function ack()
    if group ~= '' then
        redis.call('XACK', stream, group, id)
    end
end
if seq <= last then
    ack()
    return 'duplicate'
end
if seq ~= last + 1 then
    return 'gap'
end
redis.call('HSET', totals, 'currency', ARGV[4])
local event_pairs = tonumber(ARGV[5])
local i = 6
for _ = 1, event_pairs do
    redis.call('HINCRBY', totals, ARGV[i], ARGV[i + 1])
    i = i + 2
end
while i <= #ARGV do
    redis.call('HINCRBY', zones, ARGV[i], ARGV[i + 1])
    i = i + 2
end
redis.call('SET', last_key, ARGV[3])
ack()
return 'applied'
