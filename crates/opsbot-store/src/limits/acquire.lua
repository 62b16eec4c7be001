-- Counts one hit in every window of KEYS, all or none (opsbot_core::RateWindows).
-- KEYS: for each limited key, its window (a sorted set of hits, score = ms) and then
-- its penalty (a plain key with PX). ARGV: limit, window in ms, a member id unique to
-- this call. Returns 0 when counted, else the ms to wait (nothing counted).
-- Time is the server's, so the instances' clocks do not matter.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local wait = 0
for i = 1, #KEYS, 2 do
  local left = redis.call('PTTL', KEYS[i + 1])
  if left > wait then wait = left end
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local until_free = tonumber(oldest[2]) + window - now
    if until_free > wait then wait = until_free end
  end
end
if wait > 0 then return wait end
for i = 1, #KEYS, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[3] .. ':' .. i)
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
