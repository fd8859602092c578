-- Sets what one node holds of a user's real-time streams and sums what the whole fleet holds, in
-- one atomic step. One field per node, "<streams> <watches> <until ms>": a field counts until its
-- lease runs out (Redis's clock), and its node renews it on a timer, so the streams of a node
-- that crashed stop counting by themselves; a lapsed field is removed when next seen.
-- KEYS[1] - the user's holdings: hash, node id -> "<streams> <watches> <until>"
-- ARGV[1] - this node's id
-- ARGV[2] - the lease, ms: this node's field counts until Redis's now + lease
-- ARGV[3] - this node's open streams of the user, or '-': read only, nothing written
-- ARGV[4] - the watches of those streams
-- ARGV[5] - at most this many streams across the fleet, or 0: not checked
-- ARGV[6] - at most this many watches across the fleet, or 0: not checked
-- Returns {1, streams, watches}: written (zeros remove the field), with the fleet's totals; or
-- {0, streams, watches}: the other nodes' totals, when the new counts would pass a maximum or
-- nothing was to be written.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local streams, watches = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if fields[i] ~= ARGV[1] then
    local s, w, u = string.match(fields[i + 1], '^(%d+) (%d+) (%d+)$')
    if u and tonumber(u) > now then
      streams = streams + tonumber(s)
      watches = watches + tonumber(w)
    else
      redis.call('HDEL', KEYS[1], fields[i])
    end
  end
end
if ARGV[3] == '-' then return {0, streams, watches} end
local mine, mineWatches = tonumber(ARGV[3]), tonumber(ARGV[4])
local maxStreams, maxWatches = tonumber(ARGV[5]), tonumber(ARGV[6])
if (maxStreams > 0 and streams + mine > maxStreams)
  or (maxWatches > 0 and watches + mineWatches > maxWatches) then
  return {0, streams, watches}
end
if mine == 0 and mineWatches == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  local lease = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], ARGV[1], mine .. ' ' .. mineWatches .. ' ' .. (now + lease))
  -- the key outlives every field in it: each write extends it to the longest lease written
  if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
end
return {1, streams + mine, watches + mineWatches}
