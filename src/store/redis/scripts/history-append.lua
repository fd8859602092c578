-- Records one change in its user's history without publishing it (RedisHistory.append: changes
-- whose store did not record them; the presence scripts record theirs themselves).
-- KEYS[1], KEYS[2], KEYS[3] - the user's history position, list and latest mark (the keys the
-- prefix below names)
-- ARGV[1] - user id
-- ARGV[2] - now, epoch ms
-- ARGV[3] - the change as JSON (RedisHistory's own format)
-- ARGV[4..6] - the bucket's history prefix, changes kept per user, their age in ms (presence.lua)
-- ARGV[7] - '1' when the change is a privacy mark
-- Returns {epoch, offset}, or nil when no history is kept.
local hist = history(ARGV[4], ARGV[5], ARGV[6])
local epoch, offset = count(hist, ARGV[1], ARGV[7] == '1')
if not epoch then return nil end
keep(hist, ARGV[1], ARGV[2], '{"n":"","h":["' .. epoch .. '",' .. offset .. '],"j":' .. ARGV[3] .. '}')
return {epoch, offset}
