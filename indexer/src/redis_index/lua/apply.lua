-- apply: the compare-and-set write of one package's keys (docs/redis.md,
-- section 3, step 3). Unless the package's `hash` is still the one the
-- writer read, writes nothing and returns 0; else writes the differences,
-- sets `hash` to the new hash and returns 1.
--
-- KEYS: pkg, rel, rec, ver, yanked.
-- ARGV: expected hash, new hash, then nine sections, each a count and its
-- items: rel HSET pairs, rel HDEL, rec HSET pairs, rec HDEL, ver ZADD
-- (score, member) pairs, ver ZREM, yanked SADD, yanked SREM, pkg HSET
-- pairs. Each section is one variadic command (or several of 256 items,
-- within the bounds of Lua's stack).

local cur = redis.call('HGET', KEYS[1], 'hash')
if not cur then cur = '' end
if cur ~= ARGV[1] then return 0 end
local i = 3
local function section(cmd, key, width)
  local n = tonumber(ARGV[i]); i = i + 1
  while n > 0 do
    local k = math.min(n, 256)
    redis.call(cmd, key, unpack(ARGV, i, i + k * width - 1))
    i = i + k * width
    n = n - k
  end
end
section('HSET', KEYS[2], 2)
section('HDEL', KEYS[2], 1)
section('HSET', KEYS[3], 2)
section('HDEL', KEYS[3], 1)
section('ZADD', KEYS[4], 2)
section('ZREM', KEYS[4], 1)
section('SADD', KEYS[5], 1)
section('SREM', KEYS[5], 1)
section('HSET', KEYS[1], 2)
redis.call('HSET', KEYS[1], 'hash', ARGV[2])
return 1
