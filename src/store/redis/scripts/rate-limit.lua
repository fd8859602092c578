-- Counts one hit against every rule of one caller, atomically (limit.lua), on a Redis Cluster:
-- a single Redis counts the same hit with SET … PX … NX and INCR (RedisConnection.besideHits).
-- KEYS[i] - the counter of rule i's current window for this caller (all share one hash tag)
-- ARGV[i] - rule i's window length in ms
-- Returns the count of each rule's window, this hit included, in KEYS order.
return count_hits(KEYS, 1, ARGV, 1, #KEYS)
