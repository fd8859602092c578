-- Shared by the presence scripts: each is loaded with this file in front of it. The stored value
-- (its format is described in presence-codec.ts), the bucket's expiry index (keys.ts) and the
-- change record a script returns and publishes.

-- A stored value as lastOnline and its sessions {ex, ttl, age, rest}: expiresAt, expiresAt -
-- updatedAt, updatedAt - startedAt (lines hold updatedAt - lastOnline, ttl, age), and `rest`,
-- the line after the numbers: <key JSON>,<source>,<device>,<activity>]
local function parse(raw)
  local sessions = {}
  if not raw then return nil, sessions end
  local stop = string.find(raw, '\n', 1, true)
  local lo = tonumber(string.sub(raw, 2, stop - 1))
  local start = stop + 1
  stop = string.find(raw, '\n', start, true)
  while stop do
    local up, ttl, age, at = string.match(raw, '^,%[(%-?%d+),(%-?%d+),(%-?%d+),()', start)
    ttl = tonumber(ttl)
    sessions[#sessions + 1] = {
      ex = lo + tonumber(up) + ttl, ttl = ttl, age = tonumber(age),
      rest = string.sub(raw, at, stop - 1)
    }
    start = stop + 1
    stop = string.find(raw, '\n', start, true)
  end
  return lo, sessions
end

local function encode(lo, sessions)
  local lines = {string.format('[%d', lo)}
  for i, s in ipairs(sessions) do
    lines[i + 1] = string.format(',[%d,%d,%d,%s', s.ex - s.ttl - lo, s.ttl, s.age, s.rest)
  end
  lines[#lines + 1] = ']'
  return table.concat(lines, '\n')
end

-- Whether session `s` has the key whose JSON text followed by a comma is `prefix`.
local function has_key(s, prefix)
  return string.sub(s.rest, 1, #prefix) == prefix
end

-- The user's expiry shard in its bucket, as RedisKeys.dueShardOf computes it.
local function shard_of(userId, shards)
  return tostring(tonumber(string.sub(userId, -6)) % shards)
end

local function earliest(sessions)
  local e = nil
  for _, s in ipairs(sessions) do
    if e == nil or s.ex < e then e = s.ex end
  end
  return e
end

-- Files the user under the earliest expiry of `sessions` in its shard `due` (or removes it),
-- keeps the bucket's `timer` score of the shard at or below it, and counts the user in or out.
local function index(due, timer, counts, shard, userId, sessions)
  local e = earliest(sessions)
  if e == nil then
    if redis.call('ZREM', due, userId) == 1 then redis.call('HINCRBY', counts, 'u', -1) end
    return
  end
  if redis.call('ZADD', due, e, userId) == 1 then redis.call('HINCRBY', counts, 'u', 1) end
  redis.call('ZADD', timer, 'LT', e, shard)
end

-- A ChangeMessage (presence-codec.ts): node, then the record [userId, now, kind, reason, key,
-- before, after]. `now` is the script's argument text; values are JSON already.
local function change(node, userId, now, kind, reason, keyJson, before, after)
  return '{"n":"' .. node .. '","c":["' .. userId .. '",' .. now .. ',"' .. kind .. '","'
    .. reason .. '",' .. keyJson .. ',' .. (before or 'null') .. ',' .. after .. ']}'
end

-- Published in the same atomic step as the write, so every node hears a user's changes in the
-- order they were made.
local function publish(channel, message)
  if channel ~= '' then redis.call('PUBLISH', channel, message) end
end

