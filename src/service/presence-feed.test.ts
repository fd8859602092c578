import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { Activity } from '../core/presence.js'
import type { UserId } from '../core/user-id.js'
import { LocalChangeBus } from '../realtime/local-change-bus.js'
import { MemoryPresenceStore } from '../store/memory/memory-presence-store.js'
import { MemoryRateLimiter } from '../store/memory/memory-rate-limiter.js'
import { SqliteProfileStore } from '../store/sqlite/sqlite-profile-store.js'
import { Tokens } from './tokens.js'
import { testConfig } from '../app/config.js'
import { createService } from '../app/create-service.js'
import { ManualClock } from './clock.js'
import { Janitor } from './janitor.js'
import {
  PresenceFeed,
  type AdminFeedItem,
  type FeedBatch,
  type PublicFeedItem,
} from './presence-feed.js'

const game: Activity = { kind: 'inGame', placeId: '1818', universeId: '13058' }

function setup(t: TestContext, { maxPerFlush = 10, flushMs = 5, maxPending = 10_000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-feed-'))
  const clock = new ManualClock()
  const profiles = new SqliteProfileStore(dir)
  const presence = new MemoryPresenceStore()
  const bus = new LocalChangeBus()
  const service = createService(
    { mode: 'embedded', presence, profiles, bus, rateLimiter: new MemoryRateLimiter() },
    testConfig({ dataDir: dir, sessionTtlSeconds: 60 }),
    { clock, tokens: new Tokens('unit-test-secret-of-enough-length-0123456789') },
  )
  const feed = new PresenceFeed(
    { bus, profiles, presence, clock, pseudonym: (id) => `p${id}` },
    { flushMs, maxPerFlush, maxPending },
  )
  const publicBatches: Array<FeedBatch<PublicFeedItem>> = []
  /** performance.now() when each public batch was sent. */
  const publicSentAt: number[] = []
  const adminBatches: Array<FeedBatch<AdminFeedItem>> = []
  const stopPublic = feed.listen({
    kind: 'public',
    send: (b) => {
      publicBatches.push(b)
      publicSentAt.push(performance.now())
    },
  })
  const stopAdmin = feed.listen({ kind: 'admin', send: (b) => adminBatches.push(b) })
  t.after(async () => {
    stopPublic()
    stopAdmin()
    await presence.close()
    await profiles.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const beat = (userId: string, activity: Activity = { kind: 'online' }, key = 'app:PC') =>
    service.heartbeat({ userId: userId as UserId, key, source: 'app', deviceType: 'PC', activity })
  // the grid instant after the last change, then whatever the (maybe loaded) machine needs
  const flushed = async () => {
    await sleep(flushMs * 2 + 20)
    await feed.idle()
  }
  const publicItems = () => publicBatches.flatMap((b) => b.items)
  return {
    service,
    presence,
    profiles,
    bus,
    clock,
    feed,
    beat,
    flushed,
    publicBatches,
    publicSentAt,
    publicItems,
    adminBatches,
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const invisible = { visibility: 'everyone', invisible: true } as const
const visible = { visibility: 'everyone', invisible: false } as const

test('public feed: pseudonyms, places only when public, nothing of invisible users', async (t) => {
  const { service, beat, flushed, publicBatches, adminBatches } = setup(t)
  await service.putSettings('2' as UserId, { visibility: 'friends', invisible: false })
  await service.putSettings('3' as UserId, { visibility: 'everyone', invisible: true })
  await beat('1', game)
  await beat('2', game)
  await beat('3', game)
  await flushed()
  const items = publicBatches.flatMap((b) => b.items)
  assert.deepEqual(
    items.map(({ user, type, state, where }) => ({ user, type, state, where })),
    [
      {
        user: 'p1',
        type: 'online',
        state: 'inGame',
        where: { placeId: '1818', universeId: '13058' },
      },
      { user: 'p2', type: 'online', state: 'inGame', where: undefined },
    ],
  )
  assert.ok(!JSON.stringify(publicBatches).includes('"userId"'), 'no ids in public')
  assert.ok(
    publicBatches.every((b) => b.dropped === undefined),
    'no dropped count in public',
  )
  // operators see all three, settings changes included, with ids
  const admin = adminBatches.flatMap((b) => b.items)
  assert.deepEqual(
    admin.map((i) => `${i.userId}:${i.type}:${i.invisible}:${i.sessions.length}`),
    [
      '2:settings:false:0',
      '3:settings:true:0',
      '1:online:false:1',
      '2:online:false:1',
      '3:online:true:1',
    ],
  )
})

test('feed: a busy batch shows at most maxPerFlush; operators get the rest counted', async (t) => {
  const { beat, flushed, adminBatches, publicBatches } = setup(t, { maxPerFlush: 2 })
  await Promise.all(['1', '2', '3', '4', '5'].map((id) => beat(id)))
  await flushed()
  assert.ok(adminBatches.every((b) => b.items.length <= 2))
  const shown = adminBatches.reduce((n, b) => n + b.items.length, 0)
  const dropped = adminBatches.reduce((n, b) => n + (b.dropped ?? 0), 0)
  assert.equal(shown + dropped, 5)
  assert.ok(dropped > 0)
  assert.ok(publicBatches.every((b) => b.items.length <= 2 && b.dropped === undefined))
})

test('feed: a refresh is no event; a move is an update; an end is offline with its reason', async (t) => {
  const { service, beat, flushed, publicBatches } = setup(t)
  await beat('1')
  await flushed()
  await beat('1')
  await flushed()
  await beat('1', game)
  await beat('1', { ...game, placeId: '1819' })
  await flushed()
  await service.endSession('1' as UserId, 'app:PC')
  await flushed()
  const items = publicBatches.flatMap((b) => b.items)
  assert.deepEqual(
    items.map((i) => `${i.type}:${i.state}:${i.reason ?? ''}:${i.where?.placeId ?? ''}`),
    ['online:online::', 'update:inGame::1818', 'update:inGame::1819', 'offline:offline:explicit:'],
  )
})

test('feed: listens to the bus only while someone listens to it', async (t) => {
  const { feed, beat, flushed, publicBatches } = setup(t)
  assert.equal(feed.listeners, 2)
  feed.stop()
  await beat('1')
  await flushed()
  assert.equal(publicBatches.length, 0)
})

test('feed: a session that times out is an offline with reason timeout', async (t) => {
  const { service, clock, presence, bus, flushed, publicItems } = setup(t)
  await service.heartbeat({
    userId: '1' as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: game,
    ttlMs: 1000,
  })
  clock.advance(5000)
  const janitor = new Janitor(presence, bus, clock, { intervalMs: 60_000, batchSize: 100 })
  assert.equal(await janitor.sweepOnce(), 1)
  await flushed()
  assert.deepEqual(
    publicItems().map((i) => `${i.type}:${i.state}:${i.reason ?? ''}`),
    ['online:inGame:', 'offline:offline:timeout'],
  )
})

/**
 * A session that expired and was not swept yet, seen by a settings change first, then by the
 * sweep: each must be judged by the settings of its time, as the webhooks judge it (52ebbc3),
 * so that the public sees what it would of a user who did the same while visible.
 */
async function expireUnswept(
  feed: ReturnType<typeof setup>,
  userId: string,
): Promise<{ sweep: (swept?: number) => Promise<void> }> {
  const { service, clock, presence, bus } = feed
  await service.heartbeat({
    userId: userId as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: game,
    ttlMs: 1000,
  })
  await feed.flushed()
  clock.advance(5000) // expired, not swept yet
  const janitor = new Janitor(presence, bus, clock, { intervalMs: 60_000, batchSize: 100 })
  return {
    // a heartbeat of the user before the sweep ends the expired session itself: none is left
    sweep: async (swept = 1) => {
      assert.equal(await janitor.sweepOnce(), swept)
      await feed.flushed()
    },
  }
}

test('public feed: a session that expired while invisible tells nothing once visible again before the sweep', async (t) => {
  const s = setup(t, { flushMs: 50 })
  await s.service.putSettings('1' as UserId, invisible)
  const { sweep } = await expireUnswept(s, '1')
  await s.service.putSettings('1' as UserId, visible)
  await s.flushed()
  // showing the user again ended the expired session first, told as invisible: no sweep finds it
  await sweep(0)
  // an offline user with the same visible history (offline throughout) makes no item at all;
  // an `offline` here told the public that a session lived while the user was invisible
  assert.deepEqual(
    s.publicItems().map((i) => `${i.user}:${i.type}:${i.reason ?? ''}`),
    [],
  )
})

test('public feed: a user whose session expired and who turned invisible before the sweep goes offline', async (t) => {
  const s = setup(t, { flushMs: 50 })
  const { sweep } = await expireUnswept(s, '1')
  await s.service.putSettings('1' as UserId, invisible)
  await s.flushed()
  await sweep()
  // as a sign-out when it turned invisible (the webhooks' and the streams' rule): without it the
  // public kept the user online for good, where a visible one's expiry reads as an offline
  assert.deepEqual(
    s.publicItems().map((i) => `${i.user}:${i.type}:${i.reason ?? ''}`),
    ['p1:online:', 'p1:offline:explicit'],
  )
})

test("public feed: a visibility change between an expiry and its sweep makes one offline, the sweep's", async (t) => {
  const s = setup(t, { flushMs: 50 })
  const { sweep } = await expireUnswept(s, '1')
  await s.service.putSettings('1' as UserId, { visibility: 'friends', invisible: false })
  await s.flushed()
  await sweep()
  // the change as made while the feed still shows the user online (the place goes), then the
  // expiry told once, by the sweep, as for a user whose session expired after the change
  assert.deepEqual(
    s.publicItems().map((i) => `${i.user}:${i.type}:${i.reason ?? ''}:${i.where ? 'where' : ''}`),
    ['p1:online::where', 'p1:update::', 'p1:offline:timeout:'],
  )
})

test('feed: a visible change is sent on its own flush instant, whatever hidden changes came before', async (t) => {
  const flushMs = 400
  const { service, beat, publicBatches, publicSentAt } = setup(t, { flushMs })
  await service.putSettings('9' as UserId, invisible)
  await sleep(flushMs * 2)
  // the hidden change in the middle of a flush interval, the visible one early in the next
  await sleep(flushMs * 1.5 - (performance.now() % flushMs))
  await beat('9', game)
  await sleep(flushMs * 0.6)
  const before = performance.now()
  await beat('1', game)
  const ownInstant = Math.ceil(before / flushMs) * flushMs
  while (publicBatches.length === 0) await sleep(10)
  assert.ok(
    publicSentAt[0]! >= ownInstant,
    `sent ${(ownInstant - publicSentAt[0]!).toFixed(0)} ms before its own flush instant`,
  )
  assert.deepEqual(
    publicBatches.flatMap((b) => b.items.map((i) => i.user)),
    ['p1'],
  )
})

test('feed: turning visible, then playing, in one batch: the play is public', async (t) => {
  const { service, beat, flushed, publicItems } = setup(t, { flushMs: 50 })
  await service.putSettings('1' as UserId, invisible)
  await flushed()
  await service.putSettings('1' as UserId, visible)
  await beat('1', game)
  await flushed()
  assert.deepEqual(
    publicItems().map((i) => `${i.user}:${i.type}:${i.where?.placeId ?? ''}`),
    ['p1:online:1818'],
  )
})

test('feed: a settings change that does not say what it was (an import) hides the changes before it', async (t) => {
  const { bus, beat, flushed, publicItems, adminBatches } = setup(t, { flushMs: 50 })
  await beat('1', game)
  await bus.publish({ type: 'settings', userId: '1' as UserId })
  await beat('2', game)
  await flushed()
  assert.deepEqual(
    publicItems().map((i) => `${i.user}:${i.type}`),
    ['p2:online'],
    "1's change cannot be judged: left out",
  )
  assert.deepEqual(
    adminBatches.flatMap((b) => b.items.map((i) => `${i.userId}:${i.type}`)),
    ['1:online', '1:settings', '2:online'],
  )
})

test('feed: names places, universes and titles from the catalogues, as the top lists do', async (t) => {
  const { service, profiles, beat, flushed, publicItems, adminBatches } = setup(t)
  await service.putPlace({ placeId: '1818', universeId: '13058', rootPlaceId: '1', name: 'Yard' })
  await service.putPlace({ placeId: '1', universeId: '13058', rootPlaceId: '1', name: 'Town' })
  await profiles.putTitle({ titleId: '1234', name: 'Forza', strings: {} })
  await beat('1', { kind: 'inGame', placeId: '1818' })
  await beat('2', { kind: 'online', titleId: '1234' }, 'title:1234:XboxOne')
  await beat('3', { kind: 'inGame', placeId: '77' })
  await flushed()
  assert.deepEqual(
    publicItems().map((i) => i.where),
    [
      {
        universeId: '13058',
        universeName: 'Town',
        placeId: '1818',
        placeName: 'Yard',
        location: 'Yard',
      },
      { titleId: '1234', titleName: 'Forza' },
      { placeId: '77' },
    ],
  )
  const admin = adminBatches.flatMap((b) => b.items)
  assert.deepEqual(admin[1]!.sessions[0]!.where, { titleId: '1234', titleName: 'Forza' })
})

test('feed: past its capacity a batch sends nothing public; operators get the count', async (t) => {
  const flushMs = 1000
  const { beat, publicBatches, adminBatches } = setup(t, { flushMs, maxPending: 20 })
  const users = 21
  // all inside one flush interval: start just after one of its instants
  await sleep(flushMs - (performance.now() % flushMs) + 10)
  await Promise.all(Array.from({ length: users }, (_, i) => beat(String(i + 1))))
  while (adminBatches.length === 0) await sleep(50)
  assert.equal(publicBatches.length, 0, 'the dropped change could have judged a kept one')
  const admin = adminBatches[0]!
  assert.equal(admin.items.length + admin.dropped!, users)
  assert.equal(admin.dropped, users - 10)
})

test('admin feed: a settings item shows the user as operators see them, whatever the settings', async (t) => {
  const { service, beat, flushed, adminBatches } = setup(t)
  await beat('1', game)
  await flushed()
  adminBatches.length = 0
  await service.putSettings('1' as UserId, { invisible: true })
  await service.putSettings('2' as UserId, { visibility: 'friends' })
  await flushed()
  const items = adminBatches.flatMap((b) => b.items)
  assert.deepEqual(
    items.map((i) => [
      i.userId,
      i.type,
      i.before,
      i.state,
      i.invisible,
      i.sessions.map((s) => `${s.key}@${s.where?.placeId ?? ''}`),
    ]),
    [
      // an operator sees everything: going invisible changes nothing of the presence itself
      ['1', 'settings', 'inGame', 'inGame', true, ['app:PC@1818']],
      ['2', 'settings', 'offline', 'offline', false, []],
    ],
  )
})

test('public and admin feed: an expiry swept after another session started and ended is no second offline', async (t) => {
  const s = setup(t, { flushMs: 50 })
  const { sweep } = await expireUnswept(s, '1')
  await s.beat('1', { kind: 'online' }, 'app:Phone')
  s.clock.advance(1000)
  await s.service.endSession('1' as UserId, 'app:Phone')
  await s.flushed()
  await sweep(0)
  // the phone's sign-in told the PC's expiry first, and its end the user offline: the sweep
  // finds nothing left to tell
  assert.deepEqual(
    s.publicItems().map((i) => `${i.type}:${i.reason ?? ''}`),
    ['online:', 'offline:timeout', 'online:', 'offline:explicit'],
  )
  assert.deepEqual(
    s.adminBatches.flatMap((b) => b.items).map((i) => `${i.type}:${i.reason ?? ''}`),
    ['online:', 'offline:timeout', 'online:', 'offline:explicit'],
  )
})

test('public and admin feed: the device beating again after its session expired, before the sweep, is offline then online', async (t) => {
  const s = setup(t, { flushMs: 50 })
  const { sweep } = await expireUnswept(s, '1')
  await s.beat('1', game, 'app:PC')
  await s.flushed()
  await sweep(0)
  for (const items of [s.publicItems(), s.adminBatches.flatMap((b) => b.items)]) {
    assert.deepEqual(
      items.map((i) => `${i.type}:${i.reason ?? ''}`),
      ['online:', 'offline:timeout', 'online:'],
    )
  }
})

test('public feed: turning invisible after an expiry, with a sign-in right after in the same batch, goes offline', async (t) => {
  const s = setup(t, { flushMs: 200 })
  const { sweep } = await expireUnswept(s, '1')
  // the settings change and the phone's sign-in (hidden) are judged in one batch
  await s.service.putSettings('1' as UserId, invisible)
  await s.beat('1', { kind: 'online' }, 'app:Phone')
  await s.flushed()
  await sweep(0)
  // as when the sign-in comes in a later batch: the user hid while the public saw them online
  assert.deepEqual(
    s.publicItems().map((i) => `${i.user}:${i.type}:${i.reason ?? ''}`),
    ['p1:online:', 'p1:offline:explicit'],
  )
})
