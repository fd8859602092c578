/**
 * Instructions (and, with --cache-sim, simulated cache misses) per read, counted by valgrind's
 * callgrind over a fixed number of requests: figures that do not move with the machine's load,
 * unlike req/s or CPU time on shared cores. Each server runs under callgrind with
 * instrumentation off while it loads and warms up, then on for exactly `--requests` requests,
 * whose ids come from a seeded generator (the same bodies for every server). The read is
 * Roblox's POST /v1/presence/users (50 ids), or with `--protocol xbox` Xbox's POST /users/batch
 * (1100 ids at level `all`, as `npm run bench:xbox` sends it: XBL3.0, contract version 3).
 *
 *   npx tsx bench/read-callgrind.ts                                  # presenced, 1M users
 *   npx tsx bench/read-callgrind.ts --servers presenced,baseline --baseline /tmp/base
 *   npx tsx bench/read-callgrind.ts --servers presenced,naive,bare --cache-sim
 *   npx tsx bench/read-callgrind.ts --signed-in                       # the viewer with relations
 *   npx tsx bench/read-callgrind.ts --protocol xbox --servers presenced,baseline --baseline /tmp/base --annotate 30
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
 * (optimizing compilation), garbage collections and the dashboard's statistics pass (inclusive
 * counts from callgrind_annotate), which fall in or out of a window of requests by chance, and,
 * with --cache-sim, D1, LL (reads + writes; LL as --ll sets it) and I1 misses, in all and `net`
 * (without the same parts: a major collection in one server's window alone would swamp the
 * comparison), and where the callgrind file is: read it with
 * `callgrind_annotate <file>`; JIT code shows as addresses, which `--annotate` names from V8's
 * perf map (node --perf-basic-prof).
 */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  annotatedRows,
  byChanceEvents,
  control,
  generator,
  postAll,
  startUnderCallgrind,
  totals,
} from './lib/callgrind.js'
import { loadConfig } from '../src/app/config.js'
import { STRANGER_ID, VIEWER_ID, blockedOf, friendsOf } from './lib/population.js'
import { presencedEnv } from './lib/processes.js'
import { bodyOf, drawIds, type BodyShape, type IdMix } from './lib/wrk.js'
import { benchArgs } from './lib/args.js'
import { benchRedis, type BenchRedis } from './redis-setup.js'
import { copyReplies } from './lib/naive-records.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    /** roblox (POST /v1/presence/users) or xbox (POST /users/batch). */
    protocol: { type: 'string', default: 'roblox' },
    users: { type: 'string', default: '1000000' },
    /** Default: the protocol's (Protocol below). */
    requests: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '8' },
    ids: { type: 'string' },
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
type Info = { port: number; viewerToken?: string; strangerToken?: string }

/** What differs between the two reads. */
interface Protocol {
  path: string
  shape: BodyShape
  /** Defaults of --ids, --requests and --warmup. */
  ids: number
  requests: number
  warmup: number
  /** The naive server and its arguments beyond the population's. */
  naive: { script: string; args: string[] }
  /** The length of presenced's reply to a default request at 1M users (the bare server's). */
  replyBytes: number
  /** The caller's headers: the viewer with --signed-in; the naive and bare servers read none. */
  headers: (info: Info, signedIn: boolean) => Record<string, string>
}

const protocols: Record<string, Protocol> = {
  roblox: {
    path: '/v1/presence/users',
    shape: 'roblox',
    ids: 50,
    requests: 1000,
    warmup: 3000,
    naive: { script: 'bench/naive-roblox-server.ts', args: [] },
    replyBytes: 9929,
    headers: (info, signedIn): Record<string, string> =>
      signedIn && info.viewerToken ? { authorization: `Bearer ${info.viewerToken}` } : {},
  },
  xbox: {
    path: '/users/batch',
    shape: 'xbox',
    ids: 1100,
    // a batch is ~20 Roblox reads: fewer of them count as much
    requests: 100,
    warmup: 400,
    naive: {
      script: 'bench/naive-xbox-server.ts',
      // the bench server runs with the default configuration: the same platform title
      args: ['--title', loadConfig({}).xboxDefaultTitleId],
    },
    // presenced's (and the naive server's) reply to the first body of seed 1
    replyBytes: 219_543,
    // a signed-in caller: the stranger (no relations among the ids), as in bench:xbox
    headers: (info, signedIn) => ({
      authorization: signedIn
        ? `XBL3.0 x=${VIEWER_ID};${info.viewerToken ?? 'none'}`
        : `XBL3.0 x=${STRANGER_ID};${info.strangerToken ?? 'none'}`,
      'x-xbl-contract-version': '3',
      accept: 'application/json',
    }),
  },
}
const protocol: Protocol = protocols[values.protocol] ?? unknownProtocol(values.protocol)

function unknownProtocol(name: string): never {
  throw new Error(`--protocol is roblox or xbox, not ${name}`)
}
const users = Number(values.users)
const requests = Number(values.requests ?? protocol.requests)
const at = Date.now()
const dir = values.out ?? mkdtempSync(join(tmpdir(), 'read-callgrind-'))
mkdirSync(dir, { recursive: true })
const signedIn = values['signed-in']
const ids = Number(values.ids ?? protocol.ids)
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
  return Array.from({ length: count }, () => bodyOf(protocol.shape, drawIds(mix, random)))
}

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
    path: protocol.path,
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
  redis?.url ?? '',
  '--prefix',
  prefix,
]
/** Each server's script and arguments. */
const scripts: Record<string, [string, string[]]> = {
  naive: [protocol.naive.script, [...serverArgs, ...protocol.naive.args]],
  bare: ['bench/lib/bare-server.ts', [bare]],
  redis: ['bench/redis-http-server.ts', redisArgs('presenced')],
  'redis-baseline': ['bench/redis-http-server.ts', redisArgs('baseline')],
  'redis-naive': ['bench/redis-naive-server.ts', ['--url', redis?.url ?? '', '--prefix', 'naive']],
}
if (values.protocol !== 'roblox' && servers.some((name) => name.startsWith('redis'))) {
  throw new Error('fleet mode (--servers redis...) counts the Roblox read only')
}
for (const name of servers) {
  const checkout = name.endsWith('baseline')
    ? resolve(values.baseline ?? '')
    : resolve(import.meta.dirname, '..')
  const [script, args] = scripts[name] ?? [
    'bench/lib/bench-server.ts',
    [...serverArgs, '--friends', '200', '--blocked', '20'],
  ]
  if (name === 'bare') writeFileSync(bare, Buffer.alloc(protocol.replyBytes, 0x20))
  console.log(`${name}: loading under callgrind (instrumentation off)…`)
  const started = await start(name, script, args, checkout)
  const pid = started.child.pid!
  const headers = protocol.headers(started.info, signedIn)
  const agent = new Agent({ keepAlive: true, maxSockets: Number(values.connections) })
  if (name === 'redis' && servers.includes('redis-naive')) {
    await copyReplies(started.info.port, users, redis!.url, 'naive')
  }
  const warmup = bodies(Number(values.warmup ?? protocol.warmup), 1000 + Number(values.seed))
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
  const chance = byChanceEvents(file, pid)
  const per = (event: string) => (t[event] ?? 0) / requests
  // `net`: without what byChance leaves out (compiler threads, collections, statistics pass)
  const net = (event: string) => ((t[event] ?? 0) - (chance[event] ?? 0)) / requests
  const misses = (count: (event: string) => number) =>
    `D1 ${(count('D1mr') + count('D1mw')).toFixed(0)}  LL ${(count('DLmr') + count('DLmw')).toFixed(0)} ` +
    `(LL reads ${count('DLmr').toFixed(0)})  I1 ${count('I1mr').toFixed(0)}`
  const cache = values['cache-sim']
    ? `\n${''.padEnd(10)} misses per request ${misses(per)};  net ${misses(net)}`
    : ''
  const lineOut = `${name.padEnd(10)} Ir per request ${per('Ir').toFixed(0)}  net ${net('Ir').toFixed(0)}${cache}  (${file})`
  measured.push(lineOut)
  console.log(lineOut)
  if (Number(values.annotate) > 0) annotate(file, pid, Number(values.annotate))
}
await redis?.stop()
console.log(
  `\n${requests} requests (POST ${protocol.path}) of ${ids} ids, ${users.toLocaleString()} users:`,
)
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
