-- Applies a game server's report to the players of one bucket, atomically with their presence
-- values and the bucket's expiry index: a report runs this once per bucket it touches
-- (pipelined), never once per player. Publishes each change.
-- KEYS[1] - the bucket's timer: shard scored at or before its earliest expiresAt
-- KEYS[2] - the bucket's counts: hash of s (sessions) and u (users)
-- ARGV[1] - now, epoch ms
-- ARGV[2] - session key (server:<gameId>) as JSON text
-- ARGV[3] - the session line after the key: <source>,<device>,<activity>]
-- ARGV[4] - ttl ms
-- ARGV[5] - the presence key of the bucket's users without the id (same hash tag: same slot)
-- ARGV[6] - the bucket's expiry shard keys without the shard
-- ARGV[7] - how many expiry shards a bucket has
-- ARGV[8] - the reason the sessions of players who left end
-- ARGV[9] - channel to publish each change on ('' for none)
-- ARGV[10] - this node's id
-- ARGV[11..13] - the bucket's history prefix, changes kept per user, their age in ms (presence.lua)
-- ARGV[14] - the live sessions a user may hold: a player's new one beyond ends the one beaten
--   least recently (make_room)
-- ARGV[15] - how many players the report lists in this bucket (n)
-- ARGV[16 .. 15+n] - those players: each gets or refreshes the session
-- ARGV[16+n ..] - players who left (listed before, not now): their live session ends
-- Returns the change messages of the players a watcher could see change: joined, restarted or
-- with any session expired and not yet swept (ended here, told first by the change, as
-- heartbeat.lua) or changed activity (kind h), or left (kind e). A refresh that only moves
-- expiry is applied, not returned and not published.
local now = tonumber(ARGV[1])
local prefix = ARGV[2] .. ','
local rest = prefix .. ARGV[3]
local ttl = tonumber(ARGV[4])
local shards = tonumber(ARGV[7])
local last = 15 + tonumber(ARGV[15])
local max = tonumber(ARGV[14])
local hist = history(ARGV[11], ARGV[12], ARGV[13])
local out = {}

local function save(userId, lo, sessions, fold, raw, kind)
  local shard = shard_of(userId, shards)
  index(ARGV[6] .. shard, KEYS[1], KEYS[2], shard, userId, sessions)
  if lo == nil or lo < now then lo = now end
  local after = encode(lo, sessions, fold)
  redis.call('SET', ARGV[5] .. userId, after)
  if kind then
    local message = change(ARGV[10], userId, ARGV[1], kind, ARGV[8], ARGV[2], raw, after, hist)
    publish(ARGV[9], message)
    out[#out + 1] = message
  end
end

for i = 16, last do
  local userId = ARGV[i]
  local raw = redis.call('GET', ARGV[5] .. userId)
  local lo, sessions, fold = parse(raw, settings_key(ARGV[5] .. userId, userId))
  -- the player's sessions past expiry end here, told first by the change (as heartbeat.lua)
  local expired = end_expired(sessions, now, prefix, KEYS[2])
  local found = nil
  for _, s in ipairs(sessions) do
    if has_key(s, prefix) then
      found = s
      break
    end
  end
  local visible = true
  if found then
    visible = expired or found.rest ~= rest
    local startedAt = found.ex - found.ttl - found.age
    -- a session past expiry that was not swept yet is replaced by a new one
    if found.ex <= now then startedAt = now end
    found.ex = now + ttl
    found.ttl = ttl
    found.age = now - startedAt
    found.rest = rest
  else
    make_room(sessions, now, max, KEYS[2])
    sessions[#sessions + 1] = {ex = now + ttl, ttl = ttl, age = 0, rest = rest}
    redis.call('HINCRBY', KEYS[2], 's', 1)
  end
  save(userId, lo, sessions, fold, raw, visible and 'h' or nil)
end

-- an expired session of a player who left is the sweep's to report; when the live one ends, the
-- player's other sessions past expiry end with it, told first by the change (as end.lua)
for i = last + 1, #ARGV do
  local userId = ARGV[i]
  local raw = redis.call('GET', ARGV[5] .. userId)
  if raw then
    local lo, sessions, fold = parse(raw, settings_key(ARGV[5] .. userId, userId))
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
      end_expired(kept, now, nil, KEYS[2])
      redis.call('HINCRBY', KEYS[2], 's', -1)
      save(userId, lo, kept, fold, raw, 'e')
    end
  end
end
return out
