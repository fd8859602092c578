import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  PresenceType,
  atInstant,
  deriveUserState,
  inheritActivity,
  instantBefore,
  instantBeforeUnswept,
  isLive,
  liveSessions,
  offlinePresence,
  primarySession,
  sweptAt,
  type Activity,
  type ActivityKind,
  type PresenceChange,
  type Session,
} from './presence.js'
import type { UserId } from './user-id.js'

const T0 = Date.UTC(2026, 0, 1)
const user = '42' as UserId

function session(key: string, kind: ActivityKind, expiresAt: number, updatedAt = T0): Session {
  return {
    userId: user,
    key,
    source: 'app',
    deviceType: 'PC',
    startedAt: T0,
    updatedAt,
    expiresAt,
    activity: { kind },
  }
}

test('a session is live strictly before expiresAt', () => {
  assert.equal(isLive({ expiresAt: T0 + 1 }, T0), true)
  assert.equal(isLive({ expiresAt: T0 }, T0), false)
  assert.equal(isLive({ expiresAt: T0 - 1 }, T0), false)
})

test('state precedence: InStudio > InGame > Online > Offline', () => {
  const later = T0 + 1000
  const cases: Array<[ActivityKind[], PresenceType]> = [
    [[], PresenceType.Offline],
    [['online'], PresenceType.Online],
    [['inGame'], PresenceType.InGame],
    [['inStudio'], PresenceType.InStudio],
    [['online', 'inGame'], PresenceType.InGame],
    [['inGame', 'online'], PresenceType.InGame],
    [['online', 'inStudio', 'inGame'], PresenceType.InStudio],
    [['inStudio', 'online'], PresenceType.InStudio],
  ]
  for (const [kinds, expected] of cases) {
    const sessions = kinds.map((kind, i) => session(`s${i}`, kind, later))
    assert.equal(deriveUserState(sessions, T0), expected, `${kinds.join(',')}`)
  }
})

test('only live sessions count towards the state', () => {
  const sessions = [session('studio', 'inStudio', T0 + 10), session('app', 'online', T0 + 100)]
  assert.equal(deriveUserState(sessions, T0 + 9), PresenceType.InStudio)
  assert.equal(deriveUserState(sessions, T0 + 10), PresenceType.Online)
  assert.equal(deriveUserState(sessions, T0 + 100), PresenceType.Offline)
  assert.deepEqual(
    liveSessions(sessions, T0 + 10).map((s) => s.key),
    ['app'],
  )
})

test('primarySession: highest kind wins, then the most recently updated', () => {
  const exp = T0 + 10_000
  const phone = session('phone', 'online', exp, T0 + 5)
  const game = session('game', 'inGame', exp, T0 + 1)
  const game2 = session('game2', 'inGame', exp, T0 + 3)
  const game3 = session('game3', 'inGame', exp, T0 + 3)
  assert.equal(primarySession([], T0), undefined)
  assert.equal(primarySession([phone], T0)?.key, 'phone')
  assert.equal(primarySession([phone, game], T0)?.key, 'game')
  assert.equal(primarySession([game, phone, game2], T0)?.key, 'game2')
  assert.equal(primarySession([game2, game], T0)?.key, 'game2')
  // an exact tie keeps the first in order, so the answer is stable
  assert.equal(primarySession([game2, game3], T0)?.key, 'game2')
  assert.equal(primarySession([game3, game2], T0)?.key, 'game3')
})

test('primarySession ignores expired sessions', () => {
  const studio = session('studio', 'inStudio', T0 + 5, T0 + 4)
  const phone = session('phone', 'online', T0 + 50)
  assert.equal(primarySession([studio, phone], T0 + 4)?.key, 'studio')
  assert.equal(primarySession([studio, phone], T0 + 5)?.key, 'phone')
  assert.equal(primarySession([studio, phone], T0 + 50), undefined)
})

test('atInstant drops expired sessions and keeps lastOnline', () => {
  const presence = {
    userId: user,
    sessions: [session('a', 'online', T0 + 5), session('b', 'inGame', T0 + 50)],
    lastOnline: T0,
  }
  assert.equal(atInstant(presence, T0), presence)
  const later = atInstant(presence, T0 + 5)
  assert.deepEqual(
    later.sessions.map((s) => s.key),
    ['b'],
  )
  assert.equal(later.lastOnline, T0)
  assert.equal(presence.sessions.length, 2, 'the input is not modified')
  assert.deepEqual(atInstant(presence, T0 + 50).sessions, [])
})

test('sweptAt drops expired sessions and moves lastOnline to their last heartbeat, never back', () => {
  const presence = {
    userId: user,
    sessions: [
      session('a', 'online', T0 + 5, T0 + 3),
      session('b', 'inGame', T0 + 9, T0 + 4),
      session('c', 'inGame', T0 + 50, T0 + 6),
    ],
    lastOnline: T0,
  }
  assert.equal(sweptAt(presence, T0 + 4), presence)
  const swept = sweptAt(presence, T0 + 9)
  assert.deepEqual(
    swept.sessions.map((s) => s.key),
    ['c'],
  )
  assert.equal(swept.lastOnline, T0 + 4)
  assert.equal(sweptAt({ ...presence, lastOnline: T0 + 7 }, T0 + 9).lastOnline, T0 + 7)
  assert.equal(sweptAt({ ...presence, lastOnline: undefined }, T0 + 5).lastOnline, T0 + 3)
})

test('offlinePresence', () => {
  assert.deepEqual(offlinePresence(user), { userId: '42', sessions: [], lastOnline: undefined })
  assert.deepEqual(offlinePresence(user, T0), { userId: '42', sessions: [], lastOnline: T0 })
})

test('inheritActivity: the listed members the previous activity has win, in the same key order', () => {
  const write: Activity = { kind: 'online', titleId: '1', placement: 'full', titleState: 'active' }
  const rich = { id: 'menu', params: [] }
  const previous: Activity = { kind: 'online', titleId: '1', placement: 'fill', richPresence: rich }
  assert.equal(inheritActivity(write, undefined, ['placement']), write)
  assert.equal(inheritActivity(write, previous, []), write)
  // the previous activity has no titleState: the write's stands
  assert.equal(inheritActivity(write, previous, ['titleState']), write)
  const merged = inheritActivity(write, previous, ['placement', 'titleState', 'richPresence'])
  assert.deepEqual(merged, { ...write, placement: 'fill', richPresence: rich })
  assert.deepEqual(Object.keys(merged), [
    'kind',
    'titleId',
    'placement',
    'titleState',
    'richPresence',
  ])
  assert.deepEqual(write, { kind: 'online', titleId: '1', placement: 'full', titleState: 'active' })
})

test('a session ended by expiry is read alive just before it expired', () => {
  // last beaten a minute before it expired: the user's last write
  const expired = session('app:PC', 'inGame', T0 - 10, T0 - 60_010)
  const change: PresenceChange = {
    userId: user,
    before: { userId: user, sessions: [expired], lastOnline: T0 - 60_010 },
    after: { userId: user, sessions: [], lastOnline: T0 - 60_010 },
    reason: 'timeout',
    ended: [expired],
  }
  assert.equal(instantBefore(change, T0), T0 - 11)
  assert.equal(instantBefore({ ...change, ended: [] }, T0), T0)
})

test('an expiry is never read alive after a later write found the user offline', () => {
  // the PC expired at T0 - 10; the phone started later and ended at T0 - 5 (told offline then)
  const expired = session('app:PC', 'inGame', T0 - 10, T0 - 60_010)
  const swept: PresenceChange = {
    userId: user,
    before: { userId: user, sessions: [expired], lastOnline: T0 - 5 },
    after: { userId: user, sessions: [], lastOnline: T0 - 5 },
    reason: 'timeout',
    ended: [expired],
  }
  assert.equal(instantBefore(swept, T0), T0 - 5)
  assert.equal(instantBeforeUnswept(swept.before, T0), T0 - 5)
  // a write that left a session alive (the phone still on): the expiry is read as it happened
  const phone = session('app:Phone', 'online', T0 + 60_000, T0 - 5)
  const both = { userId: user, sessions: [expired, phone], lastOnline: T0 - 5 }
  assert.equal(instantBefore({ ...swept, before: both }, T0), T0 - 11)
  assert.equal(instantBeforeUnswept(both, T0), T0 - 11)
  // a last write later than the change's own instant (another node's clock ahead): read at the change
  const ahead = { ...swept.before, lastOnline: T0 + 50 }
  assert.equal(instantBefore({ ...swept, before: ahead }, T0), T0)
})

test('a settings change reads its before just before the first expired session not swept yet', () => {
  const live = session('app:PC', 'inGame', T0 + 60_000)
  const expired = session('app:Web', 'inGame', T0 - 2000)
  const later = session('app:Phone', 'inGame', T0 - 500)
  const presence = { userId: user, sessions: [live, later, expired], lastOnline: T0 }
  assert.equal(instantBeforeUnswept(presence, T0), T0 - 2001)
  assert.equal(
    instantBeforeUnswept({ ...presence, sessions: [live] }, T0),
    T0,
    'nothing expired: the change instant',
  )
})
