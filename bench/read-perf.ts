/**
 * Where a timed read's CPU goes, whole process, kernel included: `perf record -e cpu-clock` (a
 * software clock: this machine's VM has no hardware counters) on each server under the same wrk
 * load as `npm run bench` (1M users, 50 random ids, anonymous), JIT code named from V8's perf map
 * (--perf-basic-prof). Prints CPU µs per request by thread, by DSO and the top symbols. The
 * read's counterpart of heartbeat-perf.ts; callgrind (read-callgrind.ts) counts instructions,
 * this times them, cache misses and the kernel included.
 *
 *   npx tsx bench/read-perf.ts [--servers presenced,naive,bare] [--seconds 5] [--top 40]
 *                              [--baseline <checkout>] [--graph]
 *   npx tsx bench/read-perf.ts --servers redis,redis-naive,embedded --connections 32
 *   npx tsx bench/read-perf.ts --protocol xbox --servers presenced,naive --connections 16
 *   npx tsx bench/read-perf.ts --protocol xbox --servers presenced --jitdump
 *
 * `--protocol xbox`: `npm run bench:xbox`'s batch (1100 random XUIDs at level all, signed in),
 * for presenced, baseline and naive (naive-xbox-server.ts). `--jitdump`: V8's jitdump
 * (--perf-prof) instead of its perf map, injected into each recording (`<data>.jit`), so that
 * `perf annotate -i <data>.jit -s <symbol>` shows the samples on the JIT code's instructions
 * (the dumps and the code perf inject writes, jit-*.dump and jitted-*.so, land in the servers'
 * working directory: .gitignore keeps them out).
 *
 * Fleet mode as `npm run bench:redis-http` runs it: `redis` (Redis mode on a redis-server of
 * the bench's own), `redis-naive` (node:http + ioredis MGET answering Redis mode's records:
 * list it after `redis`), `embedded` (the same population in embedded mode).
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { request } from 'node:http'
import { benchArgs } from './lib/args.js'
import type { BenchServerInfo } from './lib/bench-server.js'
import { presencedEnv, spawnJson, stop } from './lib/processes.js'
import { runWrk } from './lib/wrk.js'
import { copyReplies } from './lib/naive-records.js'
import { benchRedis } from './redis-setup.js'
import { printReport, recorded } from './lib/perf-record.js'
import { STRANGER_ID } from './lib/population.js'
import { loadConfig } from '../src/app/config.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    /** Default: 1,000,000, or 100,000 with a fleet-mode server (redis, redis-naive, embedded). */
    users: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    servers: { type: 'string', default: 'presenced,naive,bare' },
    baseline: { type: 'string' },
    top: { type: 'string', default: '40' },
    frequency: { type: 'string', default: '4999' },
    /** Call graphs too (frame pointers: V8's JIT code keeps them): `perf report -G -i <data>`. */
    graph: { type: 'boolean', default: false },
    protocol: { type: 'string', default: 'roblox' },
    jitdump: { type: 'boolean', default: false },
  },
})
const names = String(values.servers).split(',')
// fleet mode's benches hold 100k users (bench/redis-http.ts), the embedded read's 1M
const fleetNames = new Set(['redis', 'redis-naive', 'embedded'])
const users = Number(
  values.users ?? (names.some((name) => fleetNames.has(name)) ? 100_000 : 1_000_000),
)
const dir = mkdtempSync(join(tmpdir(), 'read-perf-'))
console.log(`perf data in ${dir}`)
const at = Date.now()
const xbox = values.protocol === 'xbox'
if (!xbox && values.protocol !== 'roblox') throw new Error(`protocol: roblox or xbox`)
const path = xbox ? '/users/batch' : '/v1/presence/users'
const mix = { users, random: xbox ? 1100 : 50 }

async function start(name: string) {
  const perfFlags = [values.jitdump ? '--perf-prof' : '--perf-basic-prof']
  if (name === 'presenced' || name === 'baseline') {
    return spawnJson<BenchServerInfo>(
      'bench/lib/bench-server.ts',
      ['--users', String(users), '--at', String(at)],
      [...perfFlags, '--expose-gc', '--max-old-space-size=8192'],
      presencedEnv(),
      name === 'baseline' ? resolve(values.baseline ?? '') : undefined,
    )
  }
  if (name === 'naive') {
    return spawnJson<{ port: number }>(
      xbox ? 'bench/naive-xbox-server.ts' : 'bench/naive-roblox-server.ts',
      [
        ...['--users', String(users), '--at', String(at)],
        ...(xbox ? ['--title', loadConfig({}).xboxDefaultTitleId] : []),
      ],
      [...perfFlags, '--max-old-space-size=8192'],
    )
  }
  if (xbox) throw new Error(`--protocol xbox: presenced, baseline or naive, not ${name}`)
  if (name === 'redis' || name === 'embedded') {
    // fleet mode's bench population (bench/redis-http.ts): users put online by game servers
    const redisUrl = (await redis).url
    return spawnJson<{ port: number }>(
      'bench/redis-http-server.ts',
      [
        ...['--users', String(users)],
        ...(name === 'redis'
          ? ['--mode', 'redis', '--url', redisUrl, '--prefix', 'presenced']
          : []),
      ],
      perfFlags,
    )
  }
  if (name === 'redis-naive') {
    // the records of Redis mode's replies, answered by node:http + ioredis MGET
    const redisUrl = (await redis).url
    await copyReplies((await redisPort)!, users, redisUrl, 'presenced:naive')
    return spawnJson<{ port: number }>(
      'bench/redis-naive-server.ts',
      ['--url', redisUrl, '--prefix', 'presenced:naive'],
      perfFlags,
    )
  }
  if (name === 'bare') {
    // the bytes of presenced's reply to one 50-id request, answered as they are
    const replyFile = join(dir, 'reply.json')
    writeFileSync(replyFile, await oneReply((await presencedPort)!))
    return spawnJson<{ port: number }>('bench/lib/bare-server.ts', [replyFile], perfFlags)
  }
  throw new Error(`unknown server ${name}`)
}

function oneReply(port: number): Promise<Buffer> {
  const ids = Array.from({ length: 50 }, (_, i) => 1 + ((i * 7919) % users))
  return new Promise((done, fail) => {
    const req = request(
      { port, method: 'POST', path, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => done(Buffer.concat(chunks)))
      },
    )
    req.on('error', fail)
    req.end(JSON.stringify({ userIds: ids }))
  })
}

let presencedPort: Promise<number | undefined> = Promise.resolve(undefined)
let redisPort: Promise<number | undefined> = Promise.resolve(undefined)
// a redis-server of the bench's own, started only for the fleet-mode servers
const redis = names.some((name) => fleetNames.has(name))
  ? benchRedis()
  : Promise.resolve({ url: '', stop: async () => {} })
const servers: Array<{
  name: string
  child: import('node:child_process').ChildProcess
  port: number
  token?: string
}> = []
for (const name of names) {
  const started = start(name)
  if (name === 'presenced' || name === 'baseline') presencedPort = started.then((s) => s.info.port)
  if (name === 'redis') redisPort = started.then((s) => s.info.port)
  const { child, info } = await started
  const token = (info as Partial<BenchServerInfo>).strangerToken
  servers.push({ name, child, port: info.port, token })
}
const load = ({ port, token }: { port: number; token?: string }, seconds: number) => {
  const result = runWrk({
    url: `http://127.0.0.1:${port}`,
    path,
    mix,
    shape: xbox ? 'xbox' : 'roblox',
    ...(xbox && {
      headers: {
        Authorization: `XBL3.0 x=${STRANGER_ID};${token ?? ''}`,
        'x-xbl-contract-version': '3',
        Accept: 'application/json',
      },
    }),
    seconds,
    connections: Number(values.connections),
    dir,
  })
  if (result.errors > 0) throw new Error(`${result.errors} errors`)
  return result
}
try {
  for (const server of servers) load(server, 3)
  for (const server of servers) {
    const data = join(dir, `perf-${server.name}.data`)
    const frequency = Number(values.frequency)
    const result = await recorded(
      {
        pid: server.child.pid!,
        data,
        frequency,
        graph: values.graph as boolean,
        jit: values.jitdump,
      },
      () => load(server, Number(values.seconds)),
    )
    const requests = result.requestsPerSecond * Number(values.seconds)
    console.log(
      `\n== ${server.name}: ${result.requestsPerSecond.toFixed(0)} req/s, wrk ${result.clientCpuMicros.toFixed(1)} µs/req; µs of CPU per request (samples × ${(1e6 / frequency).toFixed(0)} µs / requests)`,
    )
    printReport(values.jitdump ? `${data}.jit` : data, requests, Number(values.top), frequency)
  }
} finally {
  for (const server of servers) await stop(server.child)
  await (await redis).stop()
}
