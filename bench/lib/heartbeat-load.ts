/** What the heartbeat benches send (the heartbeat's wrk script), and their servers. */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { compiledFlags, firstJsonLine, presencedEnv } from './processes.js'

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

/** A heartbeat bench's server: presenced (bench/heartbeat-server.ts) or the bare one. */
export interface HeartbeatServer {
  name: string
  child: ChildProcess
  port: number
  /** The server's stdout: its JSON line, then what else it prints (V8's GC lines, say). */
  out: string
}

/**
 * Starts server `name` of a heartbeat bench (heartbeat-costs.ts, heartbeat-perf.ts): `bare`
 * (bench/lib/bare-server.ts answering `replyFile`), or presenced from `checkout` holding
 * `tokens` signed with `secret`, written to `<dir>/<name>-tokens.txt`. Its stdout goes to a file
 * in `dir`, not a pipe: a bench blocked in wrk never stalls a server that prints. `command`
 * goes before node (e.g. `stdbuf -oL`), `nodeFlags` after it.
 */
export async function startHeartbeatServer(options: {
  name: string
  checkout: string
  dir: string
  replyFile: string
  tokens: number
  secret: string
  command?: string[]
  nodeFlags?: string[]
}): Promise<HeartbeatServer> {
  const { name, checkout, dir } = options
  const bare = name === 'bare'
  const script = bare ? 'bench/lib/bare-server.ts' : 'bench/heartbeat-server.ts'
  const args = bare
    ? [options.replyFile]
    : ['--tokens', String(options.tokens), '--token-file', join(dir, `${name}-tokens.txt`)]
  if (!bare) args.push('--secret', options.secret)
  const out = join(dir, `${name}.out`)
  const fd = openSync(out, 'w')
  const [program, ...prefix] = [...(options.command ?? []), process.execPath]
  const child = spawn(
    program!,
    [
      ...prefix,
      ...(options.nodeFlags ?? []),
      '--import',
      'tsx',
      ...compiledFlags(checkout),
      script,
      ...args,
    ],
    {
      cwd: checkout,
      stdio: ['ignore', fd, 'inherit'],
      env: { ...process.env, ...(bare ? {} : presencedEnv('huge')) },
    },
  )
  closeSync(fd)
  const { port } = await firstJsonLine<{ port: number }>(child, out, name)
  return { name, child, port, out }
}
