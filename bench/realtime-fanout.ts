/**
 * Real-time fan-out on one node: N WebSocket subscribers, each watching `--watch` users drawn
 * from a pool of N users; a load generator changes presence at a steady rate; every delivered
 * event's change-to-delivery latency is measured by the subscriber (the change carries its
 * instant in `activity.location`). The same run is repeated against a baseline: a bare `ws`
 * server that sends the same bytes to the same watchers with no projection, privacy, sequence
 * or replay. Ratios are presenced / baseline.
 *
 *   node --expose-gc --import tsx bench/realtime-fanout.ts               # 10,000 subscribers
 *   node --expose-gc --import tsx bench/realtime-fanout.ts --subscribers 2000 --rate 500
 *
 * The subscribers run in a child process (one core each on a 2-core machine: the server gets
 * one, the clients the other). Memory per connection is the server's heap and RSS growth after
 * every subscriber has its snapshot (after a full GC), divided by N.
 *
 * presenced runs in this process from the checkout's tsc build, as `npm start` runs it and the
 * other benches' servers do (lib/processes.ts useCompiled; built first when stale): through tsx,
 * esbuild's keepNames wrapped every closure made in a `__name` call. PRESENCED_BENCH_SOURCE=1
 * runs the sources instead.
 */
import { execFile, fork, spawnSync, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeHeapSnapshot } from 'node:v8'
import WebSocket, { WebSocketServer } from 'ws'
import type { UserId } from '../src/core/user-id.js'
import { startCpuProfile } from './lib/cpu-profile.js'
import { settle } from './lib/memory.js'
import { useCompiled } from './lib/processes.js'
import { benchArgs } from './lib/args.js'

const { values: args } = benchArgs(import.meta.url, {
  options: {
    subscribers: { type: 'string', default: '10000' },
    watch: { type: 'string', default: '50' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    role: { type: 'string', default: 'server' },
    /** Skip the baseline (e.g. to profile presenced alone). */
    'no-baseline': { type: 'boolean', default: false },
    /** Write the server's CPU profile of presenced's measured phase to this file. */
    profile: { type: 'string' },
    /**
     * Pin the subscribers' process to these CPUs (taskset list, e.g. `1`): with the bench under
     * `taskset -c 0` beside a busy loop on CPU 0, the servers get half a core and the clients
     * one of their own (the contention of a CI run beside the bench).
     */
    'client-cpus': { type: 'string' },
    /**
     * Run under `valgrind --tool=callgrind --instr-atstart=no`: instrumentation is turned on for
     * each measured window and dumped at its end (one file per server: the instructions the
     * window cost in user space, the kernel's writes not counted).
     */
    callgrind: { type: 'boolean', default: false },
    /** The subscribers count a run as drained after this long without a frame (ms). */
    'quiet-ms': { type: 'string', default: '500' },
    /** Write a heap snapshot of the server once presenced's subscribers are connected. */
    'heap-snapshot': { type: 'string' },
  },
})
const N = Number(args.subscribers)
const WATCH = Number(args.watch)
const RATE = Number(args.rate)
const SECONDS = Number(args.seconds)
const FIRST_ID = 1_000_000

/** Deterministic watch list of subscriber i (both processes compute the same). */
function watchList(i: number): string[] {
  let x = (i * 2654435761) >>> 0 || 1
  const ids = new Set<string>()
  while (ids.size < Math.min(WATCH, N)) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    ids.add(String(FIRST_ID + (x % N)))
  }
  return [...ids]
}

const nowMs = (): number => performance.timeOrigin + performance.now()

// ---------------------------------------------------------------- clients (child process)

type ToChild =
  | { cmd: 'connect'; url: string; tokens: string[] | undefined; mode: 'presenced' | 'baseline' }
  | { cmd: 'measure' }
  | { cmd: 'close' }

interface Report {
  delivered: number
  p50: number
  p99: number
  max: number
  closedEarly: number
}

async function runClients(): Promise<void> {
  let sockets: WebSocket[] = []
  let latencies: number[] = []
  let measuring = false
  let closedEarly = 0
  const send = (message: unknown): void => void process.send!(message)

  const onMessage = (data: WebSocket.RawData): void => {
    if (!measuring) return
    const text = data.toString()
    const at = text.indexOf('"location":"t')
    if (at < 0) return
    latencies.push(nowMs() - Number(text.slice(at + 13, text.indexOf('"', at + 13))))
  }

  async function connect(message: Extract<ToChild, { cmd: 'connect' }>): Promise<void> {
    sockets = []
    let next = 0
    const one = async (): Promise<void> => {
      while (next < N) {
        const i = next++
        const headers: Record<string, string> = message.tokens
          ? { authorization: `Bearer ${message.tokens[i]}` }
          : {}
        const socket = new WebSocket(message.url, { headers, perMessageDeflate: false })
        await new Promise<void>((resolve, reject) => {
          socket.once('open', () => resolve())
          socket.once('error', reject)
        })
        // wait for the snapshot, so the measured phase starts with every watch in place
        const ready = new Promise<void>((resolve) => socket.once('message', () => resolve()))
        socket.send(JSON.stringify({ type: 'subscribe', ids: watchList(i) }))
        await ready
        socket.on('message', onMessage)
        socket.on('close', () => {
          if (measuring) closedEarly++
        })
        sockets.push(socket)
      }
    }
    await Promise.all(Array.from({ length: 64 }, one))
  }

  process.on('message', (message: ToChild) => {
    void (async () => {
      if (message.cmd === 'connect') {
        await connect(message)
        send({ ready: sockets.length })
      } else if (message.cmd === 'measure') {
        latencies = []
        closedEarly = 0
        measuring = true
      } else {
        // let in-flight frames land: wait until nothing has arrived for --quiet-ms (half a second)
        for (let seen = -1; seen !== latencies.length;) {
          seen = latencies.length
          await new Promise((resolve) => setTimeout(resolve, Number(args['quiet-ms'])))
        }
        measuring = false
        // the server reads its CPU time here: the window ends with the last delivery, not the closes
        send({ drained: true })
        const sorted = Float64Array.from(latencies).sort()
        const at = (q: number): number =>
          sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
        const report: Report = {
          delivered: sorted.length,
          p50: at(0.5),
          p99: at(0.99),
          max: sorted[sorted.length - 1] ?? NaN,
          closedEarly,
        }
        await Promise.all(
          sockets.map(
            (s) =>
              new Promise<void>((resolve) => {
                if (s.readyState === WebSocket.CLOSED) return resolve()
                s.once('close', () => resolve())
                s.close()
              }),
          ),
        )
        send({ report })
      }
    })()
  })
  send({ started: true })
}

// ---------------------------------------------------------------- server (main process)

function ask<T>(child: ChildProcess, message: ToChild, key: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (reply: Record<string, unknown>): void => {
      if (!(key in reply)) return
      child.off('message', onMessage)
      resolve(reply[key] as T)
    }
    child.on('message', onMessage)
    child.send(message)
  })
}

interface PhaseResult extends Report {
  seconds: number
  /** The server process's CPU time (user + system) from the first change to the last delivery. */
  cpuMs: number
  changes: number
  bytesPerConnection: { heap: number; rss: number }
  connectSeconds: number
}

/** Runs one phase: connect everyone, measure memory, drive `change` at RATE for SECONDS. */
async function phase(
  child: ChildProcess,
  url: string,
  tokens: string[] | undefined,
  mode: 'presenced' | 'baseline',
  change: (target: string, location: string) => Promise<unknown> | void,
): Promise<PhaseResult> {
  const before = settle()
  const connectStarted = performance.now()
  await ask(child, { cmd: 'connect', url, tokens, mode }, 'ready')
  const connectSeconds = (performance.now() - connectStarted) / 1000
  const after = settle()
  if (args['heap-snapshot'] && mode === 'presenced') writeHeapSnapshot(args['heap-snapshot'])
  return await drive()

  async function drive(): Promise<PhaseResult> {
    child.send({ cmd: 'measure' })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const stopProfile = args.profile ? await startCpuProfile() : undefined
    // asynchronously: callgrind answers while this process runs
    if (args.callgrind) await callgrindControl('-i', 'on')
    const started = performance.now()
    const cpuStarted = process.cpuUsage()
    let changes = 0
    let seed = 12345
    const tickMs = 10
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const elapsed = performance.now() - started
        const dueCount = Math.min(RATE * SECONDS, Math.floor((elapsed / 1000) * RATE))
        while (changes < dueCount) {
          seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
          const target = String(FIRST_ID + (seed % N))
          // latency counts from when the change was due, so a generator that falls behind
          // (a saturated server) shows in the figures instead of hiding
          const due = performance.timeOrigin + started + (changes * 1000) / RATE
          void change(target, `t${due}`)
          changes++
        }
        if (elapsed >= SECONDS * 1000) {
          clearInterval(timer)
          resolve()
        }
      }, tickMs)
    })
    const seconds = (performance.now() - started) / 1000
    const reported = ask<Report>(child, { cmd: 'close' }, 'report')
    await new Promise<void>((resolve) => {
      const onMessage = (reply: Record<string, unknown>): void => {
        if (!('drained' in reply)) return
        child.off('message', onMessage)
        resolve()
      }
      child.on('message', onMessage)
    })
    const cpu = process.cpuUsage(cpuStarted)
    if (args.callgrind) {
      await callgrindControl('-d', mode)
      await callgrindControl('-i', 'off')
    }
    await stopProfile?.(`${args.profile!}.${mode}.cpuprofile`)
    const report = await reported
    return {
      ...report,
      seconds,
      cpuMs: (cpu.user + cpu.system) / 1000,
      changes,
      connectSeconds,
      bytesPerConnection: {
        heap: (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / N,
        rss: (after.rss - before.rss) / N,
      },
    }
  }
}

async function callgrindControl(...options: string[]): Promise<void> {
  const [flag, value] = options
  const option = flag === '-d' ? [`--dump=${value}`] : [flag!, value!]
  await promisify(execFile)('callgrind_control', [...option, String(process.pid)])
}

async function runServer(): Promise<void> {
  // presenced from the build (see above): imported only once that is in place
  await useCompiled(join(import.meta.dirname, '..'))
  const { buildApp } = await import('../src/app/build-app.js')
  const { testConfig } = await import('../src/app/config.js')
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-bench-'))
  const config = testConfig({
    dataDir,
    tokenSecret: 'bench-token-secret-of-enough-length-0123456789',
    flapGraceMs: 0,
    realtimeQueueBytes: 4 * 1024 * 1024,
  })
  const presenced = await buildApp(config)
  const base = await presenced.app.listen({ port: 0, host: '127.0.0.1' })
  const tokens = await Promise.all(
    Array.from({ length: N }, (_, i) => presenced.tokens.issue(String(FIRST_ID + i) as UserId)),
  )
  const child = fork(new URL(import.meta.url).pathname, ['--role', 'clients', ...forwarded()], {
    execArgv: ['--import', 'tsx'],
  })
  await new Promise((resolve) => child.once('message', resolve))
  if (args['client-cpus'] !== undefined) {
    const pinned = spawnSync('taskset', ['-a', '-p', '-c', args['client-cpus'], String(child.pid)])
    if (pinned.status !== 0) throw new Error(`taskset failed: ${pinned.stderr.toString()}`)
  }

  const kinds = ['online', 'inGame', 'inStudio'] as const
  let k = 0
  const ours = await phase(
    child,
    `${base.replace('http', 'ws')}/api/v1/realtime`,
    tokens,
    'presenced',
    (target, location) =>
      presenced.service.heartbeat({
        userId: target as UserId,
        key: 'app',
        source: 'app',
        deviceType: 'PC',
        activity: { kind: kinds[k++ % 3]!, location },
      }),
  )
  await presenced.app.close()
  if (args['no-baseline']) {
    child.kill()
    rmSync(dataDir, { recursive: true, force: true })
    return print(ours, ours)
  }

  // baseline: the same watchers, the same bytes, nothing else
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false })
  await new Promise((resolve) => wss.once('listening', resolve))
  const byTarget = new Map<string, Set<WebSocket>>()
  wss.on('connection', (socket) => {
    socket.once('message', (data) => {
      const { ids } = JSON.parse(data.toString()) as { ids: string[] }
      for (const id of ids) {
        let set = byTarget.get(id)
        if (!set) byTarget.set(id, (set = new Set()))
        set.add(socket)
      }
      socket.send('{"type":"snapshot"}')
    })
  })
  let seq = 0
  const { port } = wss.address() as { port: number }
  const baseline = await phase(
    child,
    `ws://127.0.0.1:${port}`,
    undefined,
    'baseline',
    (target, location) => {
      const frame =
        `{"type":"update","seq":${++seq},"userId":"${target}","presence":{"userId":"${target}",` +
        `"state":"inGame","lastOnline":null,"locationHidden":false,"sessions":[{"source":"app",` +
        `"deviceType":"PC","activity":{"kind":"inGame","location":"${location}"}}]}}`
      for (const socket of byTarget.get(target) ?? []) socket.send(frame)
    },
  )
  child.kill()
  wss.close()
  rmSync(dataDir, { recursive: true, force: true })
  print(ours, baseline)
}

function forwarded(): string[] {
  return [
    '--subscribers',
    String(N),
    '--watch',
    String(WATCH),
    '--rate',
    String(RATE),
    '--seconds',
    String(SECONDS),
    '--quiet-ms',
    args['quiet-ms'],
  ]
}

function print(ours: PhaseResult, baseline: PhaseResult): void {
  const rate = (r: PhaseResult): number => r.delivered / r.seconds
  const row = (name: string, a: number, b: number, unit: string, digits = 0): string =>
    `${name.padEnd(34)}${a.toFixed(digits).padStart(12)}${b.toFixed(digits).padStart(12)}  ${unit.padEnd(6)}${(a / b).toFixed(2).padStart(8)}`
  console.log(
    `\nreal-time fan-out: ${N} WebSocket subscribers x ${WATCH} watched users, pool ${N}, ` +
      `${RATE} changes/s for ${SECONDS} s (2 cores: server and clients share them)\n`,
  )
  console.log(
    `${''.padEnd(34)}${'presenced'.padStart(12)}${'bare ws'.padStart(12)}  ${'unit'.padEnd(6)}${'ratio'.padStart(8)}`,
  )
  console.log(row('changes applied', ours.changes, baseline.changes, ''))
  console.log(row('events delivered', ours.delivered, baseline.delivered, ''))
  console.log(row('delivered events/s', rate(ours), rate(baseline), '/s'))
  console.log(row('change-to-delivery p50', ours.p50, baseline.p50, 'ms', 2))
  console.log(row('change-to-delivery p99', ours.p99, baseline.p99, 'ms', 2))
  console.log(row('change-to-delivery max', ours.max, baseline.max, 'ms', 1))
  console.log(row('server CPU, first change to drain', ours.cpuMs, baseline.cpuMs, 'ms'))
  console.log(
    row(
      'server CPU per delivered event',
      (ours.cpuMs * 1000) / ours.delivered,
      (baseline.cpuMs * 1000) / baseline.delivered,
      'µs',
      2,
    ),
  )
  console.log(
    row(
      'server heap per connection',
      ours.bytesPerConnection.heap / 1024,
      baseline.bytesPerConnection.heap / 1024,
      'KiB',
      1,
    ),
  )
  console.log(
    row(
      'server RSS per connection',
      ours.bytesPerConnection.rss / 1024,
      baseline.bytesPerConnection.rss / 1024,
      'KiB',
      1,
    ),
  )
  console.log(row('connect + subscribe all', ours.connectSeconds, baseline.connectSeconds, 's', 1))
  console.log(
    `connections cut during the run: presenced ${ours.closedEarly}, bare ws ${baseline.closedEarly}`,
  )
}

if (args.role === 'clients') await runClients()
else await runServer()
