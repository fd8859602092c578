-- Records one change in its user's history without publishing it (RedisHistory.append: changes
-- whose store did not record them; the presence scripts record theirs themselves).
-- KEYS[1], KEYS[2], KEYS[3], KEYS[4] - the user's history position, list, latest mark and latest
-- marks' concerns (the keys the prefix below names)
-- ARGV[1] - user id
-- ARGV[2] - now, epoch ms
-- ARGV[3] - the change as JSON (RedisHistory's own format)
-- ARGV[4..6] - the bucket's history prefix, changes kept per user, their age in ms (presence.lua)
-- ARGV[7] - '1' when the change is a privacy mark
-- ARGV[8] - whom the mark concerns (history.ts `concerns`; '' every viewer)
-- ARGV[9] - marks kept in KEYS[4]
-- Returns {epoch, offset}, or nil when no history is kept.
local hist = history(ARGV[4], ARGV[5], ARGV[6])
local mark = ARGV[7] == '1'
local prior = mark and redis.call('GET', KEYS[3])
local epoch, offset = count(hist, ARGV[1], mark)
if not epoch then return nil end
if mark then
  -- the previous mark of the same epoch, so that a reader knows when it holds them all
  local prev = '0'
  if prior then
    local e, o = string.match(prior, '^(%d+) (%d+)$')
    if e == epoch then prev = o end
  end
  redis.call('RPUSH', KEYS[4], epoch .. ' ' .. offset .. ' ' .. prev .. ' ' .. ARGV[8])
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[9]), -1)
  redis.call('PEXPIRE', KEYS[4], hist.ttl)
end
keep(hist, ARGV[1], ARGV[2], '{"n":"","h":["' .. epoch .. '",' .. offset .. '],"j":' .. ARGV[3] .. '}')
return {epoch, offset}
