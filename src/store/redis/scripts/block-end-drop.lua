-- Forgets one side's record of an ended block (RedisProfileStore.dropBlockEnds) while it is still
-- the one listed and no block stands between the users, and says whether its index entry may go.
-- KEYS[1] - the viewer's block sights (hash: target -> sight; `e<since>:<saw>` once ended)
-- KEYS[2] - the viewer's blocks (set)
-- KEYS[3] - the users who blocked the viewer (set); all three in the viewer's slot
-- ARGV[1] - the target
-- ARGV[2] - the record as listed, up to its saw: `e<since>:`
-- Returns 1 when the record is gone or no ended block's (an unblock that failed before removing
-- its block leaves its record under the block: the unblock's retry lists it again), 0 when a
-- later end replaced it (its index entry, scored by that end, stays).
local sight = redis.call('HGET', KEYS[1], ARGV[1])
if not sight or string.sub(sight, 1, 1) ~= 'e' then return 1 end
if string.sub(sight, 1, #ARGV[2]) ~= ARGV[2] then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 or redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then
  return 1
end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
