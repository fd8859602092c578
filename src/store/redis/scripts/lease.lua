-- Takes or extends a lease: one webhook's delivery queue, or a fleet duty (RedisFleetDuties).
-- KEYS[1]  the lease key (string: the owner's id, with a TTL)
-- ARGV[1]  the owner asking
-- ARGV[2]  the lease's time to live, ms
-- Returns 1 when the owner holds the lease after the call, 0 while another owner holds it.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
