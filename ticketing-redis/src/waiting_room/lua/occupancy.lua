-- How full an event's waiting room is.
--
-- KEYS[1]: the queue (ZSET)
-- KEYS[2]: the live admissions (ZSET customer -> expires_ms)
-- ARGV[1]: now, ms since the epoch
-- Returns: {waiting, admissions whose window is not over at now}.

return {redis.call('ZCARD', KEYS[1]), redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')}
