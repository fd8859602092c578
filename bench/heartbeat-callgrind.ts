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
 *   npx tsx bench/heartbeat-callgrind.ts --servers skeleton,auth,parse,write,presenced
 *   npx tsx bench/heartbeat-callgrind.ts --servers presenced,bare --cache-sim
 *
 * `auth`, `parse` and `write` are presenced's route stopped after that step (heartbeat-server.ts
 * `--stop-after`): each one's figure less the one before is what that step costs.
 *
 * Prints Ir per heartbeat per server: all of the main thread's; **in I/O callbacks**, the figure
 * to compare (libuv's poll phase, inclusive: each request's read and parse, the route, the reply's
 * write and its completion, with the microtasks and ticks after each); what ran in timers
 * (janitor sweeps, lastOnline flushes, the stats pass's start) and in immediates (the rest of the
 * stats pass: it goes on after a setImmediate), which run by the clock and so by chance; the
 * figure outside timers that earlier runs printed (it held the stats pass's immediates: 5-18k per
 * heartbeat in runs of 2026-12-03); garbage collections, in any phase. And where the callgrind
 * file is (`callgrind_annotate <file>`; `--annotate N` names the top N functions, JIT code from
 * V8's perf map).
 *
 * A window takes minutes under callgrind (2-4 on a shared 2-core machine). The bench server's
 * sessions and the places it read from the catalogue live a day (heartbeat-server.ts), as
 * nothing expires at speed: with the 60 s defaults, sessions expired and places were read again
 * mid-window, each the slower path, as many as the window's length made (~9k per heartbeat in
 * runs of 2026-12-03). A baseline checkout whose heartbeat-server.ts predates that still runs
 * with the defaults (the bench says so): compare it with that in mind. The I/O figure of the same
 * code still moves between runs (101.4k and 118.8k in two windows of one run, 2026-12-03): JIT
 * tiering, deoptimizations and major collections, which follow the event loop's clock-driven
 * duties (the stats pass every 10 s, the lastOnline flush once a minute, weighing ~100x what they
 * do at speed); compare servers within one run, or by function. And a verified token is
 * remembered for 5 minutes (tokens.ts): a warm-up and window longer than that verify tokens again
 * (~70k each). `CG_NODE_FLAGS` adds node flags to every server, as in read-callgrind.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  annotatedRows,
  control,
  generator,
  postAll,
  startUnderCallgrind,
  totals,
} from './lib/callgrind.js'
import { presencedEnv } from './lib/processes.js'
import { benchArgs, nodeFlagsByServer } from './lib/args.js'

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
    /** Simulated cache misses too (valgrind's --cache-sim), with the caches below. */
    'cache-sim': { type: 'boolean', default: false },
    /** The simulated caches: size,associativity,line size. */
    ll: { type: 'string', default: '33554432,16,64' },
    d1: { type: 'string', default: '49152,12,64' },
    i1: { type: 'string', default: '32768,8,64' },
    /**
     * `name=--node-flag …`: a server `name` (in --servers) that runs this checkout's presenced
     * with those node flags too, to try a V8 flag beside the same code without it (repeatable).
     */
    flags: { type: 'string', multiple: true, default: [] },
  },
})
const extraFlags = nodeFlagsByServer(values.flags as string[])
const PATH = '/v1/presence/register-app-presence'
const PLACES = 500
/** Servers named after a step of the route, stopped after it (heartbeat-server.ts). */
const STEPS = ['auth', 'parse', 'write']
const requests = Number(values.requests)
const dir = values.out ?? mkdtempSync(join(tmpdir(), 'heartbeat-callgrind-'))
mkdirSync(dir, { recursive: true })
const secret = 'bench-heartbeat-secret-of-enough-length-0123456789'

interface Beat {
  token: number
  body: string
}

/**
 * The warm-up: one heartbeat with each user's token first, then `count` of the mix. A token's
 * first heartbeat verifies its signature (~70k instructions); 6,000 random heartbeats over 2,000
 * tokens leave ~5 % of them unused (e^-3), whose first verification then fell into the measured
 * window (~2k per heartbeat), where the timed bench verifies each token once in its first second.
 */
function warmup(count: number, seed: number): Beat[] {
  const tokens = Number(values.tokens)
  const each = Array.from({ length: tokens }, (_, token) => ({
    token,
    body: '{"location":"Home"}',
  }))
  return [...each, ...beats(count, seed)]
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

function start(name: string, script: string, args: string[], cwd: string) {
  return startUnderCallgrind<{ port: number }>({
    name,
    script,
    args,
    cwd,
    file: join(dir, `callgrind.${name}`),
    // one file per thread: only the main thread's is read
    valgrind: [
      '--separate-threads=yes',
      ...(values['cache-sim']
        ? ['--cache-sim=yes', `--D1=${values.d1}`, `--LL=${values.ll}`, `--I1=${values.i1}`]
        : []),
    ],
    // more node flags, as read-callgrind.ts takes them (e.g. V8's, to try)
    node: [
      ...(process.env.CG_NODE_FLAGS ? process.env.CG_NODE_FLAGS.split(' ') : []),
      ...(extraFlags.get(name) ?? []),
    ],
    env: name === 'bare' ? {} : presencedEnv('huge'),
  })
}

function send(agent: Agent, port: number, list: Beat[], tokens: string[]) {
  return postAll({
    agent,
    port,
    path: PATH,
    connections: Number(values.connections),
    list: list.map(({ token, body }) => ({
      body,
      headers: { authorization: `Bearer ${tokens[token % tokens.length]}` },
    })),
  })
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
          ...(STEPS.includes(name) ? ['--stop-after', name] : []),
        ]
  const script = name === 'bare' ? 'bench/lib/bare-server.ts' : 'bench/heartbeat-server.ts'
  if (
    name !== 'bare' &&
    !readFileSync(join(checkout, script), 'utf8').includes('placeTtlSeconds')
  ) {
    console.log(
      `${name}: its ${script} keeps the 60 s session and place lifetimes: its I/O figure moves ` +
        'with how long the window takes (sessions expiring, places read again)',
    )
  }
  console.log(`${name}: loading under callgrind (instrumentation off)…`)
  const started = await start(name, script, args, checkout)
  const pid = started.child.pid!
  const tokens = name === 'bare' ? ['none'] : readFileSync(tokenFile, 'utf8').split('\n')
  const agent = new Agent({ keepAlive: true, maxSockets: Number(values.connections) })
  await send(
    agent,
    started.info.port,
    warmup(Number(values.warmup), 1000 + Number(values.seed)),
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
  // the event loop's phases, native frames (whose inclusive costs callgrind keeps exactly, where
  // JIT frames' can be off): a heartbeat is served in I/O callbacks (its read, its write's
  // completion and the microtasks and ticks after each); timers (sweeps, flushes, the stats
  // pass's start) and immediates run by the clock, and under callgrind, where a heartbeat takes
  // ~50x its time, they weigh ~50x what they do at speed
  const io = inclusive(file, pid, /^uv__io_poll$/) / requests
  const timers = inclusive(file, pid, /^uv__run_timers$/) / requests
  const immediates = inclusive(file, pid, /^uv__run_check$/) / requests
  const jsTimers = inclusive(file, pid, /processTimers/) / requests
  // garbage collections fall into the window by chance (main's presenced: 13.9k and 0.7k per
  // heartbeat in two runs), in any phase: told apart, not subtracted
  const gc = inclusive(file, pid, /^v8::internal::Heap::CollectGarbage\(/) / requests
  const lineOut =
    `${name.padEnd(18)} main-thread Ir per heartbeat ${ir.toFixed(0)}: in I/O callbacks ` +
    `${io.toFixed(0)}; timers ${timers.toFixed(0)}, immediates ${immediates.toFixed(0)}; ` +
    `outside timers (the earlier figure) ${(ir - jsTimers).toFixed(0)}; GC in all ` +
    `${gc.toFixed(0)}  (${file})`
  const t = totals(file)
  const per = (event: string) => ((t[event] ?? 0) / requests).toFixed(0)
  // the main thread's simulated misses in all (not by phase): first-level data and instruction
  // misses, last-level misses (data reads and writes, instructions)
  const misses = values['cache-sim']
    ? `\n${''.padEnd(18)} misses per heartbeat (main thread, all): D1 read ${per('D1mr')} ` +
      `write ${per('D1mw')}, I1 ${per('I1mr')}, LL data ${per('DLmr')}+${per('DLmw')}, ` +
      `LL instructions ${per('ILmr')}`
    : ''
  measured.push(lineOut + misses)
  console.log(lineOut + misses)
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
  let most = 0
  for (const [fn, ir] of annotatedRows(file, pid, { inclusive: true })) {
    if (pattern.test(fn)) most = Math.max(most, ir)
  }
  return most
}

/** The top `top` functions by Ir (self), JIT code named from /tmp/perf-<pid>.map. */
function annotate(file: string, pid: number, top: number) {
  const rows = new Map<string, number>()
  for (const [fn, ir] of annotatedRows(file, pid)) rows.set(fn, (rows.get(fn) ?? 0) + ir)
  const sorted = [...rows].sort((a, b) => b[1] - a[1]).slice(0, top)
  for (const [fn, ir] of sorted) console.log(`  ${(ir / requests).toFixed(0).padStart(9)}  ${fn}`)
}
