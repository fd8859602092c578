-- Stores a user's settings and folds them into the user's presence value in the same step
-- (presence-codec.ts), so that a read finds them there and every node sees a change at once.
-- Loaded after presence.lua (store_settings). Also what folds settings stored before folding
-- existed (a value that lacks them, or none): ARGV[1] '' keeps the stored settings and only folds
-- them.
-- KEYS[1] - the user's settings key
-- KEYS[2] - the user's presence value (same slot)
-- ARGV[1] - the settings as JSON text, or '' to fold the stored ones
-- ARGV[2] - optional: the settings text expected at KEYS[1] (none: the defaults); when the stored
--           text differs, nothing is written and the stored text (or the defaults') is returned
if ARGV[2] then
  local stored = settings_refused(KEYS[1], ARGV[2])
  if stored then return stored end
end
store_settings(KEYS[1], KEYS[2], ARGV[1])
