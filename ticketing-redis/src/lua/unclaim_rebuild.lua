-- Frees the rebuild lock after a failed rebuild, fenced: only the caller's own lock is deleted.
--
-- KEYS[1]: rebuild lock of the event (STRING holding the claimer's token)
-- ARGV[1]: the claimer's token
-- Returns: 1 when the lock was deleted, 0 when it was not the caller's (or lapsed).

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
