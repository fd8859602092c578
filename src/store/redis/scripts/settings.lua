-- Stores a user's settings and folds them into the user's presence value in the same step
-- (presence-codec.ts), so that a read finds them there and every node sees a change at once.
-- Loaded after presence.lua. Also what folds settings stored before folding existed (a value
-- that lacks them, or none): ARGV[1] '' keeps the stored settings and only folds them.
-- KEYS[1] - the user's settings key
-- KEYS[2] - the user's presence value (same slot)
-- ARGV[1] - the settings as JSON text, or '' to fold the stored ones
-- ARGV[2] - optional: the settings text expected at KEYS[1] (none: the defaults); when the stored
--           text differs, nothing is written and the stored text (or the defaults') is returned
-- A user with no value gets one ([null,<fold>]: no lastOnline, no sessions) unless its settings
-- are the defaults, which a missing value means.
if ARGV[2] then
  local stored = redis.call('GET', KEYS[1]) or DEFAULT_SETTINGS
  if stored ~= ARGV[2] then return stored end
end
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1]) end
local fold = fold_of(KEYS[1])
local raw = redis.call('GET', KEYS[2])
if not raw then
  if fold ~= '0' then redis.call('SET', KEYS[2], '[null,' .. fold .. '\n]') end
  return
end
local stop = string.find(raw, '\n', 1, true)
local first = string.sub(raw, 2, stop - 1)
local comma = string.find(first, ',', 1, true)
local lo = first
if comma then lo = string.sub(first, 1, comma - 1) end
local rest = string.sub(raw, stop)
if lo == 'null' and fold == '0' and rest == '\n]' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], '[' .. lo .. ',' .. fold .. rest)
end
