-- Finishes a rebuild: puts the staged state in place of the event's state, marks the event loaded
-- and frees the rebuild lease, all at once. Fenced: does nothing unless the lease is still the
-- caller's. O(1) whatever the size of the event: RENAME moves a key, UNLINK frees the replaced
-- state in the background.
--
-- KEYS[1]: loaded marker of the event (STRING)
-- KEYS[2..5]: the event's state: seats, general-admission entries, taken places, deadlines
-- KEYS[6]: rebuild lease of the event (STRING holding the claimer's token)
-- KEYS[7..10]: the staging keys, in the order of KEYS[2..5]
-- ARGV[1]: the claimer's token
-- Returns: 1 when the state was replaced, 0 when the lease is no longer the caller's (nothing
--          done).

local loaded, lease = KEYS[1], KEYS[6]

if redis.call('GET', lease) ~= ARGV[1] then
  return 0
end

redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
for i = 2, 5 do
  local staged = KEYS[i + 5]
  if redis.call('EXISTS', staged) == 1 then
    redis.call('RENAME', staged, KEYS[i])
  end
end

redis.call('SET', loaded, '1')
redis.call('DEL', lease)
return 1
