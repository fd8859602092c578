import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import { RedisConnection } from '../../src/store/redis/redis-connection.js'
import { RedisPresenceStore } from '../../src/store/redis/redis-presence-store.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'
import { uniquePrefix } from '../helpers/redis.js'

test('a Redis Cluster master killed and failed over: the store serves again', async (t) => {
  const cluster = await startRedisCluster({ masters: 3, replicas: 1 })
  t.after(() => cluster.stop())
  const connection = new RedisConnection({ cluster: cluster.nodes })
  assert.ok(await connection.waitReady())
  const store = new RedisPresenceStore(connection, new RedisKeys(uniquePrefix('failover')))
  t.after(() => store.close())

  // enough users to cover every bucket, so some live on the master about to die
  const users = Array.from({ length: 200 }, (_, i) => String(10_000 + i) as UserId)
  const beat = (userId: UserId) =>
    store.heartbeat(
      {
        userId,
        key: 'app:PC',
        source: 'app',
        deviceType: 'PC',
        activity: { kind: 'online' },
        ttlMs: 600_000,
      },
      Date.now(),
    )
  await Promise.all(users.map(beat))

  const masters = (connection.client as import('ioredis').Cluster)
    .nodes('master')
    .map((n) => n.options.port)
  const victim = cluster.servers.find((s) => masters.includes(s.port))!
  await victim.kill()
  const killed = performance.now()

  // while the replica takes over, some requests fail (503): wait until every user is served
  const deadline = Date.now() + 20_000
  let served = false
  while (!served && Date.now() < deadline) {
    try {
      await Promise.all(users.map(beat))
      const presences = await store.getMany(users, Date.now())
      served = presences.every((p) => p.sessions.length === 1)
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  t.diagnostic(`served again ${(performance.now() - killed).toFixed(0)} ms after the kill`)
  assert.ok(served, 'the store must serve every user after the failover')
  assert.equal(await store.ready(), true)
})
