-- Ends one live session of a user at once, atomically with the bucket's expiry index.
-- KEYS[1] - the user's presence value: JSON {lo = lastOnline ms, s = [sessions]}
-- KEYS[2] - the bucket's due zset: userId scored by the earliest expiresAt of its sessions
-- KEYS[3] - the bucket's session counter
-- ARGV[1] - user id
-- ARGV[2] - now, epoch ms
-- ARGV[3] - session key
-- Returns {before, after}, or nil when no live session has that key. A session already past
-- expiry is left to the sweep, which reports it (as a timeout) exactly once.
local now = tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
if not raw then return nil end
local value = cjson.decode(raw)
local sessions = type(value.s) == 'table' and value.s or {}

local kept = {}
local ended = false
for _, s in ipairs(sessions) do
  if s.k == ARGV[3] and s.ex > now then
    ended = true
  else
    kept[#kept + 1] = s
  end
end
if not ended then return nil end
redis.call('DECR', KEYS[3])

if #kept == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  local earliest = kept[1].ex
  for _, s in ipairs(kept) do
    if s.ex < earliest then earliest = s.ex end
  end
  redis.call('ZADD', KEYS[2], earliest, ARGV[1])
end

value.s = kept
if value.lo == nil or value.lo < now then value.lo = now end
local after = cjson.encode(value)
redis.call('SET', KEYS[1], after)
return {raw, after}
