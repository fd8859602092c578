import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { buildApp } from '../../src/app/build-app.js'
import { testConfig } from '../../src/app/config.js'
import { createService } from '../../src/app/create-service.js'
import type { Stores } from '../../src/app/create-stores.js'
import type { Caller } from '../../src/core/caller.js'
import type { UserId } from '../../src/core/user-id.js'
import { RedisChangeBus } from '../../src/realtime/redis-change-bus.js'
import { ManualClock, systemClock } from '../../src/service/clock.js'
import type { RequestAdmission } from '../../src/service/admission.js'
import type { PresenceService } from '../../src/service/presence-service.js'
import { Tokens } from '../../src/service/tokens.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import {
  RedisConnection,
  type RedisClient,
  type RedisTarget,
} from '../../src/store/redis/redis-connection.js'
import { RedisPresenceStore } from '../../src/store/redis/redis-presence-store.js'
import { RedisProfileStore } from '../../src/store/redis/redis-profile-store.js'
import { RedisRateLimiter } from '../../src/store/redis/redis-rate-limiter.js'
import { LOCAL_REDIS_URL, deleteKeys, monitorCommands, uniquePrefix } from '../helpers/redis.js'
import { clusterForThisFile } from '../helpers/redis-cluster.js'

/*
 * The service's reads and heartbeats in fleet mode, against the real Redis: a lookup is one
 * round trip per shard (presence and settings in one MGET on a single Redis, a viewer's
 * relations beside it), a heartbeat one (its script publishes the change; the place comes from memory).
 * Round trips are socket writes on the node's connections; the commands are what Redis MONITOR
 * shows coming from this node's connection (commands a script runs show as coming from `lua`).
 */

const clusterTarget = clusterForThisFile()

async function fleetService(t: TestContext, target: RedisTarget, rateLimitMax = 600) {
  const prefix = uniquePrefix('round-trips')
  // round trips are counted here, not timeouts: a loaded machine must not turn one into a 503
  const connection = new RedisConnection(target, { commandTimeoutMs: 10_000 })
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  const keys = new RedisKeys(prefix)
  const bus = new RedisChangeBus(connection, { channel: keys.channel() })
  await bus.subscribed
  const profiles = new RedisProfileStore(connection, keys)
  await profiles.foldStoredSettings() // as every node's start does (create-stores.ts)
  const stores: Stores = {
    mode: 'url' in target ? 'redis' : 'cluster',
    presence: new RedisPresenceStore(connection, keys, {
      changes: { channel: keys.channel(), nodeId: bus.nodeId },
    }),
    profiles,
    bus,
    rateLimiter: new RedisRateLimiter(connection, keys),
  }
  const config = testConfig({ dataDir: '', sessionTtlSeconds: 600, rateLimitMax })
  const service = createService(stores, config, {
    clock: systemClock,
    tokens: new Tokens('round-trips-secret-of-enough-length-0123456789'),
  })
  t.after(async () => {
    await stores.presence.close()
    await stores.profiles.close()
    await bus.close()
    await deleteKeys(target, prefix)
  })
  return { service, client: connection.client }
}

/** Counts socket writes (one per batch of commands ioredis flushes: a round trip) per master. */
function countWrites(client: RedisClient): () => number[] {
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

const place = { placeId: '1818', universeId: '13058', rootPlaceId: '1818', name: 'Obby' }
const heartbeat = (service: PresenceService, id: string) =>
  service.heartbeat({
    userId: id as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'inGame', placeId: place.placeId },
  })

test('single Redis: a lookup and a heartbeat are one round trip each, in the commands MONITOR shows', async (t) => {
  const { service, client } = await fleetService(t, { url: LOCAL_REDIS_URL })
  await service.putPlace(place)
  const ids = Array.from({ length: 50 }, (_, i) => String(3_000_000 + i) as UserId)
  // warm: the scripts are loaded and the place is in memory (as on any node after its first beat)
  for (const id of ids.slice(0, 20)) await heartbeat(service, id)
  await service.setFriends(ids[0]!, ids[1]!, true)

  const stream = (client as Redis).stream
  const ours = `${stream.localAddress}:${stream.localPort}`
  const seen: string[] = []
  const monitor = await monitorCommands(LOCAL_REDIS_URL, (name, source) => {
    if (source === ours) seen.push(name)
  })
  t.after(() => monitor.close())
  // a PING of ours marks a point in MONITOR's stream: wait until MONITOR has shown it (up to
  // 10 s: on a busy shared Redis, MONITOR's stream lags)
  const mark = async () => {
    const count = seen.length
    await (client as Redis).ping()
    for (let i = 0; i < 1000 && !seen.slice(count).some((name) => name === 'ping'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.ok(seen.length > count, 'MONITOR showed the PING')
  }
  const writes = countWrites(client)
  /** Round trips of `work`, and the commands MONITOR showed between a PING before and after. */
  const observe = async (work: () => Promise<unknown>) => {
    await mark()
    seen.length = 0
    const before = writes()[0]!
    await work()
    const roundTrips = writes()[0]! - before
    await mark()
    const names = seen.map((name) => name.toLowerCase()).filter((name) => name !== 'ping')
    return { roundTrips, names }
  }

  let anonymous: Awaited<ReturnType<PresenceService['lookup']>> = []
  const read = await observe(async () => {
    anonymous = await service.lookup({ kind: 'anonymous' }, ids)
  })
  assert.equal(anonymous.filter((p) => p.state === 2).length, 20)
  assert.deepEqual(read, { roundTrips: 1, names: ['mget'] })
  const asUser = await observe(() => service.lookup({ kind: 'user', userId: ids[0]! }, ids))
  assert.equal(asUser.roundTrips, 1)
  assert.deepEqual(asUser.names.sort(), ['hmget', 'mget', 'smismember', 'smismember', 'smismember'])
  const beat = await observe(() => heartbeat(service, ids[30]!))
  assert.deepEqual(beat, { roundTrips: 1, names: ['evalsha'] })
  const [after] = await service.lookup({ kind: 'anonymous' }, [ids[30]!])
  assert.equal(after!.sessions[0]?.activity.location, 'Obby')
})

/** The app over Redis (a single one unless `target` says), listening, its background duties stopped by the caller. */
async function httpApp(
  t: TestContext,
  limits: Partial<Parameters<typeof testConfig>[0]>,
  target: RedisTarget = { url: LOCAL_REDIS_URL },
  nearCache = 0,
) {
  const prefix = uniquePrefix('round-trips-http')
  // round trips are counted here, not timeouts: a loaded machine must not turn one into a 503
  const connection = new RedisConnection(target, { commandTimeoutMs: 10_000 })
  assert.ok(await connection.waitReady(), 'Redis must be reachable')
  const keys = new RedisKeys(prefix)
  const bus = new RedisChangeBus(connection, { channel: keys.channel() })
  await bus.subscribed
  const profiles = new RedisProfileStore(connection, keys)
  await profiles.foldStoredSettings() // as every node's start does (create-stores.ts)
  const stores: Stores = {
    mode: 'url' in target ? 'redis' : 'cluster',
    presence: new RedisPresenceStore(connection, keys, {
      changes: { channel: keys.channel(), nodeId: bus.nodeId },
      nearCache,
    }),
    profiles,
    bus,
    rateLimiter: new RedisRateLimiter(connection, keys),
  }
  const presenced = await buildApp(
    testConfig({
      dataDir: '',
      tokenSecret: 'round-trips-secret-of-enough-length-0123456789',
      sessionTtlSeconds: 600,
      ...limits,
    }),
    // the clock stands still: the rate limits' windows are aligned on it, and with the real
    // clock a test's reads could straddle the end of one (a refusal due would be a 200)
    { stores, clock: new ManualClock(Date.now()) },
  )
  const address = await presenced.app.listen({ port: 0, host: '127.0.0.1' })
  t.after(async () => {
    await presenced.app.close()
    await deleteKeys(target, prefix)
  })
  await presenced.service.putPlace(place)
  return { presenced, address, connection, keys }
}

/** Waits until nothing of the node's own writes to Redis (the dashboard's first pass) is left. */
async function quiet(writes: () => number[]): Promise<void> {
  const total = () => writes().reduce((sum, n) => sum + n, 0)
  for (let last = -1; total() !== last;) {
    last = total()
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

test('single Redis over HTTP: a read and its rate limit are one round trip, a refusal still 429', async (t) => {
  await readsOverHttp(t, 0)
})

test('single Redis over HTTP, near cache: a read of cached ids still counts its rate limit in one round trip', async (t) => {
  await readsOverHttp(t, 1000)
})

async function readsOverHttp(t: TestContext, nearCache: number) {
  const { presenced, address, connection } = await httpApp(
    t,
    { rateLimitMax: 6 },
    { url: LOCAL_REDIS_URL },
    nearCache,
  )
  const cache = (presenced.stores.presence as RedisPresenceStore).nearCache
  assert.equal(cache !== undefined, nearCache > 0)
  for (let i = 0; i < 500 && cache && !cache.usable; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const ids = Array.from({ length: 50 }, (_, i) => String(5_000_000 + i) as UserId)
  for (const id of ids.slice(0, 10)) await heartbeat(presenced.service, id)
  // no sweeps or revocation syncs on the connection while counting
  await presenced.service.stop()
  const writes = countWrites(connection.client)
  // identity: the lean node:http path (a compressed reply goes through Fastify)
  const post = (body: string) =>
    fetch(`${address}/v1/presence/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'identity' },
      body,
    })
  const body = JSON.stringify({ userIds: ids.map(Number) })
  // warm: the rate-limit script is loaded
  assert.equal((await post(body)).status, 200)
  await quiet(writes)
  for (let i = 0; i < 5; i++) {
    const before = writes()[0]!
    const hits = cache?.stats.hits ?? 0
    const response = await post(body)
    assert.equal(response.status, 200)
    const reply = (await response.json()) as { userPresences: Array<{ userPresenceType: number }> }
    assert.equal(reply.userPresences.filter((p) => p.userPresenceType === 2).length, 10)
    assert.equal(writes()[0]! - before, 1, `request ${i + 1}: one round trip`)
    // every id from the cache (read by the warm-up): the round trip is the rate limit's alone
    if (cache) assert.equal(cache.stats.hits - hits, 50)
  }
  // the budget of 6 is spent: the rate limit was counted with each read, and refuses now,
  // before a bad body's 400 too
  const refused = await post(body)
  assert.equal(refused.status, 429)
  await refused.arrayBuffer()
  const badBody = await post('{"userIds": "nope"}')
  assert.equal(badBody.status, 429)
  await badBody.arrayBuffer()
}

test('single Redis over HTTP, near cache: once its rate-limit lease covers it, a read of cached ids writes nothing to Redis', async (t) => {
  // 6,400 a window: leases of up to 400 counts (RedisRateLimiter, LEASE_FRACTION)
  const { presenced, address, connection } = await httpApp(
    t,
    { rateLimitMax: 6_400 },
    { url: LOCAL_REDIS_URL },
    1000,
  )
  const cache = (presenced.stores.presence as RedisPresenceStore).nearCache!
  for (let i = 0; i < 500 && !cache.usable; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const ids = Array.from({ length: 50 }, (_, i) => String(5_100_000 + i) as UserId)
  for (const id of ids.slice(0, 10)) await heartbeat(presenced.service, id)
  await presenced.service.stop()
  const writes = countWrites(connection.client)
  const post = () =>
    fetch(`${address}/v1/presence/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'identity' },
      body: JSON.stringify({ userIds: ids.map(Number) }),
    })
  // warm: the ids are in the near cache; the caller's lease of 1 is spent
  assert.equal((await post()).status, 200)
  await quiet(writes)
  const sent: number[] = []
  for (let read = 2; read <= 20; read++) {
    const before = writes()[0]!
    const hits = cache.stats.hits
    const response = await post()
    assert.equal(response.status, 200)
    const reply = (await response.json()) as { userPresences: Array<{ userPresenceType: number }> }
    assert.equal(reply.userPresences.filter((p) => p.userPresenceType === 2).length, 10)
    assert.equal(cache.stats.hits - hits, 50)
    sent.push(writes()[0]! - before)
  }
  // a write only where a lease is spent and the next taken (of 2, 4, 8, 16 counts): the 2nd,
  // 4th, 8th and 16th read
  assert.deepEqual(
    sent,
    Array.from({ length: 19 }, (_, i) => ([2, 4, 8, 16].includes(i + 2) ? 1 : 0)),
  )
})

test('single Redis over HTTP: a heartbeat and its rate limit are one round trip; a refused one writes nothing', async (t) => {
  const { presenced, address, connection } = await httpApp(t, { rateLimitMax: 6 })
  await presenced.service.stop()
  const user = '6000001' as UserId
  const token = await presenced.tokens.issue(user)
  const writes = countWrites(connection.client)
  // identity, a length: the lean node:http path
  const beat = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${address}/v1/presence/register-app-presence`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'accept-encoding': 'identity',
        authorization: `Bearer ${token}`,
        ...headers,
      },
      body,
    })
  const locationOf = async () => {
    const { presence } = await presenced.service.rawPresence(user)
    return presence.sessions.map((s) => s.activity.location)
  }
  // warm: the script is loaded (its first call is an EVALSHA, then an EVAL), the place is in
  // memory (as on any node after its first beat there)
  assert.equal((await beat(`{"placeId":${place.placeId}}`)).status, 200)
  await quiet(writes)
  for (let i = 0; i < 4; i++) {
    const before = writes()[0]!
    const response = await beat(`{"placeId":${place.placeId}}`)
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('x-presence-heartbeat-after'), '300')
    await response.arrayBuffer()
    assert.equal(writes()[0]! - before, 1, `heartbeat ${i + 1}: one round trip`)
  }
  assert.deepEqual(await locationOf(), ['Obby'])
  // a cookie caller without its CSRF token: 403, the hit counted (the 6th), nothing written
  const cookie = await beat('{"location":"Home"}', {
    authorization: '',
    cookie: `.ROBLOSECURITY=${token}`,
  })
  assert.equal(cookie.status, 403)
  await cookie.arrayBuffer()
  assert.deepEqual(await locationOf(), ['Obby'])
  // the budget of 6 is spent: refused in the heartbeat's own round trip, nothing written
  const before = writes()[0]!
  const refused = await beat('{"location":"Home"}')
  assert.equal(refused.status, 429)
  assert.ok(Number(refused.headers.get('retry-after')) >= 1)
  await refused.arrayBuffer()
  assert.equal(writes()[0]! - before, 1, 'a refused heartbeat: one round trip')
  assert.deepEqual(await locationOf(), ['Obby'])
  // the refusal comes before a bad body's 400 and a cookie's CSRF 403, as in the Fastify route
  const badBody = await beat('{"placeId":1.5}')
  assert.equal(badBody.status, 429)
  await badBody.arrayBuffer()
  const noCsrf = await beat('{}', { authorization: '', cookie: `.ROBLOSECURITY=${token}` })
  assert.equal(noCsrf.status, 429)
  await noCsrf.arrayBuffer()
  assert.deepEqual(await locationOf(), ['Obby'])
})

/**
 * Xbox title writes over HTTP: each, with its rate limit and the members it leaves out kept from
 * the title's session (taken in the write's script, nothing read first), one round trip; the
 * write over budget refused in its own round trip, having written nothing.
 */
async function titleWrites(t: TestContext, target: RedisTarget) {
  const { presenced, address, connection } = await httpApp(
    t,
    { xboxBurstMax: 3, xboxSustainMax: 100 },
    target,
  )
  await presenced.service.stop()
  const user = '2533274790395904' as UserId
  const token = await presenced.tokens.issue(user)
  // a connection to every master (a read across all buckets), outside the counts
  const everywhere = Array.from({ length: 200 }, (_, i) => String(4_300_000 + i) as UserId)
  await presenced.service.lookup({ kind: 'anonymous' }, everywhere)
  const writes = countWrites(connection.client)
  const total = () => writes().reduce((sum, n) => sum + n, 0)
  const write = (body: unknown) =>
    fetch(`${address}/users/xuid(${user})/devices/current/titles/current`, {
      method: 'POST',
      headers: {
        authorization: `XBL3.0 x=2533;${token}`,
        'x-xbl-contract-version': '3',
        accept: 'application/json',
        'content-type': 'application/json',
        'x-xbl-device-type': 'XboxOne',
      },
      body: JSON.stringify(body),
    })
  const activities = async () => {
    const { presence } = await presenced.service.rawPresence(user)
    return presence.sessions.map((s) => s.activity)
  }
  // the three writes and the refusal within one 15 s burst window: none starts near its end
  const intoWindow = Date.now() % 15_000
  if (intoWindow > 9_000) await new Promise((resolve) => setTimeout(resolve, 15_100 - intoWindow))
  // warm: the script is loaded (its first call is an EVALSHA, then an EVAL)
  const menu = { id: 'menu', params: ['a,[b]"', '\\'] }
  const first = await write({ id: '1234', placement: 'fill', activity: { richPresence: menu } })
  assert.equal(first.status, 200)
  await first.arrayBuffer()
  await quiet(writes)

  let before = total()
  // left out: placement and rich presence keep their values, from the title's session
  const second = await write({ id: '1234', state: 'inactive' })
  assert.equal(second.status, 200)
  assert.equal(
    second.headers.get('x-heartbeat-after'),
    String(presenced.config.xboxHeartbeatSeconds),
  )
  assert.equal(second.headers.get('cache-control'), 'no-cache')
  assert.equal(await second.text(), '')
  assert.equal(total() - before, 1, 'a title write and its rate limit: one round trip')
  const kept = { kind: 'online', titleId: '1234', placement: 'fill', titleState: 'inactive' }
  assert.deepEqual(await activities(), [{ ...kept, richPresence: menu }])

  before = total()
  const third = await write({ id: '1234', activity: { richPresence: { id: 'lobby' } } })
  assert.equal(third.status, 200)
  await third.arrayBuffer()
  assert.equal(total() - before, 1, 'a title write and its rate limit: one round trip')
  const lobby = [{ ...kept, richPresence: { id: 'lobby', params: [] } }]
  assert.deepEqual(await activities(), lobby)

  // the budget of 3 is spent: refused in the write's own round trip, nothing written
  before = total()
  const refused = await write({ id: '1234', placement: 'full', activity: { richPresence: menu } })
  assert.equal(refused.status, 429)
  assert.ok(Number(refused.headers.get('retry-after')) >= 1)
  await refused.arrayBuffer()
  assert.equal(total() - before, 1, 'a refused title write: one round trip')
  assert.deepEqual(await activities(), lobby)

  // the user's budget over all titles (10 × 3 per 15 s, 4 spent) is counted in the same script:
  // new titles are welcome up to it, then refused, each in one round trip, nothing written
  for (let i = 0; i < 26; i++) {
    const other = await write({ id: String(5000 + i) })
    assert.equal(other.status, 200, `title ${5000 + i}`)
    await other.arrayBuffer()
  }
  before = total()
  const spread = await write({ id: '6000' })
  assert.equal(spread.status, 429)
  assert.equal((await spread.json()).maxRequests, 30)
  assert.equal(total() - before, 1, 'refused by the budget over all titles: one round trip')
  assert.equal((await activities()).length, 27)
}

test('single Redis over HTTP: an Xbox title write and its rate limit are one round trip; a refused one writes nothing', (t) =>
  titleWrites(t, { url: LOCAL_REDIS_URL }))

test('3-master cluster over HTTP: an Xbox title write and its rate limit are one round trip; a refused one writes nothing', async (t) =>
  titleWrites(t, await clusterTarget()))

/**
 * Xbox title DELETEs over HTTP: each, whatever it ends and with the budget of every title it
 * counts, one round trip (it was a read, a round trip per title's budget and one per title
 * ended); one change on the bus and one sessionsEnded per session ended; a refused one ends
 * nothing, in its own round trip.
 */
async function titleDeletes(t: TestContext, target: RedisTarget) {
  const { presenced, address, connection, keys } = await httpApp(
    t,
    { xboxBurstMax: 3, xboxSustainMax: 100 },
    target,
  )
  await presenced.service.stop()
  const user = '2533274790395905' as UserId
  const token = await presenced.tokens.issue(user)
  const everywhere = Array.from({ length: 200 }, (_, i) => String(4_400_000 + i) as UserId)
  await presenced.service.lookup({ kind: 'anonymous' }, everywhere)
  // another node's view of the bus: the changes the scripts publish
  const listener = new RedisConnection(target, { commandTimeoutMs: 10_000 })
  const otherNode = new RedisChangeBus(listener, { channel: keys.channel() })
  t.after(async () => {
    await otherNode.close()
    await listener.release()
  })
  await otherNode.subscribed
  const heard: string[] = []
  otherNode.subscribe((event) => {
    if (event.type === 'presence' && event.change.ended) {
      for (const s of event.change.ended) heard.push(`${event.change.reason} ${s.key}`)
    }
  })
  const writes = countWrites(connection.client)
  const total = () => writes().reduce((sum, n) => sum + n, 0)
  const path = `${address}/users/xuid(${user})/devices/current/titles/current`
  const call = (method: string, device: string, query = '', body?: unknown) =>
    fetch(`${path}${query}`, {
      method,
      headers: {
        authorization: `XBL3.0 x=2533;${token}`,
        'x-xbl-contract-version': '3',
        accept: 'application/json',
        'x-xbl-device-type': device,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    })
  const titles = async () => {
    const { presence } = await presenced.service.rawPresence(user)
    return presence.sessions.map((s) => `${s.deviceType}:${s.activity.titleId}`).sort()
  }
  const ended = async () => {
    const [metric] = (await presenced.metrics.sessionsEnded.get()).values.filter(
      (v) => v.labels.reason === 'explicit',
    )
    return metric?.value ?? 0
  }
  /** `heard` once the bus has delivered `n` ended sessions (a real signal, up to 10 s). */
  const hear = async (n: number) => {
    for (let i = 0; i < 1000 && heard.length < n; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return [...heard]
  }
  // every request below within one 15 s burst window: none starts near its end
  const intoWindow = Date.now() % 15_000
  if (intoWindow > 7_000) await new Promise((resolve) => setTimeout(resolve, 15_100 - intoWindow))
  // 1234 spends 1
  const first = await call('POST', 'XboxOne', '', { id: '1234' })
  assert.equal(first.status, 200)
  await first.arrayBuffer()
  for (const [device, id] of [
    ['XboxOne', '5678'],
    ['PC', '4321'],
  ]) {
    const written = await call('POST', device!, '', { id })
    assert.equal(written.status, 200)
    await written.arrayBuffer()
  }
  // the script is loaded (its first call is an EVALSHA, then an EVAL), outside the counts
  const warm = await call('DELETE', 'Android')
  assert.equal(warm.status, 200)
  await warm.arrayBuffer()
  await quiet(writes)
  assert.deepEqual(await titles(), ['PC:4321', 'XboxOne:1234', 'XboxOne:5678'])
  const endedBefore = await ended()

  // no title named: both titles of the Xbox end, each its own change; the PC's title stays
  let before = total()
  const both = await call('DELETE', 'XboxOne')
  assert.equal(both.status, 200)
  assert.equal(both.headers.get('cache-control'), 'no-cache')
  assert.equal(await both.text(), '')
  assert.equal(
    total() - before,
    1,
    'a DELETE ending two titles, with their budgets: one round trip',
  )
  assert.deepEqual(await titles(), ['PC:4321'])
  assert.deepEqual(await hear(2), ['explicit title:1234:XboxOne', 'explicit title:5678:XboxOne'])
  assert.equal((await ended()) - endedBefore, 2)

  // nothing running there: the default title's budget (the warm-up spent 1, this 2)
  before = total()
  const none = await call('DELETE', 'XboxOne')
  assert.equal(none.status, 200)
  await none.arrayBuffer()
  assert.equal(total() - before, 1, 'a DELETE ending nothing: one round trip')

  before = total()
  const named = await call('DELETE', 'PC', '?titleId=4321')
  assert.equal(named.status, 200)
  await named.arrayBuffer()
  assert.equal(total() - before, 1, 'a named DELETE: one round trip')
  assert.deepEqual(await titles(), [])
  assert.deepEqual((await hear(3)).slice(2), ['explicit title:4321:PC'])
  // naming a title the device does not run ends nothing: the default title's budget (the
  // warm-up 1, the DELETE ending nothing 2, this 3), not the named title's, so that a new title
  // id per request is no fresh budget; the next such DELETE, naming yet another, is refused
  const idle = await call('DELETE', 'XboxOne', '?titleId=1234')
  assert.equal(idle.status, 200)
  await idle.arrayBuffer()
  const refusedIdle = await call('DELETE', 'XboxOne', '?titleId=9999')
  assert.equal(refusedIdle.status, 429)
  await refusedIdle.arrayBuffer()

  // 5678 runs with its budget spent (the POST 1, the DELETE 2, this one 3): a DELETE of whatever
  // the Xbox runs is refused in its own round trip and ends nothing
  const again = await call('POST', 'XboxOne', '', { id: '5678' })
  assert.equal(again.status, 200)
  await again.arrayBuffer()
  before = total()
  const refused = await call('DELETE', 'XboxOne')
  assert.equal(refused.status, 429)
  assert.ok(Number(refused.headers.get('retry-after')) >= 1)
  assert.equal((await refused.json()).maxRequests, 3)
  assert.equal(total() - before, 1, 'a refused DELETE: one round trip')
  assert.deepEqual(await titles(), ['XboxOne:5678'])
  assert.equal((await ended()) - endedBefore, 3)
  assert.equal((await hear(3)).length, 3)
}

test('single Redis over HTTP: an Xbox title DELETE, whatever it ends, is one round trip with its budgets', (t) =>
  titleDeletes(t, { url: LOCAL_REDIS_URL }))

test('3-master cluster over HTTP: an Xbox title DELETE, whatever it ends, is one round trip with its budgets', async (t) =>
  titleDeletes(t, await clusterTarget()))

test('3-master cluster: a lookup of 1100 ids is one round trip per master, a heartbeat one', async (t) => {
  const { service, client } = await fleetService(t, await clusterTarget())
  await service.putPlace(place)
  const ids = Array.from({ length: 1100 }, (_, i) => String(4_000_000 + i) as UserId)
  // users on every master, so every node has the script
  for (const id of ids.slice(0, 60)) await heartbeat(service, id)
  const writes = countWrites(client)
  const found = await service.lookup({ kind: 'anonymous' }, ids)
  assert.equal(found.filter((p) => p.state === 2).length, 60)
  assert.deepEqual(writes(), [1, 1, 1])
  await heartbeat(service, ids[100]!)
  assert.equal(
    writes().reduce((sum, n) => sum + n, 0),
    4,
    'a heartbeat: one round trip',
  )
})

test('3-master cluster: a heartbeat with its rate limit is one round trip, in the budget its reads spend', async (t) => {
  const { service, client } = await fleetService(t, await clusterTarget(), 5)
  await service.putPlace(place)
  const userId = '4100007' as UserId
  const caller: Caller = {
    kind: 'user',
    userId,
    via: 'bearer',
    viewer: { kind: 'user', userId },
    tokenId: undefined,
    expiresAt: Date.now() + 3_600_000,
    name: undefined,
  }
  const admitted = () => service.limits.admission(service.limits.requestHit(caller, '10.0.0.1'))
  const beat = (admission: RequestAdmission) =>
    service.heartbeat(
      {
        userId,
        key: 'app:PC',
        source: 'app',
        deviceType: 'PC',
        activity: { kind: 'inGame', placeId: place.placeId },
      },
      admission,
    )
  // the six hits below within one fixed window of the 60 s rule: none just before its end
  const intoWindow = Date.now() % 60_000
  if (intoWindow > 55_000) await new Promise((resolve) => setTimeout(resolve, 60_100 - intoWindow))
  // the script and the place first (on a cluster the script's first call is an EVALSHA, then an
  // EVAL), and a connection to every master (a read across all buckets), outside the counts
  await beat(admitted())
  const everywhere = Array.from({ length: 200 }, (_, i) => String(4_200_000 + i) as UserId)
  await service.lookup({ kind: 'anonymous' }, everywhere)
  const writes = countWrites(client)
  await beat(admitted())
  assert.equal(
    writes().reduce((sum, n) => sum + n, 0),
    1,
    'a heartbeat and its rate limit: one round trip',
  )
  // one budget of 5: the two heartbeats above, two reads, one more heartbeat; the next is refused
  await service.limits.request(caller, '10.0.0.1')
  await service.limits.request(caller, '10.0.0.1')
  await beat(admitted())
  await assert.rejects(beat(admitted()), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'RATE_LIMITED')
    return true
  })
})
