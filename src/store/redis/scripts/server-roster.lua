-- Swaps a game server's last report (RedisKeys.server) for a new one and returns the players who
-- left: listed in the previous report, or left by it and not yet known to be ended (its "l"),
-- and not listed now. They are kept in the new report's "l" until the caller has ended their
-- sessions (server-settle.lua): if Redis is lost before that, the report is refused and its
-- retry finds them here again, so a retry always ends them.
-- KEYS[1] - the server's last report
-- ARGV[1] - the new report, JSON without "l" (ends with '}')
-- ARGV[2] - how long to keep it, ms
-- ARGV[3] - optional: now, epoch ms; then ARGV[4..] - the writer's universes: a live report
--           (its "ex" after now) of a universe not among them is kept, nothing written, and
--           {'!', its universe or ''} returned ('!' is no user id)
local previous = redis.call('GET', KEYS[1])
local left = {}
if previous then
  local old = cjson.decode(previous)
  if ARGV[3] and tonumber(old.ex) > tonumber(ARGV[3]) then
    local universe = cjson.decode(old.a).universeId
    local allowed = false
    for i = 4, #ARGV do
      if ARGV[i] == universe then allowed = true end
    end
    if not allowed then return {'!', type(universe) == 'string' and universe or ''} end
  end
  local listed = {}
  for _, id in ipairs(cjson.decode(ARGV[1]).p) do listed[id] = true end
  local seen = {}
  for _, list in ipairs({old.p or {}, old.l or {}}) do
    for _, id in ipairs(list) do
      if not listed[id] and not seen[id] then
        seen[id] = true
        left[#left + 1] = id
      end
    end
  end
end
local value = ARGV[1]
if #left > 0 then value = string.sub(value, 1, -2) .. ',"l":' .. cjson.encode(left) .. '}' end
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return left
