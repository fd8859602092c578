import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Redis } from 'ioredis'
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

test('an unblock lost before its block was removed: its records are not pruned under the block, and the index forgets them', async (t) => {
  const { store, prefix, cleanup } = await open(single)
  t.after(cleanup)
  const keys = new RedisKeys(prefix)
  const blocker = '41' as UserId
  const blocked = '42' as UserId
  const T0 = Date.UTC(2026, 0, 1)
  await store.setBlocked(blocker, blocked, true, { blockerSaw: T0 + 1, blockedSaw: T0 + 2 })
  // the unblock's first step (the ended sights and their index), then Redis was lost
  const raw = new Redis(LOCAL_REDIS_URL)
  t.after(() => raw.disconnect())
  await raw.hset(keys.blockSight(blocker), blocked, `e${T0 + 10}:${T0 + 1}`)
  await raw.hset(keys.blockSight(blocked), blocker, `e${T0 + 10}:${T0 + 2}`)
  await raw.zadd(
    keys.blockEnds(),
    T0 + 10,
    `${blocker}:${blocked}`,
    T0 + 10,
    `${blocked}:${blocker}`,
  )
  const listed = await store.blockEnds(0, 10)
  assert.equal(listed.length, 2)
  await store.dropBlockEnds(listed)
  // the block still shows what each saw; the unblock's retry lists them again
  assert.deepEqual(await store.getRelations(blocker, [blocked]), [
    { friends: false, blocked: true, lastOnline: T0 + 1 },
  ])
  assert.deepEqual(await store.getRelations(blocked, [blocker]), [
    { friends: false, blocked: true, lastOnline: T0 + 2 },
  ])
  assert.equal(await raw.zcard(keys.blockEnds()), 0)
  await store.setBlocked(blocker, blocked, false, { blockerSaw: T0 + 1, since: T0 + 20 })
  assert.deepEqual((await store.blockEnds(0, 10)).map((end) => [end.viewer, end.since]).sort(), [
    [blocker, T0 + 20],
    [blocked, T0 + 20],
  ])
})

test('a cluster: two users of one bucket block, unblock and befriend each other (one MULTI)', async (t) => {
  const { store, prefix, cleanup } = await open(await clusterTarget())
  t.after(cleanup)
  const keys = new RedisKeys(prefix)
  const a = '101' as UserId
  let n = 102
  while (keys.bucketOf(String(n)) !== keys.bucketOf(a)) n++
  const b = String(n) as UserId
  await store.setBlocked(a, b, true, { blockerSaw: 1, blockedSaw: 2 })
  assert.deepEqual(await store.getRelations(b, [a]), [
    { friends: false, blocked: true, lastOnline: 2 },
  ])
  await store.setBlocked(a, b, false, { blockerSaw: 1, blockedSaw: 2, since: 3 })
  await store.setFriends(b, a, true)
  assert.deepEqual(await store.getRelations(a, [b]), [
    { friends: true, blocked: false, lastOnline: 1, since: 3 },
  ])
  assert.deepEqual(await store.getRelations(b, [a]), [
    { friends: true, blocked: false, lastOnline: 2, since: 3 },
  ])
})
