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
 *   npx tsx bench/read-callgrind.ts --users 100000 --servers redis,redis-naive,redis-baseline \
 *     --baseline /tmp/base                                           # fleet mode (Redis store)
 *
 * Fleet mode: `redis` is presenced on the Redis store (bench/redis-http-server.ts), `redis-naive`
 * the node:http + ioredis MGET server (bench/redis-naive-server.ts) answering the same bytes
 * (records copied from `redis`'s replies, so `redis` must come before it), `redis-baseline` the
 * baseline checkout's Redis mode; all on a redis-server of the bench's own, whose instructions
 * are not counted (only the node process is under callgrind).
 *
 * Prints per server and request: Ir (instructions), `net`: Ir without V8's background threads
 * (optimizing compilation) and garbage collections (inclusive counts from callgrind_annotate),
 * which fall in or out of a 1,000-request window by chance, and, with --cache-sim, D1 and LL
 * misses (reads + writes; LL as --ll sets it), and where the callgrind file is: read it with
 * `callgrind_annotate <file>`; JIT code shows as addresses, which `--annotate` names from V8's
 * perf map (node --perf-basic-prof).
 */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  annotatedRows,
  byChance,
  control,
  generator,
  postAll,
  startUnderCallgrind,
  totals,
} from './lib/callgrind.js'
import { blockedOf, friendsOf } from './lib/population.js'
import { presencedEnv } from './lib/processes.js'
import { bodyOf, drawIds, type IdMix } from './lib/wrk.js'
import { benchArgs } from './lib/args.js'
import { benchRedis, type BenchRedis } from './redis-setup.js'
import { copyReplies } from './lib/naive-records.js'

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

function bodies(count: number, seed: number): string[] {
  const random = generator(seed)
  return Array.from({ length: count }, () => bodyOf('roblox', drawIds(mix, random)))
}

type Info = { port: number; viewerToken?: string }

function start(name: string, script: string, args: string[], cwd: string) {
  return startUnderCallgrind<Info>({
    name,
    script,
    args,
    cwd,
    file: join(dir, `callgrind.${name}`),
    valgrind: values['cache-sim']
      ? ['--cache-sim=yes', `--D1=${values.d1}`, `--LL=${values.ll}`]
      : [],
    node: [
      ...(process.env.CG_NODE_FLAGS ? process.env.CG_NODE_FLAGS.split(' ') : []),
      '--max-old-space-size=8192',
      '--expose-gc',
    ],
    env: name === 'bare' ? {} : presencedEnv('huge'),
  })
}

/** Sends `list` over the agent's connections (lib/callgrind.ts postAll). */
function send(agent: Agent, port: number, list: string[], headers: Record<string, string>) {
  return postAll({
    agent,
    port,
    path: '/v1/presence/users',
    connections: Number(values.connections),
    list: list.map((body) => ({ body, headers })),
  })
}

const measured: string[] = []
const bare = join(dir, 'reply.json')
const serverArgs = ['--users', String(users), '--at', String(at)]
const servers = String(values.servers).split(',')
const redis: BenchRedis | undefined = servers.some((name) => name.startsWith('redis'))
  ? await benchRedis()
  : undefined
const redisArgs = (prefix: string) => [
  '--users',
  String(users),
  '--mode',
  'redis',
  '--url',
  redis!.url,
  '--prefix',
  prefix,
]
/** Each server's script and arguments. */
const scripts: Record<string, [string, string[]]> = {
  naive: ['bench/naive-roblox-server.ts', serverArgs],
  bare: ['bench/lib/bare-server.ts', [bare]],
  redis: ['bench/redis-http-server.ts', redisArgs('presenced')],
  'redis-baseline': ['bench/redis-http-server.ts', redisArgs('baseline')],
  'redis-naive': ['bench/redis-naive-server.ts', ['--url', redis?.url ?? '', '--prefix', 'naive']],
}
for (const name of servers) {
  const checkout = name.endsWith('baseline')
    ? resolve(values.baseline ?? '')
    : resolve(import.meta.dirname, '..')
  const [script, args] = scripts[name] ?? [
    'bench/lib/bench-server.ts',
    [...serverArgs, '--friends', '200', '--blocked', '20'],
  ]
  if (name === 'bare') writeFileSync(bare, Buffer.alloc(9929, 0x20))
  console.log(`${name}: loading under callgrind (instrumentation off)…`)
  const started = await start(name, script, args, checkout)
  const pid = started.child.pid!
  const headers: Record<string, string> =
    signedIn && started.info.viewerToken
      ? { authorization: `Bearer ${started.info.viewerToken}` }
      : {}
  const agent = new Agent({ keepAlive: true, maxSockets: Number(values.connections) })
  if (name === 'redis' && servers.includes('redis-naive')) {
    await copyReplies(started.info.port, users, redis!.url, 'naive')
  }
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
  const net = (t.Ir! - byChance(file)) / requests
  const lineOut = `${name.padEnd(10)} Ir per request ${per('Ir').toFixed(0)}  net ${net.toFixed(0)}${cache}  (${file})`
  measured.push(lineOut)
  console.log(lineOut)
  if (Number(values.annotate) > 0) annotate(file, pid, Number(values.annotate))
}
await redis?.stop()
console.log(`\n${requests} requests of ${ids} ids, ${users.toLocaleString()} users:`)
for (const line of measured) console.log(line)

/** The top `top` functions by Ir (self), JIT code named from /tmp/perf-<pid>.map. */
function annotate(file: string, pid: number, top: number) {
  const rows = new Map<string, number>()
  const named = annotatedRows(file, pid, {
    unnamed: (fn) =>
      fn.startsWith('v8::internal::compiler::') ? 'TurboFan compiling (all functions)' : fn,
  })
  for (const [fn, ir] of named) rows.set(fn, (rows.get(fn) ?? 0) + ir)
  const sorted = [...rows].sort((a, b) => b[1] - a[1]).slice(0, top)
  for (const [fn, ir] of sorted) console.log(`  ${(ir / requests).toFixed(0).padStart(9)}  ${fn}`)
}
