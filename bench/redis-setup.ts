/**
 * What the Redis benches share: a Redis of their own (so memory figures count only what they
 * wrote, and other work on the machine's Redis does not weigh on them), the stores wired as
 * createStores wires them, and counters of round trips (socket writes) and Redis memory.
 */
import { loadConfig } from '../src/app/config.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { RedisChangeBus } from '../src/realtime/redis-change-bus.js'
import type { Stores } from '../src/app/create-stores.js'
import { RedisKeys } from '../src/store/redis/keys.js'
import { RedisConnection } from '../src/store/redis/redis-connection.js'
import { RedisPresenceStore } from '../src/store/redis/redis-presence-store.js'
import { RedisProfileStore } from '../src/store/redis/redis-profile-store.js'
import { RedisRateLimiter } from '../src/store/redis/redis-rate-limiter.js'
import { freePort, startRedisServer } from '../test/helpers/redis-cluster.js'

export interface BenchRedis {
  url: string
  stop(): Promise<void>
}

/** A redis-server of the bench's own on a free port, no persistence; `url` to use another. */
export async function benchRedis(url?: string): Promise<BenchRedis> {
  if (url) return { url, stop: async () => {} }
  const dir = mkdtempSync(join(tmpdir(), 'presenced-bench-redis-'))
  const port = await freePort()
  const server = await startRedisServer(port, dir, ['--appendonly', 'no'])
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await server.kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface CountedStores {
  stores: Stores
  connection: RedisConnection
  keys: RedisKeys
  /** Socket writes on the node's connection so far: each is one round trip. */
  writes(): number
  /** The near cache's counters (NearCache.stats) when it is on. */
  near(): { hits: number; misses: number; invalidations: number } | undefined
}

/** The stores createStores builds for Redis, on a connection whose round trips are counted. */
export async function countedRedisStores(url: string, prefix: string): Promise<CountedStores> {
  // a loaded 2-core machine can stall a reply past the default 500 ms: a bench must not 503
  const connection = new RedisConnection({ url }, { commandTimeoutMs: 10_000 })
  await connection.waitReady()
  const keys = new RedisKeys(prefix)
  const bus = new RedisChangeBus(connection, { channel: keys.channel() })
  await bus.subscribed
  const profiles = new RedisProfileStore(connection, keys)
  await profiles.foldStoredSettings() // as every node's start does (create-stores.ts)
  const presence = new RedisPresenceStore(connection, keys, {
    changes: { channel: keys.channel(), nodeId: bus.nodeId },
    // as a node configured by PRESENCED_REDIS_NEAR_CACHE (its default when unset)
    nearCache: loadConfig({
      PRESENCED_REDIS_NEAR_CACHE: process.env.PRESENCED_REDIS_NEAR_CACHE,
    }).redisNearCache,
  })
  const stores: Stores = {
    mode: 'redis',
    presence,
    profiles,
    bus,
    rateLimiter: new RedisRateLimiter(connection, keys),
  }
  let writes = 0
  const client = connection.client as Redis
  const stream = (client as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream
  const write = stream.write.bind(stream)
  stream.write = (...args: unknown[]) => {
    writes++
    return write(...args)
  }
  return { stores, connection, keys, writes: () => writes, near: () => presence.nearCache?.stats }
}

/**
 * Redis's `used_memory` without client buffers (`mem_clients_normal`): right after a load, a
 * subscriber's backlog of change messages is in them, which is traffic, not stored data.
 */
export async function usedMemory(client: Redis): Promise<number> {
  const info = await client.info('memory')
  const field = (name: string) => Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? 0)
  return field('used_memory') - field('mem_clients_normal')
}

/** Calls of each Redis command so far (`INFO commandstats`), e.g. `{ mget: 12, evalsha: 3 }`. */
export async function commandCalls(client: Redis): Promise<Record<string, number>> {
  const info = await client.info('commandstats')
  const calls: Record<string, number> = {}
  for (const match of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
    calls[match[1]!] = Number(match[2])
  }
  return calls
}
