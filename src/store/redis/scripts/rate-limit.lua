-- Counts one hit against every rule of one caller (fixed windows), atomically.
-- KEYS[i] - the counter of rule i's current window for this caller (all share one hash tag)
-- ARGV[i] - rule i's window length in ms: the counter lives two windows, then disappears
-- Returns the count of each rule's window, this hit included, in KEYS order.
local counts = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('PEXPIRE', key, 2 * tonumber(ARGV[i])) end
  counts[i] = count
end
return counts
