-- Creates or refreshes one session of a user, atomically with the bucket's expiry index.
-- KEYS[1] - the user's presence value: JSON {lo = lastOnline ms, s = [sessions]}
-- KEYS[2] - the bucket's due zset: userId scored by the earliest expiresAt of its sessions
-- KEYS[3] - the bucket's session counter
-- ARGV[1] - user id
-- ARGV[2] - now, epoch ms
-- ARGV[3] - session key
-- ARGV[4] - source
-- ARGV[5] - device type
-- ARGV[6] - activity as JSON, kept opaque (cjson would turn its empty arrays into objects)
-- ARGV[7] - ttl ms
-- Returns {before, after}: the stored value before (false if none) and after the write.
-- Expired sessions of other keys stay until the sweep claims them, so each ends with one event.
local now = tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
local value = raw and cjson.decode(raw) or {}
local sessions = type(value.s) == 'table' and value.s or {}
local expiresAt = now + tonumber(ARGV[7])

local found = false
for _, s in ipairs(sessions) do
  if s.k == ARGV[3] then
    -- a session past expiry that was not swept yet is replaced by a new one
    if s.ex <= now then s.st = now end
    s.src = ARGV[4]
    s.d = ARGV[5]
    s.a = ARGV[6]
    s.up = now
    s.ex = expiresAt
    found = true
    break
  end
end
if not found then
  sessions[#sessions + 1] = {k = ARGV[3], src = ARGV[4], d = ARGV[5], a = ARGV[6], st = now, up = now, ex = expiresAt}
  redis.call('INCR', KEYS[3])
end

local earliest = expiresAt
for _, s in ipairs(sessions) do
  if s.ex < earliest then earliest = s.ex end
end
redis.call('ZADD', KEYS[2], earliest, ARGV[1])

value.s = sessions
-- max, not now: nodes' clocks differ a little and lastOnline must never move back
if value.lo == nil or value.lo < now then value.lo = now end
local after = cjson.encode(value)
redis.call('SET', KEYS[1], after)
return {raw or false, after}
