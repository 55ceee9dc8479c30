-- Frees the rebuild lease after a failed rebuild, and what it staged, fenced: only the caller's
-- own lease is deleted.
--
-- KEYS[1]: rebuild lease of the event (STRING holding the claimer's token)
-- KEYS[2..5]: the rebuild's staging keys
-- ARGV[1]: the claimer's token
-- Returns: 1 when the lease was deleted, 0 when it was not the caller's (or lapsed).

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  return redis.call('DEL', KEYS[1])
end
return 0
