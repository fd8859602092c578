-- Ends one live session of a user at once, atomically with the bucket's expiry index, and
-- publishes the change.
-- KEYS[1..4] - as in heartbeat.lua: value, the user's expiry shard, the bucket's timer, counts
-- ARGV[1] - user id
-- ARGV[2] - now, epoch ms
-- ARGV[3] - the user's shard
-- ARGV[4] - session key as JSON text
-- ARGV[5] - the reason the session ends
-- ARGV[6] - channel to publish the change on ('' for none)
-- ARGV[7] - this node's id
-- ARGV[8..10] - the bucket's history prefix, changes kept per user, their age in ms (presence.lua)
-- Returns the change message (kind e), or nil when no live session has that key (one already past
-- expiry is left to the sweep, which reports it as a timeout). Every other session of the user
-- past expiry ends here too (end_expired): the change's `before` holds them, and it tells their
-- expiry first (core expiryOf), once.
local now = tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
if not raw then return nil end
local lo, sessions, fold = parse(raw, settings_key(KEYS[1], ARGV[1]))
local prefix = ARGV[4] .. ','

local kept = {}
local ended = false
for _, s in ipairs(sessions) do
  if s.ex > now and has_key(s, prefix) then
    ended = true
  else
    kept[#kept + 1] = s
  end
end
if not ended then return nil end
end_expired(kept, now, nil, KEYS[4])
redis.call('HINCRBY', KEYS[4], 's', -1)
index(KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[1], kept)

if lo == nil or lo < now then lo = now end
local after = encode(lo, kept, fold)
redis.call('SET', KEYS[1], after)
local hist = history(ARGV[8], ARGV[9], ARGV[10])
local message = change(ARGV[7], ARGV[1], ARGV[2], 'e', ARGV[5], ARGV[4], raw, after, hist)
publish(ARGV[6], message)
return message
