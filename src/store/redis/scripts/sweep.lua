-- Claims the users of one bucket whose earliest session expired and removes every expired
-- session of theirs, in one atomic step: whichever node runs it first gets them, each expiry
-- is reported exactly once, however many nodes sweep at the same time.
-- KEYS[1] - the bucket's timer: shard scored at or before its earliest expiresAt
-- KEYS[2] - the bucket's counts: hash of s (sessions) and u (users)
-- ARGV[1] - now, epoch ms
-- ARGV[2] - at most this many users
-- ARGV[3] - the presence key of the bucket's users without the id (same hash tag: same slot)
-- ARGV[4] - the bucket's expiry shard keys without the shard
-- ARGV[5] - channel to publish each change on ('' for none)
-- ARGV[6] - this node's id
-- ARGV[7..9] - the bucket's history prefix, changes kept per user, their age in ms (presence.lua)
-- Returns the change messages (kind s); lastOnline becomes the last heartbeat of the sessions
-- that ended (when the user was last alive), never moving back.
local now = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local out = {}
local hist = history(ARGV[7], ARGV[8], ARGV[9])
for _, shard in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  if budget <= 0 then break end
  local dueKey = ARGV[4] .. shard
  local due = redis.call('ZRANGEBYSCORE', dueKey, '-inf', now, 'LIMIT', 0, budget)
  budget = budget - #due
  for _, userId in ipairs(due) do
    local raw = redis.call('GET', ARGV[3] .. userId)
    local lo, sessions, fold = parse(raw, settings_key(ARGV[3] .. userId, userId))
    local kept, removed, lastAlive = split_expired(sessions, now)
    index(dueKey, KEYS[1], KEYS[2], shard, userId, kept)
    if removed > 0 then
      redis.call('HINCRBY', KEYS[2], 's', -removed)
      if lo == nil or lo < lastAlive then lo = lastAlive end
      local after = encode(lo, kept, fold)
      redis.call('SET', ARGV[3] .. userId, after)
      local message = change(ARGV[6], userId, ARGV[1], 's', '', '""', raw, after, hist)
      publish(ARGV[5], message)
      out[#out + 1] = message
    end
  end
  -- the shard's timer score becomes exact again (index() only lowers it)
  local first = redis.call('ZRANGE', dueKey, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', KEYS[1], first[2], shard)
  else
    redis.call('ZREM', KEYS[1], shard)
  end
end
return out
