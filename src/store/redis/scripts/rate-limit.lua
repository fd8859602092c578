-- Counts several hits, each against every rule of its caller, atomically (limit.lua): the hits
-- of one tick's requests on a node go as one call (RedisConnection.countHits).
-- KEYS - each hit's window counters, hit after hit (a hit's counters share one hash tag)
-- ARGV - per hit, its number of rules n, then each rule's window length in ms (n of them)
-- Returns the count of every counter, its hit included, in KEYS order.
local out = {}
local key = 1
local at = 1
while at <= #ARGV do
  local n = tonumber(ARGV[at])
  local counts = count_hits(KEYS, key, ARGV, at + 1, n)
  for i = 1, n do out[#out + 1] = counts[i] end
  key = key + n
  at = at + n + 1
end
return out
