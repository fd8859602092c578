-- Ends every session of one user past expiry and not swept yet, atomically with the bucket's
-- expiry index, and publishes the change: the sweep's own step (sweep.lua) for one user, so each
-- expiry is claimed exactly once, by it or by a sweep or a write, whichever runs first.
-- KEYS[1..4] - as in heartbeat.lua: value, the user's expiry shard, the bucket's timer, counts
-- ARGV[1] - user id
-- ARGV[2] - now, epoch ms
-- ARGV[3] - the user's shard
-- ARGV[4] - channel to publish the change on ('' for none)
-- ARGV[5] - this node's id
-- ARGV[6..8] - the bucket's history prefix, changes kept per user, their age in ms (presence.lua)
-- Returns the change message (kind s, as the sweep's), or nil when no session had expired
-- (nothing written). lastOnline becomes the last heartbeat of the sessions that ended, never
-- moving back. The value keeps its settings fold: the change carries the settings in force now,
-- before a settings write that runs this first (PresenceService.putSettings).
local now = tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
if not raw then return nil end
local lo, sessions, fold = parse(raw, settings_key(KEYS[1], ARGV[1]))
local kept, removed, lastAlive = split_expired(sessions, now)
if removed == 0 then return nil end
redis.call('HINCRBY', KEYS[4], 's', -removed)
index(KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[1], kept)
if lo == nil or lo < lastAlive then lo = lastAlive end
local after = encode(lo, kept, fold)
redis.call('SET', KEYS[1], after)
local hist = history(ARGV[6], ARGV[7], ARGV[8])
local message = change(ARGV[5], ARGV[1], ARGV[2], 's', '', '""', raw, after, hist)
publish(ARGV[4], message)
return message
