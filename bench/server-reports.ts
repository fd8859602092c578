/**
 * Game servers reporting their players over HTTP: one `PUT /api/v1/servers/{gameId}` of 5,000
 * players per server, for 200 servers (a million player sessions), on a presenced listening on
 * loopback. Three rounds: `join` (every player new), `steady` (the same rosters again: the
 * heartbeat of a running fleet) and `churn` (5% of each roster replaced). Prints players/s
 * ingested, p50/p99 latency per report, memory per player session and, with Redis, the round
 * trips (socket writes, per node on a cluster) per report and per store call.
 *
 *   node --expose-gc --import tsx bench/server-reports.ts [--redis | --cluster | --no-ledger]
 *        [--servers 200] [--players 5000]
 *
 * --redis uses the Redis on 127.0.0.1:6379 under a unique prefix, deleted after; --cluster
 * starts a local 3-master Redis Cluster (test/helpers/redis-cluster.ts) and stops it after.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Cluster, Redis } from 'ioredis'
import { buildApp } from '../src/app/build-app.js'
import { testConfig } from '../src/app/config.js'
import type { UserId } from '../src/core/user-id.js'
import { RedisChangeBus } from '../src/realtime/redis-change-bus.js'
import { SERVER_DEVICE_TYPE } from '../src/service/game-servers.js'
import { createStores, type Stores } from '../src/app/create-stores.js'
import { MemoryPresenceStore } from '../src/store/memory/memory-presence-store.js'
import { RedisKeys } from '../src/store/redis/keys.js'
import { RedisConnection, type RedisTarget } from '../src/store/redis/redis-connection.js'
import { RedisPresenceStore } from '../src/store/redis/redis-presence-store.js'
import { RedisProfileStore } from '../src/store/redis/redis-profile-store.js'
import { RedisRateLimiter } from '../src/store/redis/redis-rate-limiter.js'
import { startRedisCluster, type LocalRedisCluster } from '../test/helpers/redis-cluster.js'
import { deleteKeys, uniquePrefix } from '../test/helpers/redis.js'
import { settle } from './lib/memory.js'

const argv = process.argv.slice(2)
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(name)
  return i >= 0 ? Number(argv[i + 1]) : fallback
}
const mode = argv.includes('--cluster') ? 'cluster' : argv.includes('--redis') ? 'redis' : 'memory'
const SERVERS = option('--servers', 200)
const PLAYERS = option('--players', 5000)
const ADMIN_KEY = 'bench-admin-key'
const gc = (globalThis as { gc?: () => void }).gc

function heapAndBuffers(): number {
  const m = settle()
  return m.heapUsed + m.arrayBuffers
}

const gameIdOf = (s: number) => `6f1c1b4e-2f7a-4f5e-9a57-${String(s).padStart(12, '0')}`
/** Players of server `s` in a round: `shift` moves the last players to fresh ids (churn). */
function rosterOf(s: number, shift: number): string[] {
  const base = 1_000_000_000 + s * PLAYERS * 2
  return Array.from({ length: PLAYERS }, (_, j) => {
    const churned = j >= PLAYERS - shift
    return String(base + j + (churned ? PLAYERS : 0))
  })
}
const bodyOf = (s: number, shift: number) =>
  `{"placeId":1818,"universeId":13058,"players":[${rosterOf(s, shift).join(',')}]}`

const dataDir = mkdtempSync(join(tmpdir(), 'presenced-bench-'))
const prefix = uniquePrefix('bench-servers')
let cluster: LocalRedisCluster | undefined
let target: RedisTarget | undefined
/** Socket writes so far: each is one batch of commands to one node, i.e. one round trip. */
let writes = () => 0
let writesPerNode = (): number[] => []
let redisMemory: () => Promise<number> = async () => 0

async function redisStores(): Promise<Stores> {
  if (mode === 'cluster') {
    cluster = await startRedisCluster({ masters: 3 })
    target = { cluster: cluster.nodes }
  } else {
    target = { url: 'redis://127.0.0.1:6379' }
  }
  const connection = new RedisConnection(target, { commandTimeoutMs: 5000 })
  await connection.waitReady()
  const keys = new RedisKeys(prefix)
  const profiles = new RedisProfileStore(connection, keys)
  await profiles.foldStoredSettings() // as every node's start does (create-stores.ts)
  const stores: Stores = {
    mode: mode === 'cluster' ? 'cluster' : 'redis',
    presence: new RedisPresenceStore(connection, keys),
    profiles,
    bus: new RedisChangeBus(connection, { channel: keys.channel() }),
    rateLimiter: new RedisRateLimiter(connection, keys),
  }
  await connection.client.ping()
  const nodes: Redis[] =
    mode === 'cluster'
      ? (connection.client as Cluster).nodes('master')
      : [connection.client as Redis]
  const counts = nodes.map(() => 0)
  for (const [i, node] of nodes.entries()) {
    if (node.status !== 'ready') await node.ping()
    const stream = (node as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream
    const write = stream.write.bind(stream)
    stream.write = (...args: unknown[]) => {
      counts[i]!++
      return write(...args)
    }
  }
  writes = () => counts.reduce((a, b) => a + b, 0)
  writesPerNode = () => [...counts]
  redisMemory = async () => {
    let total = 0
    for (const node of nodes) {
      const info = await node.info('memory')
      total += Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0)
    }
    return total
  }
  return stores
}

const stores = mode === 'memory' ? await createStores({ dataDir }) : await redisStores()
// --no-ledger: no lastOnline write-behind to SQLite, to see what its flushes cost the reports
if (mode === 'memory' && argv.includes('--no-ledger')) {
  await stores.presence.close()
  stores.presence = new MemoryPresenceStore()
}
const config = testConfig({
  dataDir,
  adminKey: ADMIN_KEY,
  tokenSecret: 'bench-token-secret-of-enough-length-0123456789',
  // the bench times ingestion: sessions must outlive the run
  sessionTtlSeconds: 3600,
  rateLimitMax: 1_000_000,
  // one key reports for every server of the run: its budget over all of them must not refuse
  serverKeyRateLimitMax: 1_000_000_000,
})
const presenced = await buildApp(config, { stores })
const url = await presenced.app.listen({ port: 0, host: '127.0.0.1' })

try {
  const created = await fetch(`${url}/admin/v1/keys`, {
    method: 'POST',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', scopes: ['presence:write'] }),
  })
  const { secret } = (await created.json()) as { secret: string }
  const report = async (s: number, body: string) => {
    const res = await fetch(`${url}/api/v1/servers/${gameIdOf(s)}`, {
      method: 'PUT',
      headers: { 'x-api-key': secret, 'content-type': 'application/json' },
      body,
    })
    if (res.status !== 200) throw new Error(`report ${s}: ${res.status} ${await res.text()}`)
    return (await res.json()) as { joined: number; left: number }
  }

  const memoryBefore = heapAndBuffers()
  const redisBefore = await redisMemory()
  const rows: string[] = []
  for (const [round, shift] of [
    ['join', 0],
    ['steady', 0],
    ['churn', PLAYERS / 20],
  ] as const) {
    const bodies = Array.from({ length: SERVERS }, (_, s) => bodyOf(s, shift))
    const latencies: number[] = []
    let joined = 0
    let left = 0
    const writesBefore = writes()
    const started = performance.now()
    for (let s = 0; s < SERVERS; s++) {
      const t0 = performance.now()
      const outcome = await report(s, bodies[s]!)
      latencies.push(performance.now() - t0)
      joined += outcome.joined
      left += outcome.left
    }
    const seconds = (performance.now() - started) / 1000
    latencies.sort((a, b) => a - b)
    const at = (q: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
    const rt = (writes() - writesBefore) / SERVERS
    rows.push(
      `${round.padEnd(7)} ${((SERVERS * PLAYERS) / seconds).toFixed(0).padStart(10)} ` +
        `${at(0.5).toFixed(1).padStart(8)} ${at(0.99).toFixed(1).padStart(8)} ` +
        `${String(joined).padStart(8)} ${String(left).padStart(7)}` +
        (mode === 'memory' ? '' : ` ${rt.toFixed(1).padStart(11)}`),
    )
  }
  const memoryAfter = heapAndBuffers()
  const redisAfter = await redisMemory()
  const sessions = (await stores.presence.stats(Date.now())).sessions

  // the store call alone (no HTTP, no key check, no bus): its round trips per steady report
  let storeRt = ''
  if (mode !== 'memory') {
    // the janitor's sweeps (a ZCOUNT per bucket every 250 ms) would be counted too
    await presenced.service.stop()
    const before = writesPerNode()
    const now = Date.now()
    for (let s = 0; s < 20; s++) {
      await stores.presence.reportServer(
        {
          gameId: gameIdOf(s),
          players: rosterOf(s, PLAYERS / 20) as UserId[],
          activity: { kind: 'inGame', placeId: '1818', universeId: '13058', gameId: gameIdOf(s) },
          deviceType: SERVER_DEVICE_TYPE,
          ttlMs: 3_600_000,
        },
        now,
      )
    }
    storeRt = writesPerNode()
      .map((n, i) => ((n - before[i]!) / 20).toFixed(2))
      .join(' + ')
  }

  console.log(
    `${mode}: ${SERVERS} servers x ${PLAYERS} players, one PUT per server, sequential, over loopback HTTP`,
  )
  console.log(
    `round   players/s   p50 ms   p99 ms   joined    left` +
      (mode === 'memory' ? '' : '  RT/request'),
  )
  for (const row of rows) console.log(row)
  console.log(`live player sessions: ${sessions}`)
  console.log(
    `node memory per player session (heap + buffers${gc ? ', after GC' : ', NO --expose-gc'}): ` +
      `${((memoryAfter - memoryBefore) / sessions).toFixed(0)} bytes`,
  )
  if (mode !== 'memory') {
    console.log(
      `Redis memory per player session (used_memory delta): ${((redisAfter - redisBefore) / sessions).toFixed(0)} bytes`,
    )
    console.log(
      `store round trips per report of ${PLAYERS} players (reportServer alone, per node): ${storeRt}`,
    )
  }
} finally {
  await presenced.app.close()
  if (target && mode === 'redis') await deleteKeys(target, prefix)
  await cluster?.stop()
  rmSync(dataDir, { recursive: true, force: true })
}
