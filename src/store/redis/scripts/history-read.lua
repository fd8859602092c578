-- Reads a user's history from one offset on, with where it stands, in one atomic step.
-- KEYS[1] - the user's history position: "<epoch> <offset>"
-- KEYS[2] - the user's history: list of "<at> <message>", oldest first, offsets consecutive
-- KEYS[3] - the user's latest privacy mark: "<epoch> <offset>" (presence.lua `count`)
-- KEYS[4] - the user's latest marks: list of "<epoch> <offset> <prev> <concern>", oldest first
-- ARGV[1] - the first offset wanted
-- Returns {} when the user has no history, else {position, mark or '', the marks' list joined
-- by newlines, entries from ARGV[1] still held...}.
local m = redis.call('GET', KEYS[1])
if not m then return {} end
local offset = tonumber(string.match(m, ' (%d+)$'))
local want = offset - tonumber(ARGV[1]) + 1
local out = {m, redis.call('GET', KEYS[3]) or '',
  table.concat(redis.call('LRANGE', KEYS[4], 0, -1), '\n')}
if want > 0 then
  for _, entry in ipairs(redis.call('LRANGE', KEYS[2], -want, -1)) do out[#out + 1] = entry end
end
return out
