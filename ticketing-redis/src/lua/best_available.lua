-- Chooses the best block of adjacent free seats in some rows of one zone and holds it for one
-- order, in one step (ticketing-core's choose_block, written again in Lua: the choice must be
-- made where the hold is, or two buyers could be given the same block).
--
-- KEYS[1]: loaded marker of the event (STRING)
-- KEYS[2]: seats of the event (HASH seat key -> "H|order|until_ms" or "S|order")
-- ARGV[1]: the order id (the holder)
-- ARGV[2]: now, milliseconds since the epoch (the caller's clock)
-- ARGV[3]: until, milliseconds since the epoch (when the new holds lapse)
-- ARGV[4]: the zone code
-- ARGV[5]: quantity, the number of adjacent seats wanted (at least 1)
-- ARGV[6]: max_orphans: only blocks that leave at most this many orphans are chosen (0, 1 or 2)
-- ARGV[7]: k, the number of excluded seats that follow
-- ARGV[8 .. 7 + k]: seat keys taken whatever their state (kept back for a sales channel the
--             buyer is not of), of these rows only
-- ARGV[8 + k ..]: pairs row label, seats in the row; the rows to choose from, best first (one
--             chunk of the zone's rows: the caller bounds how many seats one call reads)
-- Returns: {"not_loaded"} when the marker is missing (nothing changed),
--          {"held", row label, first seat number} when the block is now held by the order,
--          {"none", fewest} when no block with at most max_orphans orphans exists in these rows
--          (nothing changed); fewest is the fewest orphans any block here would leave, -1 when
--          these rows have no block of that size at all.
--
-- A seat is free when absent, when its hold lapsed (until_ms <= now), when this order holds it,
-- or when its value is unreadable (it is overwritten); a sold seat is taken, whoever bought it.
-- A block's orphans: the free seats it leaves alone on either side in its free run (a leftover of
-- exactly one seat). Among the allowed blocks the best has the fewest orphans, then the earliest
-- row, then its centre nearest the row's centre (in half seats), then the lowest first seat.

local loaded, seats = KEYS[1], KEYS[2]
local order = ARGV[1]
local now = tonumber(ARGV[2])
local until_ms = ARGV[3]
local zone = ARGV[4]
local quantity = tonumber(ARGV[5])
local max_orphans = tonumber(ARGV[6])
local excluded_count = tonumber(ARGV[7])
local excluded = {}
for i = 8, 7 + excluded_count do excluded[ARGV[i]] = true end
local rows_from = 8 + excluded_count

if redis.call('EXISTS', loaded) == 0 then
  return {'not_loaded'}
end

local uuid = '%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x'

-- Whether a stored seat value leaves the seat free for this order.
local function is_free(value)
  if not value then return true end
  local holder, deadline = string.match(value, '^H|(' .. uuid .. ')|(%d+)$')
  if holder then return holder == order or tonumber(deadline) <= now end
  if string.match(value, '^S|' .. uuid .. '$') then return false end
  return true
end

-- The free flags of a row's seats 1..count, read by key in slices (unpack has a limit).
local function free_seats(prefix, count)
  local free = {}
  local first = 1
  while first <= count do
    local last = math.min(count, first + 999)
    local fields = {}
    for n = first, last do fields[#fields + 1] = prefix .. n end
    local values = redis.call('HMGET', seats, unpack(fields))
    for i = 1, #values do
      free[first + i - 1] = is_free(values[i] or nil) and not excluded[fields[i]]
    end
    first = last + 1
  end
  return free
end

-- Whether key a ranks before key b (both {orphans, row, distance, first}).
local function better(a, b)
  for i = 1, 4 do
    if a[i] ~= b[i] then return a[i] < b[i] end
  end
  return false
end

local best = nil
local best_label = nil
local fewest = -1
local row_index = 0
for i = rows_from, #ARGV, 2 do
  if best and best[1] == 0 then break end
  row_index = row_index + 1
  local label, count = ARGV[i], tonumber(ARGV[i + 1])
  if count >= quantity then
    local free = free_seats(zone .. ':' .. label .. ':', count)
    local n = 1
    while n <= count do
      if not free[n] then
        n = n + 1
      else
        local start = n
        while n <= count and free[n] do n = n + 1 end
        local length = n - start
        if length >= quantity then
          for first = start, start + length - quantity do
            local left = first - start
            local right = length - quantity - left
            local orphans = (left == 1 and 1 or 0) + (right == 1 and 1 or 0)
            if fewest < 0 or orphans < fewest then fewest = orphans end
            if orphans <= max_orphans then
              local key = {orphans, row_index, math.abs(2 * first + quantity - 1 - (count + 1)), first}
              if not best or better(key, best) then
                best = key
                best_label = label
              end
            end
          end
        end
      end
    end
  end
end

if not best then
  return {'none', fewest}
end

local held_value = 'H|' .. order .. '|' .. until_ms
local prefix = zone .. ':' .. best_label .. ':'
for n = best[4], best[4] + quantity - 1 do
  redis.call('HSET', seats, prefix .. n, held_value)
end
return {'held', best_label, best[4]}
