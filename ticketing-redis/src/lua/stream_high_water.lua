-- The highest outbox seq the event stream ever held: its last generated id ("<seq>-0").
--
-- KEYS[1]: the event stream (STREAM)
-- Returns: the seq as a string, "0" when the stream does not exist (never written, or lost).

local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
if type(info) == 'table' and info.err then
    if redis.call('EXISTS', KEYS[1]) == 0 then
        return '0'
    end
    return redis.error_reply(info.err)
end
for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
        local id = info[i + 1]
        return string.sub(id, 1, string.find(id, '-', 1, true) - 1)
    end
end
return redis.error_reply('XINFO STREAM answered without last-generated-id')
