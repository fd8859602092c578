import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import type { UserId } from '../../core/user-id.js'
import { isRefresh } from '../../realtime/history.js'
import { presenceStoreContract } from '../contract/presence-store.contract.js'
import type { SessionWrite } from '../presence-store.js'
import { SqliteProfileStore } from '../sqlite/sqlite-profile-store.js'
import { MemoryPresenceStore } from './memory-presence-store.js'
import { MemoryRateLimiter } from './memory-rate-limiter.js'

presenceStoreContract('memory', async () => {
  const store = new MemoryPresenceStore()
  // the settings beside it, as embedded mode keeps them
  const dir = mkdtempSync(join(tmpdir(), 'presenced-memory-'))
  const privacy = new SqliteProfileStore(dir)
  return {
    store,
    privacy,
    cleanup: async () => {
      await store.close()
      await privacy.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})

presenceStoreContract('memory with a SQLite lastOnline ledger', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-memory-'))
  const ledger = new SqliteProfileStore(dir)
  const store = new MemoryPresenceStore({ ledger })
  return {
    store,
    privacy: ledger,
    cleanup: async () => {
      await store.close()
      await ledger.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})

const T0 = Date.UTC(2026, 0, 1)
const user = '9007199254740993' as UserId
/** An app session's heartbeat of `user`, online for a second. */
const appOnline = {
  userId: user,
  key: 'app:iOS',
  source: 'app',
  deviceType: 'iOS',
  activity: { kind: 'online' },
  ttlMs: 1_000,
} as const

test('lastOnline is written behind, flushed on close and reloaded by a new store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-memory-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  {
    const ledger = new SqliteProfileStore(dir)
    // a long interval: only close() may write it
    const store = new MemoryPresenceStore({ ledger, flushIntervalMs: 3_600_000 })
    await store.heartbeat(appOnline, T0)
    await store.heartbeat(appOnline, T0 + 500)
    await store.sweepExpired(T0 + 10_000, 100)
    assert.deepEqual([...ledger.loadLastOnline()], [])
    await store.close()
    assert.deepEqual([...ledger.loadLastOnline()], [[user, T0 + 500]])
    await ledger.close()
  }
  const ledger = new SqliteProfileStore(dir)
  const store = new MemoryPresenceStore({ ledger })
  t.after(async () => {
    await store.close()
    await ledger.close()
  })
  const [presence] = await store.getMany([user, '2' as UserId], T0 + 20_000)
  assert.deepEqual(presence, { userId: user, sessions: [], lastOnline: T0 + 500 })
})

test('flush writes only what changed since the last flush', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-memory-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const saved: Array<ReadonlyArray<readonly [UserId, number]>> = []
  const store = new MemoryPresenceStore({
    ledger: { loadLastOnline: () => [], saveLastOnline: (entries) => saved.push([...entries]) },
    flushIntervalMs: 3_600_000,
  })
  t.after(() => store.close())
  const write = (userId: string) =>
    ({
      userId: userId as UserId,
      key: 'app:PC',
      source: 'app',
      deviceType: 'PC',
      activity: { kind: 'online' },
      ttlMs: 1_000,
    }) as const
  await store.heartbeat(write('1'), T0)
  await store.heartbeat(write('2'), T0 + 1)
  store.flush()
  store.flush()
  await store.heartbeat(write('2'), T0 + 2)
  store.flush()
  assert.deepEqual(saved, [
    [
      ['1', T0],
      ['2', T0 + 1],
    ],
    [['2', T0 + 2]],
  ])
})

test("a heartbeat's lastOnline reaches the ledger within the lag; an ended session's at the next flush; reads see memory's", async (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] })
  const saved: Array<ReadonlyArray<readonly [UserId, number]>> = []
  const store = new MemoryPresenceStore({
    ledger: { loadLastOnline: () => [], saveLastOnline: (entries) => saved.push([...entries]) },
    flushIntervalMs: 1_000,
    lastOnlineLagMs: 3_000,
  })
  t.after(() => store.close())
  const write = (userId: string, ttlMs = 60_000) =>
    ({
      userId: userId as UserId,
      key: 'app:PC',
      source: 'app',
      deviceType: 'PC',
      activity: { kind: 'online' },
      ttlMs,
    }) as const
  // user 1 beats every flush; user 2 beats once, then its session ends
  await store.heartbeat(write('1'), T0)
  await store.heartbeat(write('2'), T0)
  t.mock.timers.tick(1_000)
  await store.heartbeat(write('1'), T0 + 1_000)
  await store.end('2' as UserId, 'app:PC', T0 + 1_500, 'explicit')
  t.mock.timers.tick(1_000)
  assert.deepEqual(saved, [[['2', T0 + 1_500]]], 'the ended session at once, user 1 waits')
  // reads answer from memory, never from the ledger
  const [one] = await store.getMany(['1' as UserId], T0 + 1_600)
  assert.equal(one?.lastOnline, T0 + 1_000)
  await store.heartbeat(write('1'), T0 + 2_000)
  t.mock.timers.tick(1_000)
  assert.deepEqual(saved[1], [['1', T0 + 2_000]], 'at the lag, its latest value')
  t.mock.timers.tick(1_000)
  assert.equal(saved.length, 2, 'nothing moved since')
  // a waiting value whose session expires is written by the next flush
  await store.heartbeat(write('1', 1_000), T0 + 5_000)
  await store.sweepExpired(T0 + 7_000, 100)
  t.mock.timers.tick(1_000)
  assert.deepEqual(saved[2], [['1', T0 + 5_000]])
  // close() writes whatever waits
  await store.heartbeat(write('3'), T0 + 8_000)
  await store.close()
  assert.deepEqual(saved[3], [['3', T0 + 8_000]])
})

test('a limited heartbeat counts its hit in the memory limiter and writes only when allowed', async (t) => {
  const store = new MemoryPresenceStore()
  t.after(() => store.close())
  const limiter = new MemoryRateLimiter()
  const hit = { key: `roblox:user:${user}`, rules: [{ name: 'roblox', max: 2, windowMs: 60_000 }] }
  const write = (location: string) =>
    ({
      userId: user,
      key: 'app:PC',
      source: 'app',
      deviceType: 'PC',
      activity: { kind: 'online', location },
      ttlMs: 30_000,
    }) as const
  const first = await store.limitedHeartbeat(write('a'), T0, hit, limiter)
  assert.ok(first && 'change' in first)
  assert.equal(first.change.after.sessions[0]?.activity.location, 'a')
  assert.ok(await store.limitedHeartbeat(write('b'), T0 + 1, hit, limiter))
  const refused = await store.limitedHeartbeat(write('c'), T0 + 2, hit, limiter)
  assert.deepEqual(
    refused && 'refused' in refused && [refused.refused.rule, refused.refused.count],
    ['roblox', 3],
  )
  // refused: nothing written
  const [presence] = await store.getMany([user], T0 + 3)
  assert.equal(presence?.sessions[0]?.activity.location, 'b')
  // the hit counted with the refusal too, as every limiter counts it
  assert.equal(limiter.hitNow(hit.key, hit.rules, T0 + 4).count, 4)
  // another limiter's budget is not this store's to count
  const elsewhere = { hit: () => Promise.resolve(limiter.hitNow(hit.key, hit.rules, T0)) }
  assert.equal(store.limitedHeartbeat(write('d'), T0 + 5, hit, elsewhere), undefined)
})

test('a flush the database refuses (locked) is told once, ends nothing, and is written by the next one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-memory-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const ledger = new SqliteProfileStore(dir)
  // a locked database answers SQLITE_BUSY at once rather than after 5 s
  ledger.db.pragma('busy_timeout = 10')
  const told: unknown[] = []
  const store = new MemoryPresenceStore({
    ledger,
    flushIntervalMs: 20,
    // every flush writes what moved (the lag has its own test)
    lastOnlineLagMs: 0,
    onFlushError: (error) => told.push(error),
  })
  const locker = new Database(join(dir, 'presenced.sqlite'))
  t.after(async () => {
    locker.close()
    await store.close()
    await ledger.close()
  })
  locker.exec('BEGIN IMMEDIATE')
  await store.heartbeat(appOnline, T0)
  // several timer flushes fail meanwhile; before, the first one's throw ended the process
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.equal(told.length, 1, 'told once, however many flushes failed')
  assert.match(String(told[0]), /database is locked/)
  assert.deepEqual([...ledger.loadLastOnline()], [])
  locker.exec('COMMIT')
  const deadline = Date.now() + 10_000
  while ([...ledger.loadLastOnline()].length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.deepEqual([...ledger.loadLastOnline()], [[user, T0]], 'written by a later flush')
})

test('a heartbeat repeating its activity keeps the shared object; one with its keys reordered, or a value changed, is stored as written', async () => {
  const store = new MemoryPresenceStore()
  const write = (activity: Record<string, unknown>, deviceType = 'iOS') => ({
    ...appOnline,
    deviceType,
    activity: activity as never,
  })
  const read = async () => (await store.getMany([user], T0))[0]!.sessions[0]!
  const inGame = { kind: 'inGame', placeId: '5', universeId: '7', location: 'Game' }
  await store.heartbeat(write(inGame), T0)
  const first = (await read()).activity
  // the same text: the same interned (frozen) object
  await store.heartbeat(write({ ...inGame }), T0)
  assert.equal((await read()).activity, first)
  // the same members in another order: a different JSON text, stored (and read) in its order
  const reordered = { location: 'Game', kind: 'inGame', universeId: '7', placeId: '5' }
  await store.heartbeat(write(reordered), T0)
  const second = (await read()).activity
  assert.notEqual(second, first)
  assert.equal(JSON.stringify(second), JSON.stringify(reordered))
  // a value of another type that compares alike as text is no longer the same
  await store.heartbeat(write({ ...reordered, placeId: 5 }), T0)
  assert.equal(
    JSON.stringify((await read()).activity),
    JSON.stringify({ ...reordered, placeId: 5 }),
  )
  // a member more, or fewer
  await store.heartbeat(write({ ...reordered, placeId: 5, gameId: 'g' }), T0)
  assert.equal((await read()).activity.gameId, 'g')
  await store.heartbeat(write({ kind: 'online' }), T0)
  assert.deepEqual(Object.keys((await read()).activity), ['kind'])
  // a member whose value is undefined is left out, as JSON.stringify leaves it
  await store.heartbeat(write({ kind: 'online', location: undefined }), T0)
  assert.deepEqual(Object.keys((await read()).activity), ['kind'])
  // rich presence: a new object of the same content is compared by its text
  const rich = { kind: 'online', titleId: '1', richPresence: { id: 'r', params: ['a'] } }
  await store.heartbeat(write(rich), T0)
  await store.heartbeat(write({ ...rich, richPresence: { id: 'r', params: ['b'] } }), T0)
  assert.deepEqual((await read()).activity.richPresence?.params, ['b'])
  // the device type changes too
  await store.heartbeat(write({ kind: 'online' }, 'Web'), T0)
  assert.equal((await read()).deviceType, 'Web')
  await store.close()
})

test('a session moving to a place another session holds takes its activity, made once; stored as written otherwise', async () => {
  const store = new MemoryPresenceStore()
  const beat = (userId: string, activity: Record<string, unknown>) =>
    store.heartbeat({ ...appOnline, userId: userId as UserId, activity: activity as never }, T0)
  const activityOf = async (userId: string) =>
    (await store.getMany([userId as UserId], T0))[0]!.sessions[0]!.activity
  const place = (id: string) => ({ kind: 'inGame', location: 'Game', placeId: id })
  await beat('1', place('5'))
  await beat('2', place('6'))
  // user 2 moves to user 1's place: that place's activity, no JSON made
  const stringify = JSON.stringify
  let made = 0
  JSON.stringify = ((...args: Parameters<typeof stringify>) => {
    made++
    return stringify(...args)
  }) as typeof stringify
  try {
    await beat('2', place('5'))
    assert.equal(made, 0, 'no JSON made for an activity held already')
  } finally {
    JSON.stringify = stringify
  }
  assert.equal(await activityOf('2'), await activityOf('1'), 'the same interned object')
  // the same place in another key order, or another location: stored as written
  await beat('2', { kind: 'inGame', placeId: '5', location: 'Game' })
  assert.deepEqual(Object.keys(await activityOf('2')), ['kind', 'placeId', 'location'])
  await beat('2', { ...place('5'), location: 'Lobby' })
  assert.equal((await activityOf('2')).location, 'Lobby')
  // every holder of place 5's activities leaves: their ids may be given to other activities
  await beat('1', { kind: 'online' })
  await beat('2', { kind: 'online' })
  for (let i = 0; i < 5000; i++) await beat(String(100 + i), place(String(1000 + i)))
  await beat('1', place('5'))
  assert.deepEqual(await activityOf('1'), place('5'))
  await beat('2', place('5'))
  assert.equal(await activityOf('2'), await activityOf('1'))
  await store.close()
})

test("summarize without `device` leaves deviceType and source '' and 'app', the rest as with it", async () => {
  const store = new MemoryPresenceStore()
  await store.heartbeat(appOnline, T0)
  const other = '7' as UserId
  const [full] = await store.summarize([user], T0 + 10)
  assert.equal(full!.deviceType, 'iOS')
  const lean = await store.summarize([user, other], T0 + 10, undefined, false)
  assert.deepEqual(lean, [
    { ...full!, deviceType: '', source: 'app' },
    ...(await store.summarize([other], T0 + 10)),
  ])
  await store.close()
})

test('summarize of many ids (read a part at a time) answers as each id alone, in order', async () => {
  const store = new MemoryPresenceStore()
  const ids: UserId[] = []
  for (let i = 0; i < 300; i++) {
    const id = String(5_000 + i) as UserId
    if (i % 3 !== 0) {
      await store.heartbeat(
        { ...appOnline, userId: id, activity: { kind: 'inGame', placeId: String(i % 7) } },
        T0 + i,
      )
    }
    ids.push(id)
  }
  // unknown, repeated and out-of-order ids among them, past several parts
  const asked = [...ids, '404' as UserId, ids[5]!, ...ids.slice(0, 40).reverse()]
  const values = asked.map(Number)
  const alone = await Promise.all(
    asked.map(async (id) => (await store.summarize([id], T0 + 400))[0]),
  )
  assert.deepEqual(await store.summarize(asked, T0 + 400), alone)
  assert.deepEqual(await store.summarize(asked, T0 + 400, values), alone)
  assert.equal(alone.filter((s) => s!.sessions === 1).length, 200 + 1 + 26)
  await store.close()
})

test('a refresh whose change is unread comes with one presence for both sides; anything else whole, and the stored state is the same either way', async () => {
  const quiet = new MemoryPresenceStore()
  const plain = new MemoryPresenceStore()
  const unread = (write: SessionWrite): SessionWrite => ({ ...write, refreshUnread: true })
  const inGame: SessionWrite = {
    ...appOnline,
    activity: { kind: 'inGame', placeId: '1818', location: 'Game' },
  }
  const steps: Array<{ write: SessionWrite; at: number; refresh: boolean }> = [
    // a new session, its refresh, a new activity, its refresh, another device type, its refresh,
    // another source, a refresh after expiry (a new session), a refresh with a second session
    { write: appOnline, at: T0, refresh: false },
    { write: appOnline, at: T0 + 100, refresh: true },
    { write: inGame, at: T0 + 200, refresh: false },
    { write: { ...inGame, activity: { ...inGame.activity } }, at: T0 + 300, refresh: true },
    { write: { ...inGame, deviceType: 'Android' }, at: T0 + 400, refresh: false },
    { write: { ...inGame, deviceType: 'Android' }, at: T0 + 500, refresh: true },
    { write: { ...inGame, deviceType: 'Android', source: 'title' }, at: T0 + 600, refresh: false },
    { write: { ...inGame, deviceType: 'Android' }, at: T0 + 5_000, refresh: false },
    {
      write: { ...appOnline, key: 'app:Xbox', deviceType: 'Xbox' },
      at: T0 + 5_100,
      refresh: false,
    },
    { write: { ...inGame, deviceType: 'Android' }, at: T0 + 5_200, refresh: true },
  ]
  for (const [i, { write, at, refresh }] of steps.entries()) {
    const told = await quiet.heartbeat(unread(write), at)
    const whole = await plain.heartbeat(write, at)
    assert.equal(isRefresh(whole), refresh, `step ${i}: a refresh`)
    assert.equal(told.before === told.after, refresh, `step ${i}: one presence for both`)
    assert.equal(isRefresh(told), refresh, `step ${i}: told as a refresh or not`)
    assert.deepEqual(told.after, whole.after, `step ${i}: after`)
    if (!refresh) assert.deepEqual(told.before, whole.before, `step ${i}: before`)
    assert.deepEqual(await quiet.getMany([user], at), await plain.getMany([user], at))
  }
  await quiet.close()
  await plain.close()
})
