-- Trims the event stream to what every consumer group has acknowledged.
--
-- KEYS[1]: the event stream (STREAM)
-- Returns: how many entries were deleted; 0 when the stream or every group is missing.
--
-- A group still needs an entry that it has not been delivered (id above its last-delivered-id)
-- or that is pending (delivered, not acknowledged). So the group's first needed id is its lowest
-- pending id, or the id after its last-delivered-id when nothing is pending; the stream keeps
-- every entry from the lowest of these over all groups (XTRIM MINID, exact). Without a group
-- nothing is trimmed: no consumer has said what it read. One script, so no group can move
-- between the reading and the trimming. The last generated id survives the trim, so the
-- relay's high-water check and duplicate detection are unaffected.

local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then
    return 0
end
local groups = redis.call('XINFO', 'GROUPS', stream)
if #groups == 0 then
    return 0
end

local function parse(id)
    local dash = string.find(id, '-', 1, true)
    return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end

local min_ms, min_seq = nil, nil
for _, group in ipairs(groups) do
    local name, pending, last = nil, 0, '0-0'
    for i = 1, #group, 2 do
        if group[i] == 'name' then
            name = group[i + 1]
        elseif group[i] == 'pending' then
            pending = group[i + 1]
        elseif group[i] == 'last-delivered-id' then
            last = group[i + 1]
        end
    end
    local ms, seq
    if pending > 0 then
        local summary = redis.call('XPENDING', stream, name)
        ms, seq = parse(summary[2])
    else
        ms, seq = parse(last)
        seq = seq + 1
    end
    if min_ms == nil or ms < min_ms or (ms == min_ms and seq < min_seq) then
        min_ms, min_seq = ms, seq
    end
end
return redis.call('XTRIM', stream, 'MINID', string.format('%d-%d', min_ms, min_seq))
