-- Loaded in front of heartbeat.lua (with presence.lua and limit.lua): the heartbeat counted
-- against its caller's rate limit in the same atomic step. When a rule refuses, nothing is
-- written and the counts are returned; otherwise heartbeat.lua runs and returns its message.
-- KEYS[1..4], ARGV[1..13] - as heartbeat.lua
-- KEYS[5..4+n] - the caller's rate-limit windows (limit.lua): on a cluster, a budget of the
--   user's own, whose windows are in the user's slot (RateLimitHit.near)
-- ARGV[14..13+n] - each window's length in ms; ARGV[14+n..13+2n] - each rule's max
local limits = #KEYS - 4
local counts = count_hits(KEYS, 5, ARGV, 14, limits)
for i = 1, limits do
  if counts[i] > tonumber(ARGV[13 + limits + i]) then return counts end
end
