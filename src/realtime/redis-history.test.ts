import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clusterForThisFile } from '../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, PATIENT, deleteKeys, uniquePrefix } from '../../test/helpers/redis.js'
import type { UserId } from '../core/user-id.js'
import { RedisKeys } from '../store/redis/keys.js'
import { RedisConnection, type RedisTarget } from '../store/redis/redis-connection.js'
import { RedisPresenceStore } from '../store/redis/redis-presence-store.js'
import { NO_HISTORY, type HistoryBounds } from './history.js'
import { historyContract } from './history.contract.js'
import { RedisHistory } from './redis-history.js'

const single: RedisTarget = { url: LOCAL_REDIS_URL }

/** One 3-master cluster for this file, started by the first test that needs it. */
const clusterTarget = clusterForThisFile()

async function open(target: RedisTarget, bounds: HistoryBounds) {
  const prefix = uniquePrefix('hist')
  const connection = new RedisConnection(target, PATIENT).retain()
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  const keys = new RedisKeys(prefix)
  const history = new RedisHistory(connection, keys, bounds)
  return {
    history,
    connection,
    keys,
    cleanup: async () => {
      await history.close()
      await connection.release()
      await deleteKeys(target, prefix)
    },
  }
}

historyContract('redis', (bounds) => open(single, bounds))
historyContract('redis cluster (3 masters)', async (bounds) => open(await clusterTarget(), bounds))

for (const [name, target] of [
  ['redis', () => Promise.resolve(single)],
  ['redis cluster', clusterTarget],
] as const) {
  test(`${name}: the presence scripts record each change with its position, in the same step`, async (t) => {
    const bounds = { entries: 10, ageSeconds: 60 }
    const { history, connection, keys, cleanup } = await open(await target(), bounds)
    t.after(cleanup)
    const store = new RedisPresenceStore(connection, keys, { history: bounds })
    t.after(() => store.close())
    const user = '9223372036854775807' as UserId
    const now = Date.now()
    const write = (location: string, at: number) =>
      store.heartbeat(
        {
          userId: user,
          key: 'app:Web',
          source: 'app',
          deviceType: 'Web',
          activity: { kind: 'inGame', placeId: '1818', location },
          ttlMs: 1000,
        },
        at,
      )
    const first = await write('a', now)
    const second = await write('b', now + 1)
    const ended = await store.end(user, 'app:Web', now + 2, 'explicit')
    assert.ok(first.position && second.position && ended?.position)
    const epoch = first.position.epoch
    assert.deepEqual(
      [first, second, ended].map((c) => c.position),
      [
        { epoch, offset: 1, at: now },
        { epoch, offset: 2, at: now + 1 },
        { epoch, offset: 3, at: now + 2 },
      ],
    )
    // a session past expiry is swept: that change is recorded too
    await write('c', now + 3)
    const swept = await store.sweepExpired(now + 5000, 100)
    assert.deepEqual(
      swept.map((c) => c.position?.offset),
      [5],
    )
    const read = await history.read(user, NO_HISTORY)
    assert.equal(read.complete, true)
    assert.deepEqual(read.position, { epoch, offset: 5 })
    assert.deepEqual(
      read.changes.map((c) => [c.position!.offset, c.after.sessions.length, c.reason]),
      [
        [1, 1, undefined],
        [2, 1, undefined],
        [3, 0, 'explicit'],
        [4, 1, undefined],
        [5, 0, 'timeout'],
      ],
    )
    assert.deepEqual(read.changes[1], second)
    // a game server's report is recorded per player as well
    const [joined] = await store.reportServer(
      {
        gameId: 'g-1',
        players: [user],
        activity: { kind: 'inGame', placeId: '1' },
        deviceType: 'GameServer',
        ttlMs: 60_000,
      },
      now + 6000,
    )
    assert.deepEqual(joined?.position, { epoch, offset: 6, at: now + 6000 })
  })
}
