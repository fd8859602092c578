import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { PresenceType } from '../core/presence.js'
import { PresenceError } from '../core/errors.js'
import { anonymous, type Viewer } from '../core/privacy.js'
import type { UserCaller } from '../core/caller.js'
import type { UserId } from '../core/user-id.js'
import type { BusEvent } from '../realtime/change-bus.js'
import { LocalChangeBus } from '../realtime/local-change-bus.js'
import { MemoryPresenceStore } from '../store/memory/memory-presence-store.js'
import { MemoryRateLimiter } from '../store/memory/memory-rate-limiter.js'
import type { RateLimiter } from '../store/rate-limiter.js'
import { SqliteProfileStore } from '../store/sqlite/sqlite-profile-store.js'
import { Tokens } from './tokens.js'
import { testConfig } from '../app/config.js'
import { createService } from '../app/create-service.js'
import { ManualClock } from './clock.js'
import { Janitor } from './janitor.js'
import type { HeartbeatInput } from './presence-service.js'

const TTL = 60_000
const alice = '1' as UserId
const bob = '2' as UserId
const carol = '9007199254740993' as UserId
const asUser = (userId: UserId): Viewer => ({ kind: 'user', userId })

function setup(t: TestContext, rateLimiter: RateLimiter = new MemoryRateLimiter()) {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-service-'))
  const clock = new ManualClock()
  const profiles = new SqliteProfileStore(dir)
  const presence = new MemoryPresenceStore({ ledger: profiles })
  const bus = new LocalChangeBus()
  const events: BusEvent[] = []
  bus.subscribe((event) => events.push(event))
  const service = createService(
    { mode: 'embedded', presence, profiles, bus, rateLimiter },
    testConfig({ dataDir: dir, sessionTtlSeconds: TTL / 1000 }),
    { clock, tokens: new Tokens('unit-test-secret-of-enough-length-0123456789') },
  )
  const janitor = new Janitor(presence, bus, clock, { intervalMs: 1000, batchSize: 100 })
  t.after(async () => {
    await presence.close()
    await profiles.close()
    await bus.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const beat = (userId: UserId, extra: Partial<HeartbeatInput> = {}) =>
    service.heartbeat({
      userId,
      key: 'app:iOS',
      source: 'app',
      deviceType: 'iOS',
      activity: { kind: 'online' },
      ...extra,
    })
  return { clock, service, janitor, events, beat, profiles, bus }
}

test('heartbeat stores the session for the default TTL and publishes the change', async (t) => {
  const { clock, service, events, beat } = setup(t)
  const change = await beat(alice)
  assert.equal(change.after.sessions[0]!.expiresAt, clock.now() + TTL)
  assert.deepEqual(events, [{ type: 'presence', change }])
  const custom = await beat(alice, { key: 'app:PC', ttlMs: 5_000 })
  assert.equal(
    custom.after.sessions.find((s) => s.key === 'app:PC')!.expiresAt,
    clock.now() + 5_000,
  )
  const [seen] = await service.lookup(anonymous, [alice])
  assert.equal(seen!.state, PresenceType.Online)
  assert.equal(seen!.sessions.length, 2)
})

test('a heartbeat made at or past its validUntil (the token expired meanwhile) is refused as expired, nothing written', async (t) => {
  const { clock, service, events, beat } = setup(t)
  for (const validUntil of [clock.now(), clock.now() - 1]) {
    await assert.rejects(beat(alice, { validUntil }), (error: unknown) => {
      assert.ok(error instanceof PresenceError)
      assert.equal(error.code, 'UNAUTHENTICATED')
      assert.equal(error.details.tokenRefused, 'expired')
      return true
    })
  }
  assert.deepEqual(events, [])
  const [seen] = await service.lookup(anonymous, [alice])
  assert.equal(seen!.state, PresenceType.Offline)
  // still valid at the write: written
  const change = await beat(alice, { validUntil: clock.now() + 1 })
  assert.equal(change.after.sessions.length, 1)
})

test('an embedded heartbeat is written and told at once: beat answers without a promise', (t) => {
  const { service, events } = setup(t)
  const input: HeartbeatInput = {
    userId: alice,
    key: 'app:iOS',
    source: 'app',
    deviceType: 'iOS',
    activity: { kind: 'online' },
  }
  // with its admission, as the lean register-app-presence sends it: the memory store counts the
  // hit and writes in one step
  const caller: UserCaller = {
    kind: 'user',
    userId: alice,
    via: 'bearer',
    viewer: asUser(alice),
    tokenId: undefined,
    expiresAt: Number.MAX_SAFE_INTEGER,
    name: undefined,
  }
  const admission = () => service.limits.admission(service.limits.requestHit(caller, '10.0.0.1'))
  // a change: recorded in the history, published on the bus within the call
  const change = service.beat(input, admission())
  assert.ok(!(change instanceof Promise))
  assert.equal(change.after.sessions.length, 1)
  assert.ok(change.position, 'recorded in the history')
  assert.equal(events.length, 1)
  // a refresh: nothing told, still at once
  const refresh = service.beat(input, admission())
  assert.ok(!(refresh instanceof Promise))
  assert.equal(events.length, 1)
})

test('an embedded read is answered at once: lookupSummariesNow, its admission counted in it', async (t) => {
  const { service, beat, profiles } = setup(t)
  await beat(alice)
  await beat(bob, { activity: { kind: 'inGame', placeId: '1818' } })
  await profiles.setBlocked(bob, carol, true)
  const caller: UserCaller = {
    kind: 'user',
    userId: carol,
    via: 'bearer',
    viewer: asUser(carol),
    tokenId: undefined,
    expiresAt: Number.MAX_SAFE_INTEGER,
    name: undefined,
  }
  const hit = service.limits.requestHit(caller, '10.0.0.1')
  let admissions = 0
  const admission = () => {
    admissions++
    return service.limits.admission(hit).runNow()
  }
  const ids = [alice, bob, '5' as UserId]
  for (const viewer of [anonymous, asUser(carol)]) {
    const now = service.lookupSummariesNow(viewer, ids, admission)
    assert.ok(!(now instanceof Promise))
    assert.deepEqual(now, await service.lookupSummaries(viewer, ids))
  }
  assert.equal(admissions, 2)
  // the budget spent at once: the read after its last hit is refused, thrown by the call
  const { rateLimitMax } = testConfig({ dataDir: tmpdir() })
  for (let i = 2; i < rateLimitMax; i++) service.limits.admission(hit).runNow()
  assert.throws(() => service.lookupSummariesNow(anonymous, ids, admission), {
    code: 'RATE_LIMITED',
  })
})

test('a refresh that changes nothing visible publishes nothing; a change after it does', async (t) => {
  const { clock, events, beat } = setup(t)
  const first = await beat(alice)
  clock.advance(10_000)
  const refreshed = await beat(alice)
  // the refresh is stored: the session lives on from now
  assert.equal(refreshed.after.sessions[0]!.expiresAt, clock.now() + TTL)
  assert.deepEqual(events, [{ type: 'presence', change: first }])
  const moved = await beat(alice, { activity: { kind: 'inGame', placeId: '1818' } })
  assert.deepEqual(events, [
    { type: 'presence', change: first },
    { type: 'presence', change: moved },
  ])
})

test('heartbeat fills universe, root place and name from the places catalogue', async (t) => {
  const { service, beat } = setup(t)
  await service.putPlace({
    placeId: '1818',
    universeId: '13058',
    rootPlaceId: '1800',
    name: 'Crossroads',
  })
  const change = await beat(alice, {
    activity: { kind: 'inGame', placeId: '1818', location: 'typed by the client' },
  })
  assert.deepEqual(change.after.sessions[0]!.activity, {
    kind: 'inGame',
    placeId: '1818',
    universeId: '13058',
    rootPlaceId: '1800',
    location: 'Crossroads',
  })
  const unknown = await beat(bob, { activity: { kind: 'inGame', placeId: '5' } })
  assert.deepEqual(unknown.after.sessions[0]!.activity, { kind: 'inGame', placeId: '5' })
})

test('titleHeartbeat: members left out keep the values of the title session, else full and active', async (t) => {
  const { clock, service, events } = setup(t)
  const title = { userId: carol, titleId: '1234', deviceType: 'XboxOne' }
  const activityOf = async () => (await service.rawPresence(carol)).presence.sessions[0]?.activity
  await service.titleHeartbeat(title)
  const base = { kind: 'online', titleId: '1234' }
  assert.deepEqual(await activityOf(), { ...base, placement: 'full', titleState: 'active' })
  const menu = { id: 'menu', params: ['a'] }
  await service.titleHeartbeat({ ...title, placement: 'fill', richPresence: menu })
  clock.advance(1000)
  events.length = 0
  // nothing left out changes: a refresh, published to no one
  const refresh = await service.titleHeartbeat({ ...title, titleState: 'active' })
  assert.deepEqual(refresh.after.sessions[0]!.activity, {
    ...base,
    placement: 'fill',
    titleState: 'active',
    richPresence: menu,
  })
  assert.deepEqual(events, [])
  await service.titleHeartbeat({ ...title, titleState: 'inactive' })
  assert.deepEqual(await activityOf(), {
    ...base,
    placement: 'fill',
    titleState: 'inactive',
    richPresence: menu,
  })
  assert.equal(events.length, 1)
  // another device's session of the title is its own
  await service.titleHeartbeat({ ...title, deviceType: 'PC' })
  const pc = (await service.rawPresence(carol)).presence.sessions.find((s) => s.deviceType === 'PC')
  assert.deepEqual(pc?.key, 'title:1234:PC')
  assert.deepEqual(pc?.activity, { ...base, placement: 'full', titleState: 'active' })
})

test('endSession ends at once and publishes; an unknown session publishes nothing', async (t) => {
  const { clock, service, events, beat } = setup(t)
  await beat(alice)
  clock.advance(1_000)
  const change = await service.endSession(alice, 'app:iOS')
  assert.equal(change?.reason, 'explicit')
  assert.equal(events.length, 2)
  assert.deepEqual(events[1], { type: 'presence', change })
  assert.equal(await service.endSession(alice, 'app:iOS'), undefined)
  assert.equal(events.length, 2)
  const [seen] = await service.lookup(anonymous, [alice])
  assert.equal(seen!.state, PresenceType.Offline)
  assert.equal(seen!.lastOnline, clock.now())
})

test('expiry: offline at once on reads, one timeout event from the janitor', async (t) => {
  const { clock, service, janitor, events, beat } = setup(t)
  const start = clock.now()
  await beat(alice)
  clock.advance(TTL)
  const [seen] = await service.lookup(anonymous, [alice])
  assert.equal(seen!.state, PresenceType.Offline, 'no ghost even before the sweep')
  events.length = 0
  assert.equal(await janitor.sweepOnce(), 1)
  assert.equal(await janitor.sweepOnce(), 0)
  assert.equal(events.length, 1)
  const event = events[0]!
  assert.ok(event.type === 'presence')
  assert.equal(event.change.userId, alice)
  assert.equal(event.change.reason, 'timeout')
  assert.equal(event.change.before.sessions.length, 1)
  assert.deepEqual(event.change.after.sessions, [])
  assert.equal(event.change.after.lastOnline, start)
})

test('lookup answers in order and applies privacy per viewer', async (t) => {
  const { clock, service, beat } = setup(t)
  await beat(alice, { activity: { kind: 'inGame', placeId: '1818' } })
  await beat(bob, { activity: { kind: 'inStudio', location: 'Studio' } })
  await service.putSettings(bob, { visibility: 'friends', invisible: false })
  await service.setFriends(alice, bob, true)

  const ids = [bob, carol, alice]
  const byAnonymous = await service.lookup(anonymous, ids)
  assert.deepEqual(
    byAnonymous.map((p) => [p.userId, p.state, p.locationHidden]),
    [
      [bob, PresenceType.InStudio, true],
      [carol, PresenceType.Offline, false],
      [alice, PresenceType.InGame, false],
    ],
  )
  assert.deepEqual(byAnonymous[0]!.sessions[0]!.activity, { kind: 'inStudio' })
  const byFriend = await service.lookup(asUser(alice), [bob])
  assert.equal(byFriend[0]!.locationHidden, false)
  assert.equal(byFriend[0]!.sessions[0]!.activity.location, 'Studio')

  await service.setBlocked(bob, carol, true)
  const blockedAt = clock.now()
  clock.advance(5_000)
  await beat(bob, { activity: { kind: 'inStudio', location: 'Studio' } })
  const byBlocked = await service.lookup(asUser(carol), [bob, alice])
  assert.equal(byBlocked[0]!.state, PresenceType.Offline)
  // carol saw bob online until the block: as if bob had signed out then, whatever bob does
  assert.equal(byBlocked[0]!.lastOnline, blockedAt)
  assert.equal(byBlocked[1]!.state, PresenceType.InGame)
  // and bob sees carol as carol looked then: never seen
  const [carolByBob] = await service.lookup(asUser(bob), [carol])
  assert.equal(carolByBob!.lastOnline, undefined)
})

test('putSettings invisible freezes lastOnline for others; self sees Invisible', async (t) => {
  const { clock, service, events, beat } = setup(t)
  const start = clock.now()
  await beat(alice)
  clock.advance(10_000)
  const settings = await service.putSettings(alice, { visibility: 'everyone', invisible: true })
  // others saw alice online until now: frozen as if alice had signed out now
  const hidden = start + 10_000
  assert.deepEqual(settings, { visibility: 'everyone', invisible: true, frozenLastOnline: hidden })
  assert.deepEqual(events.at(-1), {
    type: 'settings',
    userId: alice,
    before: { visibility: 'everyone', invisible: false },
    after: settings,
  })
  clock.advance(10_000)
  await beat(alice)
  clock.advance(10_000)
  // still invisible: a second put keeps the frozen value
  await service.putSettings(alice, { visibility: 'friends', invisible: true })
  assert.equal((await service.getSettings(alice)).frozenLastOnline, hidden)

  const [byOther] = await service.lookup(asUser(bob), [alice])
  assert.equal(byOther!.state, PresenceType.Offline)
  assert.equal(byOther!.lastOnline, hidden)
  assert.deepEqual(byOther!.sessions, [])
  const [bySelf] = await service.lookup(asUser(alice), [alice])
  assert.equal(bySelf!.state, PresenceType.Invisible)
  assert.equal(bySelf!.lastOnline, start + 20_000)

  // visible again while online: seen alive from now on, nothing from the invisible period
  await service.putSettings(alice, { visibility: 'everyone', invisible: false })
  const shown = start + 30_000
  const after = await service.getSettings(alice)
  assert.deepEqual(after, {
    visibility: 'everyone',
    invisible: false,
    frozenLastOnline: shown,
    visibleSince: shown,
  })
  const [visible] = await service.lookup(asUser(bob), [alice])
  assert.equal(visible!.state, PresenceType.Online)
  assert.equal(visible!.lastOnline, shown)
  clock.advance(1_000)
  await beat(alice)
  const [seenAgain] = await service.lookup(asUser(bob), [alice])
  assert.equal(seenAgain!.lastOnline, shown + 1_000)
})

test('putSettings showing more ends the sessions past expiry in its step, told first under the settings it replaces: no sweep finds them after', async (t) => {
  const { clock, service, janitor, events, beat } = setup(t)
  await service.putSettings(alice, { visibility: 'nobody' })
  const start = clock.now()
  const game = { kind: 'inGame' as const, placeId: '1818' }
  await beat(alice, { key: 'app:PC', deviceType: 'PC', activity: game })
  await beat(alice, { ttlMs: 3 * TTL })
  clock.advance(TTL + 1_000)
  events.length = 0
  await service.putSettings(alice, { visibility: 'everyone' })
  assert.deepEqual(
    events.map((e) => e.type),
    ['presence', 'settings'],
  )
  const expiry = events[0]!
  assert.ok(expiry.type === 'presence')
  // stored in the same step as the settings, under those they replaced: judged by them
  assert.equal(expiry.change.settings?.visibility, 'nobody')
  assert.equal(expiry.change.reason, 'timeout')
  assert.deepEqual(
    expiry.change.ended?.map((s) => s.key),
    ['app:PC'],
  )
  assert.deepEqual(
    expiry.change.after.sessions.map((s) => s.key),
    ['app:iOS'],
  )
  assert.equal(expiry.change.after.lastOnline, start)
  // told once: the sweep finds nothing, and a settings write with nothing expired tells none
  assert.equal(await janitor.sweepOnce(), 0)
  events.length = 0
  await service.putSettings(alice, { visibility: 'friends', invisible: true })
  await service.putSettings(alice, { invisible: false })
  assert.deepEqual(
    events.map((e) => e.type),
    ['settings', 'settings'],
  )
  // one that hides more leaves the expiry to the sweep: judged by narrower settings, it shows less
  clock.advance(3 * TTL)
  events.length = 0
  await service.putSettings(alice, { visibility: 'nobody' })
  assert.deepEqual(
    events.map((e) => e.type),
    ['settings'],
  )
  assert.equal(await janitor.sweepOnce(), 1)
})

test('importRecords: a settings line showing its user more ends the expired sessions in its step, as putSettings', async (t) => {
  const { clock, service, janitor, events, beat } = setup(t)
  await service.putSettings(alice, { visibility: 'nobody' })
  await service.putSettings(bob, { visibility: 'everyone' })
  const game = { kind: 'inGame' as const, placeId: '1818' }
  for (const id of [alice, bob]) {
    await beat(id, { key: 'app:PC', deviceType: 'PC', activity: game })
  }
  clock.advance(TTL + 1_000)
  events.length = 0
  await service.importRecords([
    { type: 'settings', userId: alice, settings: { visibility: 'everyone', invisible: false } },
    { type: 'settings', userId: bob, settings: { visibility: 'nobody', invisible: false } },
  ])
  // alice's expiry first, under `nobody`; bob's (hiding more) is left to the sweep
  assert.deepEqual(
    events.map((e) =>
      e.type === 'settings'
        ? `settings:${e.userId}`
        : `${e.type}:${'change' in e ? e.change.userId : ''}`,
    ),
    [`presence:${alice}`, `settings:${alice}`, `settings:${bob}`],
  )
  const expiry = events[0]!
  assert.ok(expiry.type === 'presence')
  assert.equal(expiry.change.settings?.visibility, 'nobody')
  assert.equal(await janitor.sweepOnce(), 1)
})

test('relation changes are published for both users', async (t) => {
  const { service, events, profiles } = setup(t)
  await service.setFriends(alice, bob, true)
  await service.setBlocked(bob, carol, true)
  assert.deepEqual(events, [
    { type: 'relation', users: [alice, bob] },
    { type: 'relation', users: [bob, carol] },
  ])
  assert.deepEqual(await profiles.listFriends(bob), [alice])
})

test('rawPresences shows sessions without privacy', async (t) => {
  const { service, beat } = setup(t)
  await beat(alice, { activity: { kind: 'inGame', placeId: '77' } })
  await service.putSettings(alice, { visibility: 'nobody', invisible: true })
  const [raw] = await service.rawPresences([alice])
  assert.equal(raw!.sessions[0]!.activity.placeId, '77')
})

/** The title sessions (device:title) a user has, sorted. */
async function titlesOf(service: ReturnType<typeof setup>['service'], userId: UserId) {
  const [own] = await service.rawPresences([userId])
  return own!.sessions.map((s) => `${s.deviceType}:${s.activity.titleId}`).sort()
}

test("endTitles ends every title a device runs, one change each, counting each title's budget in the same step", async (t) => {
  const { clock, service, events } = setup(t)
  const title = (titleId: string, deviceType = 'XboxOne') =>
    service.titleHeartbeat({ userId: carol, titleId, deviceType })
  await title('1234')
  await title('5678')
  await title('1234', 'PC')
  events.length = 0
  const budget = service.limits.titleWrites(carol, '1')
  const changes = await service.endTitles({ userId: carol, deviceType: 'XboxOne' }, budget)
  assert.deepEqual(
    changes.map((c) => c.ended?.map((s) => s.key)),
    [['title:1234:XboxOne'], ['title:5678:XboxOne']],
  )
  assert.deepEqual(await titlesOf(service, carol), ['PC:1234'])
  // each session ended is its own change on the bus, as an end of each would publish
  assert.deepEqual(
    events.map((e) => (e.type === 'presence' ? e.change.ended?.map((s) => s.key) : e.type)),
    [['title:1234:XboxOne'], ['title:5678:XboxOne']],
  )
  // the budgets it spent are the title writes' (testConfig: 3 per burst window)
  const spend = (titleId: string) => service.limits.titleWrite(carol, titleId)
  await spend('1234')
  await spend('1234')
  await assert.rejects(spend('1234'), { code: 'RATE_LIMITED' })
  await spend('5678')
  // over budget: refused, and nothing ended (the PC's 1234 is over, 5678 is not yet)
  await title('5678')
  await assert.rejects(service.endTitles({ userId: carol, deviceType: 'PC' }, budget), {
    code: 'RATE_LIMITED',
  })
  assert.deepEqual(await titlesOf(service, carol), ['PC:1234', 'XboxOne:5678'])
  // nothing running on a device: the idle title's budget is spent all the same
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await service.endTitles({ userId: carol, deviceType: 'Web' }, budget), [])
  }
  await assert.rejects(service.endTitles({ userId: carol, deviceType: 'Web' }, budget), {
    code: 'RATE_LIMITED',
  })
  clock.advance(15_000)
  assert.equal((await service.endTitles({ userId: carol, deviceType: 'PC' }, budget)).length, 1)
})

test('endTitles leaves no title running that started while its budgets were counted', async (t) => {
  // a limiter the store cannot count with in its own step: the service counts first, then ends;
  // a title started during that count is ended too, not left running
  const inner = new MemoryRateLimiter()
  let during: (() => Promise<unknown>) | undefined
  const limiter: RateLimiter = {
    async hit(key, rules, now) {
      const verdict = await inner.hit(key, rules, now)
      const started = during
      during = undefined
      await started?.()
      return verdict
    },
  }
  const { service } = setup(t, limiter)
  const title = (titleId: string) =>
    service.titleHeartbeat({ userId: carol, titleId, deviceType: 'XboxOne' })
  await title('1234')
  during = () => title('5678')
  const budget = service.limits.titleWrites(carol, '1')
  const changes = await service.endTitles({ userId: carol, deviceType: 'XboxOne' }, budget)
  assert.equal(during, undefined, 'the title started while the budgets were counted')
  assert.deepEqual(
    changes.map((c) => c.ended?.map((s) => s.key)),
    [['title:1234:XboxOne'], ['title:5678:XboxOne']],
  )
  assert.deepEqual(await titlesOf(service, carol), [])
})
