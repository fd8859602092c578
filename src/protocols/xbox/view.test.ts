import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Session } from '../../core/presence.js'
import type { VisiblePresence } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import { presenceRecord, titleIdsOf, type XboxViewOptions } from './view.js'

const id = '7' as UserId
const session = (over: Partial<Session>): Session => ({
  userId: id,
  key: 'title:10:XboxOne',
  source: 'title',
  deviceType: 'XboxOne',
  startedAt: 0,
  updatedAt: 1000,
  expiresAt: 10_000,
  activity: { kind: 'online', titleId: '10', placement: 'full', titleState: 'active' },
  ...over,
})
const presence = (over: Partial<VisiblePresence>): VisiblePresence => ({
  userId: id,
  state: 1,
  sessions: [],
  lastOnline: undefined,
  locationHidden: false,
  ...over,
})
const options: XboxViewOptions = {
  level: 'title',
  locales: [],
  titles: new Map([['10', { titleId: '10', name: 'Ten', strings: {} }]]),
  platformTitleId: '1',
}

test('Offline with lastSeen only when no session; never lastSeen while signed in', () => {
  assert.deepEqual(presenceRecord(presence({ lastOnline: 0 }), options), {
    xuid: id,
    state: 'Offline',
    lastSeen: { deviceType: 'Unknown', titleName: '', timestamp: '1970-01-01T00:00:00.000Z' },
  })
  assert.deepEqual(presenceRecord(presence({}), options), { xuid: id, state: 'Offline' })
  const online = presenceRecord(presence({ sessions: [session({})], lastOnline: 5 }), {
    ...options,
    level: 'user',
  })
  assert.deepEqual(online, { xuid: id, state: 'Online' })
})

test('locationHidden keeps devices and state, drops every title', () => {
  const hidden = presence({
    locationHidden: true,
    sessions: [session({ activity: { kind: 'online' } })],
  })
  assert.deepEqual(presenceRecord(hidden, options), {
    xuid: id,
    state: 'Online',
    devices: [{ type: 'XboxOne', titles: [] }],
  })
  assert.deepEqual([...titleIdsOf([hidden], '1')], [])
  assert.equal(presenceRecord(hidden, { ...options, titleIds: new Set(['10']) }), undefined)
})

test('an app session alone is Away; a game session is the platform title', () => {
  const app = session({
    source: 'app',
    key: 'app:iOS',
    deviceType: 'iOS',
    activity: { kind: 'online' },
  })
  assert.equal(presenceRecord(presence({ sessions: [app] }), options)?.state, 'Away')
  const game = session({
    source: 'server',
    key: 'server:g',
    activity: { kind: 'inGame', location: 'Obby' },
  })
  assert.deepEqual(
    presenceRecord(presence({ sessions: [app, game] }), { ...options, level: 'all' }),
    {
      xuid: id,
      state: 'Online',
      devices: [
        { type: 'iOS', titles: [] },
        {
          type: 'XboxOne',
          titles: [
            {
              id: '1',
              name: '',
              lastModified: '1970-01-01T00:00:01.000Z',
              timestamp: '1970-01-01T00:00:01.0000000',
              placement: 'full',
              state: 'active',
              activity: { richPresence: 'Obby' },
            },
          ],
        },
      ],
    },
  )
  assert.deepEqual(
    [...titleIdsOf([presence({ sessions: [app, game, session({})] })], '1')],
    ['1', '10'],
  )
})
