-- word: adds and removes the packages of one search word, and keeps the
-- word list of its bucket (docs/redis.md, section 3, step 4). Returns 1.
--
-- KEYS: `s:{xy}W`, `words:{xy}`.
-- ARGV: the word W, the count of (score, member) pairs to add, the pairs,
-- then the members to remove.
-- Keeps W in the word list exactly while `s:{xy}W` has members.

local n = tonumber(ARGV[2])
local i = 3
while n > 0 do
  local k = math.min(n, 256)
  redis.call('ZADD', KEYS[1], unpack(ARGV, i, i + 2 * k - 1))
  i = i + 2 * k
  n = n - k
end
while i <= #ARGV do
  local j = math.min(#ARGV, i + 255)
  redis.call('ZREM', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
end
return 1
