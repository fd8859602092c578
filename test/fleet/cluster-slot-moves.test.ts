import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import type { UserId } from '../../src/core/user-id.js'
import { PresenceError } from '../../src/core/errors.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import { RedisConnection } from '../../src/store/redis/redis-connection.js'
import { RedisPresenceStore } from '../../src/store/redis/redis-presence-store.js'
import { RedisProfileStore } from '../../src/store/redis/redis-profile-store.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'
import { uniquePrefix } from '../helpers/redis.js'

/** The hash slot of a hash tag: CRC16 (XMODEM) mod 16384, as Redis Cluster computes it. */
function slotOf(tag: string): number {
  let crc = 0
  for (const byte of Buffer.from(tag, 'utf8')) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    }
  }
  return crc % 16384
}

/** A plain client to one node of the test's cluster, closed when the test ends. */
function nodeClient(t: import('node:test').TestContext, port: number): Redis {
  const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0 })
  t.after(() => client.disconnect())
  return client
}

test('a slot moving (ASK, TRYAGAIN midway) and moved (MOVED) under a store: reads never 503', async (t) => {
  const cluster = await startRedisCluster({ masters: 3 })
  t.after(() => cluster.stop())
  const connection = new RedisConnection({ cluster: cluster.nodes })
  assert.ok(await connection.waitReady())
  const keys = new RedisKeys(uniquePrefix('slot-moves'))
  const store = new RedisPresenceStore(connection, keys)
  t.after(() => store.close())

  // users of one bucket, so one slot holds all their keys
  const bucket = keys.bucketOf('5000000')
  const users: UserId[] = []
  for (let id = 5_000_000; users.length < 8; id++) {
    if (keys.bucketOf(String(id)) === bucket) users.push(String(id) as UserId)
  }
  let placeId = 1
  const beatAll = () =>
    Promise.all(
      users.map((userId) =>
        store.heartbeat(
          {
            userId,
            key: 'app:PC',
            source: 'app',
            deviceType: 'PC',
            activity: { kind: 'inGame', placeId: String(placeId) },
            ttlMs: 600_000,
          },
          Date.now(),
        ),
      ),
    )
  /** Every user read in one batch shows the place of the last heartbeats. */
  const assertServed = async (when: string) => {
    await beatAll()
    const presences = await store.getMany(users, Date.now())
    for (const presence of presences) {
      assert.equal(presence.sessions.length, 1, when)
      const activity = presence.sessions[0]!.activity
      assert.equal(activity.placeId, String(placeId), when)
    }
    placeId++
  }
  await assertServed('before the move')

  const any = nodeClient(t, cluster.servers[0]!.port)
  const slot = Number(await any.cluster('KEYSLOT', `{b${bucket}}`))
  const ranges = await any.cluster('SLOTS')
  const [, sourcePort, sourceId] = ranges.find(([from, to]) => from <= slot && slot <= to)![2]!
  const [, targetPort, targetId] = ranges.find(([, , master]) => master![1] !== sourcePort)![2]!
  const source = nodeClient(t, sourcePort)
  const target = nodeClient(t, targetPort)

  // the resharding redis-cli does, by hand: importing, migrating, every key moved
  await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId)
  await source.cluster('SETSLOT', slot, 'MIGRATING', targetId)
  const moved = (await source.cluster('GETKEYSINSLOT', slot, 1000)) as string[]
  assert.ok(moved.length >= users.length, `${moved.length} keys in slot ${slot}`)
  // every second key of each kind (users' values, the bucket's index): users split both ways
  const seen = new Map<string | undefined, number>()
  const early = moved.filter((key) => {
    const kind = key.split(':').at(-2)
    const n = seen.get(kind) ?? 0
    seen.set(kind, n + 1)
    return n % 2 === 0
  })
  const late = moved.filter((key) => !early.includes(key))
  await source.call('MIGRATE', '127.0.0.1', targetPort, '', 0, 5000, 'KEYS', ...early)

  // half the slot's keys moved (a slow migration, midway): a command whose keys are split
  // between the two is refused (TRYAGAIN) until the rest follow. A batch read is then read key
  // by key, each where it is: served, the values of the last heartbeats
  const reading = performance.now()
  const presences = await store.getMany(users, Date.now())
  t.diagnostic(`batch read midway: served in ${(performance.now() - reading).toFixed(0)} ms`)
  assert.deepEqual(
    presences.map((p) => p.sessions[0]?.activity.placeId),
    users.map(() => String(placeId - 1)),
  )
  // a heartbeat (one script over the user's value and the bucket's index) cannot be split: it is
  // refused as a single Redis's timeout is, within the command timeout, not 16 retries later
  for (const userId of users.slice(0, 3)) {
    const started = performance.now()
    const outcome = await store
      .heartbeat(
        {
          userId,
          key: 'app:PC',
          source: 'app',
          deviceType: 'PC',
          activity: { kind: 'inGame', placeId: String(placeId - 1) },
          ttlMs: 600_000,
        },
        Date.now(),
      )
      .then(
        () => 'written',
        (error: unknown) => (error instanceof PresenceError ? error.code : String(error)),
      )
    const elapsed = performance.now() - started
    t.diagnostic(`heartbeat midway: ${outcome} in ${elapsed.toFixed(0)} ms`)
    assert.ok(outcome === 'written' || outcome === 'STORE_UNAVAILABLE', outcome)
    assert.ok(elapsed < 1500, `heartbeat midway answered in ${elapsed.toFixed(0)} ms`)
  }

  await source.call('MIGRATE', '127.0.0.1', targetPort, '', 0, 5000, 'KEYS', ...late)
  // every key on the target, the slot still the source's: the source answers ASK
  await assertServed('every key moved, the slot migrating (ASK)')

  for (const server of cluster.servers) {
    await nodeClient(t, server.port).cluster('SETSLOT', slot, 'NODE', targetId)
  }
  // the slot is the target's: the node's slot map is stale, the source answers MOVED
  await assertServed('the slot moved (MOVED)')
  assert.equal(Number(await target.cluster('COUNTKEYSINSLOT', slot)), moved.length)
  assert.equal(await store.ready(), true)
})

test('a slot moving: single-user reads and heartbeats in one tick, some users moved and some not, each served where its key is', async (t) => {
  const cluster = await startRedisCluster({ masters: 3 })
  t.after(() => cluster.stop())
  const connection = new RedisConnection({ cluster: cluster.nodes })
  assert.ok(await connection.waitReady())
  const keys = new RedisKeys(uniquePrefix('slot-ask'))
  const store = new RedisPresenceStore(connection, keys)
  t.after(() => store.close())

  const bucket = keys.bucketOf('6000000')
  const users: UserId[] = []
  for (let id = 6_000_000; users.length < 8; id++) {
    if (keys.bucketOf(String(id)) === bucket) users.push(String(id) as UserId)
  }
  const beat = (userId: UserId, placeId: string) =>
    store.heartbeat(
      {
        userId,
        key: 'app:PC',
        source: 'app',
        deviceType: 'PC',
        activity: { kind: 'inGame', placeId },
        ttlMs: 600_000,
      },
      Date.now(),
    )
  await Promise.all(users.map((userId) => beat(userId, '1')))

  const any = nodeClient(t, cluster.servers[0]!.port)
  const slot = Number(await any.cluster('KEYSLOT', `{b${bucket}}`))
  const ranges = await any.cluster('SLOTS')
  const [, sourcePort, sourceId] = ranges.find(([from, to]) => from <= slot && slot <= to)![2]!
  const [, targetPort, targetId] = ranges.find(([, , master]) => master![1] !== sourcePort)![2]!
  const source = nodeClient(t, sourcePort)
  const target = nodeClient(t, targetPort)
  await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId)
  await source.cluster('SETSLOT', slot, 'MIGRATING', targetId)
  // the presence values of the last four users moved, the rest of the slot still on the source
  const moved = users.slice(4)
  await source.call(
    'MIGRATE',
    '127.0.0.1',
    targetPort,
    '',
    0,
    5000,
    'KEYS',
    ...moved.map((id) => keys.presence(id)),
  )

  // eight single-user reads in one tick: ioredis batches them to the source, which answers
  // four and refers four (ASK) to the target
  const sessions = async () =>
    (await Promise.all(users.map((id) => store.getMany([id], Date.now())))).map(
      ([presence]) => presence!.sessions.length,
    )
  const read = await sessions()
  t.diagnostic(`single-user reads in one tick, midway: sessions ${read.join(',')}`)
  assert.deepEqual(read, [1, 1, 1, 1, 1, 1, 1, 1])
  // with a read of the whole bucket in the same tick (refused TRYAGAIN: its keys are split), the
  // batch holds refusals of two kinds, and ioredis follows neither
  const [all, ...alone] = await Promise.all([
    store.getMany(users, Date.now()),
    ...users.map((id) => store.getMany([id], Date.now())),
  ])
  const mixed = [...all!, ...alone.map(([presence]) => presence!)].map((p) => p.sessions.length)
  t.diagnostic(
    `a batch read and single-user reads in one tick, midway: sessions ${mixed.join(',')}`,
  )
  assert.deepEqual(mixed, new Array<number>(16).fill(1))

  // heartbeats in one tick: a user whose keys are all on the source is written there; one whose
  // value moved (the bucket's index still on the source) is refused (TRYAGAIN), never misapplied
  const outcomes = await Promise.all(
    users.map((userId) =>
      beat(userId, '2').then(
        () => 'written',
        (error: unknown) => (error instanceof PresenceError ? error.code : String(error)),
      ),
    ),
  )
  t.diagnostic(`heartbeats in one tick, midway: ${outcomes.join(',')}`)
  assert.deepEqual(outcomes.slice(0, 4), ['written', 'written', 'written', 'written'])
  for (const outcome of outcomes.slice(4)) {
    assert.ok(outcome === 'written' || outcome === 'STORE_UNAVAILABLE', outcome)
  }
  const places = (await Promise.all(users.map((id) => store.getMany([id], Date.now())))).map(
    ([presence]) => presence!.sessions[0]?.activity.placeId,
  )
  t.diagnostic(`places after: ${places.join(',')}`)
  users.forEach((_, i) =>
    assert.equal(places[i], outcomes[i] === 'written' ? '2' : '1', `user ${i}`),
  )
  assert.equal(Number(await source.exists(...users.slice(0, 4).map((id) => keys.presence(id)))), 4)
})

test('a slot moving: relation, game-server and stats reads in one tick, some keys moved and some not, each read where its key is', async (t) => {
  const cluster = await startRedisCluster({ masters: 3 })
  t.after(() => cluster.stop())
  const connection = new RedisConnection({ cluster: cluster.nodes })
  assert.ok(await connection.waitReady())
  const keys = new RedisKeys(uniquePrefix('slot-reads'))
  const presence = new RedisPresenceStore(connection, keys)
  const profiles = new RedisProfileStore(connection, keys)
  t.after(async () => {
    await profiles.close()
    await presence.close()
  })

  // eight viewers of one bucket (one slot), each a friend of the same user elsewhere
  const bucket = keys.bucketOf('7000000')
  const viewers: UserId[] = []
  for (let id = 7_000_000; viewers.length < 8; id++) {
    if (keys.bucketOf(String(id)) === bucket) viewers.push(String(id) as UserId)
  }
  const friend = '42' as UserId
  for (const viewer of viewers) await profiles.setFriends(viewer, friend, true)
  // two game servers whose rosters live in that same slot
  const any = nodeClient(t, cluster.servers[0]!.port)
  const slot = Number(await any.cluster('KEYSLOT', `{b${bucket}}`))
  assert.equal(slotOf(`b${bucket}`), slot)
  const games: string[] = []
  for (let n = 0; games.length < 2; n++) {
    const gameId = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`
    if (slotOf(`g:${gameId}`) === slot) games.push(gameId)
  }
  for (const [i, gameId] of games.entries()) {
    const players = [String(100 + i) as UserId]
    await presence.reportServer(
      {
        gameId,
        players,
        activity: { kind: 'inGame', placeId: '1', gameId },
        deviceType: 'PC',
        ttlMs: 600_000,
      },
      Date.now(),
    )
  }
  const stats = await presence.stats(Date.now())
  assert.equal(stats.sessions, 2)

  const ranges = await any.cluster('SLOTS')
  const [, sourcePort, sourceId] = ranges.find(([from, to]) => from <= slot && slot <= to)![2]!
  const [, targetPort, targetId] = ranges.find(([, , master]) => master![1] !== sourcePort)![2]!
  const source = nodeClient(t, sourcePort)
  const target = nodeClient(t, targetPort)
  await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId)
  await source.cluster('SETSLOT', slot, 'MIGRATING', targetId)
  // moved: the last four viewers' friends, the second server's roster, the bucket's counts;
  // the first four viewers' friends and the first roster still on the source
  const moved = [
    ...viewers.slice(4).map((id) => keys.friends(id)),
    keys.server(games[1]!),
    keys.counts(bucket),
  ]
  await source.call('MIGRATE', '127.0.0.1', targetPort, '', 0, 5000, 'KEYS', ...moved)

  // each viewer's relations in one tick: the source answers the first four, refers (ASK) the
  // rest and the keys it does not hold (blocks, sights)
  const relations = await Promise.all(viewers.map((v) => profiles.getRelations(v, [friend])))
  const friends = relations.map(([relation]) => relation!.friends)
  t.diagnostic(`relations in one tick, midway: friends ${friends.join(',')}`)
  assert.deepEqual(friends, new Array<boolean>(8).fill(true))
  assert.deepEqual(
    await Promise.all(viewers.map((v) => profiles.listFriends(v))),
    viewers.map(() => [friend]),
  )
  // both rosters in one tick: one on the source, one moved
  const rosters = await Promise.all(games.map((gameId) => presence.getServer(gameId, Date.now())))
  t.diagnostic(
    `rosters in one tick, midway: ${rosters.map((r) => r?.players.join(',')).join(' | ')}`,
  )
  assert.deepEqual(
    rosters.map((r) => r?.players),
    [['100'], ['101']],
  )
  // the counts of every bucket in one tick, this one's moved
  const midway = await presence.stats(Date.now()).then(
    (s) => String(s.sessions),
    (error: unknown) => (error instanceof PresenceError ? error.code : String(error)),
  )
  t.diagnostic(`stats midway: ${midway}`)
  assert.equal(midway, '2')
})
