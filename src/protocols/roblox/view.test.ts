import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PresenceType, type Session } from '../../core/presence.js'
import type { VisiblePresence } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import { NEVER_ONLINE, robloxPresence, serializeRobloxPresence } from './view.js'

const show = { invisibleSelfView: 'state' } as const
const uid = '9223372036854775807' as UserId

function session(kind: Session['activity']['kind'], updatedAt: number, extra = {}): Session {
  return {
    userId: uid,
    key: `app:${kind}`,
    source: 'app',
    deviceType: 'PC',
    startedAt: 0,
    updatedAt,
    expiresAt: 10_000,
    activity: { kind, ...extra },
  }
}

function visible(over: Partial<VisiblePresence>): VisiblePresence {
  return {
    userId: uid,
    state: PresenceType.Offline,
    sessions: [],
    lastOnline: undefined,
    locationHidden: false,
    ...over,
  }
}

test('offline, never seen: epoch lastOnline, Offline location, null ids', () => {
  assert.deepEqual(robloxPresence(visible({}), show), {
    userPresenceType: 0,
    lastLocation: 'Offline',
    placeId: null,
    rootPlaceId: null,
    gameId: null,
    universeId: null,
    userId: uid,
    lastOnline: NEVER_ONLINE,
  })
  assert.match(NEVER_ONLINE, /Z$/)
})

test('the primary session gives the location; the state comes from the core', () => {
  const game = session('inGame', 5, {
    placeId: '1818',
    rootPlaceId: '1800',
    universeId: '13058',
    gameId: 'g',
    location: 'Crossroads',
  })
  const record = robloxPresence(
    visible({ state: PresenceType.InGame, sessions: [session('online', 9), game], lastOnline: 0 }),
    show,
  )
  assert.deepEqual(
    [record.userPresenceType, record.lastLocation, record.placeId, record.rootPlaceId],
    [2, 'Crossroads', '1818', '1800'],
  )
  assert.equal(record.lastOnline, '1970-01-01T00:00:00.000Z')
})

test('locationHidden: generic locations and null ids for every state', () => {
  const cases: Array<[Session['activity']['kind'], PresenceType, string]> = [
    ['online', PresenceType.Online, 'Website'],
    ['inGame', PresenceType.InGame, 'Playing'],
    ['inStudio', PresenceType.InStudio, 'Studio'],
  ]
  for (const [kind, state, location] of cases) {
    const record = robloxPresence(
      visible({ state, sessions: [session(kind, 1)], locationHidden: true, lastOnline: 1 }),
      show,
    )
    assert.deepEqual(
      [record.userPresenceType, record.lastLocation, record.placeId, record.gameId],
      [state, location, null, null],
    )
  }
})

test('an invisible user sees their real state by default; 4 or 0 when the operator says so', () => {
  const v = visible({
    state: PresenceType.Invisible,
    sessions: [session('online', 2), session('inGame', 1, { placeId: '5' })],
    lastOnline: Date.UTC(2026, 0, 1),
  })
  const real = robloxPresence(v, show)
  assert.deepEqual([real.userPresenceType, real.placeId], [PresenceType.InGame, '5'])
  const four = robloxPresence(v, { invisibleSelfView: 'invisible' })
  assert.deepEqual([four.userPresenceType, four.placeId], [PresenceType.Invisible, '5'])
  const old = robloxPresence(v, { invisibleSelfView: 'offline' })
  assert.deepEqual([old.userPresenceType, old.lastLocation, old.placeId], [0, 'Offline', null])
  assert.equal(old.lastOnline, '2026-01-01T00:00:00.000Z')
})

test('serialization writes int64 ids digit for digit and is valid JSON', () => {
  const record = robloxPresence(
    visible({
      state: PresenceType.InGame,
      sessions: [session('inGame', 1, { placeId: uid, location: 'a "quoted"\n name' })],
    }),
    show,
  )
  const json = serializeRobloxPresence(record)
  assert.ok(json.includes(`"placeId":${uid},`))
  assert.ok(json.includes(`"userId":${uid},`))
  const parsed = JSON.parse(json) as Record<string, unknown>
  assert.equal(parsed.lastLocation, 'a "quoted"\n name')
  assert.deepEqual(Object.keys(parsed), [
    'userPresenceType',
    'lastLocation',
    'placeId',
    'rootPlaceId',
    'gameId',
    'universeId',
    'userId',
    'lastOnline',
  ])
})
