/**
 * Memory a near cache entry takes (src/store/redis/near-cache.ts): `--users` users online (an app
 * session in one of 2,000 games over 500 places), all read once without the cache (so the codec's
 * shared tables are filled before), then all read through a second store whose near cache holds
 * them all; the heap (after a full collection) and the array buffers grown between the two, per
 * entry. Runs the code of `--checkout` (default: this one), on a redis-server of its own.
 *
 *   node --expose-gc --import tsx bench/near-cache-memory.ts --users 100000
 *   node --expose-gc --import tsx bench/near-cache-memory.ts --users 100000 --checkout /tmp/base
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { benchArgs } from './lib/args.js'
import { benchRedis } from './redis-setup.js'
import type { RedisConnection as Connection } from '../src/store/redis/redis-connection.js'
import type { RedisPresenceStore as Store } from '../src/store/redis/redis-presence-store.js'
import type { RedisKeys as Keys } from '../src/store/redis/keys.js'
import type { UserId } from '../src/core/user-id.js'

const { values } = benchArgs(import.meta.url, {
  options: {
    users: { type: 'string', default: '100000' },
    checkout: { type: 'string', default: resolve(import.meta.dirname, '..') },
  },
})
const users = Number(values.users)
const from = (path: string) =>
  import(pathToFileURL(resolve(values.checkout, 'src/store/redis', path)).href) as Promise<
    Record<string, unknown>
  >
const { RedisConnection } = (await from('redis-connection.ts')) as {
  RedisConnection: typeof Connection
}
const { RedisPresenceStore } = (await from('redis-presence-store.ts')) as {
  RedisPresenceStore: typeof Store
}
const { RedisKeys } = (await from('keys.ts')) as { RedisKeys: typeof Keys }

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')

const redis = await benchRedis()
const keys = new RedisKeys('near-memory')
const open = async (nearCache: number) => {
  const connection = new RedisConnection({ url: redis.url }, { commandTimeoutMs: 10_000 })
  await connection.waitReady()
  const store = new RedisPresenceStore(connection, keys, { nearCache })
  if (store.nearCache) {
    while (!store.nearCache.usable) await new Promise((done) => setTimeout(done, 5))
  }
  return store
}
const ids = Array.from({ length: users }, (_, i) => String(1_000_000 + i) as UserId)
const now = Date.now()
const writer = await open(0)
for (let at = 0; at < users; at += 1000) {
  await Promise.all(
    ids.slice(at, at + 1000).map((userId, k) => {
      const game = (at + k) % 2000
      return writer.heartbeat(
        {
          userId,
          key: 'app:PC',
          source: 'app',
          deviceType: 'PC',
          activity: {
            kind: 'inGame',
            placeId: String(game % 500),
            rootPlaceId: String(game % 500),
            universeId: String(game % 500),
            gameId: `00000000-0000-4000-8000-${String(game).padStart(12, '0')}`,
          },
          ttlMs: 3_600_000,
        },
        now,
      )
    }),
  )
}
const readAll = async (store: Store) => {
  for (let at = 0; at < users; at += 100) await store.summarize(ids.slice(at, at + 100), now + 1)
}
await readAll(writer)
const measure = () => {
  gc()
  gc()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, buffers: m.arrayBuffers }
}
const before = measure()
const reader = await open(users)
await readAll(reader)
const after = measure()
const held = reader.nearCache!.size
const heap = (after.heap - before.heap) / held
const buffers = (after.buffers - before.buffers) / held
console.log(
  `${values.checkout}: ${held} entries: ${heap.toFixed(1)} B heap + ${buffers.toFixed(1)} B array buffers = ${(heap + buffers).toFixed(1)} B an entry`,
)
await reader.close()
await writer.close()
await redis.stop()
