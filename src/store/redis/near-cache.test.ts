import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { privateRedis } from '../../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, PATIENT, deleteKeys, uniquePrefix } from '../../../test/helpers/redis.js'
import { DEFAULT_REDIS_NEAR_CACHE, loadConfig } from '../../app/config.js'
import type { Stores } from '../../app/create-stores.js'
import { startWithStores } from '../../../test/helpers/start-with-stores.js'
import type { UserId } from '../../core/user-id.js'
import type { SessionWrite } from '../presence-store.js'
import { RedisKeys } from './keys.js'
import { RedisConnection, type RedisTarget } from './redis-connection.js'
import { RedisPresenceStore } from './redis-presence-store.js'

/*
 * The near cache (near-cache.ts) against a real Redis: node A reads through it, node B (its own
 * connection, no cache) writes. Each test fails without the mechanism it names.
 */

const T0 = Date.now()

const write = (userId: string, placeId = '1'): SessionWrite => ({
  userId: userId as UserId,
  key: 'app:iOS',
  source: 'app',
  deviceType: 'iOS',
  activity: { kind: 'inGame', placeId, richPresence: { id: 'x', params: [] } },
  ttlMs: 600_000,
})

async function nodes(t: TestContext, url = LOCAL_REDIS_URL, nearCache = 1000) {
  const target: RedisTarget = { url }
  const prefix = uniquePrefix('near')
  const keys = new RedisKeys(prefix)
  const open = async (cache: number) => {
    const connection = new RedisConnection(target, PATIENT)
    assert.ok(await connection.waitReady(), 'Redis must be reachable')
    return { connection, store: new RedisPresenceStore(connection, keys, { nearCache: cache }) }
  }
  const a = await open(nearCache)
  const b = await open(0)
  t.after(async () => {
    await a.store.close()
    await b.store.close()
    if (url === LOCAL_REDIS_URL) await deleteKeys(target, prefix)
  })
  if (a.store.nearCache) await until(() => a.store.nearCache!.usable)
  return { a, b, keys, cache: a.store.nearCache }
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await sleep(5)
  }
}

const ids = (...list: string[]) => list as UserId[]

/** The place of the user's primary session as A reads it (a summary: through the cache). */
async function placeOf(
  store: RedisPresenceStore,
  id: string,
  now = T0 + 1,
): Promise<string | undefined> {
  const [summary] = await store.summarize(ids(id), now)
  const activity = summary!.activity
  return activity?.kind === 'inGame' ? activity.placeId : undefined
}

test('a value read once is served from the cache: the second read sends no MGET', async (t) => {
  const { a, b, cache } = await nodes(t)
  await b.store.heartbeat(write('1'), T0)
  assert.equal(await placeOf(a.store, '1'), '1')
  const before = { ...cache!.stats }
  assert.equal(await placeOf(a.store, '1'), '1')
  assert.equal(cache!.stats.hits - before.hits, 1)
  assert.equal(cache!.stats.misses - before.misses, 0)
})

test("another node's write is seen by the next read once acknowledged (invalidation + barrier)", async (t) => {
  const { a, b } = await nodes(t)
  await b.store.heartbeat(write('1', '10'), T0)
  assert.equal(await placeOf(a.store, '1'), '10')
  for (let i = 11; i < 41; i++) {
    // no wait: the read right after the write's reply must see it (the PING barrier)
    await b.store.heartbeat(write('1', String(i)), T0)
    assert.equal(await placeOf(a.store, '1'), String(i))
  }
  // an end of session too, and a user without a value
  await b.store.end('1' as UserId, 'app:iOS', T0, 'explicit')
  assert.equal(await placeOf(a.store, '1'), undefined)
})

test('an invalidation slow to arrive still comes before the next read (the PING barrier)', async (t) => {
  const { a, b, cache } = await nodes(t)
  await b.store.heartbeat(write('2', '1'), T0)
  assert.equal(await placeOf(a.store, '2'), '1')
  // the subscriber's socket not read for 100 ms: its invalidations wait in the kernel
  const stream = (cache!.subscriber as unknown as { stream: { pause(): void; resume(): void } })
    .stream
  stream.pause()
  setTimeout(() => stream.resume(), 100)
  await b.store.heartbeat(write('2', '2'), T0)
  assert.equal(await placeOf(a.store, '2'), '2')
})

test("a barrier's PING is written on the subscriber at once, not on a later tick", async (t) => {
  const { cache } = await nodes(t)
  const stream = (cache!.subscriber as unknown as { stream: { write(chunk: unknown): boolean } })
    .stream
  const written: string[] = []
  const own = stream.write
  stream.write = function (chunk: unknown) {
    written.push(String(chunk))
    return own.apply(this, [chunk] as never)
  }
  t.after(() => {
    stream.write = own
  })
  const barrier = cache!.barrier()
  assert.deepEqual(written, ['*1\r\n$4\r\nPING\r\n'])
  await barrier
})

test("the batches of a turn share one barrier, sent after the last one's plans", async (t) => {
  const { a, b, cache } = await nodes(t)
  await b.store.heartbeat(write('10', '1'), T0)
  assert.equal(await placeOf(a.store, '10'), '1')
  const stream = (
    cache!.subscriber as unknown as {
      stream: { write(chunk: unknown): boolean; pause(): void; resume(): void }
    }
  ).stream
  let pings = 0
  const own = stream.write
  stream.write = function (chunk: unknown) {
    if (String(chunk).includes('PING')) pings++
    return own.apply(this, [chunk] as never)
  }
  t.after(() => {
    stream.write = own
  })
  // acknowledged before the reads, its invalidation held in the kernel until after their plans
  // (each a hit): every read sees it, in whichever batch it goes
  stream.pause()
  setTimeout(() => stream.resume(), 100)
  await b.store.heartbeat(write('10', '2'), T0)
  // 10 reads in one turn, as requests come (a microtask apart): two batches sent as their 4th
  // read joins them (MAX_JOINED_READS), one at the turn's end
  const reads: Array<Promise<string | undefined>> = []
  for (let i = 0; i < 10; i++) {
    reads.push(placeOf(a.store, '10'))
    if (i % 4 === 3) await Promise.resolve()
  }
  const places = await Promise.all(reads)
  assert.deepEqual(
    places,
    Array.from({ length: 10 }, () => '2'),
  )
  assert.equal(pings, 1)
})

test('a read beside a cached one in the same write is answered without waiting for its barrier', async (t) => {
  const { a, b, keys, cache } = await nodes(t)
  await b.store.heartbeat(write('9', '1'), T0)
  assert.equal(await placeOf(a.store, '9'), '1')
  // the subscriber's socket not read for 200 ms: the barrier's PONG waits in the kernel
  const stream = (cache!.subscriber as unknown as { stream: { pause(): void; resume(): void } })
    .stream
  stream.pause()
  setTimeout(() => stream.resume(), 200)
  const order: string[] = []
  const cached = placeOf(a.store, '9').then((place) => order.push(`cached ${place}`))
  const plain = a.connection.mget([keys.presence('9' as UserId)]).then(([value]) => {
    order.push(`plain ${value === null ? 'none' : 'value'}`)
  })
  await Promise.all([cached, plain])
  assert.deepEqual(order, ['plain value', 'cached 1'])
})

test('a value read while an invalidation of its key arrives is not kept (in-flight marker)', async (t) => {
  const { a, b, keys, cache } = await nodes(t)
  await b.store.heartbeat(write('7', '1'), T0)
  const key = keys.presence('7' as UserId)
  const plan = cache!.plan(['7'], keys.presenceHeads(), keys, T0 + 1, true)
  assert.equal(plan.keys.length, 1)
  // the value as an MGET sent now would have read it, then a write that invalidates it
  const old = await b.connection.client.getBuffer(key)
  const seen = cache!.stats.invalidations
  await b.store.heartbeat(write('7', '2'), T0)
  await until(() => cache!.stats.invalidations > seen)
  const done = cache!.finish(plan, [old], true)
  const activity = done.read.summaries[0]!.activity
  assert.equal(
    activity?.kind === 'inGame' && activity.placeId,
    '1',
    'the read answers what it read',
  )
  assert.equal(cache!.size, 0, 'not kept: an invalidation arrived while it was in flight')
  assert.equal(await placeOf(a.store, '7'), '2')
})

test('a hit invalidated before its barrier arrives is read again', async (t) => {
  const { a, b, keys, cache } = await nodes(t)
  await b.store.heartbeat(write('8', '1'), T0)
  assert.equal(await placeOf(a.store, '8'), '1')
  const plan = cache!.plan(['8'], keys.presenceHeads(), keys, T0 + 1, true)
  assert.equal(plan.hits, 1)
  await b.store.heartbeat(write('8', '2'), T0)
  await cache!.barrier()
  assert.deepEqual(cache!.finish(plan, [], true).lost, [0])
})

test('the subscriber connection dropping clears the cache until tracking is on again', async (t) => {
  const { a, b, cache } = await nodes(t)
  await b.store.heartbeat(write('3', '1'), T0)
  assert.equal(await placeOf(a.store, '3'), '1')
  assert.equal(cache!.size, 1)
  const killer = new Redis(LOCAL_REDIS_URL)
  t.after(() => killer.disconnect())
  const id = cache!.clientId
  assert.ok(id !== undefined)
  await killer.call('CLIENT', 'KILL', 'ID', String(id))
  // written while the subscriber is away: its invalidation is lost
  await b.store.heartbeat(write('3', '2'), T0)
  await until(() => cache!.usable)
  assert.equal(await placeOf(a.store, '3'), '2')
  // and invalidations work on the new connection
  await b.store.heartbeat(write('3', '3'), T0)
  assert.equal(await placeOf(a.store, '3'), '3')
})

test('the reading connection dropping clears the cache', async (t) => {
  const { a, b, cache } = await nodes(t)
  await b.store.heartbeat(write('4', '1'), T0)
  assert.equal(await placeOf(a.store, '4'), '1')
  assert.equal(cache!.size, 1)
  const id = await a.connection.client.client('ID')
  const killer = new Redis(LOCAL_REDIS_URL)
  t.after(() => killer.disconnect())
  await killer.call('CLIENT', 'KILL', 'ID', String(id))
  await until(() => cache!.size === 0)
  await until(() => a.connection.client.status === 'ready' && cache!.usable)
  assert.equal(await placeOf(a.store, '4'), '1')
})

test('FLUSHALL clears the cache (a private redis-server)', async (t) => {
  const redis = await privateRedis(t, 'near-flush')
  // closed before the server stops (hooks run in order)
  await t.test('flushed', async (t) => flushed(t, redis.url))
})

async function flushed(t: TestContext, url: string) {
  const { a, b, cache } = await nodes(t, url)
  await b.store.heartbeat(write('5', '1'), T0)
  assert.equal(await placeOf(a.store, '5'), '1')
  assert.equal(cache!.size, 1)
  await b.connection.client.flushall()
  assert.equal(await placeOf(a.store, '5'), undefined)
}

test('at the cap, the oldest entry goes', async (t) => {
  const { a, b, keys, cache } = await nodes(t, LOCAL_REDIS_URL, 3)
  for (const id of ['11', '12', '13', '14', '15']) await b.store.heartbeat(write(id), T0)
  for (const id of ['11', '12', '13', '14', '15']) await a.store.summarize(ids(id), T0 + 1)
  assert.equal(cache!.size, 3)
  const plan = cache!.plan(['11', '15'], keys.presenceHeads(), keys, T0 + 1, true)
  cache!.abandon(plan)
  assert.equal(plan.from[0], 0, 'the oldest went')
  const hits = cache!.stats.hits
  await a.store.summarize(ids('13', '14', '15'), T0 + 1)
  assert.equal(cache!.stats.hits - hits, 3)
})

test('a hit is the summary its read made, field for field, for the id asked for', async (t) => {
  const { a, b, cache } = await nodes(t)
  // no value; two sessions (a title's on an Xbox and an app's); a game server's player
  await b.store.heartbeat(
    { ...write('32', '7'), key: 'title:1', source: 'title', deviceType: 'XboxOne' },
    T0,
  )
  await b.store.heartbeat({ ...write('32', '8'), key: 'app:PC', deviceType: 'PC' }, T0 + 1)
  await b.store.heartbeat({ ...write('33', '9'), key: 'server:g1', source: 'server' }, T0)
  const asked = ids('31', '32', '33')
  const read = await a.store.summarize(asked, T0 + 2)
  const before = { ...cache!.stats }
  const again = await a.store.summarize(ids(...asked.map((id) => `${Number(id)}`)), T0 + 2)
  assert.equal(cache!.stats.hits - before.hits, 3)
  for (let i = 0; i < asked.length; i++) {
    assert.deepStrictEqual(again[i], read[i])
    // the same shape (a missing value's has no activityId hint, as summaryOf's)
    assert.deepStrictEqual(Object.keys(again[i]!), Object.keys(read[i]!))
  }
  assert.equal(again[1]!.sessions, 2)
  assert.equal(again[2]!.source, 'server')
  assert.equal(again[0]!.lastOnline, undefined)
  assert.notEqual(again[1]!.lastOnline, undefined)
})

test('rows refer to shared values, each given back once no row holds it', async (t) => {
  const { a, b, cache } = await nodes(t, LOCAL_REDIS_URL, 3)
  const list = ['41', '42', '43', '44', '45']
  for (const id of list) await b.store.heartbeat(write(id, `p${id}`), T0)
  await a.store.summarize(ids('41', '42'), T0 + 1)
  assert.deepStrictEqual(cache!.held, { activities: 2, deviceTypes: 1, settings: 1 })
  for (const id of list) await a.store.summarize(ids(id), T0 + 1)
  // evicted rows gave theirs back: one activity per row held
  assert.deepStrictEqual(cache!.held, { activities: 3, deviceTypes: 1, settings: 1 })
  await b.store.heartbeat(write('45', 'p43'), T0)
  await until(() => cache!.size === 2)
  assert.equal(cache!.held.activities, 2)
  cache!.drop()
  assert.deepStrictEqual(cache!.held, { activities: 0, deviceTypes: 0, settings: 0 })
})

test('a summary held is served only from its read until its first session expires', async (t) => {
  const { a, b, cache } = await nodes(t)
  await b.store.heartbeat(write('21', '5'), T0)
  assert.equal(await placeOf(a.store, '21', T0 + 10), '5')
  const served = () => ({ ...cache!.stats })
  let before = served()
  assert.equal(await placeOf(a.store, '21', T0 + 599_999), '5')
  assert.equal(cache!.stats.hits - before.hits, 1, 'held while the session lives')
  // past its expiry (not swept yet: the value is unchanged in Redis) the user is offline
  before = served()
  assert.equal(await placeOf(a.store, '21', T0 + 600_000), undefined)
  assert.equal(cache!.stats.misses - before.misses, 1, 'not served past the expiry')
  // and a read at a time before the one the summary was read at is not served from it
  await b.store.heartbeat(write('22', '6'), T0)
  assert.equal(await placeOf(a.store, '22', T0 + 10), '6')
  before = served()
  assert.equal(await placeOf(a.store, '22', T0 + 5), '6')
  assert.equal(cache!.stats.misses - before.misses, 1, 'not served before its read')
})

test('ids above 2^53 are held and invalidated each as itself', async (t) => {
  const { a, b, cache } = await nodes(t)
  const [low, high] = ['9007199254740992', '9007199254740993']
  await b.store.heartbeat(write(low, '1'), T0)
  await b.store.heartbeat(write(high, '2'), T0)
  assert.equal(await placeOf(a.store, low), '1')
  assert.equal(await placeOf(a.store, high), '2')
  assert.equal(cache!.size, 2)
  await b.store.heartbeat(write(high, '3'), T0)
  const before = { ...cache!.stats }
  assert.equal(await placeOf(a.store, low), '1')
  assert.equal(await placeOf(a.store, high), '3')
  assert.equal(cache!.stats.hits - before.hits, 1, 'only the other id was still held')
})

test('on by default on a single Redis, as a node builds its stores', async (t) => {
  assert.equal(loadConfig({}).redisNearCache, DEFAULT_REDIS_NEAR_CACHE)
  let stores: Stores | undefined
  await startWithStores(t, true, 'near-default', (built) => (stores = built))
  const cache = (stores!.presence as RedisPresenceStore).nearCache
  assert.ok(cache, 'a near cache')
  assert.equal(cache.maxEntries, DEFAULT_REDIS_NEAR_CACHE)
})

test('PRESENCED_REDIS_NEAR_CACHE=0 turns it off', async (t) => {
  assert.equal(loadConfig({ PRESENCED_REDIS_NEAR_CACHE: '0' }).redisNearCache, 0)
  const { a, b } = await nodes(t, LOCAL_REDIS_URL, 0)
  assert.equal(a.store.nearCache, undefined)
  await b.store.heartbeat(write('6', '1'), T0)
  assert.equal(await placeOf(a.store, '6'), '1')
})
