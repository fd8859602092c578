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
import {
  PresenceFeed,
  type AdminFeedItem,
  type FeedBatch,
  type PublicFeedItem,
} from './presence-feed.js'

const game: Activity = { kind: 'inGame', placeId: '1818', universeId: '13058' }

function setup(t: TestContext, maxPerFlush = 10) {
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
    { bus, profiles, clock, pseudonym: (id) => `p${id.length}` },
    { flushMs: 5, maxPerFlush },
  )
  const publicBatches: Array<FeedBatch<PublicFeedItem>> = []
  const adminBatches: Array<FeedBatch<AdminFeedItem>> = []
  const stopPublic = feed.listen({ kind: 'public', send: (b) => publicBatches.push(b) })
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
  const flushed = () => new Promise((resolve) => setTimeout(resolve, 30))
  return { service, feed, beat, flushed, publicBatches, adminBatches }
}

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
      { user: 'p1', type: 'online', state: 'inGame', where: undefined },
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
  const { beat, flushed, adminBatches, publicBatches } = setup(t, 2)
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
