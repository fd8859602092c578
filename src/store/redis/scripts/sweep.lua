-- Claims the users of one bucket whose earliest session expired and removes every expired
-- session of theirs, in one atomic step: whichever node runs it first gets them, each expiry
-- is reported exactly once, however many nodes sweep at the same time.
-- KEYS[1] - the bucket's due zset: userId scored by the earliest expiresAt of its sessions
-- KEYS[2] - the bucket's session counter
-- ARGV[1] - now, epoch ms
-- ARGV[2] - at most this many users
-- ARGV[3] - the presence key of the bucket's users without the id (same hash tag: same slot)
-- Returns a flat array {userId, before, after, ...}; lastOnline becomes the last heartbeat of
-- the sessions that ended (when the user was last alive), never moving back.
local now = tonumber(ARGV[1])
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, userId in ipairs(due) do
  local key = ARGV[3] .. userId
  local raw = redis.call('GET', key)
  if not raw then
    redis.call('ZREM', KEYS[1], userId)
  else
    local value = cjson.decode(raw)
    local sessions = type(value.s) == 'table' and value.s or {}
    local kept = {}
    local removed = 0
    local lastAlive = nil
    for _, s in ipairs(sessions) do
      if s.ex <= now then
        removed = removed + 1
        if lastAlive == nil or s.up > lastAlive then lastAlive = s.up end
      else
        kept[#kept + 1] = s
      end
    end
    if #kept == 0 then
      redis.call('ZREM', KEYS[1], userId)
    else
      local earliest = kept[1].ex
      for _, s in ipairs(kept) do
        if s.ex < earliest then earliest = s.ex end
      end
      redis.call('ZADD', KEYS[1], earliest, userId)
    end
    if removed > 0 then
      redis.call('DECRBY', KEYS[2], removed)
      value.s = kept
      if value.lo == nil or value.lo < lastAlive then value.lo = lastAlive end
      local after = cjson.encode(value)
      redis.call('SET', key, after)
      out[#out + 1] = userId
      out[#out + 1] = raw
      out[#out + 1] = after
    end
  end
end
return out
