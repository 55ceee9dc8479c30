-- The raw-limit probe: a one-seat hold, the smallest script that does what a hold does.
--
-- KEYS[1]: seats of the event (HASH seat key -> "order|until_ms")
-- ARGV[1]: seat key
-- ARGV[2]: order id (the holder)
-- ARGV[3]: now, milliseconds since the epoch
-- ARGV[4]: until, milliseconds since the epoch
-- Returns: 1 when the seat is now held by the order, 0 when another live hold has it.

local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
    local holder, deadline = string.match(current, '^(.-)|(%d+)$')
    if holder ~= ARGV[2] and deadline and tonumber(deadline) > tonumber(ARGV[3]) then
        return 0
    end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[4])
return 1
