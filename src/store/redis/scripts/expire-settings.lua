-- A settings write that shows the user more (PresenceService.putSettings), in one atomic step
-- with the expiry before it: ends the user's sessions past expiry as expire.lua does (the change
-- published and recorded with the fold of the settings in force, those the write replaces), then
-- stores the settings if they are still the expected ones, folded into the value, as settings.lua
-- does. No session can expire between the two, to be judged by the new settings when swept.
-- Loaded after presence.lua.
-- KEYS[1..4] - as in expire.lua: value, the user's expiry shard, the bucket's timer, counts
-- KEYS[5] - the user's settings key (same slot)
-- ARGV[1..8] - as in expire.lua
-- ARGV[9] - the settings as JSON text
-- ARGV[10] - the settings text expected at KEYS[5] (the defaults' when none is stored)
-- Returns {expiry} when the settings were stored, {expiry, stored} when the stored text was not
-- the expected one (nothing stored; the expiry is made all the same, judged by the settings in
-- force); `expiry` is the change message of expire.lua, '' when no session had expired.
local message = expire_user(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3],
  ARGV[4], ARGV[5], history(ARGV[6], ARGV[7], ARGV[8])) or ''
local stored = settings_refused(KEYS[5], ARGV[10])
if stored then return {message, stored} end
store_settings(KEYS[5], KEYS[1], ARGV[9])
return {message}
