-- Swaps a game server's last report (RedisKeys.server) for a new one and returns the players who
-- left: listed in the previous report, or left by it and not yet known to be ended (its "l"),
-- and not listed now. They are kept in the new report's "l" until the caller has ended their
-- sessions (server-settle.lua): if Redis is lost before that, the report is refused and its
-- retry finds them here again, so a retry always ends them.
-- KEYS[1] - the server's last report
-- ARGV[1] - the new report, JSON without "l" (ends with '}')
-- ARGV[2] - how long to keep it, ms
local previous = redis.call('GET', KEYS[1])
local left = {}
if previous then
  local old = cjson.decode(previous)
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
