import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { setTimeout } from 'node:timers/promises'
import type { Cluster } from 'ioredis'
import { clusterForThisFile } from '../../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, PATIENT, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
import type { Activity, InheritedField, Session } from '../../core/presence.js'
import type { UserId } from '../../core/user-id.js'
import { RedisChangeBus } from '../../realtime/redis-change-bus.js'
import { presenceStoreContract } from '../contract/presence-store.contract.js'
import type { PresenceChange, SessionWrite } from '../presence-store.js'
import { RedisKeys } from './keys.js'
import { RedisConnection, type RedisTarget } from './redis-connection.js'
import { RedisPresenceStore } from './redis-presence-store.js'
import { RedisProfileStore } from './redis-profile-store.js'
import { RedisRateLimiter } from './redis-rate-limiter.js'
import { titleHit, type TitleBudget } from '../rate-limiter.js'

const single: RedisTarget = { url: LOCAL_REDIS_URL }

/** One 3-master cluster for this file, started by the first test that needs it. */
const clusterTarget = clusterForThisFile()

async function open(target: RedisTarget, nearCache = 0) {
  const prefix = uniquePrefix('presence')
  const connection = new RedisConnection(target, PATIENT)
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  const keys = new RedisKeys(prefix)
  const store = new RedisPresenceStore(connection, keys, { nearCache })
  // the settings folded into the presence values, as fleet mode keeps them
  const privacy = new RedisProfileStore(connection, keys)
  return {
    store,
    privacy,
    connection,
    keys,
    cleanup: async () => {
      await store.close()
      await privacy.close()
      await deleteKeys(target, prefix)
    },
  }
}

presenceStoreContract('redis', () => open(single))
presenceStoreContract('redis (near cache)', () => open(single, 1000))

test('a Redis Cluster has no near cache, even when one is asked for (the default)', async (t) => {
  const { store, cleanup } = await open(await clusterTarget(), 100_000)
  t.after(cleanup)
  assert.equal(store.nearCache, undefined)
})
presenceStoreContract('redis cluster (3 masters)', async () => open(await clusterTarget()))

const T0 = Date.UTC(2026, 0, 1)
const write = (userId: string, key = 'app:iOS'): SessionWrite => ({
  userId: userId as UserId,
  key,
  source: 'app',
  deviceType: 'iOS',
  activity: { kind: 'inGame', placeId: '1', richPresence: { id: 'x', params: [] } },
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
  const connections = [0, 1, 2].map(() => new RedisConnection(single, PATIENT))
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

test('every activity field, and keys and devices with odd characters, survive the round trip', async (t) => {
  const { store, cleanup } = await open(single)
  t.after(cleanup)
  const gameId = '3f1c2a9e-0000-4000-8000-00000000000a'
  const writes: SessionWrite[] = [
    {
      ...write('77', `server:${gameId}`),
      source: 'server',
      deviceType: 'GameServer',
      activity: {
        kind: 'inGame',
        placeId: '1818',
        rootPlaceId: '1817',
        universeId: '13058',
        gameId,
        location: 'Obby "2",\n[]',
      },
    },
    {
      ...write('77', 'title:1717113201:XboxOne'),
      source: 'title',
      deviceType: 'XboxOne',
      activity: {
        kind: 'online',
        titleId: '1717113201',
        placement: 'fill',
        titleState: 'active',
        richPresence: { id: 'playingMap', scid: 'abba0123', params: ['Deathmatch', ''] },
      },
    },
    // a gameId that looks like the stored shorthand, in and out of its server's key
    { ...write('77', 'server:=x'), activity: { kind: 'inStudio', gameId: '=x' } },
    { ...write('77', 'server:y'), activity: { kind: 'inGame', gameId: '=' } },
    { ...write('77', 'app:"\n\\,é😀'), deviceType: 'P]C\t,[', activity: { kind: 'online' } },
    {
      ...write('77', ''),
      deviceType: '',
      activity: { kind: 'inGame', placeId: '', location: '0' },
    },
  ]
  const stored = writes.map((w) => ({ key: w.key, deviceType: w.deviceType, activity: w.activity }))
  const view = (sessions: readonly Session[]) =>
    sessions.map((s) => ({ key: s.key, deviceType: s.deviceType, activity: s.activity }))
  let last: PresenceChange | undefined
  for (const [i, w] of writes.entries()) last = await store.heartbeat(w, T0 + i)
  assert.deepEqual(view(last!.after.sessions), stored)
  const [read] = await store.getMany(['77' as UserId], T0 + 10)
  assert.deepEqual(view(read!.sessions), stored)
  assert.deepEqual(
    read!.sessions.map((s) => s.source),
    ['server', 'title', 'app', 'app', 'app', 'app'],
  )
  // sessions are found by their exact key, odd characters and all
  const ended = await store.end('77' as UserId, 'app:"\n\\,é😀', T0 + 11, 'explicit')
  assert.deepEqual(
    ended!.ended!.map((s) => s.deviceType),
    ['P]C\t,['],
  )
  assert.equal(await store.end('77' as UserId, 'app:"\n\\,é', T0 + 12, 'explicit'), undefined)
})

test('an inheriting write stores what a write of its merged activity stores; a refresh is not in the history', async (t) => {
  const prefix = uniquePrefix('inherit')
  const connection = new RedisConnection(single, PATIENT)
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  const keys = new RedisKeys(prefix)
  const store = new RedisPresenceStore(connection, keys, {
    history: { entries: 8, ageSeconds: 300 },
  })
  t.after(async () => {
    await store.close()
    await deleteKeys(single, prefix)
  })
  const title = (
    userId: string,
    activity: Omit<Activity, 'kind'>,
    inherit?: InheritedField[],
  ): SessionWrite => ({
    userId: userId as UserId,
    key: 'title:1234:XboxOne',
    source: 'title',
    deviceType: 'XboxOne',
    activity: { kind: 'online', titleId: '1234', ...activity },
    ttlMs: 60_000,
    ...(inherit && { inherit }),
  })
  const rich = { id: 'say "a,[b]"', params: ['x]', '\\'], scid: 'c0ffee' }
  const all: Omit<Activity, 'kind'> = {
    placement: 'fill',
    titleState: 'inactive',
    richPresence: rich,
  }
  // '11' inherits, '12' writes what '11' should end up with
  for (const user of ['11', '12']) await store.heartbeat(title(user, all), T0)
  const refresh = await store.heartbeat(
    title('11', { placement: 'full', titleState: 'active' }, [
      'placement',
      'titleState',
      'richPresence',
    ]),
    T0 + 1,
  )
  assert.equal(refresh.position, undefined, 'a refresh: not in the history')
  await store.heartbeat(title('12', all), T0 + 1)
  const moved = await store.heartbeat(
    title('11', { placement: 'snapped', titleState: 'active' }, ['richPresence']),
    T0 + 2,
  )
  assert.equal(moved.position?.offset, 2)
  await store.heartbeat(
    title('12', { placement: 'snapped', titleState: 'active', richPresence: rich }),
    T0 + 2,
  )
  const [inherited, written] = await connection.client.mget(
    keys.presence('11' as UserId),
    keys.presence('12' as UserId),
  )
  assert.ok(inherited)
  assert.equal(inherited, written)
})

/** Counts socket writes (one per batch of commands ioredis flushes: a round trip) per node. */
function countWrites(client: RedisConnection['client']): () => number[] {
  const nodes = 'nodes' in client ? client.nodes('master') : [client]
  const counts = nodes.map(() => 0)
  nodes.forEach((node, i) => {
    const stream = (node as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream
    const write = stream.write.bind(stream)
    stream.write = (...args: unknown[]) => {
      counts[i]!++
      return write(...args)
    }
  })
  return () => [...counts]
}

async function changesReachOtherNodes(target: RedisTarget, t: TestContext) {
  const prefix = uniquePrefix('changes')
  const keys = new RedisKeys(prefix)
  const nodes = await Promise.all(
    [0, 1].map(async () => {
      const connection = new RedisConnection(target, PATIENT)
      await connection.waitReady()
      const bus = new RedisChangeBus(connection, { channel: keys.channel() })
      await bus.subscribed
      const store = new RedisPresenceStore(connection, keys, {
        changes: { channel: keys.channel(), nodeId: bus.nodeId },
      })
      const heard: PresenceChange[] = []
      bus.subscribe((event) => {
        if (event.type === 'presence') heard.push(event.change)
      })
      return { connection, bus, store, heard }
    }),
  )
  // a plain subscriber counts what crosses the channel
  const listener = nodes[0]!.connection.subscriber()
  const messages: string[] = []
  listener.on('message', (_channel: string, message: string) => messages.push(message))
  await listener.subscribe(keys.channel())
  t.after(async () => {
    listener.disconnect()
    await Promise.all(nodes.flatMap((n) => [n.store.close(), n.bus.close()]))
    await deleteKeys(target, prefix)
  })
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]

  // what a service does: the store call, then the bus; one round trip in all, once every node
  // is connected and has the script (a first call sends it): users on every master warm up
  const warmUp = 30
  for (let i = 0; i < warmUp; i++) {
    const change = await a.store.heartbeat({ ...write(String(100 + i)), ttlMs: 600_000 }, T0)
    await a.bus.publish({ type: 'presence', change })
  }
  const writes = countWrites(a.connection.client)
  const sent: PresenceChange[] = []
  const made = async (changes: PresenceChange | PresenceChange[] | undefined) => {
    for (const change of [changes ?? []].flat()) {
      sent.push(change)
      await a.bus.publish({ type: 'presence', change })
    }
  }
  await made(await a.store.heartbeat(write('5'), T0))
  assert.equal(
    writes().reduce((sum, n) => sum + n, 0),
    1,
    'a heartbeat and its publication: one round trip',
  )
  await made(await a.store.heartbeat(write('5', 'app:PC'), T0 + 1))
  await made(await a.store.end('5' as UserId, 'app:PC', T0 + 2, 'explicit'))
  const game = '3f1c2a9e-0000-4000-8000-00000000000b'
  const report = (players: string[]) => ({
    gameId: game,
    players: players as UserId[],
    activity: { kind: 'inGame' as const, placeId: '1818', gameId: game },
    deviceType: 'GameServer',
    ttlMs: 30_000,
  })
  await made(await a.store.reportServer(report(['6', '7', '5']), T0 + 3))
  await made(await a.store.reportServer(report(['6']), T0 + 4))
  await made(await a.store.endServer(game, T0 + 5, 'server_lost'))
  await made(await a.store.sweepExpired(T0 + 60_001, 100))
  assert.deepEqual(
    sent.map((c) => `${c.userId}${c.ended ? `-${c.reason}` : '+'}`),
    [
      '5+',
      '5+',
      '5-explicit',
      '6+',
      '7+',
      '5+',
      '7-explicit',
      '5-explicit',
      '6-server_lost',
      '5-timeout',
    ],
  )
  // the writer's watchers heard each change at once; the other node hears the same changes
  assert.deepEqual(a.heard.slice(warmUp), sent)
  for (let i = 0; i < 500 && b.heard.length < warmUp + sent.length; i++) await setTimeout(10)
  // in the order each user's changes were made (users on different shards of a cluster may
  // interleave differently)
  const byUser = (changes: PresenceChange[]) => {
    const users = new Map<string, PresenceChange[]>()
    for (const c of changes) users.set(c.userId, [...(users.get(c.userId) ?? []), c])
    return users
  }
  const heard = byUser(b.heard)
  for (const [userId, changes] of byUser(sent)) assert.deepEqual(heard.get(userId), changes)
  assert.equal(b.heard.length, warmUp + sent.length)
  // each went over the channel once (a settings event marks the end: nothing is left in flight)
  await a.bus.publish({ type: 'settings', userId: '5' as UserId })
  for (let i = 0; i < 500 && messages.length <= warmUp + sent.length; i++) await setTimeout(10)
  assert.equal(messages.length, warmUp + sent.length + 1)
  assert.equal(a.heard.length, warmUp + sent.length, 'no echo of its own changes')
}

test('changes reach another node as their writer saw them, once each (single Redis)', (t) =>
  changesReachOtherNodes(single, t))

test('changes reach another node as their writer saw them, once each (cluster)', async (t) =>
  changesReachOtherNodes(await clusterTarget(), t))

test('a batch of 1100 ids on a 3-master cluster is one round trip per master', async (t) => {
  const { store, connection, cleanup } = await open(await clusterTarget())
  t.after(cleanup)
  const ids = Array.from({ length: 1100 }, (_, i) => String(7_000_000 + i) as UserId)
  for (const id of ids.slice(0, 50)) await store.heartbeat(write(id), T0)
  const writes = countWrites(connection.client)
  const presences = await store.getMany(ids, T0 + 1)
  assert.equal(presences.filter((p) => p.sessions.length > 0).length, 50)
  assert.deepEqual(writes(), [1, 1, 1])
})

test('on a cluster, limited heartbeats of users on every master in one tick each write', async (t) => {
  const { store, connection, keys, cleanup } = await open(await clusterTarget())
  t.after(cleanup)
  const limiter = new RedisRateLimiter(connection, keys)
  const rules = [
    { name: 'burst', max: 3, windowMs: 15_000 },
    { name: 'sustain', max: 30, windowMs: 300_000 },
  ]
  // users whose buckets are on the three masters: each write must join the pipeline of its own
  // master (ioredis auto-pipelines per master; a pipeline holding keys of two fails whole)
  const ids = Array.from({ length: 12 }, (_, i) => String(8_000_000 + i) as UserId)
  const cluster = connection.client as Cluster
  const masters = new Set<string>()
  for (const id of ids) {
    masters.add(
      String(cluster.slots[(await cluster.cluster('KEYSLOT', keys.presence(id))) as number]),
    )
  }
  assert.equal(masters.size, 3, 'the users are spread over the three masters')
  const written = await Promise.all(
    ids.map((id) =>
      store.limitedHeartbeat(write(id), T0, { key: `w:${id}`, rules, near: id }, limiter),
    ),
  )
  assert.deepEqual(
    written.map((w) => w !== undefined && 'change' in w),
    ids.map(() => true),
  )
  const presences = await store.getMany(ids, T0 + 1)
  assert.deepEqual(
    presences.map((p) => p.sessions.length),
    ids.map(() => 1),
  )
})

test("a limited end of titles counts in the windows the rate limiter counts in, each title's own", async (t) => {
  for (const target of [single, await clusterTarget()]) {
    const { store, connection, keys, cleanup } = await open(target)
    t.after(cleanup)
    const limiter = new RedisRateLimiter(connection, keys)
    const user = '2533274790395906' as UserId
    const rules = [
      { name: 'burst', max: 2, windowMs: 15_000 },
      { name: 'sustain', max: 10, windowMs: 300_000 },
    ]
    const title = (titleId: string): SessionWrite => ({
      userId: user,
      key: `title:${titleId}:XboxOne`,
      source: 'title',
      deviceType: 'XboxOne',
      activity: { kind: 'online', titleId },
      ttlMs: 60_000,
    })
    // a budget key with the characters a window key escapes, and one near the user
    const budgets: TitleBudget[] = [
      { key: `x{%}:${user}:`, rules, idleTitleId: '1' },
      { key: `xbox:${user}:`, rules, near: user, idleTitleId: '1' },
    ]
    for (const budget of budgets) {
      const end = { userId: user, deviceType: 'XboxOne', reason: 'explicit' as const }
      const limited = store.limitedEndTitles(end, T0, budget, limiter)
      if (connection.isCluster && budget.near === undefined) {
        // on a cluster only a budget in the user's slot is counted in the script
        assert.equal(limited, undefined)
        continue
      }
      // nothing runs yet: the idle title is counted
      assert.deepEqual(await limited, { titleIds: [], changes: [] })
      await store.heartbeat(title('1234'), T0)
      await store.heartbeat(title('5678'), T0)
      const done = await store.limitedEndTitles(end, T0, budget, limiter)
      assert.ok(done && 'changes' in done)
      assert.deepEqual(done.titleIds, ['1234', '5678'])
      assert.equal(done.changes.length, 2)
      // the limiter sees the script's counts: the second hit of each title, and of the idle one
      for (const titleId of ['1234', '5678', '1']) {
        const hit = titleHit(budget, titleId)
        const verdict = await limiter.hit(hit.key, hit.rules, T0, hit.near)
        assert.deepEqual([verdict.allowed, verdict.count], [true, 2], `${budget.key}${titleId}`)
      }
      // over budget: refused with the counts of the title that refused; nothing ended
      await store.heartbeat(title('5678'), T0)
      const refused = await store.limitedEndTitles(end, T0, budget, limiter)
      assert.ok(refused && 'refused' in refused)
      assert.deepEqual([refused.refused.rule, refused.refused.count], ['burst', 3])
      const [presence] = await store.getMany([user], T0)
      assert.deepEqual(
        presence!.sessions.map((s) => s.key),
        ['title:5678:XboxOne'],
      )
      await store.endTitles(end, T0)
      // a named title the device does not run spends the idle title's budget, not its own
      const named = await store.limitedEndTitles({ ...end, titleId: '9999' }, T0, budget, limiter)
      assert.ok(named && 'refused' in named, 'the idle title had 2 of 2')
      assert.deepEqual([named.refused.rule, named.refused.count], ['burst', 3])
      const fresh = titleHit(budget, '9999')
      const untouched = await limiter.hit(fresh.key, fresh.rules, T0, fresh.near)
      assert.equal(untouched.count, 1, 'the named title was not counted')
    }
  }
})

test("a limited heartbeat counts a hit's `also` budget in its script, in the limiter's windows", async (t) => {
  for (const target of [single, await clusterTarget()]) {
    const { store, connection, keys, cleanup } = await open(target)
    t.after(cleanup)
    const limiter = new RedisRateLimiter(connection, keys)
    const user = '2533274790395907' as UserId
    const own = [{ name: 'burst', max: 5, windowMs: 15_000 }]
    const all = [{ name: 'burst', max: 2, windowMs: 15_000 }]
    const hit = (titleId: string) => ({
      key: `xbox:${user}:${titleId}`,
      rules: own,
      near: user,
      also: { key: `xbox-titles:${user}`, rules: all },
    })
    const title = (titleId: string): SessionWrite => ({
      ...write(user, `title:${titleId}:XboxOne`),
      activity: { kind: 'online', titleId },
    })
    // two titles, each within its own budget, and within the user's over both
    for (const titleId of ['1', '2']) {
      const done = await store.limitedHeartbeat(title(titleId), T0, hit(titleId), limiter)
      assert.ok(done && 'change' in done, `title ${titleId}`)
    }
    // a third title is within its own budget but not the user's: refused by it, nothing written
    const refused = await store.limitedHeartbeat(title('3'), T0, hit('3'), limiter)
    assert.ok(refused && 'refused' in refused)
    assert.deepEqual([refused.refused.count, refused.refused.max], [3, 2])
    const [presence] = await store.getMany([user], T0)
    assert.equal(presence!.sessions.length, 2)
    // the limiter counts in the same windows: the user's fourth hit, the third title's second
    const shared = await limiter.hit(`xbox-titles:${user}`, all, T0, user)
    assert.deepEqual([shared.allowed, shared.count], [false, 4])
    const third = await limiter.hit(`xbox:${user}:3`, own, T0, user)
    assert.deepEqual([third.allowed, third.count], [true, 2])
  }
})
