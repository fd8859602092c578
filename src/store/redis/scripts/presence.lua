-- Shared by the presence scripts: each is loaded with this file in front of it. The stored value
-- (its format is described in presence-codec.ts), the bucket's expiry index (keys.ts) and the
-- change record a script returns and publishes.

-- The settings text of a user with default settings as RedisProfileStore stores it, folded as 0.
local DEFAULT_SETTINGS = '{"visibility":"everyone","invisible":false}'

-- The user's settings key beside its presence key (keys.ts: `<head>p:<id>` and `<head>s:<id>`).
local function settings_key(presenceKey, userId)
  return string.sub(presenceKey, 1, #presenceKey - #userId - 2) .. 's:' .. userId
end

-- The fold of the settings stored at `settingsKey` (presence-codec.ts): 0 for none or the
-- defaults, else their JSON text, which holds no line break.
local function fold_of(settingsKey)
  local text = redis.call('GET', settingsKey)
  if not text or text == DEFAULT_SETTINGS then return '0' end
  return text
end

-- A stored value as lastOnline (nil for none), its sessions {ex, ttl, age, rest} and the fold of
-- the user's settings: expiresAt, expiresAt - updatedAt, updatedAt - startedAt (lines hold
-- updatedAt - lastOnline, ttl, age), and `rest`, the line after the numbers:
-- <key JSON>,<source>,<device>,<activity>]. A value written before settings were folded (no
-- fold on its first line), or none, gets the fold of the settings at `settingsKey`, so that
-- every value a script writes carries it.
local function parse(raw, settingsKey)
  local sessions = {}
  if not raw then return nil, sessions, fold_of(settingsKey) end
  local stop = string.find(raw, '\n', 1, true)
  local first = string.sub(raw, 2, stop - 1)
  local comma = string.find(first, ',', 1, true)
  local lo, fold
  if comma then
    lo = tonumber(string.sub(first, 1, comma - 1))
    fold = string.sub(first, comma + 1)
  else
    lo = tonumber(first)
    fold = fold_of(settingsKey)
  end
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
  return lo, sessions, fold
end

local function encode(lo, sessions, fold)
  local lines = {lo and string.format('[%d,%s', lo, fold) or ('[null,' .. fold)}
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

-- The texts of the top-level elements of the JSON array text `text` (a string in it may hold
-- any of , [ ] and escaped quotes).
local function elements(text)
  local items = {}
  local depth, start, i = 0, 2, 2
  while true do
    i = string.find(text, '[",%[%]]', i)
    if not i then return items end
    local c = string.sub(text, i, i)
    if c == '"' then
      repeat
        i = string.find(text, '["\\]', i + 1)
        if not i then return items end
        local escape = string.sub(text, i, i) == '\\'
        if escape then i = i + 1 end
      until not escape
    elseif c == '[' then
      depth = depth + 1
    elseif c == ']' then
      if depth == 0 then
        items[#items + 1] = string.sub(text, start, i - 1)
        return items
      end
      depth = depth - 1
    elseif depth == 0 then
      items[#items + 1] = string.sub(text, start, i - 1)
      start = i + 1
    end
    i = i + 1
  end
end

-- A session line's `rest` (<key>,<source>,<device>,<activity>]) whose activity takes the elements
-- at `positions` (the stored activity's 1-based indexes, space-separated) from the live session
-- line `was` where that has them (not 0): core inheritActivity on the stored text, spliced so
-- that the line is exactly what encodeActivity writes for the merged activity (trailing 0s
-- dropped), and a refresh that changes nothing stays byte for byte the same line.
local function inherit(rest, was, positions)
  local line = elements('[' .. rest)
  local activity = elements(line[#line])
  local old = elements('[' .. was)
  old = elements(old[#old])
  for p in string.gmatch(positions, '%d+') do
    p = tonumber(p)
    local value = old[p]
    if value ~= nil and value ~= '0' then
      for i = #activity + 1, p - 1 do activity[i] = '0' end
      activity[p] = value
    end
  end
  while #activity > 1 and activity[#activity] == '0' do activity[#activity] = nil end
  line[#line] = '[' .. table.concat(activity, ',') .. ']'
  return table.concat(line, ',') .. ']'
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

-- Takes out of `sessions` every one past expiry at `now` but the one whose key `prefix` names (the
-- write starts it again; nil for none), counted out of the bucket's `counts`: a write ends them in
-- its own step, so no sweep claims them after, and its change (whose `before` holds them) tells
-- their expiry first. Returns whether any had expired.
local function end_expired(sessions, now, prefix, counts)
  local n = #sessions
  local expired = false
  local kept = 0
  for i = 1, n do
    local s = sessions[i]
    if s.ex <= now then expired = true end
    if s.ex > now or (prefix and has_key(s, prefix)) then
      kept = kept + 1
      sessions[kept] = s
    end
  end
  for i = n, kept + 1, -1 do sessions[i] = nil end
  if kept < n then redis.call('HINCRBY', counts, 's', kept - n) end
  return expired
end

-- Splits `sessions` at `now`, as a sweep ends them: the live ones (a new list), how many had
-- expired, and the latest heartbeat among those (when the user was last alive, which lastOnline
-- becomes, not the expiry instant). sweep.lua's, and expire.lua's for one user.
local function split_expired(sessions, now)
  local kept = {}
  local removed = 0
  local lastAlive = nil
  for _, s in ipairs(sessions) do
    if s.ex <= now then
      removed = removed + 1
      local up = s.ex - s.ttl
      if lastAlive == nil or up > lastAlive then lastAlive = up end
    else
      kept[#kept + 1] = s
    end
  end
  return kept, removed, lastAlive
end

-- Makes room for one more session among `sessions`, the user's, before one is added: while
-- `max` or more of them are live, the live one that expires first (beaten least recently) is
-- taken out, counted out of the bucket's `counts`. Expired ones are not counted (a write ends
-- them first, end_expired); they are no reader's to see.
local function make_room(sessions, now, max, counts)
  local live = 0
  for _, s in ipairs(sessions) do
    if s.ex > now then live = live + 1 end
  end
  while live >= max do
    local oldest = nil
    for i, s in ipairs(sessions) do
      if s.ex > now and (oldest == nil or s.ex < sessions[oldest].ex) then oldest = i end
    end
    table.remove(sessions, oldest)
    redis.call('HINCRBY', counts, 's', -1)
    live = live - 1
  end
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

-- The user's change history (realtime/history.ts, redis-history.ts), from three script
-- arguments: the bucket's history key prefix ('' records nothing), the changes kept per user and
-- their age bound in ms. Keys: <prefix>m:<id> "<epoch> <offset>", <prefix>l:<id> a list of
-- "<at> <message>", oldest first, <prefix>k:<id> "<epoch> <offset>" of the latest privacy mark
-- (offset 0: none in the epoch; kept beside the list, so it outlives the list's trimming),
-- <prefix>c:<id> the latest marks and whom they concern (history-append.lua). The
-- epoch and offset outlive the changes (a day at least), so an idle user keeps its position; a
-- lost history starts a new epoch (microseconds of TIME).
local function history(prefix, entries, ageMs)
  local age = tonumber(ageMs)
  return {prefix = prefix, entries = tonumber(entries), age = age,
    ttl = math.max(age, 86400000)}
end

-- Counts the change in the user's history: its epoch and offset (nil when none is kept); `mark`
-- when the change is a privacy mark.
local function count(hist, userId, mark)
  if hist == nil or hist.prefix == '' then return nil end
  local meta = hist.prefix .. 'm:' .. userId
  local marks = hist.prefix .. 'k:' .. userId
  local m = redis.call('GET', meta)
  local epoch, offset
  if m then
    local e, o = string.match(m, '^(%d+) (%d+)$')
    epoch, offset = e, tonumber(o) + 1
  else
    local t = redis.call('TIME')
    epoch, offset = t[1] .. string.format('%06d', tonumber(t[2])), 1
    redis.call('DEL', hist.prefix .. 'l:' .. userId)
  end
  redis.call('SET', meta, epoch .. ' ' .. offset, 'PX', hist.ttl)
  if mark then
    redis.call('SET', marks, epoch .. ' ' .. offset, 'PX', hist.ttl)
  elseif not m then
    redis.call('SET', marks, epoch .. ' 0', 'PX', hist.ttl)
  else
    -- lives as long as the position: a missing one means "not known", never "none"; so do the
    -- latest marks' concerns (history-append.lua)
    redis.call('PEXPIRE', marks, hist.ttl)
    redis.call('PEXPIRE', hist.prefix .. 'c:' .. userId, hist.ttl)
  end
  return epoch, offset
end

-- Keeps the change message in the user's history, within its length and age bounds.
local function keep(hist, userId, now, message)
  local list = hist.prefix .. 'l:' .. userId
  if hist.entries <= 0 then
    redis.call('DEL', list)
    return
  end
  local n = redis.call('RPUSH', list, now .. ' ' .. message)
  if n > hist.entries then redis.call('LTRIM', list, -hist.entries, -1) end
  local oldest = tonumber(now) - hist.age
  for _ = 1, 8 do
    local first = redis.call('LINDEX', list, 0)
    if not first or tonumber(string.match(first, '^(%d+)')) >= oldest then break end
    redis.call('LPOP', list)
  end
  redis.call('PEXPIRE', list, hist.age)
end

-- A ChangeMessage (presence-codec.ts): node, the history position (h, when kept), then the
-- record [userId, now, kind, reason, key, before, after]. `now` is the script's argument text;
-- values are JSON already. Recorded in the user's history (`hist`) in the same step.
local function change(node, userId, now, kind, reason, keyJson, before, after, hist)
  local epoch, offset = count(hist, userId, false)
  local h = ''
  if epoch then h = ',"h":["' .. epoch .. '",' .. offset .. ']' end
  local message = '{"n":"' .. node .. '"' .. h .. ',"c":["' .. userId .. '",' .. now .. ',"'
    .. kind .. '","' .. reason .. '",' .. keyJson .. ',' .. (before or 'null') .. ',' .. after
    .. ']}'
  if epoch then keep(hist, userId, now, message) end
  return message
end

-- Published in the same atomic step as the write, so every node hears a user's changes in the
-- order they were made.
local function publish(channel, message)
  if channel ~= '' then redis.call('PUBLISH', channel, message) end
end


-- Ends every session of one user past expiry at `nowText` and not swept yet, as a sweep does
-- (sweep.lua), atomically with the bucket's expiry index, and publishes the change: expire.lua,
-- and expire-settings.lua before its settings write. `value`, `due`, `timer`, `counts`: as
-- heartbeat.lua's KEYS[1..4]; `hist`: history(). Returns the change message (kind s), or nil when
-- no session had expired (nothing written). lastOnline becomes the last heartbeat of the sessions
-- that ended, never moving back. The value keeps its settings fold: the change carries the
-- settings in force as it is made.
local function expire_user(value, due, timer, counts, userId, nowText, shard, channel, node, hist)
  local raw = redis.call('GET', value)
  if not raw then return nil end
  local lo, sessions, fold = parse(raw, settings_key(value, userId))
  local kept, removed, lastAlive = split_expired(sessions, tonumber(nowText))
  if removed == 0 then return nil end
  redis.call('HINCRBY', counts, 's', -removed)
  index(due, timer, counts, shard, userId, kept)
  if lo == nil or lo < lastAlive then lo = lastAlive end
  local after = encode(lo, kept, fold)
  redis.call('SET', value, after)
  local message = change(node, userId, nowText, 's', '', '""', raw, after, hist)
  publish(channel, message)
  return message
end

-- The settings text stored at `settingsKey` (the defaults' when none) when it is not `expected`:
-- a compare-and-set refused; nil when it is.
local function settings_refused(settingsKey, expected)
  local stored = redis.call('GET', settingsKey) or DEFAULT_SETTINGS
  if stored ~= expected then return stored end
  return nil
end

-- Stores a user's settings `text` at `settingsKey` ('' keeps the stored ones) and folds them into
-- the user's presence value at `presenceKey` (same slot). A user with no value gets one
-- ([null,<fold>]: no lastOnline, no sessions) unless its settings are the defaults, which a
-- missing value means. settings.lua, and expire-settings.lua after its expiry.
local function store_settings(settingsKey, presenceKey, text)
  if text ~= '' then redis.call('SET', settingsKey, text) end
  local fold = fold_of(settingsKey)
  local raw = redis.call('GET', presenceKey)
  if not raw then
    if fold ~= '0' then redis.call('SET', presenceKey, '[null,' .. fold .. '\n]') end
    return
  end
  local stop = string.find(raw, '\n', 1, true)
  local first = string.sub(raw, 2, stop - 1)
  local comma = string.find(first, ',', 1, true)
  local lo = first
  if comma then lo = string.sub(first, 1, comma - 1) end
  local rest = string.sub(raw, stop)
  if lo == 'null' and fold == '0' and rest == '\n]' then
    redis.call('DEL', presenceKey)
  else
    redis.call('SET', presenceKey, '[' .. lo .. ',' .. fold .. rest)
  end
end
