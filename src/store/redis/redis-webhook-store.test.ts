import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { clusterForThisFile } from '../../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, PATIENT, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
import type { UserId } from '../../core/user-id.js'
import { webhookStoreContract } from '../contract/webhook-store.contract.js'
import { RedisKeys } from './keys.js'
import { RedisConnection, type RedisTarget } from './redis-connection.js'
import { RedisWebhookStore } from './redis-webhook-store.js'

/** One 3-master cluster for this file, started by the first test that needs it. */
const clusterTarget = clusterForThisFile()

async function open(target: RedisTarget) {
  const prefix = uniquePrefix('webhooks')
  const connection = new RedisConnection(target, PATIENT)
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  const store = new RedisWebhookStore(connection, new RedisKeys(prefix))
  return {
    store,
    prefix,
    cleanup: async () => {
      await store.close()
      await deleteKeys(target, prefix)
    },
  }
}

webhookStoreContract('redis', () => open({ url: LOCAL_REDIS_URL }))
webhookStoreContract('redis cluster (3 masters)', async () => open(await clusterTarget()))

test('an attempt that fails, or a delivery parked, after its endpoint was deleted leaves no key behind', async (t) => {
  const { store, cleanup, prefix } = await open({ url: LOCAL_REDIS_URL })
  t.after(cleanup)
  const at = Date.UTC(2026, 0, 1)
  await store.putWebhook({
    id: 'w1',
    url: 'https://example.test/hooks',
    secret: 'whsec_0123456789abcdef',
    keyId: '0123456789abcdef',
    events: ['online'],
    filter: { universes: [], titles: [], users: [] },
    enabled: true,
    description: '',
    createdAt: at,
    updatedAt: at,
  })
  const queued = [1, 2].map((n) => ({
    webhookId: 'w1',
    eventId: `evt_${n}`,
    userId: '1' as UserId,
    type: 'online' as const,
    body: '{}',
    createdAt: at + n,
  }))
  await store.enqueue(queued, 100)
  const [failing, parking] = await store.claim('w1', 'node-a', 2)
  // deleted while both attempts are in flight: they end after it
  await store.deleteWebhook('w1')
  failing!.attempts = 1
  failing!.lastError = 'HTTP 503'
  await store.recordFailure(failing!)
  parking!.attempts = 8
  parking!.parkedAt = at + 10
  await store.park(parking!)

  const redis = new Redis(LOCAL_REDIS_URL)
  t.after(() => redis.disconnect())
  assert.deepEqual(await redis.keys(`${prefix}:*w:w1*`), [])
})
