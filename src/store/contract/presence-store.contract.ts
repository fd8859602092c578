/**
 * The PresenceStore contract: every adapter must pass it against its real backend.
 *
 * @example
 * presenceStoreContract('memory', async () => {
 *   const store = new MemoryPresenceStore()
 *   const privacy = new SqliteProfileStore(dir)
 *   return { store, privacy, cleanup: () => Promise.all([store.close(), privacy.close()]) }
 * })
 *
 * The factory must return a fresh, empty store for every test, with the PrivacyStore it is deployed
 * beside (whose settings replaceSettingsAfterExpiry writes); `cleanup` closes both and deletes
 * whatever they wrote (e.g. their Redis keys). Every call passes an explicit `now`, so no test waits.
 */
import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import {
  PresenceType,
  type Activity,
  type InheritedField,
  type Session,
} from '../../core/presence.js'
import { summaryOf, type PresenceSummary, type UserSettings } from '../../core/privacy.js'
import { parseUserId, type UserId } from '../../core/user-id.js'
import {
  MAX_SESSIONS_PER_USER,
  type PresenceChange,
  type PresenceStore,
  type SessionWrite,
} from '../presence-store.js'
import type { PrivacyStore } from '../privacy-store.js'
import { serverRosterContract } from './server-roster.contract.js'

export type PresenceStoreFactory = () => Promise<{
  store: PresenceStore
  /** Where the users' settings are kept beside `store` (replaceSettingsAfterExpiry). */
  privacy: PrivacyStore
  cleanup(): Promise<void>
}>

const T0 = Date.UTC(2026, 0, 1)
const TTL = 60_000

/** Also the defaults, which a user who never wrote any has. */
const EVERYONE: UserSettings = { visibility: 'everyone', invisible: false }
const FRIENDS: UserSettings = { visibility: 'friends', invisible: false }
const NOBODY: UserSettings = { visibility: 'nobody', invisible: false }

function id(value: string): UserId {
  const parsed = parseUserId(value)
  assert.ok(parsed, `test id ${value} must be valid`)
  return parsed
}

function write(userId: UserId, key = 'app:iOS', extra: Partial<SessionWrite> = {}): SessionWrite {
  return {
    userId,
    key,
    source: 'app',
    deviceType: 'iOS',
    activity: { kind: 'online' },
    ttlMs: TTL,
    ...extra,
  }
}

function keys(sessions: readonly Session[]): string[] {
  return sessions.map((s) => s.key).sort()
}

function endedKeys(changes: readonly PresenceChange[]): string[] {
  return changes.flatMap((c) => (c.ended ?? []).map((s) => `${c.userId}/${s.key}`)).sort()
}

export function presenceStoreContract(name: string, factory: PresenceStoreFactory): void {
  async function open(t: TestContext): Promise<PresenceStore> {
    return (await openBoth(t)).store
  }

  async function openBoth(
    t: TestContext,
  ): Promise<{ store: PresenceStore; privacy: PrivacyStore }> {
    const { store, privacy, cleanup } = await factory()
    t.after(cleanup)
    return { store, privacy }
  }

  describe(`PresenceStore contract: ${name}`, () => {
    test('is ready and starts empty', async (t) => {
      const store = await open(t)
      assert.equal(await store.ready(), true)
      assert.deepEqual(await store.stats(T0), { sessions: 0, users: 0 })
      const [presence] = await store.getMany([id('1')], T0)
      assert.deepEqual(presence, { userId: '1', sessions: [], lastOnline: undefined })
    })

    test(`a user holds at most ${MAX_SESSIONS_PER_USER} live sessions: a new one ends the one beaten least recently`, async (t) => {
      const store = await open(t)
      const user = id('7700')
      const max = MAX_SESSIONS_PER_USER
      for (let i = 0; i < max; i++) await store.heartbeat(write(user, `app:p${i}`), T0 + i)
      // p0 beats again: p1 is now the one beaten least recently
      await store.heartbeat(write(user, 'app:p0'), T0 + max)
      const refreshed = await store.heartbeat(write(user, 'app:p0'), T0 + max + 1)
      assert.equal(refreshed.after.sessions.length, max, 'a refresh at the cap ends nothing')
      const change = await store.heartbeat(write(user, 'app:new'), T0 + max + 2)
      const expected = [...Array.from({ length: max }, (_, i) => `app:p${i}`), 'app:new']
        .filter((key) => key !== 'app:p1')
        .sort()
      assert.deepEqual(keys(change.before.sessions).length, max)
      assert.deepEqual(keys(change.after.sessions), expected)
      const [read] = await store.getMany([user], T0 + max + 3)
      assert.deepEqual(keys(read!.sessions), expected)
      assert.deepEqual(await store.stats(T0 + max + 3), { sessions: max, users: 1 })
      // a game server placing the player makes room the same way: p2 goes
      if (store.reportServer) {
        const gameId = '3f0c2b0e-8d1a-4c55-9b1e-2f7a8c9d0e1f'
        await store.reportServer(
          {
            gameId,
            players: [user],
            activity: { kind: 'inGame', placeId: '1818', gameId },
            deviceType: 'GameServer',
            ttlMs: TTL,
          },
          T0 + max + 4,
        )
        const [placed] = await store.getMany([user], T0 + max + 5)
        assert.equal(placed!.sessions.length, max)
        assert.ok(placed!.sessions.some((s) => s.source === 'server'))
        assert.ok(!placed!.sessions.some((s) => s.key === 'app:p2'))
        assert.deepEqual(await store.stats(T0 + max + 5), { sessions: max, users: 1 })
      }
    })

    test('sessions past their expiry take no room among the live ones', async (t) => {
      const store = await open(t)
      const user = id('7701')
      const max = MAX_SESSIONS_PER_USER
      await store.heartbeat(write(user, 'app:short', { ttlMs: 10 }), T0)
      for (let i = 0; i < max; i++) await store.heartbeat(write(user, `app:p${i}`), T0 + 100 + i)
      const [read] = await store.getMany([user], T0 + 200)
      assert.deepEqual(
        keys(read!.sessions),
        Array.from({ length: max }, (_, i) => `app:p${i}`).sort(),
      )
    })

    test('heartbeat creates a session and reports before/after', async (t) => {
      const store = await open(t)
      const activity: Activity = {
        kind: 'inGame',
        placeId: '1818',
        rootPlaceId: '1818',
        universeId: '13058',
        gameId: '7a4e3c2b-0000-4000-8000-000000000001',
        location: 'Crossroads',
      }
      const change = await store.heartbeat(
        write(id('42'), 'app:Android', { deviceType: 'Android', activity }),
        T0,
      )
      assert.equal(change.userId, '42')
      assert.deepEqual(change.before.sessions, [])
      assert.equal(change.reason, undefined)
      assert.equal(change.ended, undefined)
      const expected: Session = {
        userId: id('42'),
        key: 'app:Android',
        source: 'app',
        deviceType: 'Android',
        startedAt: T0,
        updatedAt: T0,
        expiresAt: T0 + TTL,
        activity,
      }
      assert.deepEqual(change.after.sessions, [expected])
      assert.equal(change.after.lastOnline, T0)
      const [read] = await store.getMany([id('42')], T0 + 1)
      assert.deepEqual(read!.sessions, [expected])
      assert.equal(read!.lastOnline, T0)
    })

    test('heartbeat refresh keeps startedAt, moves expiresAt and updatedAt', async (t) => {
      const store = await open(t)
      const user = id('7')
      await store.heartbeat(write(user), T0)
      const change = await store.heartbeat(
        write(user, 'app:iOS', { activity: { kind: 'inGame', placeId: '99' } }),
        T0 + 20_000,
      )
      assert.equal(change.before.sessions.length, 1)
      assert.equal(change.before.sessions[0]!.expiresAt, T0 + TTL)
      assert.deepEqual(change.before.sessions[0]!.activity, { kind: 'online' })
      assert.equal(change.after.sessions.length, 1)
      const session = change.after.sessions[0]!
      assert.equal(session.startedAt, T0)
      assert.equal(session.updatedAt, T0 + 20_000)
      assert.equal(session.expiresAt, T0 + 20_000 + TTL)
      assert.deepEqual(session.activity, { kind: 'inGame', placeId: '99' })
      assert.deepEqual(await store.stats(T0 + 20_000), { sessions: 1, users: 1 })
    })

    test('a write takes the members it inherits from the live session it refreshes', async (t) => {
      const store = await open(t)
      const user = id('2533274790395904')
      const key = 'title:1234:XboxOne'
      const all: InheritedField[] = ['placement', 'titleState', 'richPresence']
      const title = (at: number, activity: Partial<Activity>, inherit?: InheritedField[]) =>
        store.heartbeat(
          write(user, key, {
            source: 'title',
            deviceType: 'XboxOne',
            activity: { kind: 'online', titleId: '1234', ...activity },
            ...(inherit && { inherit }),
          }),
          at,
        )
      const sessionsAt = async (at: number) => (await store.getMany([user], at))[0]!.sessions
      // strings with the characters a stored line is made of
      const rich = { id: 'say "a,[b]"', params: ['x]', '[,"\\', ''], scid: 'c0ffee' }
      const defaults = { placement: 'full', titleState: 'active' } as const

      // nothing to inherit from: the write's own values
      let change = await title(T0, defaults, all)
      assert.deepEqual(change.after.sessions[0]!.activity, {
        kind: 'online',
        titleId: '1234',
        ...defaults,
      })
      await title(T0 + 1, { placement: 'fill', titleState: 'inactive', richPresence: rich })
      const full = { kind: 'online', titleId: '1234', placement: 'fill', titleState: 'inactive' }
      // every member inherited: nothing changes but the expiry
      change = await title(T0 + 2, defaults, all)
      assert.deepEqual(change.before.sessions[0]!.activity, { ...full, richPresence: rich })
      assert.deepEqual(change.after.sessions[0]!.activity, { ...full, richPresence: rich })
      assert.equal(change.after.sessions[0]!.expiresAt, T0 + 2 + TTL)
      // only what is inherited is taken
      change = await title(T0 + 3, { placement: 'snapped', titleState: 'active' }, ['richPresence'])
      const snapped = { ...full, placement: 'snapped', titleState: 'active', richPresence: rich }
      assert.deepEqual(change.after.sessions[0]!.activity, snapped)
      // members of the write that sit after absent ones, and one it lacks
      change = await title(T0 + 4, {}, ['titleState'])
      assert.deepEqual(change.after.sessions[0]!.activity, {
        kind: 'online',
        titleId: '1234',
        titleState: 'active',
      })
      // a member the previous session lacks is not taken
      change = await title(T0 + 5, { richPresence: { id: 'lobby', params: [] } }, [
        'placement',
        'titleState',
      ])
      assert.deepEqual(change.after.sessions[0]!.activity, {
        kind: 'online',
        titleId: '1234',
        titleState: 'active',
        richPresence: { id: 'lobby', params: [] },
      })
      assert.deepEqual(
        (await sessionsAt(T0 + 6)).map((s) => s.activity),
        [change.after.sessions[0]!.activity],
      )
      // never from another key's session
      change = await store.heartbeat(
        write(user, 'title:1234:PC', {
          source: 'title',
          deviceType: 'PC',
          activity: { kind: 'online', titleId: '1234', ...defaults },
          inherit: all,
        }),
        T0 + 7,
      )
      assert.deepEqual(change.after.sessions.find((s) => s.key === 'title:1234:PC')!.activity, {
        kind: 'online',
        titleId: '1234',
        ...defaults,
      })
      // never from a session past its expiry
      const later = T0 + 5 + TTL
      change = await title(later, defaults, all)
      assert.deepEqual(change.after.sessions.find((s) => s.key === key)!.activity, {
        kind: 'online',
        titleId: '1234',
        ...defaults,
      })
      assert.equal(change.after.sessions.find((s) => s.key === key)!.startedAt, later)
    })

    test('a heartbeat after expiry starts a new session', async (t) => {
      const store = await open(t)
      const user = id('8')
      await store.heartbeat(write(user), T0)
      const later = T0 + TTL + 5_000
      const change = await store.heartbeat(write(user), later)
      assert.deepEqual(change.before.sessions, [])
      assert.equal(change.after.sessions[0]!.startedAt, later)
      assert.equal(change.after.sessions[0]!.expiresAt, later + TTL)
      // the replaced session must not be swept as a timeout later on
      const swept = await store.sweepExpired(later + 1, 100)
      assert.deepEqual(swept, [])
      assert.equal((await store.getMany([user], later + 1))[0]!.sessions.length, 1)
    })

    test('a heartbeat ends every session of the user past expiry and returns them: no sweep finds them', async (t) => {
      const store = await open(t)
      const user = id('8801')
      await store.heartbeat(write(user, 'app:PC', { deviceType: 'PC' }), T0)
      await store.heartbeat(write(user, 'app:iOS', { ttlMs: TTL * 2 }), T0 + 1)
      // the PC expired, not swept; the phone is live and refreshed: no refresh, the PC ended
      const at = T0 + TTL + 10
      const refresh = await store.heartbeat(write(user, 'app:iOS', { ttlMs: TTL * 2 }), at)
      assert.deepEqual(keys(refresh.before.sessions), ['app:iOS'])
      assert.deepEqual(keys(refresh.after.sessions), ['app:iOS'])
      assert.deepEqual(keys(refresh.expired ?? []), ['app:PC'])
      assert.equal(refresh.expired![0]!.expiresAt, T0 + TTL)
      assert.equal(refresh.expired![0]!.deviceType, 'PC')
      assert.deepEqual(await store.stats(at), { sessions: 1, users: 1 })
      // the phone expires too, then it and a new device beat: each expired session once
      const later = at + TTL * 2 + 10
      const again = await store.heartbeat(write(user, 'app:iOS'), later)
      assert.deepEqual(keys(again.before.sessions), [])
      assert.deepEqual(keys(again.expired ?? []), ['app:iOS'])
      assert.equal(again.expired![0]!.expiresAt, at + TTL * 2)
      assert.equal(again.after.sessions[0]!.startedAt, later)
      const fresh = await store.heartbeat(write(user, 'app:PC'), later + 1)
      assert.equal(fresh.expired, undefined)
      assert.deepEqual(await store.sweepExpired(later + 2, 100), [])
      assert.deepEqual(await store.stats(later + 2), { sessions: 2, users: 1 })
    })

    test('end ends the user’s other sessions past expiry too and returns them: no sweep finds them', async (t) => {
      const store = await open(t)
      const user = id('8802')
      await store.heartbeat(write(user, 'app:PC', { deviceType: 'PC' }), T0)
      await store.heartbeat(write(user, 'app:iOS', { ttlMs: TTL * 2 }), T0 + 1)
      const at = T0 + TTL + 10
      const change = await store.end(user, 'app:iOS', at, 'explicit')
      assert.deepEqual(keys(change!.before.sessions), ['app:iOS'])
      assert.deepEqual(keys(change!.ended ?? []), ['app:iOS'])
      assert.deepEqual(keys(change!.expired ?? []), ['app:PC'])
      assert.equal(change!.expired![0]!.expiresAt, T0 + TTL)
      assert.deepEqual(change!.after.sessions, [])
      assert.deepEqual(await store.sweepExpired(at + 1, 100), [])
      assert.deepEqual(await store.stats(at + 1), { sessions: 0, users: 0 })
    })

    test('expire ends the user’s sessions past expiry as a sweep would: no later sweep or write reports them', async (t) => {
      const store = await open(t)
      const user = id('8803')
      await store.heartbeat(write(user, 'app:PC', { deviceType: 'PC' }), T0)
      await store.heartbeat(write(user, 'app:iOS', { ttlMs: TTL * 2 }), T0 + 1)
      await store.heartbeat(write(id('8804')), T0)
      const at = T0 + TTL + 10
      const change = await store.expire(user, at)
      assert.ok(change)
      assert.equal(change.userId, user)
      assert.equal(change.reason, 'timeout')
      assert.deepEqual(keys(change.before.sessions), ['app:PC', 'app:iOS'])
      assert.deepEqual(keys(change.ended ?? []), ['app:PC'])
      assert.equal(change.ended![0]!.expiresAt, T0 + TTL)
      assert.deepEqual(keys(change.after.sessions), ['app:iOS'])
      assert.equal(change.expired, undefined)
      assert.equal(change.after.lastOnline, T0 + 1)
      assert.deepEqual(await store.stats(at), { sessions: 2, users: 2 })
      // told once: neither the sweep nor the user's next write finds it again
      assert.equal(await store.expire(user, at + 1), undefined)
      assert.deepEqual(endedKeys(await store.sweepExpired(at + 1, 100)), ['8804/app:iOS'])
      const next = await store.heartbeat(write(user, 'app:iOS', { ttlMs: TTL * 2 }), at + 2)
      assert.equal(next.expired, undefined)
      // every session past expiry: the user is offline after, lastOnline their last heartbeat
      const later = at + 2 + TTL * 2
      const last = await store.expire(user, later)
      assert.deepEqual(keys(last?.ended ?? []), ['app:iOS'])
      assert.deepEqual(last!.after.sessions, [])
      assert.equal(last!.after.lastOnline, at + 2)
      assert.deepEqual(await store.sweepExpired(later + 1, 100), [])
      assert.deepEqual(await store.stats(later + 1), { sessions: 0, users: 0 })
      const [read] = await store.getMany([user], -Infinity)
      assert.deepEqual(read, { userId: user, sessions: [], lastOnline: at + 2 })
    })

    test('expire is nothing when no session of the user expired', async (t) => {
      const store = await open(t)
      const user = id('8805')
      assert.equal(await store.expire(user, T0), undefined)
      await store.heartbeat(write(user), T0)
      assert.equal(await store.expire(user, T0 + TTL - 1), undefined)
      assert.deepEqual(keys((await store.getMany([user], T0 + TTL - 1))[0]!.sessions), ['app:iOS'])
      assert.deepEqual(await store.stats(T0 + 1), { sessions: 1, users: 1 })
      // swept already: nothing left to end
      assert.deepEqual(endedKeys(await store.sweepExpired(T0 + TTL, 100)), ['8805/app:iOS'])
      assert.equal(await store.expire(user, T0 + TTL + 1), undefined)
    })

    test('replaceSettingsAfterExpiry ends the user’s expired sessions in the step that stores the settings, judged by those it replaces', async (t) => {
      const { store, privacy } = await openBoth(t)
      const user = id('8806')
      await privacy.putSettings(user, NOBODY)
      await store.heartbeat(write(user, 'app:PC', { deviceType: 'PC' }), T0)
      await store.heartbeat(write(user, 'app:iOS', { ttlMs: TTL * 2 }), T0 + 1)
      const at = T0 + TTL + 10
      const [done, ...others] = await store.replaceSettingsAfterExpiry(
        [{ userId: user, expected: NOBODY, next: EVERYONE }],
        at,
        privacy,
      )
      assert.equal(others.length, 0)
      assert.equal(done!.landed, true)
      const change = done!.expired
      assert.ok(change)
      assert.equal(change.reason, 'timeout')
      assert.deepEqual(keys(change.before.sessions), ['app:PC', 'app:iOS'])
      assert.deepEqual(keys(change.ended ?? []), ['app:PC'])
      assert.deepEqual(keys(change.after.sessions), ['app:iOS'])
      assert.equal(change.after.lastOnline, T0 + 1)
      // judged by the settings in force as it was made: those the write replaced
      assert.equal(change.settings?.visibility, 'nobody')
      assert.equal((await privacy.getSettings([user]))[0]!.visibility, 'everyone')
      // claimed once: no sweep, expiry or write finds it after
      assert.equal(await store.expire(user, at + 1), undefined)
      assert.deepEqual(await store.sweepExpired(at + 1, 100), [])
      const next = await store.heartbeat(write(user, 'app:iOS', { ttlMs: TTL * 2 }), at + 2)
      assert.equal(next.expired, undefined)
      const [read] = await store.getMany([user], -Infinity)
      assert.deepEqual(keys(read!.sessions), ['app:iOS'])
    })

    test('replaceSettingsAfterExpiry: settings no longer expected are not stored, the expiry is made all the same', async (t) => {
      const { store, privacy } = await openBoth(t)
      const user = id('8807')
      await privacy.putSettings(user, FRIENDS)
      await store.heartbeat(write(user, 'app:PC', { deviceType: 'PC' }), T0)
      const at = T0 + TTL
      const [done] = await store.replaceSettingsAfterExpiry(
        [{ userId: user, expected: NOBODY, next: EVERYONE }],
        at,
        privacy,
      )
      assert.equal(done!.landed, false)
      assert.deepEqual(keys(done!.expired?.ended ?? []), ['app:PC'])
      assert.deepEqual(done!.expired!.after.sessions, [])
      assert.equal(done!.expired!.settings?.visibility, 'friends')
      assert.equal((await privacy.getSettings([user]))[0]!.visibility, 'friends')
      assert.deepEqual(await store.sweepExpired(at + 1, 100), [])
      assert.deepEqual(await store.stats(at + 1), { sessions: 0, users: 0 })
    })

    test('replaceSettingsAfterExpiry: nothing expired, the settings alone; a user’s writes in order', async (t) => {
      const { store, privacy } = await openBoth(t)
      const [live, idle, absent] = [id('8808'), id('8809'), id('8810')]
      await store.heartbeat(write(live), T0)
      const done = await store.replaceSettingsAfterExpiry(
        [
          { userId: live, expected: EVERYONE, next: NOBODY },
          { userId: idle, expected: EVERYONE, next: FRIENDS },
          { userId: live, expected: NOBODY, next: FRIENDS },
          // expects what it replaced two writes ago: refused
          { userId: live, expected: NOBODY, next: EVERYONE },
          { userId: absent, expected: FRIENDS, next: EVERYONE },
        ],
        T0 + 1,
        privacy,
      )
      assert.deepEqual(
        done.map((d) => d.landed),
        [true, true, true, false, false],
      )
      assert.ok(done.every((d) => d.expired === undefined))
      const settings = await privacy.getSettings([live, idle, absent])
      assert.deepEqual(
        settings.map((s) => s.visibility),
        ['friends', 'friends', 'everyone'],
      )
      assert.deepEqual(keys((await store.getMany([live], T0 + 1))[0]!.sessions), ['app:iOS'])
      assert.deepEqual(await store.stats(T0 + 1), { sessions: 1, users: 1 })
    })

    test('each device is its own session', async (t) => {
      const store = await open(t)
      const user = id('9')
      await store.heartbeat(write(user, 'app:iOS'), T0)
      const change = await store.heartbeat(
        write(user, 'studio:PC', { deviceType: 'PC', activity: { kind: 'inStudio' } }),
        T0 + 1,
      )
      assert.deepEqual(keys(change.before.sessions), ['app:iOS'])
      assert.deepEqual(keys(change.after.sessions), ['app:iOS', 'studio:PC'])
      assert.deepEqual(await store.stats(T0 + 1), { sessions: 2, users: 1 })
    })

    test('getMany answers in order, one per entry, unknown and duplicate ids included', async (t) => {
      const store = await open(t)
      await store.heartbeat(write(id('1')), T0)
      await store.heartbeat(write(id('3')), T0)
      const ids = [id('3'), id('2'), id('1'), id('3'), id('1000')]
      const presences = await store.getMany(ids, T0 + 1)
      assert.deepEqual(
        presences.map((p) => p.userId),
        ids,
      )
      assert.deepEqual(
        presences.map((p) => p.sessions.length),
        [1, 0, 1, 1, 0],
      )
      assert.equal(presences[1]!.lastOnline, undefined)
      assert.deepEqual(await store.getMany([], T0), [])
    })

    test('reads never show a session at or past expiresAt, even before sweeping', async (t) => {
      const store = await open(t)
      const user = id('11')
      await store.heartbeat(write(user, 'app:iOS', { ttlMs: 1_000 }), T0)
      await store.heartbeat(write(user, 'app:PC', { ttlMs: 5_000, deviceType: 'PC' }), T0)
      const at = async (now: number) => keys((await store.getMany([user], now))[0]!.sessions)
      assert.deepEqual(await at(T0 + 999), ['app:PC', 'app:iOS'])
      assert.deepEqual(await at(T0 + 1_000), ['app:PC'])
      assert.deepEqual(await at(T0 + 4_999), ['app:PC'])
      assert.deepEqual(await at(T0 + 5_000), [])
      // a heartbeat's `before` is a read too
      const change = await store.heartbeat(write(id('11'), 'app:Web'), T0 + 6_000)
      assert.deepEqual(change.before.sessions, [])
      assert.equal(change.before.lastOnline, T0)
    })

    test('end removes one session and reports it', async (t) => {
      const store = await open(t)
      const user = id('12')
      await store.heartbeat(write(user, 'app:iOS'), T0)
      await store.heartbeat(write(user, 'app:PC', { deviceType: 'PC' }), T0)
      const change = await store.end(user, 'app:iOS', T0 + 10_000, 'explicit')
      assert.ok(change)
      assert.equal(change.userId, '12')
      assert.equal(change.reason, 'explicit')
      assert.deepEqual(keys(change.ended ?? []), ['app:iOS'])
      assert.deepEqual(keys(change.before.sessions), ['app:PC', 'app:iOS'])
      assert.deepEqual(keys(change.after.sessions), ['app:PC'])
      assert.equal(change.after.lastOnline, T0 + 10_000)
      assert.deepEqual(await store.stats(T0 + 10_000), { sessions: 1, users: 1 })

      const last = await store.end(user, 'app:PC', T0 + 11_000, 'explicit')
      assert.deepEqual(last?.after.sessions, [])
      assert.equal(last?.after.lastOnline, T0 + 11_000)
      assert.deepEqual(await store.stats(T0 + 11_000), { sessions: 0, users: 0 })
      // ended sessions are not swept again
      assert.deepEqual(await store.sweepExpired(T0 + 10 * TTL, 100), [])
    })

    test('endTitles ends the live title sessions of one device at once, one change each', async (t) => {
      const store = await open(t)
      const user = id('14')
      const title = (titleId: string, deviceType: string, ttlMs = TTL): SessionWrite => ({
        userId: user,
        key: `title:${titleId}:${deviceType}`,
        source: 'title',
        deviceType,
        activity: { kind: 'online', titleId, placement: 'full', titleState: 'active' },
        ttlMs,
      })
      const odd = 'Odd "\\,[é]'
      await store.heartbeat(title('1234', 'XboxOne'), T0)
      await store.heartbeat(title('9', 'XboxOne', 1000), T0)
      await store.heartbeat(write(user, 'app:XboxOne', { deviceType: 'XboxOne' }), T0)
      await store.heartbeat(title('1234', 'PC'), T0)
      await store.heartbeat(title('5678', 'XboxOne'), T0)
      await store.heartbeat(title('42', odd), T0)
      const now = T0 + 5000
      const ended = await store.endTitles(
        { userId: user, deviceType: 'XboxOne', reason: 'explicit' },
        now,
      )
      // the app session on the device is no title; the expired title 9 ends with the first
      // change, which tells it first (expired): no sweep finds it after
      assert.deepEqual(ended.titleIds, ['1234', '5678'])
      assert.equal(ended.changes.length, 2)
      const [first, second] = ended.changes
      assert.deepEqual(keys(first!.expired ?? []), ['title:9:XboxOne'])
      assert.equal(first!.expired![0]!.expiresAt, T0 + 1000)
      assert.equal(second!.expired, undefined)
      assert.deepEqual(
        first!.ended?.map((s) => s.key),
        ['title:1234:XboxOne'],
      )
      assert.deepEqual(
        second!.ended?.map((s) => s.key),
        ['title:5678:XboxOne'],
      )
      assert.deepEqual(keys(first!.before.sessions), [
        'app:XboxOne',
        'title:1234:PC',
        'title:1234:XboxOne',
        `title:42:${odd}`,
        'title:5678:XboxOne',
      ])
      // each change starts where the one before ended
      assert.deepEqual(keys(second!.before.sessions), keys(first!.after.sessions))
      assert.deepEqual(keys(second!.after.sessions), [
        'app:XboxOne',
        'title:1234:PC',
        `title:42:${odd}`,
      ])
      for (const change of ended.changes) {
        assert.equal(change.reason, 'explicit')
        assert.equal(change.userId, '14')
        assert.equal(change.after.lastOnline, now)
      }
      const [presence] = await store.getMany([user], now)
      assert.deepEqual(keys(presence!.sessions), [
        'app:XboxOne',
        'title:1234:PC',
        `title:42:${odd}`,
      ])
      // the expired title 9 ended too: no longer stored
      assert.deepEqual(await store.stats(now), { sessions: 3, users: 1 })

      // a device type with characters JSON escapes; a named title ends only its own session
      const oddEnded = await store.endTitles(
        { userId: user, deviceType: odd, reason: 'explicit' },
        now,
      )
      assert.deepEqual(oddEnded.titleIds, ['42'])
      assert.deepEqual(endedKeys(oddEnded.changes), [`14/title:42:${odd}`])
      const named = await store.endTitles(
        { userId: user, deviceType: 'PC', titleId: '1234', reason: 'explicit' },
        now,
      )
      assert.deepEqual(named.titleIds, ['1234'])
      assert.deepEqual(endedKeys(named.changes), ['14/title:1234:PC'])
      // nothing left to end: a named title the device does not run is not counted, nor others
      assert.deepEqual(
        await store.endTitles(
          { userId: user, deviceType: 'PC', titleId: '1234', reason: 'explicit' },
          now,
        ),
        { titleIds: [], changes: [] },
      )
      assert.deepEqual(
        await store.endTitles({ userId: user, deviceType: 'XboxOne', reason: 'explicit' }, now),
        { titleIds: [], changes: [] },
      )
      assert.deepEqual(
        await store.endTitles({ userId: id('15'), deviceType: 'XboxOne', reason: 'explicit' }, now),
        { titleIds: [], changes: [] },
      )
      // the expired title was told by the first end: the sweep finds nothing
      assert.deepEqual(await store.sweepExpired(now, 100), [])
      assert.deepEqual(keys((await store.getMany([user], now))[0]!.sessions), ['app:XboxOne'])
      assert.deepEqual(await store.stats(now), { sessions: 1, users: 1 })
    })

    test('end of an unknown or already-expired session is undefined', async (t) => {
      const store = await open(t)
      const user = id('13')
      assert.equal(await store.end(user, 'app:iOS', T0, 'explicit'), undefined)
      await store.heartbeat(write(user), T0)
      assert.equal(await store.end(user, 'app:PC', T0 + 1, 'explicit'), undefined)
      assert.equal(await store.end(user, 'app:iOS', T0 + TTL, 'explicit'), undefined)
      // the sweep still reports the expired session, exactly once
      const swept = await store.sweepExpired(T0 + TTL, 100)
      assert.deepEqual(endedKeys(swept), ['13/app:iOS'])
      assert.equal(swept[0]!.reason, 'timeout')
    })

    test('sweepExpired claims each expired session exactly once', async (t) => {
      const store = await open(t)
      await store.heartbeat(write(id('21')), T0)
      await store.heartbeat(write(id('22'), 'app:iOS', { ttlMs: 2 * TTL }), T0)
      assert.deepEqual(await store.sweepExpired(T0 + TTL - 1, 100), [])
      const first = await store.sweepExpired(T0 + TTL, 100)
      assert.deepEqual(endedKeys(first), ['21/app:iOS'])
      assert.deepEqual(await store.sweepExpired(T0 + TTL, 100), [])
      assert.deepEqual(await store.sweepExpired(T0 + TTL + 1, 100), [])
      assert.deepEqual(await store.stats(T0 + TTL), { sessions: 1, users: 1 })
      const second = await store.sweepExpired(T0 + 3 * TTL, 100)
      assert.deepEqual(endedKeys(second), ['22/app:iOS'])
      assert.deepEqual(await store.stats(T0 + 3 * TTL), { sessions: 0, users: 0 })
    })

    test('concurrent sweeps never claim a session twice', async (t) => {
      const store = await open(t)
      const users = Array.from({ length: 30 }, (_, i) => id(String(100 + i)))
      for (const user of users) {
        await store.heartbeat(write(user, 'app:iOS'), T0)
        await store.heartbeat(write(user, 'app:PC', { deviceType: 'PC' }), T0)
      }
      const now = T0 + TTL + 1
      const results = await Promise.all([
        store.sweepExpired(now, 1_000),
        store.sweepExpired(now, 1_000),
        store.sweepExpired(now, 1_000),
      ])
      const all = endedKeys(results.flat())
      assert.equal(all.length, 60)
      assert.equal(new Set(all).size, 60)
      assert.deepEqual(await store.sweepExpired(now, 1_000), [])
    })

    test('a sweep returns one timeout change per user, with before, after and ended', async (t) => {
      const store = await open(t)
      const user = id('31')
      await store.heartbeat(write(user, 'app:iOS'), T0)
      await store.heartbeat(write(user, 'app:PC', { deviceType: 'PC' }), T0 + 1_000)
      const changes = await store.sweepExpired(T0 + TTL + 1_000, 100)
      assert.equal(changes.length, 1)
      const change = changes[0]!
      assert.equal(change.userId, '31')
      assert.equal(change.reason, 'timeout')
      assert.deepEqual(keys(change.ended ?? []), ['app:PC', 'app:iOS'])
      assert.deepEqual(keys(change.before.sessions), ['app:PC', 'app:iOS'])
      assert.deepEqual(change.after.sessions, [])
      assert.equal(change.after.lastOnline, T0 + 1_000)
    })

    test('lastOnline becomes the last heartbeat time and stays after the sweep', async (t) => {
      const store = await open(t)
      const user = id('32')
      await store.heartbeat(write(user), T0)
      await store.heartbeat(write(user), T0 + 30_000)
      const expiry = T0 + 30_000 + TTL
      // before any sweep, an expired session leaves lastOnline at its last heartbeat
      assert.equal((await store.getMany([user], expiry + 5))[0]!.lastOnline, T0 + 30_000)
      const changes = await store.sweepExpired(expiry + 10, 100)
      assert.equal(changes[0]!.after.lastOnline, T0 + 30_000)
      const [later] = await store.getMany([user], expiry + 100 * TTL)
      assert.deepEqual(later, { userId: user, sessions: [], lastOnline: T0 + 30_000 })
    })

    test('a refreshed session is not swept at its old expiry', async (t) => {
      const store = await open(t)
      const user = id('33')
      await store.heartbeat(write(user), T0)
      await store.heartbeat(write(user), T0 + 50_000)
      assert.deepEqual(await store.sweepExpired(T0 + TTL + 1, 100), [])
      assert.equal((await store.getMany([user], T0 + TTL + 1))[0]!.sessions.length, 1)
      const changes = await store.sweepExpired(T0 + 50_000 + TTL, 100)
      assert.deepEqual(endedKeys(changes), ['33/app:iOS'])
    })

    test('sweepExpired respects its limit and finishes in later calls', async (t) => {
      const store = await open(t)
      for (let i = 0; i < 7; i++) await store.heartbeat(write(id(String(200 + i))), T0 + i)
      const now = T0 + TTL + 100
      const seen: string[] = []
      for (let round = 0; round < 10; round++) {
        const changes = await store.sweepExpired(now, 3)
        assert.ok(changes.length <= 3, `at most 3 per call, got ${changes.length}`)
        if (changes.length === 0) break
        seen.push(...endedKeys(changes))
      }
      assert.deepEqual(
        seen.sort(),
        Array.from({ length: 7 }, (_, i) => `${200 + i}/app:iOS`),
      )
      assert.deepEqual(await store.stats(now), { sessions: 0, users: 0 })
    })

    test('stats count sessions and users', async (t) => {
      const store = await open(t)
      await store.heartbeat(write(id('41'), 'app:iOS'), T0)
      await store.heartbeat(write(id('41'), 'app:PC'), T0)
      await store.heartbeat(write(id('42'), 'app:iOS'), T0)
      assert.deepEqual(await store.stats(T0 + 1), { sessions: 3, users: 2 })
      await store.end(id('41'), 'app:PC', T0 + 2, 'explicit')
      assert.deepEqual(await store.stats(T0 + 2), { sessions: 2, users: 2 })
    })

    test('liveUsers lists each live user once with its live sessions, in batches', async (t) => {
      const store = await open(t)
      if (!store.liveUsers) return t.skip('this adapter has no liveUsers')
      const game = { kind: 'inGame', placeId: '1818', universeId: '13058' } as const
      await store.heartbeat(write(id('51'), 'app:iOS'), T0)
      await store.heartbeat(write(id('51'), 'app:PC', { activity: game }), T0)
      await store.heartbeat(write(id('52'), 'app:iOS', { ttlMs: 10 }), T0)
      await store.heartbeat(write(id('9007199254740993'), 'app:iOS'), T0)
      for (let n = 60; n < 65; n++) await store.heartbeat(write(id(String(n))), T0)
      await store.end(id('60'), 'app:iOS', T0, 'explicit')
      const batches = []
      for await (const batch of store.liveUsers(T0 + 100, 2)) batches.push(batch)
      assert.ok(
        batches.every((b) => b.length >= 1 && b.length <= 2),
        'batches of at most 2',
      )
      const users = batches.flat()
      // 52 expired (not swept), 60 ended
      assert.deepEqual(users.map((u) => u.userId).sort(), [
        '51',
        '61',
        '62',
        '63',
        '64',
        '9007199254740993',
      ])
      const u51 = users.find((u) => u.userId === '51')!
      assert.deepEqual(
        u51.sessions
          .map((s) => ({ source: s.source, deviceType: s.deviceType, activity: s.activity }))
          .sort((a, b) => a.activity.kind.localeCompare(b.activity.kind)),
        [
          { source: 'app', deviceType: 'iOS', activity: game },
          { source: 'app', deviceType: 'iOS', activity: { kind: 'online' } },
        ],
      )
    })

    test('summarize is summaryOf what getMany reads, in order, without expired sessions', async (t) => {
      const store = await open(t)
      const game: Activity = {
        kind: 'inGame',
        placeId: '1818',
        rootPlaceId: '1818',
        universeId: '13058',
        gameId: '7a4e3c2b-0000-4000-8000-000000000001',
        location: 'Crossroads',
      }
      const studio: Activity = { kind: 'inStudio', placeId: '99', location: 'Studio' }
      // 21: one app session; 22: online, then a game (the game is primary); 23: two games, the
      // later one primary, and a studio session that expires first; 24: only an expired one
      await store.heartbeat(write(id('21')), T0)
      await store.heartbeat(write(id('22'), 'app:iOS'), T0)
      await store.heartbeat(write(id('22'), 'server:a', { source: 'server', activity: game }), T0)
      await store.heartbeat(write(id('23'), 'server:a', { source: 'server', activity: game }), T0)
      await store.heartbeat(
        write(id('23'), 'server:b', { source: 'server', activity: { ...game, gameId: 'b' } }),
        T0 + 5,
      )
      await store.heartbeat(
        write(id('23'), 'app:PC', { deviceType: 'PC', activity: studio, ttlMs: 1_000 }),
        T0,
      )
      await store.heartbeat(write(id('24'), 'app:iOS', { ttlMs: 1_000 }), T0)
      await store.heartbeat(write(id('9223372036854775807')), T0)
      const ids = [
        id('21'),
        id('22'),
        id('23'),
        id('24'),
        id('25'),
        id('23'),
        id('9223372036854775807'),
      ]
      for (const now of [T0 + 10, T0 + 999, T0 + 1_000, T0 + TTL + 10]) {
        const expected = (await store.getMany(ids, now)).map((p) => summaryOf(p, now))
        assert.deepEqual(valuesOf(await store.summarize(ids, now)), expected, `at T0 + ${now - T0}`)
        // with the values of the ids (each below 2^53), as a request's parser gives them
        const small = ids.slice(0, -1)
        assert.deepEqual(
          valuesOf(await store.summarize(small, now, small.map(Number))),
          expected.slice(0, -1),
        )
      }
      const [, , c, d, e] = await store.summarize(ids, T0 + 999)
      assert.equal(c!.state, PresenceType.InStudio)
      assert.equal(c!.activity?.kind, 'inStudio')
      assert.equal(c!.sessions, 3)
      assert.equal(c!.deviceType, 'PC')
      assert.equal(c!.source, 'app')
      assert.equal(d!.state, PresenceType.Online)
      assert.deepEqual(valuesOf([e!])[0], {
        userId: '25',
        state: PresenceType.Offline,
        activity: undefined,
        updatedAt: 0,
        lastOnline: undefined,
        sessions: 0,
        deviceType: '',
        source: 'app',
      })
      const [, b2, c2, d2] = await store.summarize(ids, T0 + 1_000)
      assert.equal(b2!.activity?.gameId, game.gameId)
      assert.equal(c2!.activity?.gameId, 'b')
      assert.equal(c2!.updatedAt, T0 + 5)
      assert.equal(c2!.sessions, 2)
      assert.equal(c2!.source, 'server')
      assert.equal(d2!.state, PresenceType.Offline)
      assert.equal(d2!.activity, undefined)
      assert.equal(d2!.lastOnline, T0)
      assert.deepEqual(await store.summarize([], T0), [])
    })

    test('int64 ids above 2^53 are kept exactly', async (t) => {
      const store = await open(t)
      const big = id('9007199254740993')
      const neighbour = id('9007199254740992')
      const max = id('9223372036854775807')
      await store.heartbeat(write(big, 'app:iOS', { activity: { kind: 'online' } }), T0)
      await store.heartbeat(
        write(max, 'app:iOS', {
          activity: {
            kind: 'inGame',
            placeId: '9223372036854775806',
            universeId: '9007199254740995',
          },
        }),
        T0,
      )
      const [a, b, c] = await store.getMany([big, neighbour, max], T0 + 1)
      assert.equal(a!.userId, '9007199254740993')
      assert.equal(a!.sessions.length, 1)
      assert.equal(a!.sessions[0]!.userId, '9007199254740993')
      assert.equal(b!.userId, '9007199254740992')
      assert.equal(b!.sessions.length, 0)
      assert.equal(c!.sessions[0]!.activity.placeId, '9223372036854775806')
      assert.equal(c!.sessions[0]!.activity.universeId, '9007199254740995')
      const ended = await store.end(max, 'app:iOS', T0 + 2, 'explicit')
      assert.equal(ended?.userId, '9223372036854775807')
      const swept = await store.sweepExpired(T0 + TTL, 100)
      assert.deepEqual(endedKeys(swept), ['9007199254740993/app:iOS'])
    })
  })
  serverRosterContract(name, factory)
}

/** Summaries without a store's `activityId` hint (not part of their value). */
function valuesOf(summaries: readonly PresenceSummary[]): PresenceSummary[] {
  return summaries.map(({ activityId: _, ...value }) => value)
}
