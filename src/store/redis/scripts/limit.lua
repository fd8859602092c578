-- Shared by rate-limit.lua and limited-heartbeat.lua: counts one hit against each of a caller's
-- rules (fixed windows; RedisRateLimiter builds the arguments).
-- keys[first..first+n-1] - the counter of each rule's current window for this caller
-- windows[at..at+n-1] - each rule's window length in ms: its counter lives two windows
-- Returns the count of each rule's window, this hit included, in keys order.
local function count_hits(keys, first, windows, at, n)
  local counts = {}
  for i = 0, n - 1 do
    local key = keys[first + i]
    local count = redis.call('INCR', key)
    if count == 1 then redis.call('PEXPIRE', key, 2 * tonumber(windows[at + i])) end
    counts[i + 1] = count
  end
  return counts
end
