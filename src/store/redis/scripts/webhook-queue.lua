-- Creates an endpoint's queue (a stream and its consumer group) unless it has one. A script, not
-- XGROUP itself, so that the key is declared: creates issued in one tick are pipelined, and a
-- cluster client sends each to its key's node (XGROUP's key is not its first argument).
-- KEYS[1]  the endpoint's queue stream
-- ARGV[1]  the consumer group
-- Returns 1 when created, 0 when the queue had its group already.
local created = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if type(created) == 'table' and created.err then
  if string.find(created.err, 'BUSYGROUP', 1, true) then return 0 end
  return redis.error_reply(created.err)
end
return 1
