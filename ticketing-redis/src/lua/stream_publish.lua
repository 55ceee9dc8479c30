-- Appends outbox entries to the event stream, each with the entry id "<seq>-0", in order.
--
-- KEYS[1]: the event stream (STREAM)
-- ARGV[1]: MAXLEN for approximate trimming after the appends; "0" keeps everything
-- ARGV[2 ..]: four values per entry, in increasing seq order: seq, event id, kind, payload (JSON)
-- Returns: {published, duplicates}
--
-- An entry whose id is equal to or smaller than the stream's last generated id was published
-- before (a relay republishing after a crash, or a second relay): Redis refuses the XADD and the
-- entry counts as a duplicate. The last generated id survives trimming and XDEL, so a duplicate is
-- recognised even when the old entry is gone. Any other error stops the script; the entries
-- appended so far stay (a prefix, which the relay republishes as duplicates).

local stream = KEYS[1]
local maxlen = tonumber(ARGV[1])
local published, duplicates = 0, 0
for i = 2, #ARGV, 4 do
    local seq = ARGV[i]
    local added = redis.pcall('XADD', stream, seq .. '-0',
        'seq', seq, 'event', ARGV[i + 1], 'kind', ARGV[i + 2], 'payload', ARGV[i + 3])
    if type(added) == 'table' and added.err then
        if string.find(added.err, 'equal or smaller', 1, true) then
            duplicates = duplicates + 1
        else
            return redis.error_reply(added.err)
        end
    else
        published = published + 1
    end
end
if maxlen > 0 then
    redis.call('XTRIM', stream, 'MAXLEN', '~', maxlen)
end
return {published, duplicates}
