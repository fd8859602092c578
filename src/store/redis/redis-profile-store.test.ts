import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clusterForThisFile } from '../../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, PATIENT, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
import type { UserId } from '../../core/user-id.js'
import { profileStoreContract } from '../contract/profile-store.contract.js'
import { RedisKeys } from './keys.js'
import { RedisConnection, type RedisTarget } from './redis-connection.js'
import { RedisProfileStore } from './redis-profile-store.js'

const single: RedisTarget = { url: LOCAL_REDIS_URL }

/** One 3-master cluster for this file, started by the first test that needs it. */
const clusterTarget = clusterForThisFile()

async function open(target: RedisTarget) {
  const prefix = uniquePrefix('profile')
  const connection = new RedisConnection(target, PATIENT)
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  const store = new RedisProfileStore(connection, new RedisKeys(prefix))
  return {
    store,
    prefix,
    cleanup: async () => {
      await store.close()
      await deleteKeys(target, prefix)
    },
  }
}

profileStoreContract('redis', () => open(single))
profileStoreContract('redis cluster (3 masters)', async () => open(await clusterTarget()))

test('data outlives the connection: a new store on the same prefix reads it back', async (t) => {
  const first = await open(single)
  t.after(() => deleteKeys(single, first.prefix))
  const a = '9007199254740993' as UserId
  const b = '9223372036854775807' as UserId
  await first.store.putSettings(a, { visibility: 'friends', invisible: true, frozenLastOnline: 7 })
  await first.store.setFriends(a, b, true)
  await first.store.setBlocked(b, a, true)
  await first.store.close()

  const connection = new RedisConnection(single, PATIENT)
  await connection.waitReady()
  const second = new RedisProfileStore(connection, new RedisKeys(first.prefix))
  t.after(() => second.close())
  assert.deepEqual(await second.getSettings([a]), [
    { visibility: 'friends', invisible: true, frozenLastOnline: 7 },
  ])
  assert.deepEqual(await second.getRelations(a, [b]), [{ friends: true, blocked: true }])
})
