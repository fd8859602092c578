/**
 * Instructions (and, with --cache-sim, simulated cache misses) per POST /v1/presence/users,
 * counted by valgrind's callgrind over a fixed number of requests: figures that do not move with
 * the machine's load, unlike req/s or CPU time on shared cores. Each server runs under callgrind
 * with instrumentation off while it loads and warms up, then on for exactly `--requests`
 * requests, whose ids come from a seeded generator (the same bodies for every server).
 *
 *   npx tsx bench/read-callgrind.ts                                  # presenced, 1M users
 *   npx tsx bench/read-callgrind.ts --servers presenced,baseline --baseline /tmp/base
 *   npx tsx bench/read-callgrind.ts --servers presenced,naive,bare --cache-sim
 *   npx tsx bench/read-callgrind.ts --signed-in                       # the viewer with relations
 *
 * Prints per server and request: Ir (instructions), `net`: Ir without V8's background threads
 * (optimizing compilation) and garbage collections (inclusive counts from callgrind_annotate),
 * which fall in or out of a 1,000-request window by chance, and, with --cache-sim, D1 and LL
 * misses (reads + writes; LL as --ll sets it), and where the callgrind file is: read it with
 * `callgrind_annotate <file>`; JIT code shows as addresses, which `--annotate` names from V8's
 * perf map (node --perf-basic-prof).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { blockedOf, friendsOf } from './lib/population.js'
import { presencedEnv } from './lib/processes.js'
import { bodyOf, drawIds, type IdMix } from './lib/wrk.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '1000000' },
    requests: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '3000' },
    connections: { type: 'string', default: '8' },
    ids: { type: 'string', default: '50' },
    seed: { type: 'string', default: '1' },
    servers: { type: 'string', default: 'presenced' },
    baseline: { type: 'string' },
    'signed-in': { type: 'boolean', default: false },
    'cache-sim': { type: 'boolean', default: false },
    /** The simulated last-level cache: size,associativity,line size. */
    ll: { type: 'string', default: '33554432,16,64' },
    d1: { type: 'string', default: '49152,12,64' },
    /** Prints the top functions of each server's file, JIT code named from V8's perf map. */
    annotate: { type: 'string', default: '0' },
    out: { type: 'string' },
  },
})
const users = Number(values.users)
const requests = Number(values.requests)
const at = Date.now()
const dir = values.out ?? mkdtempSync(join(tmpdir(), 'read-callgrind-'))
mkdirSync(dir, { recursive: true })
const signedIn = values['signed-in']
const ids = Number(values.ids)
const mix: IdMix = signedIn
  ? {
      users,
      random: ids - 22,
      lists: [
        { ids: friendsOf(users, 200), count: 20 },
        { ids: blockedOf(users, 20), count: 2 },
      ],
    }
  : { users, random: ids }

/** mulberry32: the same ids for every server and run. */
function generator(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function bodies(count: number, seed: number): string[] {
  const random = generator(seed)
  return Array.from({ length: count }, () => bodyOf('roblox', drawIds(mix, random)))
}

interface Started {
  child: ChildProcess
  info: { port: number; viewerToken?: string }
  file: string
}

function startUnderCallgrind(name: string, script: string, args: string[], cwd: string) {
  const file = join(dir, `callgrind.${name}`)
  const flags = [
    '--tool=callgrind',
    '--instr-atstart=no',
    `--callgrind-out-file=${file}`,
    ...(values['cache-sim'] ? ['--cache-sim=yes', `--D1=${values.d1}`, `--LL=${values.ll}`] : []),
  ]
  const child = spawn(
    'valgrind',
    [
      ...flags,
      process.execPath,
      '--perf-basic-prof',
      ...(process.env.CG_NODE_FLAGS ? process.env.CG_NODE_FLAGS.split(' ') : []),
      '--max-old-space-size=8192',
      '--expose-gc',
      '--import',
      'tsx',
      script,
      ...args,
    ],
    {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(name === 'bare' ? {} : presencedEnv('huge')) },
    },
  )
  const log: string[] = []
  createInterface({ input: child.stderr! }).on('line', (line) => log.push(line))
  return new Promise<Started>((resolvePromise, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) =>
      resolvePromise({ child, info: JSON.parse(line) as Started['info'], file }),
    )
    child.once('exit', (code) =>
      reject(new Error(`${name} exited with ${code}:\n${log.slice(-20).join('\n')}`)),
    )
  })
}

/**
 * Sends `list` over the agent's connections. Warm-up and measured requests share them: closing
 * connections deoptimizes Node's socket code, which the next requests would compile again.
 */
async function send(agent: Agent, port: number, list: string[], headers: Record<string, string>) {
  let next = 0
  let failed = 0
  const one = (body: string) =>
    new Promise<void>((done, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/v1/presence/users',
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...headers,
          },
        },
        (res) => {
          if (res.statusCode !== 200) failed++
          res.resume()
          res.on('end', done)
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  const worker = async () => {
    while (next < list.length) await one(list[next++]!)
  }
  await Promise.all(Array.from({ length: Number(values.connections) }, worker))
  if (failed > 0) throw new Error(`${failed} requests answered other than 200`)
}

function control(pid: number, ...args: string[]) {
  const result = spawnSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`callgrind_control ${args.join(' ')}: ${result.stderr}`)
}

/** The event totals of a callgrind file. */
function totals(file: string): Record<string, number> {
  const text = readFileSync(file, 'utf8')
  const events = /^events: (.*)$/m.exec(text)![1]!.trim().split(/\s+/)
  const line = (/^summary: (.*)$/m.exec(text) ?? /^totals: (.*)$/m.exec(text))![1]!
  const numbers = line.trim().split(/\s+/).map(Number)
  return Object.fromEntries(events.map((event, i) => [event, numbers[i] ?? 0]))
}

const measured: string[] = []
const bare = join(dir, 'reply.json')
const serverArgs = ['--users', String(users), '--at', String(at)]
for (const name of String(values.servers).split(',')) {
  const checkout =
    name === 'baseline' ? resolve(values.baseline ?? '') : resolve(import.meta.dirname, '..')
  const [script, args] =
    name === 'naive'
      ? ['bench/naive-roblox-server.ts', serverArgs]
      : name === 'bare'
        ? ['bench/lib/bare-server.ts', [bare]]
        : ['bench/lib/bench-server.ts', [...serverArgs, '--friends', '200', '--blocked', '20']]
  if (name === 'bare') writeFileSync(bare, Buffer.alloc(9929, 0x20))
  console.log(`${name}: loading under callgrind (instrumentation off)…`)
  const started = await startUnderCallgrind(name, script, args, checkout)
  const pid = started.child.pid!
  const headers: Record<string, string> =
    signedIn && started.info.viewerToken
      ? { authorization: `Bearer ${started.info.viewerToken}` }
      : {}
  const agent = new Agent({ keepAlive: true, maxSockets: Number(values.connections) })
  const warmup = bodies(Number(values.warmup), 1000 + Number(values.seed))
  await send(agent, started.info.port, warmup, headers)
  control(pid, '-i', 'on')
  control(pid, '-z')
  await send(agent, started.info.port, bodies(requests, Number(values.seed)), headers)
  control(pid, '-d')
  control(pid, '-i', 'off')
  agent.destroy()
  started.child.kill('SIGKILL')
  await new Promise((done) => started.child.once('exit', done))
  const dumps = readdirSync(dir)
    .filter((f) => f.startsWith(`callgrind.${name}.`))
    .sort()
  const file = join(dir, dumps[dumps.length - 1]!)
  const t = totals(file)
  const per = (event: string) => (t[event] ?? 0) / requests
  const cache = values['cache-sim']
    ? `  D1 misses ${(per('D1mr') + per('D1mw')).toFixed(0)}  LL misses ${(per('DLmr') + per('DLmw')).toFixed(0)}  I1 misses ${per('I1mr').toFixed(0)}`
    : ''
  const net = (t.Ir! - chance(file)) / requests
  const lineOut = `${name.padEnd(10)} Ir per request ${per('Ir').toFixed(0)}  net ${net.toFixed(0)}${cache}  (${file})`
  measured.push(lineOut)
  console.log(lineOut)
  if (Number(values.annotate) > 0) annotate(file, pid, Number(values.annotate))
}
console.log(`\n${requests} requests of ${ids} ids, ${users.toLocaleString()} users:`)
for (const line of measured) console.log(line)

/**
 * Instructions that a window of requests holds or not by chance: V8's worker threads (optimizing
 * compilation; `PlatformWorkerThread`) and garbage collections on the main thread
 * (`Heap::CollectGarbage`), inclusive.
 */
function chance(file: string): number {
  const out = spawnSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  }).stdout
  let sum = 0
  for (const root of ['PlatformWorkerThread(', 'v8::internal::Heap::CollectGarbage(']) {
    const line = out.split('\n').find((l) => l.includes(root))
    const m = line && /^\s*([\d,]+)/.exec(line)
    if (m) sum += Number(m[1]!.replace(/,/g, ''))
  }
  return sum
}

/** The top `top` functions by Ir (self), JIT code named from /tmp/perf-<pid>.map. */
function annotate(file: string, pid: number, top: number) {
  const map = (() => {
    try {
      return readFileSync(`/tmp/perf-${pid}.map`, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [start, size, ...name] = line.split(' ')
          return {
            start: parseInt(start!, 16),
            end: parseInt(start!, 16) + parseInt(size!, 16),
            name: name.join(' '),
          }
        })
        .sort((a, b) => a.start - b.start)
    } catch {
      return []
    }
  })()
  const nameOf = (address: number) => {
    let lo = 0
    let hi = map.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const entry = map[mid]!
      if (address < entry.start) hi = mid - 1
      else if (address >= entry.end) lo = mid + 1
      else return entry.name
    }
    return undefined
  }
  const out = spawnSync('callgrind_annotate', ['--threshold=100', file], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  }).stdout
  const rows = new Map<string, number>()
  for (const line of out.split('\n')) {
    // `   6,074,688 ( 6.05%)  file:function [object]`
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(?:[^:]*):(.*?)(?: \[[^\]]*\])?$/.exec(line)
    if (!m) continue
    const ir = Number(m[1]!.replace(/,/g, ''))
    let fn = m[2]!
    const hex = /^0x([0-9a-f]+)$/.exec(fn)
    if (hex) fn = nameOf(parseInt(hex[1]!, 16)) ?? 'JIT (unnamed)'
    else if (fn.startsWith('v8::internal::compiler::')) fn = 'TurboFan compiling (all functions)'
    rows.set(fn, (rows.get(fn) ?? 0) + ir)
  }
  const sorted = [...rows].sort((a, b) => b[1] - a[1]).slice(0, top)
  for (const [fn, ir] of sorted) console.log(`  ${(ir / requests).toFixed(0).padStart(9)}  ${fn}`)
}
