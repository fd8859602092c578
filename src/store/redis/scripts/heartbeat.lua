-- Creates or refreshes one session of a user, atomically with the bucket's expiry index, and
-- publishes the change.
-- KEYS[1] - the user's presence value
-- KEYS[2] - the user's expiry shard of the bucket: userId scored by its earliest expiresAt
-- KEYS[3] - the bucket's timer: shard scored at or before its earliest expiresAt
-- KEYS[4] - the bucket's counts: hash of s (sessions) and u (users)
-- ARGV[1] - user id
-- ARGV[2] - now, epoch ms
-- ARGV[3] - the user's shard
-- ARGV[4] - session key as JSON text
-- ARGV[5] - ttl ms
-- ARGV[6] - the session line after the key: <source>,<device>,<activity>]
-- ARGV[7] - channel to publish the change on ('' for none)
-- ARGV[8] - this node's id, so it skips its own message
-- ARGV[9..11] - the bucket's history prefix, changes kept per user, their age in ms (presence.lua)
-- ARGV[12] - the activity elements (1-based, space-separated) this write takes from the live
--   session it refreshes where that has them (SessionWrite.inherit); '' for none
-- ARGV[13] - the live sessions a user may hold: a new one beyond ends the one beaten least
--   recently (make_room)
-- Returns the change message (kind h).
-- Every session of the user past expiry ends here (end_expired), not at a later sweep: the
-- change's `before` holds them, and it tells their expiry first (core expiryOf), once.
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[5])
local raw = redis.call('GET', KEYS[1])
local lo, sessions, fold = parse(raw, settings_key(KEYS[1], ARGV[1]))
local prefix = ARGV[4] .. ','
local rest = prefix .. ARGV[6]

-- a refresh (same live session, same line, nothing expired) changes nothing a watcher sees: not
-- in the history
local expired = end_expired(sessions, now, prefix, KEYS[4])
local found = false
local visible = true
for _, s in ipairs(sessions) do
  if has_key(s, prefix) then
    if ARGV[12] ~= '' and s.ex > now then rest = inherit(rest, s.rest, ARGV[12]) end
    visible = expired or s.rest ~= rest
    local startedAt = s.ex - s.ttl - s.age
    -- a session past expiry that was not swept yet is replaced by a new one
    if s.ex <= now then startedAt = now end
    s.ex = now + ttl
    s.ttl = ttl
    s.age = now - startedAt
    s.rest = rest
    found = true
    break
  end
end
if not found then
  make_room(sessions, now, tonumber(ARGV[13]), KEYS[4])
  sessions[#sessions + 1] = {ex = now + ttl, ttl = ttl, age = 0, rest = rest}
  redis.call('HINCRBY', KEYS[4], 's', 1)
end
index(KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[1], sessions)

-- max, not now: nodes' clocks differ a little and lastOnline must never move back
if lo == nil or lo < now then lo = now end
local after = encode(lo, sessions, fold)
redis.call('SET', KEYS[1], after)
local hist = nil
if visible then hist = history(ARGV[9], ARGV[10], ARGV[11]) end
local message = change(ARGV[8], ARGV[1], ARGV[2], 'h', '', ARGV[4], raw, after, hist)
publish(ARGV[7], message)
return message
