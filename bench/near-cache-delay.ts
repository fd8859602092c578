/**
 * How long after a write's reply (node B) the invalidation of the value reaches node A's near
 * cache (near-cache.ts): 300 heartbeats of one user on B, each after A read the user (so A holds
 * it), against the Redis at `--url` (default the local one) under a unique prefix, deleted after.
 * Both nodes in this process: each delay is from B's reply to A's invalidation in the same loop.
 *
 *   npx tsx bench/near-cache-delay.ts [--url redis://127.0.0.1:6379]
 */
import { benchArgs } from './lib/args.js'
import { RedisConnection } from '../src/store/redis/redis-connection.js'
import { RedisKeys } from '../src/store/redis/keys.js'
import { RedisPresenceStore } from '../src/store/redis/redis-presence-store.js'
import { deleteKeys, uniquePrefix } from '../test/helpers/redis.js'
import type { UserId } from '../src/core/user-id.js'
const { values } = benchArgs(import.meta.url, {
  options: { url: { type: 'string', default: 'redis://127.0.0.1:6379' } },
})
const url = values.url
const prefix = uniquePrefix('near-delay')
const keys = new RedisKeys(prefix)
const ca = new RedisConnection({ url }, { commandTimeoutMs: 5000 })
await ca.waitReady()
const cb = new RedisConnection({ url }, { commandTimeoutMs: 5000 })
await cb.waitReady()
const a = new RedisPresenceStore(ca, keys, { nearCache: 1000 })
const b = new RedisPresenceStore(cb, keys)
while (!a.nearCache!.usable) await new Promise((r) => setTimeout(r, 5))
const w = (i: number) => ({
  userId: '1' as UserId,
  key: 'app:iOS',
  source: 'app' as const,
  deviceType: 'iOS' as const,
  activity: { kind: 'inGame' as const, placeId: String(i) },
  ttlMs: 600000,
})
const delays: number[] = []
for (let i = 0; i < 300; i++) {
  await a.getMany(['1' as UserId], Date.now())
  const seen = a.nearCache!.stats.invalidations
  await b.heartbeat(w(i), Date.now())
  const acked = performance.now()
  while (a.nearCache!.stats.invalidations === seen) await new Promise((r) => setImmediate(r))
  delays.push(performance.now() - acked)
}
delays.sort((x, y) => x - y)
const q = (p: number) => delays[Math.floor(p * (delays.length - 1))]!.toFixed(3)
console.log(
  `invalidation after the write's reply: median ${q(0.5)} ms, p90 ${q(0.9)}, p99 ${q(0.99)}, max ${q(1)}; already there at the reply: ${delays.filter((d) => d < 0.01).length}/300`,
)
await a.close()
await b.close()
await deleteKeys({ url }, prefix)
