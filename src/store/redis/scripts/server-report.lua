-- Applies a game server's report to the players of one bucket, atomically with their presence
-- values, the bucket's expiry index and the server's roster in this bucket: a report runs this
-- once per bucket it touches (pipelined), never once per player. Publishes each change.
-- KEYS[1] - the bucket's timer: shard scored at or before its earliest expiresAt
-- KEYS[2] - the bucket's counts: hash of s (sessions) and u (users)
-- KEYS[3] - the server's roster in this bucket: set of user ids
-- ARGV[1] - now, epoch ms
-- ARGV[2] - session key (server:<gameId>) as JSON text
-- ARGV[3] - the session line after the key: <source>,<device>,<activity>]
-- ARGV[4] - ttl ms
-- ARGV[5] - the presence key of the bucket's users without the id (same hash tag: same slot)
-- ARGV[6] - the bucket's expiry shard keys without the shard
-- ARGV[7] - how many expiry shards a bucket has
-- ARGV[8] - how long the roster outlives the report, ms
-- ARGV[9] - the reason the sessions of players who left end
-- ARGV[10] - channel to publish each change on ('' for none)
-- ARGV[11] - this node's id
-- ARGV[12..] - the report's players of this bucket; none: every player of the roster leaves
-- Returns the change messages of the players a watcher could see change: joined, restarted
-- (expired, not yet swept) or changed activity (kind h), or left (kind e). A refresh that only
-- moves expiry is applied, not returned and not published.
local now = tonumber(ARGV[1])
local prefix = ARGV[2] .. ','
local rest = prefix .. ARGV[3]
local ttl = tonumber(ARGV[4])
local shards = tonumber(ARGV[7])
local first = 12
local out = {}

local function save(userId, lo, sessions, raw, kind)
  local shard = shard_of(userId, shards)
  index(ARGV[6] .. shard, KEYS[1], KEYS[2], shard, userId, sessions)
  if lo == nil or lo < now then lo = now end
  local after = encode(lo, sessions)
  redis.call('SET', ARGV[5] .. userId, after)
  if kind then
    local message = change(ARGV[11], userId, ARGV[1], kind, ARGV[9], ARGV[2], raw, after)
    publish(ARGV[10], message)
    out[#out + 1] = message
  end
end

local listed = {}
for i = first, #ARGV do
  local userId = ARGV[i]
  listed[userId] = true
  local raw = redis.call('GET', ARGV[5] .. userId)
  local lo, sessions = parse(raw)
  local found = nil
  for _, s in ipairs(sessions) do
    if has_key(s, prefix) then
      found = s
      break
    end
  end
  local visible = true
  if found then
    visible = found.ex <= now or found.rest ~= rest
    local startedAt = found.ex - found.ttl - found.age
    -- a session past expiry that was not swept yet is replaced by a new one
    if found.ex <= now then startedAt = now end
    found.ex = now + ttl
    found.ttl = ttl
    found.age = now - startedAt
    found.rest = rest
  else
    sessions[#sessions + 1] = {ex = now + ttl, ttl = ttl, age = 0, rest = rest}
    redis.call('HINCRBY', KEYS[2], 's', 1)
  end
  save(userId, lo, sessions, raw, visible and 'h' or nil)
end

-- players of the previous roster who are not listed leave; an expired session is the sweep's
for _, userId in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if not listed[userId] then
    local raw = redis.call('GET', ARGV[5] .. userId)
    if raw then
      local lo, sessions = parse(raw)
      local kept = {}
      local ended = false
      for _, s in ipairs(sessions) do
        if s.ex > now and has_key(s, prefix) then
          ended = true
        else
          kept[#kept + 1] = s
        end
      end
      if ended then
        redis.call('HINCRBY', KEYS[2], 's', -1)
        save(userId, lo, kept, raw, 'e')
      end
    end
  end
end

redis.call('DEL', KEYS[3])
-- unpack has a stack limit: add in chunks
for i = first, #ARGV, 1000 do
  redis.call('SADD', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV >= first then redis.call('PEXPIRE', KEYS[3], ARGV[8]) end
return out
