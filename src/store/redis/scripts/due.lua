-- Counts the users of one bucket whose earliest session expired, looking only at the shards the
-- timer says may have some; a shard that has none gets its real earliest expiry back in the
-- timer, so heartbeats that moved expiries later cost one look, not one per sweep.
-- KEYS[1] - the bucket's timer: shard scored at or before its earliest expiresAt
-- ARGV[1] - now, epoch ms
-- ARGV[2] - the bucket's expiry shard keys without the shard
-- Returns how many users are due.
local now = tonumber(ARGV[1])
local total = 0
for _, shard in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local due = ARGV[2] .. shard
  local count = redis.call('ZCOUNT', due, '-inf', now)
  if count == 0 then
    local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
    if first[2] then
      redis.call('ZADD', KEYS[1], first[2], shard)
    else
      redis.call('ZREM', KEYS[1], shard)
    end
  end
  total = total + count
end
return total
