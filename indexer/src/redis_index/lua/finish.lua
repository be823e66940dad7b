-- finish: marks the global entries of state `hash` written (docs/redis.md,
-- section 3, step 4). Returns 0 when the package's `hash` is no longer
-- `hash` (the phase is done again); else deletes `stale`, sets `synced` to
-- `hash` and returns 1.
--
-- KEYS: pkg.
-- ARGV: hash.

if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'stale')
redis.call('HSET', KEYS[1], 'synced', ARGV[1])
return 1
