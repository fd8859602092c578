/**
 * Where a timed heartbeat's time goes that the callgrind count of its I/O callbacks leaves out
 * (issue 19): per request, for presenced, another checkout's presenced (`--baseline`) and the
 * bare node:http server, under the same wrk load (bench/heartbeat.ts's mix, one wrk thread),
 * figures that do not move much with the machine's load:
 *
 * - CPU time per request from /proc, user and system apart, the main thread apart from the rest
 *   (V8's compiler and GC helpers, libuv's pool);
 * - garbage collections (`--trace-gc-nvp`): scavenges and mark-compacts per 10k requests, their
 *   pauses in µs per request, and bytes allocated per request (the sum of each collection's
 *   `allocated`, over the requests between the window's first and last collection);
 * - context switches and page faults per request (`perf stat`'s software counters);
 * - syscalls per request by name (`strace -c -f`, in a window of its own: strace slows the
 *   server, so its window's other figures are not read).
 *
 *   npx tsx bench/heartbeat-costs.ts --baseline /tmp/base [--seconds 5] [--connections 50]
 *                                    [--servers presenced,baseline,bare] [--rounds 2]
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { benchArgs, nodeFlagsByServer } from './lib/args.js'
import { runWrkScript } from './lib/wrk.js'
import {
  HEARTBEAT_PATH,
  heartbeatLua,
  startHeartbeatServer,
  type HeartbeatServer,
} from './lib/heartbeat-load.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    tokens: { type: 'string', default: '2000' },
    'in-game': { type: 'string', default: '0.5' },
    servers: { type: 'string', default: 'presenced,baseline,bare' },
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    strace: { type: 'boolean', default: false },
    /**
     * `name=--node-flag …`: a server `name` (in --servers) that runs this checkout's presenced
     * with those node flags beside `--trace-gc-nvp`, to try a V8 flag (repeatable).
     */
    flags: { type: 'string', multiple: true, default: [] },
  },
})
const extraFlags = nodeFlagsByServer(values.flags as string[])
const dir = mkdtempSync(join(tmpdir(), 'heartbeat-costs-'))
const secret = 'bench-heartbeat-secret-of-enough-length-0123456789'
const seconds = Number(values.seconds)
const connections = Number(values.connections)
const replyFile = join(dir, 'reply.json')
writeFileSync(replyFile, '{}')

interface Gc {
  kind: string
  pauseMs: number
  allocated: number
}

type Server = HeartbeatServer

function start(name: string): Promise<Server> {
  // stdbuf: V8 prints its GC lines with stdio, line-buffered so the file has them as they come
  return startHeartbeatServer({
    name,
    checkout: name === 'baseline' ? resolve(values.baseline ?? '') : process.cwd(),
    dir,
    replyFile,
    tokens: Number(values.tokens),
    secret,
    command: ['stdbuf', '-oL'],
    nodeFlags: ['--trace-gc-nvp', ...(extraFlags.get(name) ?? [])],
  })
}

/** The collections the server has printed so far. */
function collections(server: Server): Gc[] {
  const gcs: Gc[] = []
  for (const line of readFileSync(server.out, 'utf8').split('\n')) {
    const kind = / gc=(\w+)/.exec(line)?.[1]
    // every isolate's: tsx's loader has its own, in a worker, idle once the server is loaded
    if (kind === undefined) continue
    gcs.push({
      kind,
      pauseMs: Number(/ pause=([\d.]+)/.exec(line)?.[1] ?? 0),
      allocated: Number(/ allocated=(\d+)/.exec(line)?.[1] ?? 0),
    })
  }
  return gcs
}

/** utime and stime (clock ticks) of each of `pid`'s threads. */
function threadTimes(pid: number): Map<number, { user: number; system: number }> {
  const times = new Map<number, { user: number; system: number }>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      times.set(Number(tid), { user: Number(fields[11]), system: Number(fields[12]) })
    } catch {
      // a thread gone since the listing
    }
  }
  return times
}

const tokensOf = (name: string) =>
  name === 'bare' ? ['none'] : readFileSync(join(dir, `${name}-tokens.txt`), 'utf8').split('\n')

function load(server: Server, duration: number) {
  const result = runWrkScript({
    url: `http://127.0.0.1:${server.port}`,
    lua: heartbeatLua(tokensOf(server.name), Number(values['in-game'])),
    seconds: duration,
    connections,
    dir,
  })
  if (result.errors > 0) throw new Error(`${server.name}: ${result.errors} errors`)
  return { ...result, requests: result.requestsPerSecond * duration }
}

interface Figures {
  rps: number
  mainUser: number
  mainSystem: number
  otherUser: number
  otherSystem: number
  scavenges: number
  markCompacts: number
  gcPauseUs: number
  allocated: number
  switches: number
  faults: number
}

const TICK_US = 1e6 / 100

function window(server: Server): Figures {
  const pid = server.child.pid!
  const before = threadTimes(pid)
  const gcsBefore = collections(server).length
  const perfOut = join(dir, `perf-${server.name}-${Date.now()}.txt`)
  const perf = spawn(
    'perf',
    ['stat', '-x', ',', '-e', 'context-switches,page-faults', '-p', String(pid), '-o', perfOut],
    { stdio: 'ignore' },
  )
  const result = load(server, seconds)
  perf.kill('SIGINT')
  spawnSync('sleep', ['0.3'])
  const after = threadTimes(pid)
  let mainUser = 0
  let mainSystem = 0
  let otherUser = 0
  let otherSystem = 0
  for (const [tid, t] of after) {
    const b = before.get(tid) ?? { user: 0, system: 0 }
    if (tid === pid) {
      mainUser += t.user - b.user
      mainSystem += t.system - b.system
    } else {
      otherUser += t.user - b.user
      otherSystem += t.system - b.system
    }
  }
  const gcs = collections(server).slice(gcsBefore)
  const per = (ticks: number) => (ticks * TICK_US) / result.requests
  // bytes allocated between the window's first collection and its last, over the requests
  // between them (the rate's share of the window)
  const between = gcs.slice(1)
  const allocated = between.reduce((sum, gc) => sum + gc.allocated, 0)
  let switches = Number.NaN
  let faults = Number.NaN
  try {
    for (const line of readFileSync(perfOut, 'utf8').split('\n')) {
      const [count, , event] = line.split(',')
      if (event === 'context-switches') switches = Number(count) / result.requests
      if (event === 'page-faults') faults = Number(count) / result.requests
    }
  } catch {
    // perf wrote nothing
  }
  return {
    rps: result.requestsPerSecond,
    mainUser: per(mainUser),
    mainSystem: per(mainSystem),
    otherUser: per(otherUser),
    otherSystem: per(otherSystem),
    scavenges: (gcs.filter((gc) => gc.kind === 's').length * 1e4) / result.requests,
    markCompacts: (gcs.filter((gc) => gc.kind !== 's').length * 1e4) / result.requests,
    gcPauseUs: (gcs.reduce((sum, gc) => sum + gc.pauseMs, 0) * 1000) / result.requests,
    allocated:
      between.length > 0 ? allocated / (result.requests * (between.length / gcs.length)) : 0,
    switches,
    faults,
  }
}

/** Syscalls per request by name, from `strace -c -f` over a window of load. */
function syscalls(server: Server): { rps: number; calls: Map<string, number> } {
  const out = join(dir, `strace-${server.name}-${Date.now()}.txt`)
  const strace = spawn('strace', ['-c', '-f', '-p', String(server.child.pid), '-o', out], {
    stdio: 'ignore',
  })
  spawnSync('sleep', ['0.5'])
  const result = load(server, seconds)
  strace.kill('SIGINT')
  spawnSync('sleep', ['0.5'])
  const calls = new Map<string, number>()
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    // % time, seconds, usecs/call, calls, [errors], syscall
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$/.exec(line)
    if (m && m[3] !== 'total') calls.set(m[3]!, Number(m[1]) / result.requests)
  }
  return { rps: result.requestsPerSecond, calls }
}

const names = String(values.servers).split(',')
const servers: Server[] = []
for (const name of names) servers.push(await start(name))
try {
  console.log(
    `POST ${HEARTBEAT_PATH}, ${connections} connections, windows of ${seconds} s, ${values.rounds} rounds`,
  )
  for (const server of servers) load(server, 3)
  const figures = new Map<string, Figures[]>(names.map((n) => [n, []]))
  for (let round = 0; round < Number(values.rounds); round++) {
    for (let k = 0; k < servers.length; k++) {
      const server = servers[(round + k) % servers.length]!
      figures.get(server.name)!.push(window(server))
    }
  }
  const f = (x: number, d = 1) => x.toFixed(d).padStart(9)
  console.log(
    `${'server'.padEnd(10)}${'req/s'.padStart(9)}${'main usr'.padStart(9)}${'main sys'.padStart(9)}` +
      `${'oth usr'.padStart(9)}${'oth sys'.padStart(9)}${'scav/10k'.padStart(9)}${'mc/10k'.padStart(9)}` +
      `${'gc µs'.padStart(9)}${'B alloc'.padStart(9)}${'ctxsw'.padStart(9)}${'faults'.padStart(9)}` +
      '   (CPU in µs per request)',
  )
  for (const name of names) {
    for (const x of figures.get(name)!) {
      console.log(
        name.padEnd(10) +
          f(x.rps, 0) +
          f(x.mainUser) +
          f(x.mainSystem) +
          f(x.otherUser) +
          f(x.otherSystem) +
          f(x.scavenges, 2) +
          f(x.markCompacts, 2) +
          f(x.gcPauseUs, 2) +
          f(x.allocated, 0) +
          f(x.switches, 3) +
          f(x.faults, 3),
      )
    }
  }
  if (values.strace) {
    const counted = new Map<string, Map<string, number>>()
    for (const server of servers) {
      const { rps, calls } = syscalls(server)
      console.log(`${server.name}: strace window at ${rps.toFixed(0)} req/s`)
      counted.set(server.name, calls)
    }
    const all = new Set<string>()
    for (const calls of counted.values()) for (const name of calls.keys()) all.add(name)
    console.log(`${'syscall per request'.padEnd(22)}${names.map((n) => n.padStart(11)).join('')}`)
    const rows = [...all].sort(
      (a, b) => (counted.get(names[0]!)!.get(b) ?? 0) - (counted.get(names[0]!)!.get(a) ?? 0),
    )
    for (const call of rows) {
      console.log(
        call.padEnd(22) +
          names.map((n) => (counted.get(n)!.get(call) ?? 0).toFixed(3).padStart(11)).join(''),
      )
    }
    console.log(
      'total'.padEnd(22) +
        names
          .map((n) =>
            [...counted.get(n)!.values()]
              .reduce((a, b) => a + b, 0)
              .toFixed(3)
              .padStart(11),
          )
          .join(''),
    )
  }
} finally {
  for (const server of servers) server.child.kill('SIGKILL')
}
