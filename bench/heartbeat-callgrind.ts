/**
 * Instructions per POST /v1/presence/register-app-presence, counted by valgrind's callgrind on
 * each server's main thread over a fixed number of heartbeats (V8's compiler and GC helper
 * threads are left out: their work after a warm-up swings from run to run). Figures that do not
 * move with the machine's load, to tell a change to the heartbeat from noise. Each server
 * (bench/heartbeat-server.ts, its `--skeleton`, the bare node:http server, another checkout's
 * presenced with `--baseline`) runs under callgrind with instrumentation off while it loads and
 * warms up, then on for exactly `--requests` heartbeats: the bench's mix (a random one of
 * `--tokens` users, half the bodies in one of 500 catalogued places), from a seeded generator.
 *
 *   npx tsx bench/heartbeat-callgrind.ts --servers presenced,skeleton,bare
 *   npx tsx bench/heartbeat-callgrind.ts --servers presenced,baseline --baseline /tmp/base
 *
 * Prints Ir per heartbeat per server and where the callgrind file is (`callgrind_annotate
 * <file>`; `--annotate N` names the top N functions, JIT code from V8's perf map).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { presencedEnv } from './lib/processes.js'
import { benchArgs } from './lib/args.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    requests: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '6000' },
    connections: { type: 'string', default: '8' },
    tokens: { type: 'string', default: '2000' },
    'in-game': { type: 'string', default: '0.5' },
    seed: { type: 'string', default: '1' },
    servers: { type: 'string', default: 'presenced' },
    baseline: { type: 'string' },
    annotate: { type: 'string', default: '0' },
    out: { type: 'string' },
  },
})
const PATH = '/v1/presence/register-app-presence'
const PLACES = 500
const requests = Number(values.requests)
const dir = values.out ?? mkdtempSync(join(tmpdir(), 'heartbeat-callgrind-'))
mkdirSync(dir, { recursive: true })
const secret = 'bench-heartbeat-secret-of-enough-length-0123456789'

/** mulberry32: the same heartbeats for every server and run. */
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

interface Beat {
  token: number
  body: string
}

function beats(count: number, seed: number): Beat[] {
  const random = generator(seed)
  const tokens = Number(values.tokens)
  return Array.from({ length: count }, () => {
    const token = Math.floor(random() * tokens)
    const body =
      random() < Number(values['in-game'])
        ? `{"location":"Game","placeId":${1000000 + Math.floor(random() * PLACES)}}`
        : '{"location":"Home"}'
    return { token, body }
  })
}

interface Started {
  child: ChildProcess
  info: { port: number }
  file: string
}

function startUnderCallgrind(name: string, script: string, args: string[], cwd: string) {
  const file = join(dir, `callgrind.${name}`)
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      '--separate-threads=yes',
      `--callgrind-out-file=${file}`,
      process.execPath,
      '--perf-basic-prof',
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

async function send(agent: Agent, port: number, list: Beat[], tokens: string[]) {
  let next = 0
  let failed = 0
  const one = ({ token, body }: Beat) =>
    new Promise<void>((done, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: PATH,
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            authorization: `Bearer ${tokens[token % tokens.length]}`,
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

function totals(file: string): Record<string, number> {
  const text = readFileSync(file, 'utf8')
  const events = /^events: (.*)$/m.exec(text)![1]!.trim().split(/\s+/)
  const line = (/^summary: (.*)$/m.exec(text) ?? /^totals: (.*)$/m.exec(text))![1]!
  const numbers = line.trim().split(/\s+/).map(Number)
  return Object.fromEntries(events.map((event, i) => [event, numbers[i] ?? 0]))
}

const measured: string[] = []
for (const name of String(values.servers).split(',')) {
  const checkout = name.startsWith('baseline')
    ? resolve(values.baseline ?? '')
    : resolve(import.meta.dirname, '..')
  const tokenFile = join(dir, `${name}-tokens.txt`)
  const reply = join(dir, 'reply.json')
  writeFileSync(reply, '{}')
  const args =
    name === 'bare'
      ? [reply]
      : [
          ...['--tokens', String(values.tokens), '--token-file', tokenFile, '--secret', secret],
          ...(name.endsWith('skeleton') ? ['--skeleton'] : []),
        ]
  const script = name === 'bare' ? 'bench/lib/bare-server.ts' : 'bench/heartbeat-server.ts'
  console.log(`${name}: loading under callgrind (instrumentation off)…`)
  const started = await startUnderCallgrind(name, script, args, checkout)
  const pid = started.child.pid!
  const tokens = name === 'bare' ? ['none'] : readFileSync(tokenFile, 'utf8').split('\n')
  const agent = new Agent({ keepAlive: true, maxSockets: Number(values.connections) })
  await send(
    agent,
    started.info.port,
    beats(Number(values.warmup), 1000 + Number(values.seed)),
    tokens,
  )
  control(pid, '-i', 'on')
  control(pid, '-z')
  await send(agent, started.info.port, beats(requests, Number(values.seed)), tokens)
  control(pid, '-d')
  control(pid, '-i', 'off')
  agent.destroy()
  started.child.kill('SIGKILL')
  await new Promise((done) => started.child.once('exit', done))
  // the last dump of thread 1, the main thread
  const dumps = readdirSync(dir)
    .filter((f) => f.startsWith(`callgrind.${name}.`) && f.endsWith('-01'))
    .sort()
  const file = join(dir, dumps[dumps.length - 1]!)
  const ir = (totals(file).Ir ?? 0) / requests
  const timers = inclusive(file, pid, /processTimers/) / requests
  const lineOut =
    `${name.padEnd(18)} main-thread Ir per heartbeat ${ir.toFixed(0)}, outside timers ` +
    `${(ir - timers).toFixed(0)}  (${file})`
  measured.push(lineOut)
  console.log(lineOut)
  if (Number(values.annotate) > 0) annotate(file, pid, Number(values.annotate))
}
console.log(`\n${requests} heartbeats, ${values.tokens} users, ${values['in-game']} in game:`)
for (const line of measured) console.log(line)

/**
 * The Ir of the functions whose names match `pattern`, calls included (the largest such row):
 * timers (sweeps, flushes, stats) run by the clock, so under callgrind, where a heartbeat takes
 * ~50x its time, they weigh ~50x what they do at speed; the figure outside them is compared.
 */
function inclusive(file: string, pid: number, pattern: RegExp): number {
  const nameOf = perfMap(pid)
  const out = spawnSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  }).stdout
  let most = 0
  for (const line of out.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(?:[^:]*):(.*?)(?: \[[^\]]*\])?$/.exec(line)
    if (!m) continue
    const hex = /^0x([0-9a-f]+)$/.exec(m[2]!)
    const fn = hex ? (nameOf(parseInt(hex[1]!, 16)) ?? '') : m[2]!
    if (pattern.test(fn)) most = Math.max(most, Number(m[1]!.replace(/,/g, '')))
  }
  return most
}

/** Names JIT code addresses from V8's perf map of `pid` (node --perf-basic-prof). */
function perfMap(pid: number): (address: number) => string | undefined {
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
  return nameOf
}

/** The top `top` functions by Ir (self), JIT code named from /tmp/perf-<pid>.map. */
function annotate(file: string, pid: number, top: number) {
  const nameOf = perfMap(pid)
  const out = spawnSync('callgrind_annotate', ['--threshold=100', file], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  }).stdout
  const rows = new Map<string, number>()
  for (const line of out.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(?:[^:]*):(.*?)(?: \[[^\]]*\])?$/.exec(line)
    if (!m) continue
    const ir = Number(m[1]!.replace(/,/g, ''))
    let fn = m[2]!
    const hex = /^0x([0-9a-f]+)$/.exec(fn)
    if (hex) fn = nameOf(parseInt(hex[1]!, 16)) ?? 'JIT (unnamed)'
    rows.set(fn, (rows.get(fn) ?? 0) + ir)
  }
  const sorted = [...rows].sort((a, b) => b[1] - a[1]).slice(0, top)
  for (const [fn, ir] of sorted) console.log(`  ${(ir / requests).toFixed(0).padStart(9)}  ${fn}`)
}
