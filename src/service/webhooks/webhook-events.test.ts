import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Session } from '../../core/presence.js'
import { defaultSettings, type UserSettings, type Viewer } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { WebhookRecord } from '../../store/webhook-store.js'
import { eventsOf, subscriberOf, type Judged } from './webhook-events.js'

const T = Date.UTC(2026, 0, 1)
const user = '9223372036854775807' as UserId
const reader: Viewer = { kind: 'service', keyId: 'k1', scopes: ['presence:read'] }
const privateReader: Viewer = { kind: 'service', keyId: 'k2', scopes: ['presence:read:private'] }

function hook(id: string, extra: Partial<WebhookRecord> = {}): WebhookRecord {
  return {
    id,
    url: 'http://127.0.0.1/h',
    secret: 'whsec_0123456789abcdef',
    keyId: 'k',
    events: ['online', 'update', 'offline'],
    filter: { universes: [], titles: [], users: [] },
    enabled: true,
    description: '',
    createdAt: T,
    updatedAt: T,
    ...extra,
  }
}

function session(activity: Session['activity'], expiresAt = T + 60_000): Session {
  return {
    userId: user,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    startedAt: T - 1000,
    updatedAt: T,
    expiresAt,
    activity,
  }
}

const inGame = { kind: 'inGame' as const, placeId: '1818', universeId: '13058' }
const offline = { userId: user, sessions: [], lastOnline: T - 5000 }
const online = { userId: user, sessions: [session(inGame)], lastOnline: T }

function judged(
  before: Judged['before']['presence'],
  after: Judged['after']['presence'],
  settings: UserSettings = defaultSettings,
  afterSettings: UserSettings = settings,
): Judged {
  return {
    userId: user,
    before: { presence: before, settings, at: T },
    after: { presence: after, settings: afterSettings, at: T },
    reason: 'timeout',
  }
}

/** The events as [webhook, type, state, reason] rows. */
function rows(j: Judged, subscribers: ReturnType<typeof subscriberOf>[]) {
  let n = 0
  return eventsOf(
    j,
    subscribers,
    // like the native view: what moves on every heartbeat (expiry) is not part of it
    (p) => ({ state: p.state, activities: p.sessions.map((s) => s.activity) }),
    () => `evt_${++n}`,
    T,
  ).map((e) => {
    const body = JSON.parse(e.body) as { id: string; presence: { state: number }; reason?: string }
    assert.equal(body.id, e.eventId)
    return [e.webhookId, e.type, body.presence.state, body.reason ?? '-']
  })
}

test('types follow what each key may see; one event id per change', () => {
  const subs = [subscriberOf(hook('pub'), reader), subscriberOf(hook('priv'), privateReader)]
  assert.deepEqual(rows(judged(offline, online), subs), [
    ['pub', 'online', 2, '-'],
    ['priv', 'online', 2, '-'],
  ])
  assert.deepEqual(rows(judged(online, offline), subs), [
    ['pub', 'offline', 0, 'timeout'],
    ['priv', 'offline', 0, 'timeout'],
  ])
  const moved = { ...online, sessions: [session({ ...inGame, placeId: '2020' })] }
  assert.deepEqual(
    rows(judged(online, moved), subs).map((r) => r.slice(0, 2)),
    [
      ['pub', 'update'],
      ['priv', 'update'],
    ],
  )
  // a refresh (expiry moved) shows nothing new to anyone
  const refreshed = { ...online, sessions: [session(inGame, T + 120_000)] }
  assert.deepEqual(rows(judged(online, refreshed), subs), [])
})

test('invisible users never appear to presence:read; friends-only users move unseen', () => {
  const subs = [subscriberOf(hook('pub'), reader), subscriberOf(hook('priv'), privateReader)]
  const invisible = { ...defaultSettings, invisible: true }
  assert.deepEqual(rows(judged(offline, online, invisible), subs), [['priv', 'online', 2, '-']])
  const friends: UserSettings = { visibility: 'friends', invisible: false }
  const moved = { ...online, sessions: [session({ ...inGame, placeId: '2020' })] }
  assert.deepEqual(
    rows(judged(online, moved, friends), subs).map((r) => r.slice(0, 2)),
    [['priv', 'update']],
  )
  // turning invisible while online: an offline to presence:read, nothing to the private key
  const turning = judged(online, online, defaultSettings, invisible)
  turning.reason = 'explicit'
  assert.deepEqual(rows(turning, subs), [['pub', 'offline', 0, 'explicit']])
})

test('filters: event types, users, and places only as the key may see them', () => {
  const onlyOffline = subscriberOf(hook('a', { events: ['offline'] }), privateReader)
  const otherUser = subscriberOf(
    hook('b', { filter: { universes: [], titles: [], users: ['5' as UserId] } }),
    privateReader,
  )
  const universe = (v: Viewer) =>
    subscriberOf(
      hook(`u-${v.kind === 'service' ? v.keyId : ''}`, {
        filter: { universes: ['13058'], titles: [], users: [] },
      }),
      v,
    )
  const elsewhere = subscriberOf(
    hook('e', { filter: { universes: ['1'], titles: [], users: [] } }),
    privateReader,
  )
  const subs = [onlyOffline, otherUser, universe(reader), universe(privateReader), elsewhere]
  const friends: UserSettings = { visibility: 'friends', invisible: false }
  assert.deepEqual(
    rows(judged(offline, online, friends), subs).map((r) => r.slice(0, 2)),
    [['u-k2', 'online']],
    'a presence:read filter on a universe cannot tell a friends-only user is there',
  )
  // an offline matches the universe the user left
  assert.deepEqual(
    rows(judged(online, offline), subs).map((r) => r.slice(0, 2)),
    [
      ['a', 'offline'],
      ['u-k1', 'offline'],
      ['u-k2', 'offline'],
    ],
  )
})
