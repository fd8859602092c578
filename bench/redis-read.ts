/**
 * Read and heartbeat paths of the service in Redis mode beside embedded (memory) mode, in one
 * run, in-process (no HTTP): a 50-id lookup (Roblox batch), an 1100-id lookup (Xbox batch) and a
 * heartbeat. Prints ops/s, the Redis/memory ratio and Redis round trips (socket writes) per op.
 * Usage: npx tsx bench/redis-read.ts [users=20000] [seconds per case=3]
 * Needs the Redis on 127.0.0.1:6379; writes under a unique prefix and deletes it after.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import type { UserId } from '../src/core/user-id.js'
import { systemClock } from '../src/service/clock.js'
import type { PresenceService } from '../src/service/presence-service.js'
import { Tokens } from '../src/service/tokens.js'
import { createService } from '../src/app/create-service.js'
import { testConfig } from '../src/app/config.js'
import { RedisChangeBus } from '../src/realtime/redis-change-bus.js'
import { createStores, type Stores } from '../src/app/create-stores.js'
import { RedisKeys } from '../src/store/redis/keys.js'
import { RedisConnection } from '../src/store/redis/redis-connection.js'
import { RedisPresenceStore } from '../src/store/redis/redis-presence-store.js'
import { RedisProfileStore } from '../src/store/redis/redis-profile-store.js'
import { RedisRateLimiter } from '../src/store/redis/redis-rate-limiter.js'
import { deleteKeys, uniquePrefix } from '../test/helpers/redis.js'

const users = Number(process.argv[2] ?? 20_000)
const seconds = Number(process.argv[3] ?? 3)
const REDIS_URL = 'redis://127.0.0.1:6379'

interface Case {
  name: string
  run: (service: PresenceService, i: number) => Promise<unknown>
}

const ids = Array.from({ length: users }, (_, i) => String(1_000_000 + i) as UserId)
const batch = (i: number, size: number) =>
  Array.from({ length: size }, (_, j) => ids[(i * size + j) % users]!)
const cases: Case[] = [
  { name: 'lookup 50 ids', run: (s, i) => s.lookup({ kind: 'anonymous' }, batch(i, 50)) },
  { name: 'lookup 1100 ids', run: (s, i) => s.lookup({ kind: 'anonymous' }, batch(i, 1100)) },
  {
    name: 'lookup 50 ids as a user (relations)',
    run: (s, i) => s.lookup({ kind: 'user', userId: ids[i % users]! }, batch(i, 50)),
  },
  {
    name: 'heartbeat',
    run: (s, i) =>
      s.heartbeat({
        userId: ids[i % users]!,
        key: 'app:PC',
        source: 'app',
        deviceType: 'PC',
        activity: { kind: 'inGame', placeId: '1818' },
      }),
  },
]

async function measure(stores: Stores, writes: () => number) {
  const service = createService(stores, testConfig({ dataDir: '', sessionTtlSeconds: 600 }), {
    clock: systemClock,
    tokens: new Tokens('bench-secret-of-enough-length-0123456789'),
  })
  for (let i = 0; i < users; i += 500) {
    await Promise.all(ids.slice(i, i + 500).map((_, j) => cases[3]!.run(service, i + j)))
  }
  const results: Record<string, { opsPerSecond: number; roundTrips: number }> = {}
  for (const c of cases) {
    const end = performance.now() + seconds * 1000
    let ops = 0
    const started = performance.now()
    // 8 requests in flight, like a busy node
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < end) await c.run(service, ops++)
      }),
    )
    const elapsed = (performance.now() - started) / 1000
    // round trips of one request alone (in flight, auto-pipelining also merges requests)
    const alone = writes()
    for (let i = 0; i < 50; i++) await c.run(service, i)
    results[c.name] = { opsPerSecond: ops / elapsed, roundTrips: (writes() - alone) / 50 }
  }
  return results
}

const dir = mkdtempSync(join(tmpdir(), 'presenced-bench-'))
const prefix = uniquePrefix('bench')
try {
  const memory = await createStores({ dataDir: dir })
  const memoryResults = await measure(memory, () => 0)
  await memory.presence.close()
  await memory.profiles.close()

  // the adapters createStores would build, assembled here to reach the connection
  const connection = new RedisConnection({ url: REDIS_URL })
  await connection.waitReady()
  const keys = new RedisKeys(prefix)
  const redis: Stores = {
    mode: 'redis',
    presence: new RedisPresenceStore(connection, keys),
    profiles: new RedisProfileStore(connection, keys),
    bus: new RedisChangeBus(connection, { channel: keys.channel() }),
    rateLimiter: new RedisRateLimiter(connection, keys),
  }
  // every command batch ioredis flushes is one write on the socket: one round trip
  let writes = 0
  const client = connection.client as Redis
  const stream = (client as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream
  const write = stream.write.bind(stream)
  stream.write = (...args: unknown[]) => {
    writes++
    return write(...args)
  }
  const redisResults = await measure(redis, () => writes)
  await redis.presence.close()
  await redis.profiles.close()
  await redis.bus.close()

  console.log(`${users} users with a live session; ${seconds} s per case, 8 in flight`)
  console.log('case                                 memory ops/s  redis ops/s  ratio  RT/request')
  for (const c of cases) {
    const m = memoryResults[c.name]!
    const r = redisResults[c.name]!
    console.log(
      `${c.name.padEnd(36)} ${m.opsPerSecond.toFixed(0).padStart(12)} ${r.opsPerSecond
        .toFixed(0)
        .padStart(12)} ${(r.opsPerSecond / m.opsPerSecond).toFixed(2).padStart(6)} ${r.roundTrips
        .toFixed(2)
        .padStart(12)}`,
    )
  }
} finally {
  await deleteKeys({ url: REDIS_URL }, prefix)
  rmSync(dir, { recursive: true, force: true })
}
