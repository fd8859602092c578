import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import type { Activity } from '../../src/core/presence.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import { startRedisCluster, type LocalRedisCluster } from '../helpers/redis-cluster.js'
import { uniquePrefix } from '../helpers/redis.js'
import { NativeClient } from '../integration/native-client.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'

/*
 * A block touches two users' slots, which on a Redis Cluster cannot be one transaction: it is
 * written one user's slot after the other's (RedisProfileStore #blockSteps). Whichever master
 * fails between them, the blocked user must never see the blocker while the blocker's side
 * already holds the block: a half-written block shows the blocker Offline to the blocked user,
 * or nothing of the block at all. The failure: a master that refuses writes (it lost the replica
 * `min-replicas-to-write` asks for: NOREPLICAS) while it still serves reads, so that the state
 * the refused write (503) left is read through the service; the client's retry, once the master
 * takes writes again, completes the block, as the Roblox API shows. The same for an unblock and
 * an ended friendship (docs/reference/admin.md, "Relations on a Redis Cluster"), and for a
 * stream open through it: told of the refused block, it stops showing the blocker.
 *
 * (A master paused past the command timeout, CLIENT PAUSE WRITE, cannot show that state: every
 * node's connection to it waits behind its first write, a janitor's sweep say, reads included;
 * and the refused write lands when the pause ends.)
 */

const OFFLINE = 0
const ONLINE = 1

/** The port of the master serving `key`'s slot. */
async function masterOf(cluster: LocalRedisCluster, key: string): Promise<number> {
  const client = new Redis(cluster.servers[0]!.port, '127.0.0.1')
  try {
    const slot = (await client.call('CLUSTER', 'KEYSLOT', key)) as number
    const ranges = await client.cluster('SLOTS')
    const [, , master] = ranges.find(([from, to]) => from <= slot && slot <= to)!
    return master![1]
  } finally {
    client.disconnect()
  }
}

/** Makes `port` (a master of the test's own cluster) refuse writes, or take them again. */
async function refuseWrites(port: number, refuse: boolean): Promise<void> {
  const client = new Redis(port, '127.0.0.1')
  try {
    await client.config('SET', 'min-replicas-to-write', refuse ? '1' : '0')
  } finally {
    client.disconnect()
  }
}

/** What `viewer` sees of `target` on the Roblox API. */
async function seen(app: StartedApp, viewer: string, target: string): Promise<number> {
  const response = await app.app.inject({
    method: 'POST',
    url: '/v1/presence/users',
    headers: { authorization: `Bearer ${await app.tokens.issue(viewer as UserId)}` },
    payload: { userIds: [target] },
  })
  assert.equal(response.statusCode, 200, response.body)
  const body = response.json() as { userPresences: { userPresenceType: number }[] }
  return body.userPresences[0]!.userPresenceType
}

/** What `viewer` sees of `target` through the service's lookup. */
async function lookedUp(app: StartedApp, viewer: string, target: string): Promise<number> {
  const [presence] = await app.service.lookup({ kind: 'user', userId: viewer as UserId }, [
    target as UserId,
  ])
  return presence!.state
}

async function signIn(app: StartedApp, id: string): Promise<void> {
  const response = await app.app.inject({
    method: 'POST',
    url: '/v1/presence/register-app-presence',
    headers: { authorization: `Bearer ${await app.tokens.issue(id as UserId)}` },
    payload: { platform: 'PC' },
  })
  assert.equal(response.statusCode, 200, response.body)
}

/** A blocker and a blocked user from `from` up whose slots are on different masters. */
async function pairOnTwoMasters(
  cluster: LocalRedisCluster,
  keys: RedisKeys,
  from: bigint,
): Promise<{ blocker: UserId; blocked: UserId; masters: [number, number] }> {
  const blocker = String(from) as UserId
  const first = await masterOf(cluster, keys.blocks(blocker))
  for (let id = from + 1n; ; id++) {
    const blocked = String(id) as UserId
    const second = await masterOf(cluster, keys.blockedBy(blocked))
    if (second !== first) return { blocker, blocked, masters: [first, second] }
  }
}

async function start(t: TestContext, clock?: ManualClock, listen = false) {
  const cluster = await startRedisCluster({ masters: 3 })
  t.after(() => cluster.stop())
  const prefix = uniquePrefix('cluster-relations')
  const app = await startApp(t, {
    ...(clock && { clock }),
    listen,
    config: { redisCluster: cluster.nodes, redisPrefix: prefix, flapGraceMs: 0 },
  })
  return { cluster, app, keys: new RedisKeys(prefix) }
}

/** `PUT` or `DELETE /admin/v1/users/{id}/{relation}/{otherId}`. */
const relate = (app: StartedApp, method: string, path: string) =>
  app.app.inject({ method, url: `/admin/v1/users/${path}`, headers: { 'x-api-key': ADMIN_KEY } })

const block = (app: StartedApp, blocker: string, blocked: string, method = 'PUT') =>
  relate(app, method, `${blocker}/blocks/${blocked}`)

/** A heartbeat of the user's app session through the service. */
const beat = (app: StartedApp, userId: UserId, activity: Activity = { kind: 'online' }) =>
  app.service.heartbeat({ userId, key: 'app', source: 'app', deviceType: 'PC', activity })

test('redis cluster: a block lost between its two users’ slots never shows the blocker to the blocked user, and a retry completes it', async (t) => {
  const { cluster, app, keys } = await start(t)
  const cases = [
    ['the blocked user’s master', 1, 9223372036854770101n],
    ['the blocker’s master', 0, 9223372036854770201n],
  ] as const
  for (const [name, which, from] of cases) {
    const { blocker, blocked, masters } = await pairOnTwoMasters(cluster, keys, from)
    await signIn(app, blocker)
    await signIn(app, blocked)
    assert.equal(await seen(app, blocked, blocker), ONLINE, `${name}: before the block`)

    await refuseWrites(masters[which], true)
    const refused = await block(app, blocker, blocked)
    assert.equal(refused.statusCode, 503, `${name}: ${refused.body}`)
    assert.equal(
      (refused.json() as { error: { code: string } }).error.code,
      'STORE_UNAVAILABLE',
      `${name}: ${refused.body}`,
    )
    // what the refused write left, read through the service (the Roblox API counts a rate-limit
    // hit, a write, maybe on the refusing master)
    const blockerSees = await lookedUp(app, blocker, blocked)
    const blockedSees = await lookedUp(app, blocked, blocker)
    t.diagnostic(`${name} refusing: the blocker sees ${blockerSees}, the blocked ${blockedSees}`)
    if (blockerSees === OFFLINE) {
      assert.equal(blockedSees, OFFLINE, `${name}: the block holds on the blocker’s side only`)
    }
    if (which === 0) {
      // the blocked user's side was written first, and holds while the blocker's is refused
      assert.equal(blockedSees, OFFLINE, `${name}: the blocked user sees the blocker Offline`)
      assert.equal(blockerSees, ONLINE, `${name}: the blocker’s side not written yet`)
    }
    // still refused: a retry changes nothing
    assert.equal((await block(app, blocker, blocked)).statusCode, 503)

    await refuseWrites(masters[which], false)
    const again = await block(app, blocker, blocked)
    assert.equal(again.statusCode, 204, `${name}: ${again.body}`)
    assert.equal(await seen(app, blocked, blocker), OFFLINE, `${name}: after the retry`)
    assert.equal(await seen(app, blocker, blocked), OFFLINE, `${name}: after the retry`)
  }
})

test('redis cluster: an unblock lost between its two users’ slots keeps the blocker hidden from the blocked user, and its retry keeps what each saw through the block', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1))
  const { cluster, app, keys } = await start(t, clock)
  const cases = [
    ['the blocked user’s master', 1, 9223372036854770301n],
    ['the blocker’s master', 0, 9223372036854770401n],
  ] as const
  for (const [name, which, from] of cases) {
    const { blocker, blocked, masters } = await pairOnTwoMasters(cluster, keys, from)
    await beat(app, blocker)
    await beat(app, blocked)
    // the blocker last saw the other online at the block; what the other did next it never saw
    const blockedAt = clock.now()
    assert.equal((await block(app, blocker, blocked)).statusCode, 204)
    clock.advance(5_000)
    await beat(app, blocked)
    await beat(app, blocker)
    clock.advance(1_000)
    await app.service.endSession(blocked, 'app')
    clock.advance(4_000)

    await refuseWrites(masters[which], true)
    const refused = await block(app, blocker, blocked, 'DELETE')
    assert.equal(refused.statusCode, 503, `${name}: ${refused.body}`)
    const [blockedSees] = await app.service.lookup({ kind: 'user', userId: blocked }, [blocker])
    const [blockerSees] = await app.service.lookup({ kind: 'user', userId: blocker }, [blocked])
    t.diagnostic(`${name} refusing: the blocked user sees ${blockedSees!.state}`)
    assert.equal(blockedSees!.state, OFFLINE, `${name}: the blocked user still sees Offline`)
    assert.equal(blockedSees!.lastOnline, blockedAt, `${name}: as at the block`)
    assert.equal(blockerSees!.lastOnline, blockedAt, `${name}: the blocker sees what it saw`)

    await refuseWrites(masters[which], false)
    const again = await block(app, blocker, blocked, 'DELETE')
    assert.equal(again.statusCode, 204, `${name}: ${again.body}`)
    assert.equal(await seen(app, blocked, blocker), ONLINE, `${name}: unblocked`)
    const [after] = await app.service.lookup({ kind: 'user', userId: blocker }, [blocked])
    assert.equal(after!.lastOnline, blockedAt, `${name}: the blocker sees what it saw, no more`)
  }
})

test('redis cluster: a friendship ended midway hides the first-named user’s place from the other first; a retry ends it both ways', async (t) => {
  const { cluster, app, keys } = await start(t)
  const cases = [
    ['the first-named user’s master', 0, 9223372036854770501n],
    ['the other user’s master', 1, 9223372036854770601n],
  ] as const
  for (const [name, which, from] of cases) {
    // `a` ends the friendship with `b`: both show their place to friends only
    const { blocker: a, blocked: b, masters } = await pairOnTwoMasters(cluster, keys, from)
    const friends = (method: string) => relate(app, method, `${a}/friends/${b}`)
    for (const id of [a, b]) {
      await app.service.putSettings(id, { visibility: 'friends' })
      await beat(app, id, { kind: 'inGame', placeId: '1818', location: 'Obby' })
    }
    assert.equal((await friends('PUT')).statusCode, 204)
    const placeHidden = async (viewer: UserId, target: UserId) =>
      (await app.service.lookup({ kind: 'user', userId: viewer }, [target]))[0]!.locationHidden
    assert.equal(await placeHidden(b, a), false, `${name}: friends`)

    await refuseWrites(masters[which], true)
    const refused = await friends('DELETE')
    assert.equal(refused.statusCode, 503, `${name}: ${refused.body}`)
    const bSeesPlace = !(await placeHidden(b, a))
    const aSeesPlace = !(await placeHidden(a, b))
    t.diagnostic(`${name} refusing: b sees a's place ${bSeesPlace}, a sees b's ${aSeesPlace}`)
    // the other side (b's slot) is written first: a's place is hidden from b once anything landed
    if (!aSeesPlace) assert.equal(bSeesPlace, false, `${name}: ended on a's side only`)
    if (which === 0) assert.equal(bSeesPlace, false, `${name}: b no longer sees a's place`)

    await refuseWrites(masters[which], false)
    assert.equal((await friends('DELETE')).statusCode, 204)
    assert.equal(await placeHidden(b, a), true, `${name}: after the retry`)
    assert.equal(await placeHidden(a, b), true, `${name}: after the retry`)
  }
})

test('redis cluster: a block refused after its first step reaches open streams: the blocked user’s stream stops showing the blocker', async (t) => {
  const { cluster, app, keys } = await start(t, undefined, true)
  const { blocker, blocked, masters } = await pairOnTwoMasters(cluster, keys, 9223372036854770701n)
  await signIn(app, blocker)
  await signIn(app, blocked)
  const ws = await NativeClient.connect(app.url, await app.tokens.issue(blocked))
  t.after(() => ws.socket.terminate())
  ws.send({ type: 'subscribe', ids: [blocker] })
  await ws.waitFor((f) => f.type === 'snapshot')

  // the blocked user's side lands, the blocker's is refused: the caller is told 503
  await refuseWrites(masters[0], true)
  const refused = await block(app, blocker, blocked)
  assert.equal(refused.statusCode, 503, refused.body)
  assert.equal(await lookedUp(app, blocked, blocker), OFFLINE)
  // the stream re-read the relation as stored: the blocker went offline for it
  await ws.waitFor((f) => f.type === 'offline')

  // the caller does not retry; the blocker plays on once its master takes writes again
  await refuseWrites(masters[0], false)
  await beat(app, blocker, { kind: 'inGame', placeId: '1818', location: 'Obby' })
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  assert.deepEqual(ws.pending(), [], 'nothing more of the blocker reaches the blocked user')
  assert.equal(await lookedUp(app, blocked, blocker), OFFLINE)
})
