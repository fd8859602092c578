/**
 * Soak: a mixed load against a real `presenced serve` child process for a set time, sampling the
 * server's memory (from /metrics) and the request latency every --sample seconds, then reporting
 * whether memory and latency stayed flat (median of the first third of the samples against the
 * last third). Exit 0 when flat with no 5xx and a clean SIGTERM, else 1.
 *
 *   npm run soak                          # 10 minutes
 *   npm run soak -- --minutes 1 --sample 5
 *
 * The load is paced (open loop, requests per second), not flat out: the point is to see whether
 * anything accumulates over time (sessions, subscriptions, buffers, timers), not the ceiling.
 * - reads: POST /v1/presence/users, 50 random ids, anonymous or as a user
 * - Xbox reads: POST /users/batch, 100 xuids, with a presence:read API key
 * - heartbeats: register-app-presence for random users of a large pool (online or in game), some
 *   ending with disconnect: with a 3 s session TTL most users come and go, so sessions expire
 *   and the janitor sweeps all the time (expiry churn)
 * - settings writes: PUT /v1/presence/settings (durable, SQLite)
 * - real-time: WebSocket subscribers watching 100 users each; a tenth of them reconnect every
 *   30 s (subscription churn), each counting the frames it receives
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { WebSocket } from 'ws'
import type { UserId } from '../src/core/user-id.js'
import { Tokens } from '../src/service/tokens.js'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    sample: { type: 'string', default: '10' },
    users: { type: 'string', default: '20000' },
    'read-rps': { type: 'string', default: '150' },
    'xbox-rps': { type: 'string', default: '20' },
    'beat-rps': { type: 'string', default: '150' },
    'settings-rps': { type: 'string', default: '5' },
    subscribers: { type: 'string', default: '50' },
    ttl: { type: 'string', default: '3' },
  },
})
const minutes = Number(values.minutes)
const sampleMs = Number(values.sample) * 1000
const userCount = Number(values.users)
const rates = {
  read: Number(values['read-rps']),
  xbox: Number(values['xbox-rps']),
  beat: Number(values['beat-rps']),
  settings: Number(values['settings-rps']),
}
const subscriberCount = Number(values.subscribers)
for (const [name, value] of Object.entries({ minutes, sampleMs, userCount, ...rates })) {
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number >= 0`)
}

const ROOT = resolve(import.meta.dirname, '..')
const ADMIN_KEY = 'soak-admin-key'
const SECRET = 'soak-token-secret-of-enough-length-0123456789'
/** Requests of one kind in flight beyond which a tick's requests are skipped (and counted). */
const MAX_IN_FLIGHT = 64
const TICK_MS = 20
const cpus = availableParallelism()

// ---- the server ------------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer()
    server.once('error', fail)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => done(port))
    })
  })
}

const dataDir = mkdtempSync(join(tmpdir(), 'presenced-soak-'))
const port = await freePort()
const base = `http://127.0.0.1:${port}`
const child: ChildProcess = spawn(
  process.execPath,
  ['--import', 'tsx', 'src/cli/main.ts', 'serve'],
  {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      PRESENCED_DATA_DIR: dataDir,
      PRESENCED_ADMIN_KEY: ADMIN_KEY,
      PRESENCED_TOKEN_SECRET: SECRET,
      PRESENCED_SESSION_TTL: values.ttl,
      PRESENCED_RATE_LIMIT: '1000000000',
      // the Xbox reads have their own budget (30 per 15 s per caller), which the soak's one API
      // key at --xbox-rps 20 would exceed at once: every batch past it a 429, and no verdict
      PRESENCED_XBOX_READ_BURST: '1000000000',
      PRESENCED_XBOX_READ_SUSTAIN: '1000000000',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  },
)
let serverErrors = ''
child.stderr!.on('data', (chunk: Buffer) => (serverErrors += chunk.toString()))
const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)))
const cleanup = () => {
  if (child.exitCode === null) child.kill('SIGKILL')
  rmSync(dataDir, { recursive: true, force: true })
}
process.on('SIGINT', () => {
  cleanup()
  process.exit(130)
})

for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break
  } catch {
    // not listening yet
  }
  if (child.exitCode !== null || i > 300) {
    cleanup()
    throw new Error(`presenced did not start:\n${serverErrors}`)
  }
  await new Promise((r) => setTimeout(r, 100))
}

// ---- callers ---------------------------------------------------------------------------------

const tokens = new Tokens(SECRET)
// one token per user of a smaller signed pool: signing 20k JWTs up front costs seconds
const signed = await Promise.all(
  Array.from({ length: 2000 }, (_, i) => tokens.issue(String(i + 1) as UserId)),
)
const randomUser = (): number => 1 + Math.floor(Math.random() * userCount)
const tokenOf = (user: number): string => signed[(user - 1) % signed.length]!
const userOfToken = (user: number): number => ((user - 1) % signed.length) + 1

const keyResponse = await fetch(`${base}/admin/v1/keys`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY },
  body: JSON.stringify({ name: 'soak-reader', scopes: ['presence:read'] }),
})
if (!keyResponse.ok) throw new Error(`creating an API key failed: ${keyResponse.status}`)
const readKey = ((await keyResponse.json()) as { secret: string }).secret

// ---- measurement -----------------------------------------------------------------------------

interface Window {
  latencies: number[]
  requests: number
  errors4xx: number
  errors5xx: number
  failures: number
  skipped: number
  wsFrames: number
}
const fresh = (): Window => ({
  latencies: [],
  requests: 0,
  errors4xx: 0,
  errors5xx: 0,
  failures: 0,
  skipped: 0,
  wsFrames: 0,
})
let window = fresh()
const totals = fresh()
const failureSamples: string[] = []

async function timed(kind: string, url: string, init: RequestInit): Promise<void> {
  const started = performance.now()
  try {
    const response = await fetch(base + url, init)
    await response.arrayBuffer()
    window.latencies.push(performance.now() - started)
    window.requests++
    if (response.status >= 500) window.errors5xx++
    // 429 would mean the soak's own pacing is off; any 4xx is counted as an error
    else if (response.status >= 400) window.errors4xx++
    if (response.status >= 400 && failureSamples.length < 10) {
      failureSamples.push(`${kind} ${response.status}`)
    }
  } catch (error) {
    window.failures++
    if (failureSamples.length < 10) failureSamples.push(`${kind} ${(error as Error).message}`)
  }
}

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
})
const ids = (n: number): number[] => Array.from({ length: n }, randomUser)

const kinds: Record<keyof typeof rates, () => Promise<void>> = {
  read: () => {
    const user = randomUser()
    const auth = Math.random() < 0.5 ? { authorization: `Bearer ${tokenOf(user)}` } : undefined
    return timed('read', '/v1/presence/users', json({ userIds: ids(50) }, auth))
  },
  xbox: () =>
    timed(
      'xbox',
      '/users/batch',
      json(
        { users: ids(100).map(String), level: 'all' },
        { 'x-api-key': readKey, 'x-xbl-contract-version': '3' },
      ),
    ),
  beat: () => {
    const user = randomUser()
    const roll = Math.random()
    const body =
      roll < 0.1
        ? { location: 'Game', placeId: 1818, disconnect: true }
        : roll < 0.5
          ? { location: 'Game', placeId: 1000 + (user % 50), gameId: crypto.randomUUID() }
          : { location: 'Website' }
    return timed(
      'heartbeat',
      '/v1/presence/register-app-presence',
      json(body, { authorization: `Bearer ${tokenOf(user)}` }),
    )
  },
  settings: () => {
    const user = randomUser()
    const visibility = ['everyone', 'friends', 'nobody'][user % 3]
    return timed('settings', '/v1/presence/settings', {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenOf(user)}` },
      body: JSON.stringify({ visibility, invisible: Math.random() < 0.05 }),
    })
  },
}

const inFlight: Record<string, number> = {}
const credit: Record<string, number> = {}
const ticker = setInterval(() => {
  for (const [kind, rate] of Object.entries(rates)) {
    credit[kind] = (credit[kind] ?? 0) + (rate * TICK_MS) / 1000
    while (credit[kind]! >= 1) {
      credit[kind]! -= 1
      if ((inFlight[kind] ?? 0) >= MAX_IN_FLIGHT) {
        window.skipped++
        continue
      }
      inFlight[kind] = (inFlight[kind] ?? 0) + 1
      void kinds[kind as keyof typeof rates]().finally(() => inFlight[kind]!--)
    }
  }
}, TICK_MS)

// ---- real-time subscribers -------------------------------------------------------------------

const sockets = new Set<WebSocket>()
let wsOpened = 0
let wsErrors = 0
const wsCloseCodes = new Map<number, number>()
let stopping = false
function subscribe(): void {
  const user = randomUser()
  const socket = new WebSocket(
    `ws://127.0.0.1:${port}/api/v1/realtime?access_token=${tokenOf(user)}`,
  )
  sockets.add(socket)
  socket.on('open', () => {
    wsOpened++
    socket.send(JSON.stringify({ type: 'subscribe', ids: ids(100).map(String) }))
    // a third of the subscribers are present through their connection
    if (userOfToken(user) % 3 === 0) {
      socket.send(JSON.stringify({ type: 'heartbeat', activity: { kind: 'online' } }))
    }
  })
  socket.on('message', () => window.wsFrames++)
  socket.on('error', () => wsErrors++)
  socket.on('close', (code) => {
    sockets.delete(socket)
    if (code !== 1000 && code !== 1005 && !stopping) {
      wsErrors++
      wsCloseCodes.set(code, (wsCloseCodes.get(code) ?? 0) + 1)
    }
    if (!stopping) subscribe()
  })
}
for (let i = 0; i < subscriberCount; i++) subscribe()
const churn = setInterval(() => {
  const victims = [...sockets].slice(0, Math.ceil(sockets.size / 10))
  for (const socket of victims) socket.close(1000)
}, 30_000)

// ---- sampling --------------------------------------------------------------------------------

interface Sample {
  t: number
  rssMb: number
  heapMb: number
  sessions: number
  requests: number
  rps: number
  p50: number
  p99: number
  errors: number
  wsFrames: number
  /** The machine's 1-minute load average: other work on the machine skews latency. */
  load: number
}
const samples: Sample[] = []
const started = Date.now()

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN
}

async function takeSample(): Promise<void> {
  const w = window
  window = fresh()
  const scrape = { headers: { authorization: `Bearer ${ADMIN_KEY}` } }
  const text = await (await fetch(`${base}/metrics`, scrape)).text()
  const sorted = w.latencies.sort((a, b) => a - b)
  for (const key of Object.keys(totals) as Array<keyof Window>) {
    if (key === 'latencies') continue
    totals[key] += w[key]
  }
  const sample: Sample = {
    t: Math.round((Date.now() - started) / 1000),
    rssMb: metric(text, 'process_resident_memory_bytes') / 2 ** 20,
    heapMb: metric(text, 'nodejs_heap_size_used_bytes') / 2 ** 20,
    sessions: metric(text, 'presenced_live_sessions'),
    requests: w.requests,
    rps: w.requests / (sampleMs / 1000),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    errors: w.errors4xx + w.errors5xx + w.failures,
    wsFrames: w.wsFrames,
    load: loadavg()[0]!,
  }
  samples.push(sample)
  console.log(row(sample))
}

const HEADER = [
  't (s)',
  'RSS MB',
  'heap MB',
  'sessions',
  'req/s',
  'p50 ms',
  'p99 ms',
  'errors',
  'load',
]
const pad = (cells: Array<string | number>) => cells.map((c) => String(c).padStart(9)).join(' ')
const row = (s: Sample) =>
  pad([
    s.t,
    s.rssMb.toFixed(1),
    s.heapMb.toFixed(1),
    s.sessions,
    s.rps.toFixed(0),
    s.p50.toFixed(2),
    s.p99.toFixed(2),
    s.errors,
    s.load.toFixed(1),
  ]) + `   ws frames ${s.wsFrames}`

console.log(
  `soak: ${minutes} min against ${base}; per second ${rates.read} reads, ${rates.xbox} Xbox ` +
    `batches, ${rates.beat} heartbeats, ${rates.settings} settings writes; ${subscriberCount} ` +
    `WebSocket subscribers; ${userCount} users, session TTL ${values.ttl} s`,
)
console.log(pad(HEADER))
const sampler = setInterval(() => void takeSample(), sampleMs)
await new Promise((r) => setTimeout(r, minutes * 60_000))

// ---- verdict ---------------------------------------------------------------------------------

clearInterval(sampler)
clearInterval(ticker)
clearInterval(churn)
await takeSample()
stopping = true
for (const socket of sockets) socket.close(1000)
// let in-flight requests finish before stopping the server
for (let i = 0; i < 100 && Object.values(inFlight).some((n) => n > 0); i++) {
  await new Promise((r) => setTimeout(r, 50))
}
child.kill('SIGTERM')
const exitCode = await exited

const median = (xs: number[]) => {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!
}
// the first sample is warm-up (JIT, pools filling), left out of the comparison
const measured = samples.slice(1)
const third = Math.max(1, Math.floor(measured.length / 3))
const first = measured.slice(0, third)
const last = measured.slice(-third)
type Field = 'rssMb' | 'heapMb' | 'p50' | 'p99' | 'sessions'
// heap used is a sawtooth (GC): its floor (the third's minimum) is the live data; others: medians
const pick = (field: Field, xs: number[]) =>
  field === 'heapMb' ? Math.min(...xs.filter(Number.isFinite)) : median(xs)
const compare = (field: Field) => {
  const a = pick(
    field,
    first.map((s) => s[field]),
  )
  const b = pick(
    field,
    last.map((s) => s[field]),
  )
  return { a, b, change: (b - a) / a }
}
/** Flat: the last third's median within these bounds of the first third's. */
const limits: Record<Field, { ratio: number; slack: number }> = {
  rssMb: { ratio: 0.2, slack: 20 },
  heapMb: { ratio: 0.25, slack: 10 },
  p50: { ratio: 0.5, slack: 2 },
  p99: { ratio: 1, slack: 10 },
  sessions: { ratio: 0.25, slack: 100 },
}
console.log('\nfirst third vs last third (medians; heap: the floor; the first sample is warm-up):')
console.log(pad(['', 'first', 'last', 'change', 'flat?']))
let flat = true
for (const field of Object.keys(limits) as Field[]) {
  const { a, b, change } = compare(field)
  const { ratio, slack } = limits[field]
  const ok = b <= a * (1 + ratio) || b - a <= slack
  if (!ok) flat = false
  console.log(
    pad([field, a.toFixed(2), b.toFixed(2), `${(change * 100).toFixed(1)}%`, ok ? 'yes' : 'NO']),
  )
}
console.log(
  `\nrequests ${totals.requests}, 4xx ${totals.errors4xx}, 5xx ${totals.errors5xx}, network ` +
    `failures ${totals.failures}, skipped (backlog) ${totals.skipped}; WebSocket connections ` +
    `opened ${wsOpened}, abnormal closes/errors ${wsErrors}, frames ${totals.wsFrames}`,
)
if (wsCloseCodes.size > 0) {
  console.log(`abnormal close codes: ${JSON.stringify(Object.fromEntries(wsCloseCodes))}`)
}
console.log(
  `machine load average (1 min) over the run: median ${median(samples.map((s) => s.load)).toFixed(1)} on ${cpus} CPUs`,
)
if (failureSamples.length > 0) console.log(`first failures: ${failureSamples.join('; ')}`)
console.log(`server exit code after SIGTERM: ${exitCode}`)
const healthy =
  flat &&
  totals.errors5xx === 0 &&
  totals.failures === 0 &&
  totals.errors4xx === 0 &&
  exitCode === 0
console.log(
  healthy
    ? 'VERDICT: memory and latency stayed flat; no errors'
    : 'VERDICT: NOT flat or errors seen',
)
if (serverErrors.trim() !== '') console.log(`server stderr:\n${serverErrors.slice(0, 2000)}`)
rmSync(dataDir, { recursive: true, force: true })
process.exit(healthy ? 0 : 1)
