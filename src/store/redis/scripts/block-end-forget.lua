-- Takes an ended block's record out of the index, unless a later end of the same pair scored it
-- anew meanwhile (RedisProfileStore.dropBlockEnds).
-- KEYS[1] - the index of ended blocks (sorted set: `<viewer>:<target>` scored by the end's since)
-- ARGV[1] - the member
-- ARGV[2] - the since it was listed with
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
