-- cursor: moves the durable cursor of one node's log (docs/redis.md,
-- section 3, "Cursor").
--
-- KEYS: cursor.
-- ARGV: from, to, force.
-- Unless `force` is `1`, refuses (returns -1 - cursor) when the cursor is
-- below `from` (Redis lost data); else raises it to `to` (never lowers it)
-- and returns 1. With `force` `1`, sets it to `to` and returns 1.

local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local from = tonumber(ARGV[1])
local to = tonumber(ARGV[2])
if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
if cur < from then return -1 - cur end
if to > cur then redis.call('SET', KEYS[1], ARGV[2]) end
return 1
