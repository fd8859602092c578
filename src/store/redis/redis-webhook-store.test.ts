import assert from 'node:assert/strict'
import { clusterForThisFile } from '../../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, PATIENT, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
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
    cleanup: async () => {
      await store.close()
      await deleteKeys(target, prefix)
    },
  }
}

webhookStoreContract('redis', () => open({ url: LOCAL_REDIS_URL }))
webhookStoreContract('redis cluster (3 masters)', async () => open(await clusterTarget()))
