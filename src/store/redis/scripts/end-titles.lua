-- Ends a user's Xbox title sessions on one device at once (PresenceStore.endTitles), atomically
-- with the bucket's expiry index, each ended session its own change (recorded and published in
-- order, as end.lua does one); with a per-title budget, its hits are counted first in the same
-- step (limitedEndTitles), so a title started meanwhile is either ended here or started after.
-- Loaded after limit.lua and presence.lua.
-- KEYS[1..4] - as in end.lua: value, the user's expiry shard, the bucket's timer, counts
-- ARGV[1] - user id
-- ARGV[2] - now, epoch ms
-- ARGV[3] - the user's shard
-- ARGV[4] - the device type as JSON text
-- ARGV[5] - the named title id, '' for every title session of the device (counted only when
--   the device runs it)
-- ARGV[6] - the named title's session key as JSON text ('' when none)
-- ARGV[7] - the reason the sessions end
-- ARGV[8] - channel to publish the changes on ('' for none)
-- ARGV[9] - this node's id
-- ARGV[10..12] - the bucket's history prefix, changes kept per user, their age in ms (presence.lua)
-- ARGV[13] - n, the budget's rules (0: no budget, nothing counted)
-- ARGV[14] - the title whose hits are counted when no title is found
-- ARGV[15] - each window counter's name before the title id (RedisKeys.rateWindowAround): on a
--   cluster, a budget of the user's own, whose counters are in the user's slot
-- ARGV[16..15+n] - each rule's window counter name after the title id
-- ARGV[16+n..15+2n] - each window's length in ms; ARGV[16+2n..15+3n] - each rule's max
-- Returns {-1, count...} when a rule refuses (the counts of the refused title's windows; the
-- titles before it stay counted, nothing is ended), else {t, title id x t, change message...}:
-- the titles found and counted (none: ARGV[14]'s was counted) and one message (kind e) per
-- session ended. A title session already past expiry is not ended (the sweep reports it, as
-- end.lua leaves it); but when any session ends, every session of the user past expiry ends with
-- the first change (end_expired): its `before` holds them, and it tells their expiry first (core
-- expiryOf), once, as end.lua does.
local now = tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
local lo, sessions, fold = parse(raw, settings_key(KEYS[1], ARGV[1]))
local device = ARGV[4]
local named = ARGV[5]

-- the live sessions to end (their index in `sessions`), their titles and key texts
local found, titles, keys = {}, {}, {}
if named ~= '' then
  local prefix = ARGV[6] .. ','
  for i, s in ipairs(sessions) do
    if s.ex > now and has_key(s, prefix) then
      found[#found + 1] = i
      keys[#keys + 1] = ARGV[6]
    end
  end
  -- a title the device does not run is not counted (ARGV[14]'s is): a new title id per request
  -- would otherwise be a fresh budget each time
  if #found > 0 then titles[1] = named end
else
  for i, s in ipairs(sessions) do
    if s.ex > now then
      local line = elements('[' .. s.rest)
      if line[2] == '"t"' and line[3] == device and line[4] then
        local title = elements(line[4])[7]
        if title ~= nil and title ~= '0' and title ~= '""' then
          found[#found + 1] = i
          titles[#titles + 1] = cjson.decode(title)
          keys[#keys + 1] = line[1]
        end
      end
    end
  end
end

local n = tonumber(ARGV[13])
if n > 0 then
  local counted = titles
  if #counted == 0 then counted = {ARGV[14]} end
  local escapes = {['%'] = '%25', ['{'] = '%7B', ['}'] = '%7D'}
  for _, title in ipairs(counted) do
    local head = ARGV[15] .. (string.gsub(title, '[%%{}]', escapes))
    local windows = {}
    for i = 1, n do windows[i] = head .. ARGV[15 + i] end
    local counts = count_hits(windows, 1, ARGV, 16 + n, n)
    for i = 1, n do
      if counts[i] > tonumber(ARGV[15 + 2 * n + i]) then
        table.insert(counts, 1, -1)
        return counts
      end
    end
  end
end

local reply = {#titles}
for _, title in ipairs(titles) do reply[#reply + 1] = title end
if #found == 0 then return reply end

-- each session to end, by its turn
local turn = {}
for k, i in ipairs(found) do turn[sessions[i]] = k end
-- the user's sessions past expiry end with the first change (those to end are live)
end_expired(sessions, now, nil, KEYS[4])
if lo == nil or lo < now then lo = now end
local hist = history(ARGV[10], ARGV[11], ARGV[12])
local before = raw
local kept = sessions
for k = 1, #found do
  -- the sessions left after this one ends: the ones still to end are in until their turn
  local left = {}
  for _, s in ipairs(sessions) do
    local t = turn[s]
    if not (t and t <= k) then left[#left + 1] = s end
  end
  kept = left
  local after = encode(lo, kept, fold)
  local message = change(ARGV[9], ARGV[1], ARGV[2], 'e', ARGV[7], keys[k], before, after, hist)
  publish(ARGV[8], message)
  reply[#reply + 1] = message
  before = after
end
redis.call('HINCRBY', KEYS[4], 's', -#found)
index(KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[1], kept)
redis.call('SET', KEYS[1], before)
return reply
