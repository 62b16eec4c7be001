-- Blocks a key for ARGV[1] ms from now unless a longer penalty is already set.
-- KEYS[1]: the key's penalty key.
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 0
