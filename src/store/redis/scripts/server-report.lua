-- Applies a game server's report to the players of one bucket, atomically with their presence
-- values, the bucket's expiry index and the server's roster in this bucket: a report runs this
-- once per bucket it touches (pipelined), never once per player.
-- KEYS[1] - the bucket's due zset: userId scored by the earliest expiresAt of its sessions
-- KEYS[2] - the bucket's session counter
-- KEYS[3] - the server's roster in this bucket: set of user ids
-- ARGV[1] - now, epoch ms
-- ARGV[2] - session key (server:<gameId>)
-- ARGV[3] - device type
-- ARGV[4] - activity as JSON, kept opaque (as in heartbeat.lua)
-- ARGV[5] - ttl ms
-- ARGV[6] - the presence key of the bucket's users without the id (same hash tag: same slot)
-- ARGV[7] - how long the roster outlives the report, ms
-- ARGV[8..] - the report's players of this bucket; none: every player of the roster leaves
-- Returns a flat array {userId, before, after, ...} of the players whose change a watcher could
-- see: joined, restarted (expired, not yet swept), changed activity, or left (their session is
-- in before, not in after). A refresh that only moves expiry is applied and not returned.
local now = tonumber(ARGV[1])
local skey = ARGV[2]
local expiresAt = now + tonumber(ARGV[5])
local prefix = ARGV[6]
local first = 8
local out = {}

local function index(userId, sessions)
  if #sessions == 0 then
    redis.call('ZREM', KEYS[1], userId)
    return
  end
  local earliest = sessions[1].ex
  for _, s in ipairs(sessions) do
    if s.ex < earliest then earliest = s.ex end
  end
  redis.call('ZADD', KEYS[1], earliest, userId)
end

local listed = {}
for i = first, #ARGV do
  local userId = ARGV[i]
  listed[userId] = true
  local key = prefix .. userId
  local raw = redis.call('GET', key)
  local value = raw and cjson.decode(raw) or {}
  local sessions = type(value.s) == 'table' and value.s or {}
  local found = nil
  for _, s in ipairs(sessions) do
    if s.k == skey then
      found = s
      break
    end
  end
  local visible = true
  if found then
    visible = found.ex <= now or found.src ~= 'server' or found.d ~= ARGV[3] or found.a ~= ARGV[4]
    -- a session past expiry that was not swept yet is replaced by a new one
    if found.ex <= now then found.st = now end
    found.src = 'server'
    found.d = ARGV[3]
    found.a = ARGV[4]
    found.up = now
    found.ex = expiresAt
  else
    sessions[#sessions + 1] = {k = skey, src = 'server', d = ARGV[3], a = ARGV[4], st = now, up = now, ex = expiresAt}
    redis.call('INCR', KEYS[2])
  end
  index(userId, sessions)
  value.s = sessions
  if value.lo == nil or value.lo < now then value.lo = now end
  local after = cjson.encode(value)
  redis.call('SET', key, after)
  if visible then
    out[#out + 1] = userId
    out[#out + 1] = raw or false
    out[#out + 1] = after
  end
end

-- players of the previous roster who are not listed leave; an expired session is the sweep's
for _, userId in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if not listed[userId] then
    local key = prefix .. userId
    local raw = redis.call('GET', key)
    if raw then
      local value = cjson.decode(raw)
      local sessions = type(value.s) == 'table' and value.s or {}
      local kept = {}
      local ended = false
      for _, s in ipairs(sessions) do
        if s.k == skey and s.ex > now then
          ended = true
        else
          kept[#kept + 1] = s
        end
      end
      if ended then
        redis.call('DECR', KEYS[2])
        index(userId, kept)
        value.s = kept
        if value.lo == nil or value.lo < now then value.lo = now end
        local after = cjson.encode(value)
        redis.call('SET', key, after)
        out[#out + 1] = userId
        out[#out + 1] = raw
        out[#out + 1] = after
      end
    end
  end
end

redis.call('DEL', KEYS[3])
-- unpack has a stack limit: add in chunks
for i = first, #ARGV, 1000 do
  redis.call('SADD', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV >= first then redis.call('PEXPIRE', KEYS[3], ARGV[7]) end
return out
