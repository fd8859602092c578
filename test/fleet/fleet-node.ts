import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { UserId } from '../../src/core/user-id.js'
import { Tokens } from '../../src/service/tokens.js'

/** The servers spawned here exit with the test process (see the file). */
const EXIT_WITH_PARENT = new URL('../helpers/exit-with-parent.ts', import.meta.url).href

export const FLEET_TOKEN_SECRET = 'fleet-test-token-secret-0123456789abcdef'

export interface FleetNode {
  url: string
  process: ChildProcess
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<number | NodeJS.Signals | null>
  /** What the node logged (stdout) so far. */
  output(): string
  kill(signal?: NodeJS.Signals): Promise<number | NodeJS.Signals | null>
}

/**
 * Starts `presenced serve` as a real process on a port of its choosing (PORT=0) and resolves
 * with its URL once Fastify logs that it listens: a signal, not a sleep.
 */
export async function startFleetNode(env: Record<string, string>): Promise<FleetNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-fleet-'))
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', EXIT_WITH_PARENT, 'src/cli/main.ts', 'serve'],
    {
      cwd: new URL('../../', import.meta.url),
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        PRESENCED_DATA_DIR: dataDir,
        PRESENCED_TOKEN_SECRET: FLEET_TOKEN_SECRET,
        PRESENCED_RATE_LIMIT: '100000',
        PRESENCED_AUTH_FAILURE_LIMIT: '100000',
        ...env,
      },
      // stdin: see exit-with-parent.ts
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  )
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => {
      rmSync(dataDir, { recursive: true, force: true })
      resolve(signal ?? code)
    }),
  )
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  let stdout = ''
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    const timer = setTimeout(() => reject(new Error(`node did not start:\n${stderr}`)), 60_000)
    lines.on('line', (line) => {
      stdout += `${line}\n`
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
      if (match) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    })
    void exited.then(() => reject(new Error(`node exited before listening:\n${stderr}`)))
  })
  return {
    url,
    process: child,
    exited,
    output: () => stdout,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

export async function post(url: string, body: unknown, token?: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token && { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  })
}

/**
 * A user's Roblox calls on `node`: `register` (an app heartbeat in place 1818, a write) and
 * `lookup` (an anonymous read of the user's presence, which writes its rate limit).
 */
export async function robloxCallsOf(node: { url: string }, user: string) {
  const token = await new Tokens(FLEET_TOKEN_SECRET).issue(user as UserId)
  return {
    token,
    register: () =>
      post(
        `${node.url}/v1/presence/register-app-presence`,
        { location: 'Game', placeId: 1818, disconnect: false },
        token,
      ),
    lookup: () => post(`${node.url}/v1/presence/users`, { userIds: [user] }),
  }
}

/** POST /v1/presence/users on one node; the records in order. */
export async function presenceOf(
  node: FleetNode,
  userIds: string[],
): Promise<Array<{ userId: number; userPresenceType: number; lastOnline: string }>> {
  const response = await post(`${node.url}/v1/presence/users`, { userIds })
  if (response.status !== 200) throw new Error(`users: ${response.status} ${await response.text()}`)
  return ((await response.json()) as { userPresences: never[] }).userPresences
}
