-- Ends every session of one user past expiry and not swept yet, atomically with the bucket's
-- expiry index, and publishes the change (presence.lua expire_user): the sweep's own step
-- (sweep.lua) for one user, so each expiry is claimed exactly once, by it or by a sweep or a
-- write, whichever runs first.
-- KEYS[1..4] - as in heartbeat.lua: value, the user's expiry shard, the bucket's timer, counts
-- ARGV[1] - user id
-- ARGV[2] - now, epoch ms
-- ARGV[3] - the user's shard
-- ARGV[4] - channel to publish the change on ('' for none)
-- ARGV[5] - this node's id
-- ARGV[6..8] - the bucket's history prefix, changes kept per user, their age in ms (presence.lua)
-- Returns the change message (kind s, as the sweep's), or nil when no session had expired
-- (nothing written).
return expire_user(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  ARGV[5], history(ARGV[6], ARGV[7], ARGV[8]))
