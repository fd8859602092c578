/** What bench/heartbeat.ts and bench/heartbeat-costs.ts send: the heartbeat's wrk script. */

export const HEARTBEAT_PATH = '/v1/presence/register-app-presence'
/** Places catalogued by bench/heartbeat-server.ts (ids 1000000..). */
export const HEARTBEAT_PLACES = 500

/**
 * wrk's Lua for heartbeats: one of `tokens` per request, drawn at random; `inGame` of the bodies
 * in a catalogued place, the rest online at home.
 */
export function heartbeatLua(tokens: readonly string[], inGame: number): string {
  return `
wrk.method = "POST"
math.randomseed(os.time())
local tokens = { ${tokens.map((t) => JSON.stringify(t)).join(',\n')} }
request = function()
  local token = tokens[math.random(1, #tokens)]
  local body
  if math.random() < ${inGame} then
    body = '{"location":"Game","placeId":' .. (1000000 + math.random(0, ${HEARTBEAT_PLACES - 1})) .. '}'
  else
    body = '{"location":"Home"}'
  end
  -- a headers table replaces wrk.headers: Content-Type goes in it too
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
  return wrk.format(nil, "${HEARTBEAT_PATH}", headers, body)
end
`
}
