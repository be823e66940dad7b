-- counters: keeps the totals of `stats` the sums of every package's
-- counts (docs/redis.md, section 3, step 4). Returns 1.
--
-- KEYS: stats, counted.
-- ARGV: pairs of package (`author/package`) and its counts (JSON), for any
-- number of packages: for each in turn, adds its counts minus those already
-- counted for it into `stats` (summed over the call, one `HINCRBY` per
-- total) and records them in `counted`.

local totals = {}
for i = 1, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[2], ARGV[i])
  local new = cjson.decode(ARGV[i + 1])
  local prev = {}
  if old then prev = cjson.decode(old) else totals['packages'] = (totals['packages'] or 0) + 1 end
  for k, v in pairs(new) do
    totals[k] = (totals[k] or 0) + v - (prev[k] or 0)
  end
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
for k, d in pairs(totals) do
  if d ~= 0 then redis.call('HINCRBY', KEYS[1], k, d) end
end
return 1
