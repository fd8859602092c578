import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { startRedisCluster, type LocalRedisCluster } from '../../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
import type { UserId } from '../../core/user-id.js'
import { presenceStoreContract } from '../contract/presence-store.contract.js'
import { RedisKeys } from './keys.js'
import { RedisConnection, type RedisTarget } from './redis-connection.js'
import { RedisPresenceStore } from './redis-presence-store.js'

const single: RedisTarget = { url: LOCAL_REDIS_URL }

let cluster: Promise<LocalRedisCluster> | undefined
/** One 3-master cluster for this file, started by the first test that needs it. */
async function clusterTarget(): Promise<RedisTarget> {
  cluster ??= startRedisCluster({ masters: 3 })
  return { cluster: (await cluster).nodes }
}
after(async () => {
  if (cluster) await (await cluster).stop()
})

async function open(target: RedisTarget) {
  const prefix = uniquePrefix('presence')
  const connection = new RedisConnection(target)
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  const keys = new RedisKeys(prefix)
  const store = new RedisPresenceStore(connection, keys)
  return {
    store,
    connection,
    keys,
    cleanup: async () => {
      await store.close()
      await deleteKeys(target, prefix)
    },
  }
}

presenceStoreContract('redis', () => open(single))
presenceStoreContract('redis cluster (3 masters)', async () => open(await clusterTarget()))

const T0 = Date.UTC(2026, 0, 1)
const write = (userId: string, key = 'app:iOS') => ({
  userId: userId as UserId,
  key,
  source: 'app' as const,
  deviceType: 'iOS',
  activity: { kind: 'inGame' as const, placeId: '1', richPresence: { id: 'x', params: [] } },
  ttlMs: 60_000,
})

test('a presence is one value: empty arrays survive the Lua round trip', async (t) => {
  const { store, cleanup } = await open(single)
  t.after(cleanup)
  await store.heartbeat(write('5'), T0)
  await store.heartbeat(write('5', 'app:PC'), T0 + 1)
  const [p] = await store.getMany(['5' as UserId], T0 + 2)
  assert.deepEqual(p!.sessions[0]!.activity.richPresence, { id: 'x', params: [] })
  assert.equal(p!.sessions.length, 2)
})

test('a batch of 50 ids is one MGET on a single Redis', async (t) => {
  const { store, connection, cleanup } = await open(single)
  t.after(cleanup)
  const ids = Array.from({ length: 50 }, (_, i) => String(1000 + i) as UserId)
  for (const id of ids.slice(0, 10)) await store.heartbeat(write(id), T0)
  const sent: string[] = []
  const client = connection.client as import('ioredis').Redis
  const original = client.sendCommand.bind(client)
  client.sendCommand = ((command: { name: string }) => {
    sent.push(command.name)
    return original(command as never)
  }) as typeof client.sendCommand
  t.after(() => (client.sendCommand = original))
  const presences = await store.getMany(ids, T0 + 1)
  assert.deepEqual(sent, ['mget'])
  assert.equal(presences.filter((p) => p.sessions.length > 0).length, 10)
})

test('sweeps on several connections (nodes) end each session exactly once', async (t) => {
  const prefix = uniquePrefix('sweep')
  t.after(() => deleteKeys(single, prefix))
  const connections = [0, 1, 2].map(() => new RedisConnection(single))
  await Promise.all(connections.map((c) => c.waitReady()))
  const nodes = connections.map((c) => new RedisPresenceStore(c, new RedisKeys(prefix)))
  t.after(() => Promise.all(nodes.map((n) => n.close())))
  for (let i = 0; i < 300; i++) await nodes[i % 3]!.heartbeat(write(String(5000 + i)), T0)
  const now = T0 + 60_000
  const results = await Promise.all(nodes.map((n) => n.sweepExpired(now, 1000)))
  const ended = results.flat().map((c) => c.userId)
  assert.equal(ended.length, 300)
  assert.equal(new Set(ended).size, 300)
  assert.deepEqual(await nodes[0]!.stats(now), { sessions: 0, users: 0 })
})
