/**
 * What bench/read-callgrind.ts and bench/heartbeat-callgrind.ts share: a server under valgrind's
 * callgrind (instrumentation off until `control` turns it on), its file's totals, and V8's perf
 * map (node --perf-basic-prof) to name JIT code in callgrind_annotate's rows.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request as httpRequest, type Agent } from 'node:http'
import { createInterface } from 'node:readline'
import { compiledFlags } from './processes.js'

/** mulberry32: the same requests for every server and run. */
export function generator(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface Started<Info> {
  child: ChildProcess
  info: Info
  file: string
}

/**
 * Runs `script` (TypeScript, through tsx) under callgrind with instrumentation off, writing
 * `file`; resolves with its first JSON stdout line.
 */
/**
 * Servers still under callgrind: killed when the bench exits, also when it throws midway (a
 * valgrind left behind would load the machine for every later run).
 */
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export function startUnderCallgrind<Info>(options: {
  name: string
  script: string
  args: string[]
  cwd: string
  file: string
  /** More valgrind flags. */
  valgrind?: string[]
  /** More node flags (before --import tsx). */
  node?: string[]
  env?: Record<string, string>
}): Promise<Started<Info>> {
  const { name, file } = options
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${file}`,
      ...(options.valgrind ?? []),
      process.execPath,
      '--perf-basic-prof',
      ...(options.node ?? []),
      '--import',
      'tsx',
      ...compiledFlags(options.cwd),
      options.script,
      ...options.args,
    ],
    {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    },
  )
  running.add(child)
  child.once('exit', () => running.delete(child))
  const log: string[] = []
  createInterface({ input: child.stderr! }).on('line', (line) => log.push(line))
  return new Promise((resolvePromise, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) =>
      resolvePromise({ child, info: JSON.parse(line) as Info, file }),
    )
    child.once('exit', (code) =>
      reject(new Error(`${name} exited with ${code}:\n${log.slice(-20).join('\n')}`)),
    )
  })
}

/** callgrind_control with `args` on `pid` (-i on|off, -z, -d). */
export function control(pid: number, ...args: string[]): void {
  const result = spawnSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`callgrind_control ${args.join(' ')}: ${result.stderr}`)
}

/** The event totals of a callgrind file. */
export function totals(file: string): Record<string, number> {
  const text = readFileSync(file, 'utf8')
  const events = /^events: (.*)$/m.exec(text)![1]!.trim().split(/\s+/)
  const line = (/^summary: (.*)$/m.exec(text) ?? /^totals: (.*)$/m.exec(text))![1]!
  const numbers = line.trim().split(/\s+/).map(Number)
  return Object.fromEntries(events.map((event, i) => [event, numbers[i] ?? 0]))
}

/**
 * Instructions that a window of requests holds or not by chance: V8's worker threads (optimizing
 * compilation; `PlatformWorkerThread`) and garbage collections on the main thread
 * (`Heap::CollectGarbage`), inclusive, and the dashboard's statistics pass over every user
 * (PresenceStats' `#compute`, JIT code named from `pid`'s perf map, in the build's
 * dist/service/presence-stats.js or the sources' .ts): it runs by the clock, at most 1/20 of the
 * time, and under callgrind a 1M-user pass is a few batches' worth or none. Two limits: while
 * `#compute` runs in V8's interpreter it has no code of its own to name (the perf map's `~`
 * entries are its bytecode), and then only the self costs of the pass's named code are counted
 * (its functions in presence-stats, the stores' liveUsers: less than the pass took); and a
 * collection during the pass is in both its figure and the collections'.
 */
export function byChance(file: string, pid: number): number {
  return byChanceEvents(file, pid).Ir ?? 0
}

/** JIT code of the statistics pass (perf map names, the build's .js or the sources' .ts). */
const STATS_CODE =
  /^JS:\S* .*\/service\/presence-stats\.[jt]s:|^JS:[*^~]?liveUsers .*-presence-store\.[jt]s:/

/**
 * byChance for every event of the file (Ir, and with --cache-sim the misses: D1mr, DLmw, I1mr…),
 * so that misses too can be read without the compiler threads' and the collections'.
 */
export function byChanceEvents(file: string, pid: number): Record<string, number> {
  const { events, rows } = annotateAll(file, true)
  const sum = events.map(() => 0)
  for (const root of ['PlatformWorkerThread(', 'v8::internal::Heap::CollectGarbage(']) {
    const row = rows.find(([fn]) => fn.includes(root))
    if (row) row[1].forEach((count, i) => (sum[i]! += count))
  }
  // the async function's code objects (baseline, optimized) nest: the largest holds the rest;
  // while it is interpreted (no code object of its own), the self costs of the pass's named
  // code (presence-stats' functions, the stores' liveUsers): less than the pass took
  const nameOf = perfMap(pid)
  let stats: number[] | undefined
  const parts = events.map(() => 0)
  for (const [fn, counts] of annotateAll(file, false).rows) {
    const name = jitName(fn, nameOf)
    if (name === undefined || !STATS_CODE.test(name)) continue
    counts.forEach((count, i) => (parts[i]! += count))
  }
  for (const [fn, counts] of rows) {
    const name = jitName(fn, nameOf)
    if (name === undefined || !/#compute .*\/service\/presence-stats\.[jt]s:/.test(name)) continue
    if (stats === undefined || counts[0]! > stats[0]!) stats = counts
  }
  stats ??= parts
  stats.forEach((count, i) => (sum[i]! += count))
  return Object.fromEntries(events.map((event, i) => [event, sum[i]!]))
}

/**
 * Names JIT code addresses from V8's perf map of `pid` (/tmp/perf-<pid>.map). The map is a log:
 * code that V8 freed leaves its line, and code compiled later at the same address (a collection
 * moves or frees code all the time) adds another, so an address can lie in several entries; the
 * latest written is the code there now. (Taking any of them named the read path's summarizeNow
 * and the statistics pass's liveUsers `loadPresenced`, the bench's loading loop long gone: 18.7k
 * of a 1M-user read's 300k instructions.) Still, an address's last code need not be what ran
 * there in the window when the code there changed during it.
 */
export function perfMap(pid: number): (address: number) => string | undefined {
  const entries = (() => {
    try {
      return readFileSync(`/tmp/perf-${pid}.map`, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line, order) => {
          const [start, size, ...name] = line.split(' ')
          return {
            start: parseInt(start!, 16),
            end: parseInt(start!, 16) + parseInt(size!, 16),
            name: name.join(' '),
            order,
          }
        })
        .sort((a, b) => a.start - b.start || a.order - b.order)
    } catch {
      return []
    }
  })()
  // the longest entry: no entry starting further below an address than this holds it
  const longest = entries.reduce((most, entry) => Math.max(most, entry.end - entry.start), 0)
  return (address) => {
    // the last entry starting at or below the address, then back over those that may hold it
    let lo = 0
    let hi = entries.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (entries[mid]!.start <= address) lo = mid + 1
      else hi = mid - 1
    }
    let found: (typeof entries)[number] | undefined
    for (let i = hi; i >= 0 && entries[i]!.start > address - longest; i--) {
      const entry = entries[i]!
      if (address < entry.end && (found === undefined || entry.order > found.order)) found = entry
    }
    return found?.name
  }
}

/**
 * callgrind_annotate's rows of `file` as [function, Ir]: self cost, or with `inclusive` calls
 * included; JIT code named from `pid`'s perf map, `unnamed` when it is not in it.
 */
export function annotatedRows(
  file: string,
  pid: number,
  options: { inclusive?: boolean; unnamed?: (fn: string) => string } = {},
): Array<[string, number]> {
  const nameOf = perfMap(pid)
  return annotateAll(file, options.inclusive ?? false).rows.map(([fn, counts]) => [
    jitName(fn, nameOf) ??
      (/^0x[0-9a-f]+$/.test(fn) ? 'JIT (unnamed)' : (options.unnamed?.(fn) ?? fn)),
    counts[0]!,
  ])
}

/** A JIT code address (`0x…`) named from the perf map; undefined for anything else or unknown. */
function jitName(fn: string, nameOf: (address: number) => string | undefined): string | undefined {
  const hex = /^0x([0-9a-f]+)$/.exec(fn)
  return hex ? nameOf(parseInt(hex[1]!, 16)) : undefined
}

/**
 * callgrind_annotate's rows of `file` with every event the file has, Ir first: [function as
 * annotate prints it (JIT code as its address), counts in `events`' order].
 */
function annotateAll(
  file: string,
  inclusive: boolean,
): { events: string[]; rows: Array<[string, number[]]> } {
  const text = readFileSync(file, 'utf8')
  const recorded = /^events: (.*)$/m.exec(text)![1]!.trim().split(/\s+/)
  const events = ['Ir', ...recorded.filter((event) => event !== 'Ir')]
  const out = spawnSync(
    'callgrind_annotate',
    [
      ...(inclusive ? ['--inclusive=yes'] : []),
      `--show=${events.join(',')}`,
      '--threshold=100',
      file,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 28 },
  ).stdout
  // `   6,074,688 ( 6.05%)  1,234 ( 0.10%)  .  file:function [object]`: a count (with its
  // share) or `.` per event, then the function
  const count = /^\s*(?:([\d,]+) \(\s*[\d.]+%\)|(\.))/
  const rows: Array<[string, number[]]> = []
  for (const line of out.split('\n')) {
    let rest = line
    const counts: number[] = []
    for (let i = 0; i < events.length; i++) {
      const m = count.exec(rest)
      if (!m) break
      counts.push(m[1] === undefined ? 0 : Number(m[1].replace(/,/g, '')))
      rest = rest.slice(m[0].length)
    }
    if (counts.length < events.length) continue
    const fn = /^\s+(?:[^:]*):(.*?)(?: \[[^\]]*\])?$/.exec(rest)
    if (fn) rows.push([fn[1]!, counts])
  }
  return { events, rows }
}

/**
 * POSTs each of `list` (JSON bodies, with their own headers) to `path`, `connections` at a time
 * over the agent's connections; throws when any answer is not 200. Warm-up and measured requests
 * share the connections: closing them deoptimizes Node's socket code, which the next requests
 * would compile again.
 */
export async function postAll(options: {
  agent: Agent
  port: number
  path: string
  connections: number
  list: ReadonlyArray<{ body: string; headers: Record<string, string> }>
}): Promise<void> {
  const { agent, port, path, list } = options
  let next = 0
  let failed = 0
  const one = ({ body, headers }: { body: string; headers: Record<string, string> }) =>
    new Promise<void>((done, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path,
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
  await Promise.all(Array.from({ length: options.connections }, worker))
  if (failed > 0) throw new Error(`${failed} requests answered other than 200`)
}
