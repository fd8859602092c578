import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PresenceType, type Session, type UserPresence } from './presence.js'
import {
  accessOf,
  anonymous,
  applyPrivacy,
  audienceOf,
  befriended,
  blockEndResolved,
  defaultSettings,
  defaultSettingsOf,
  lastOnlineSeenAt,
  nextSettings,
  publicLastOnline,
  sawAtBlockEnd,
  settingsAt,
  settingsOfChangeAt,
  settingsAudiences,
  showsMore,
  shownWrite,
  strangers,
  strangersOf,
  summaryOf,
  visiblePresence,
  visibleSummary,
  type Access,
  type PresenceSummary,
  type Relation,
  type UserSettings,
  type Viewer,
  type Visibility,
} from './privacy.js'
import type { UserId } from './user-id.js'

const T0 = Date.UTC(2026, 0, 1)
const target = '100' as UserId
const self: Viewer = { kind: 'user', userId: target }
const other: Viewer = { kind: 'user', userId: '200' as UserId }
const reader: Viewer = { kind: 'service', keyId: 'k1', scopes: ['presence:read'] }
const privateReader: Viewer = {
  kind: 'service',
  keyId: 'k2',
  scopes: ['presence:read', 'presence:read:private'],
}
const friend: Relation = { friends: true, blocked: false }
const blocked: Relation = { friends: false, blocked: true }
const blockedFriend: Relation = { friends: true, blocked: true }

function settings(visibility: Visibility, invisible = false, frozen?: number): UserSettings {
  return invisible ? { visibility, invisible, frozenLastOnline: frozen } : { visibility, invisible }
}

test('defaults: visible to everyone', () => {
  assert.deepEqual(defaultSettings, { visibility: 'everyone', invisible: false })
  assert.deepEqual(strangers, { friends: false, blocked: false })
})

test('accessOf over viewer × relation × settings', () => {
  const full: Access = { kind: 'full' }
  const presence: Access = { kind: 'presence' }
  const frozen: Access = { kind: 'hidden', lastOnline: T0 }
  const nothing: Access = { kind: 'hidden', lastOnline: undefined }
  const cases: Array<[string, Viewer, Relation, UserSettings, Access]> = [
    // self sees everything, whatever the settings
    ['self everyone', self, strangers, settings('everyone'), { kind: 'self' }],
    ['self nobody', self, strangers, settings('nobody'), { kind: 'self' }],
    ['self invisible', self, strangers, settings('nobody', true, T0), { kind: 'self' }],
    // a friend
    ['friend everyone', other, friend, settings('everyone'), full],
    ['friend friends', other, friend, settings('friends'), full],
    ['friend nobody', other, friend, settings('nobody'), presence],
    ['friend invisible', other, friend, settings('everyone', true, T0), frozen],
    // a non-friend user
    ['stranger everyone', other, strangers, settings('everyone'), full],
    ['stranger friends', other, strangers, settings('friends'), presence],
    ['stranger nobody', other, strangers, settings('nobody'), presence],
    ['stranger invisible', other, strangers, settings('friends', true, T0), frozen],
    // anonymous viewers are non-friends
    ['anonymous everyone', anonymous, strangers, settings('everyone'), full],
    ['anonymous friends', anonymous, strangers, settings('friends'), presence],
    ['anonymous nobody', anonymous, strangers, settings('nobody'), presence],
    ['anonymous invisible', anonymous, strangers, settings('everyone', true, T0), frozen],
    // blocked, in either direction (the relation says so), learns nothing
    ['blocked everyone', other, blocked, settings('everyone'), nothing],
    ['blocked friends', other, blocked, settings('friends'), nothing],
    ['blocked nobody', other, blocked, settings('nobody'), nothing],
    ['blocked invisible', other, blocked, settings('everyone', true, T0), nothing],
    ['blocked friend', other, blockedFriend, settings('everyone'), nothing],
    // what the viewer saw when the block was made stays, over any settings
    [
      'blocked, seen',
      other,
      { ...blocked, lastOnline: T0 - 7 },
      settings('everyone'),
      { kind: 'hidden', lastOnline: T0 - 7 },
    ],
    [
      'blocked, seen, invisible',
      other,
      { ...blocked, lastOnline: T0 - 7 },
      settings('everyone', true, T0),
      { kind: 'hidden', lastOnline: T0 - 7 },
    ],
    // a service with presence:read is a non-friend
    ['reader everyone', reader, strangers, settings('everyone'), full],
    ['reader friends', reader, strangers, settings('friends'), presence],
    ['reader nobody', reader, strangers, settings('nobody'), presence],
    ['reader invisible', reader, strangers, settings('everyone', true, T0), frozen],
    // presence:read:private sees everything but the Invisible state
    ['private everyone', privateReader, strangers, settings('everyone'), full],
    ['private nobody', privateReader, strangers, settings('nobody'), full],
    ['private invisible', privateReader, strangers, settings('nobody', true, T0), full],
  ]
  for (const [name, viewer, relation, s, expected] of cases) {
    assert.deepEqual(accessOf(viewer, target, s, relation), expected, name)
  }
})

test('a user id equal to the target only by number is not self', () => {
  // ids are canonical strings: '100' and '0100' never both exist, but '100' ≠ '1000'
  assert.deepEqual(
    accessOf({ kind: 'user', userId: '1000' as UserId }, target, settings('nobody'), strangers),
    { kind: 'presence' },
  )
})

function session(key: string, expiresAt: number): Session {
  return {
    userId: target,
    key,
    source: 'app',
    deviceType: 'PC',
    startedAt: T0,
    updatedAt: T0,
    expiresAt,
    activity: {
      kind: 'inGame',
      placeId: '1818',
      rootPlaceId: '1818',
      universeId: '13058',
      gameId: 'g-1',
      location: 'Crossroads',
    },
  }
}

const online: UserPresence = {
  userId: target,
  sessions: [session('live', T0 + 1000), session('expired', T0)],
  lastOnline: T0 - 5,
}
const offline: UserPresence = { userId: target, sessions: [], lastOnline: T0 - 5 }

test('full: state and where, live sessions only', () => {
  const seen = visiblePresence(online, { kind: 'full' }, settings('everyone'), T0)
  assert.equal(seen.state, PresenceType.InGame)
  assert.equal(seen.locationHidden, false)
  assert.equal(seen.lastOnline, T0 - 5)
  assert.deepEqual(
    seen.sessions.map((s) => s.key),
    ['live'],
  )
  assert.equal(seen.sessions[0]!.activity.location, 'Crossroads')
})

test('presence: the state but no location', () => {
  const seen = visiblePresence(online, { kind: 'presence' }, settings('friends'), T0)
  assert.equal(seen.state, PresenceType.InGame)
  assert.equal(seen.locationHidden, true)
  assert.equal(seen.lastOnline, T0 - 5)
  assert.equal(seen.sessions.length, 1)
  assert.deepEqual(seen.sessions[0]!.activity, { kind: 'inGame' })
  assert.equal(online.sessions[0]!.activity.placeId, '1818', 'the input is not modified')
})

test('hidden: Offline, with the lastOnline the access carries', () => {
  const invisible = settings('everyone', true, T0 - 1000)
  const seen = visiblePresence(online, { kind: 'hidden', lastOnline: T0 - 1000 }, invisible, T0)
  assert.deepEqual(seen, {
    userId: target,
    state: PresenceType.Offline,
    sessions: [],
    lastOnline: T0 - 1000,
    locationHidden: true,
  })
  const toBlocked = visiblePresence(
    online,
    { kind: 'hidden', lastOnline: undefined },
    invisible,
    T0,
  )
  assert.equal(toBlocked.state, PresenceType.Offline)
  assert.equal(toBlocked.lastOnline, undefined)
})

test('self: everything, and Invisible while invisible and online', () => {
  const visible = visiblePresence(online, { kind: 'self' }, settings('nobody'), T0)
  assert.equal(visible.state, PresenceType.InGame)
  assert.equal(visible.sessions[0]!.activity.placeId, '1818')
  const invisible = settings('nobody', true, T0 - 1000)
  const seen = visiblePresence(online, { kind: 'self' }, invisible, T0)
  assert.equal(seen.state, PresenceType.Invisible)
  assert.equal(seen.lastOnline, T0 - 5, 'self sees the real lastOnline')
  assert.equal(seen.locationHidden, false)
  assert.equal(
    visiblePresence(offline, { kind: 'self' }, invisible, T0).state,
    PresenceType.Offline,
  )
  // once the last session expired, an invisible user is simply Offline to themself
  assert.equal(
    visiblePresence(online, { kind: 'self' }, invisible, T0 + 1000).state,
    PresenceType.Offline,
  )
})

test('accessOf + visiblePresence: an invisible user looks offline with a frozen lastOnline', () => {
  const invisible = settings('everyone', true, T0 - 1000)
  for (const viewer of [other, anonymous, reader]) {
    const access = accessOf(viewer, target, invisible, strangers)
    const seen = visiblePresence(online, access, invisible, T0)
    assert.equal(seen.state, PresenceType.Offline)
    assert.equal(seen.lastOnline, T0 - 1000)
    assert.deepEqual(seen.sessions, [])
  }
})

test('publicLastOnline: frozen while invisible and after, until seen alive after it ended', () => {
  const ended: UserSettings = {
    visibility: 'everyone',
    invisible: false,
    frozenLastOnline: T0 - 100,
    visibleSince: T0,
  }
  const cases: Array<[string, UserSettings, number | undefined, number | undefined]> = [
    ['visible, never invisible', settings('everyone'), T0 + 5, T0 + 5],
    ['visible, never seen', settings('nobody'), undefined, undefined],
    ['invisible', settings('everyone', true, T0 - 100), T0 + 5, T0 - 100],
    ['invisible, never seen before', settings('everyone', true), T0 + 5, undefined],
    // the real value moved inside the invisible period: the frozen one stands
    ['ended, last alive while invisible', ended, T0 - 1, T0 - 100],
    ['ended, last alive when it ended', ended, T0, T0 - 100],
    // seen alive after invisibility ended: the real value again
    ['ended, alive since', ended, T0 + 1, T0 + 1],
    ['ended, never seen', { ...ended, frozenLastOnline: undefined }, undefined, undefined],
  ]
  for (const [name, s, real, shown] of cases) assert.equal(publicLastOnline(s, real), shown, name)
  // every non-self view shows it
  const seen = visiblePresence({ ...offline, lastOnline: T0 - 1 }, { kind: 'full' }, ended, T0)
  assert.equal(seen.lastOnline, T0 - 100)
  const presenceOnly = visiblePresence(
    { ...offline, lastOnline: T0 - 1 },
    { kind: 'presence' },
    ended,
    T0,
  )
  assert.equal(presenceOnly.lastOnline, T0 - 100)
  const own = visiblePresence({ ...offline, lastOnline: T0 - 1 }, { kind: 'self' }, ended, T0)
  assert.equal(own.lastOnline, T0 - 1, 'self sees the real value')
})

test('blockEndResolved: exactly when forgetting the ended block changes nothing the viewer sees', () => {
  const since = T0
  const ended: UserSettings = {
    visibility: 'everyone',
    invisible: false,
    frozenLastOnline: T0 - 50,
    visibleSince: T0 - 10,
  }
  const cases: Array<[string, number | undefined, UserSettings, number | undefined, boolean]> = [
    ['seen alive after the block ended', T0 - 100, settings('everyone'), T0 + 1, true],
    ['alive during the block, unseen', T0 - 100, settings('everyone'), T0 - 1, false],
    ['alive at its very end, unseen', T0 - 100, settings('everyone'), T0, false],
    ['nothing done during the block', T0 - 100, settings('everyone'), T0 - 100, true],
    [
      'never seen by the viewer, alive during the block',
      undefined,
      settings('nobody'),
      T0 - 1,
      false,
    ],
    ['never seen by anyone', undefined, settings('everyone'), undefined, true],
    [
      'invisible since before the block',
      T0 - 100,
      settings('everyone', true, T0 - 200),
      T0 + 5,
      false,
    ],
    [
      'invisible, frozen what the viewer saw',
      T0 - 100,
      settings('everyone', true, T0 - 100),
      T0 + 5,
      true,
    ],
    [
      'invisible, frozen after the block ended',
      T0 - 100,
      settings('friends', true, T0 + 3),
      T0 + 5,
      true,
    ],
    ['invisibility ended, not seen since', T0 - 100, ended, T0 + 5 - 20, false],
    ['invisibility ended, seen since', T0 - 100, ended, T0 + 5, true],
  ]
  for (const [name, saw, s, lastOnline, resolved] of cases) {
    assert.equal(blockEndResolved({ saw, since }, s, lastOnline), resolved, name)
    // what the viewer is shown with the ended block, and without it
    const presence = { ...offline, lastOnline }
    const shown = (relation: Relation): number | undefined =>
      visiblePresence(presence, accessOf(other, target, s, relation), s, T0 + 10).lastOnline
    const kept = shown({ friends: false, blocked: false, lastOnline: saw, since })
    assert.equal(kept === shown(strangers), resolved, `${name}: forgetting it changes nothing`)
  }
})

test('nextSettings: what going invisible, staying and coming back store', () => {
  const now = T0 + 50_000
  const wasOnline: UserPresence = {
    userId: target,
    sessions: [session('live', now + 1000)],
    lastOnline: now - 20_000,
  }
  const wasOffline: UserPresence = { userId: target, sessions: [], lastOnline: now - 20_000 }
  const invisible = (frozen?: number): UserSettings => ({
    visibility: 'everyone',
    invisible: true,
    frozenLastOnline: frozen,
  })
  const to = (invisibleNext: boolean) => ({
    visibility: 'everyone' as const,
    invisible: invisibleNext,
  })
  const cases: Array<[string, UserSettings, boolean, UserPresence, UserSettings]> = [
    // going invisible while seen online: as if gone offline now
    ['hide while online', settings('everyone'), true, wasOnline, invisible(now)],
    ['hide while offline', settings('everyone'), true, wasOffline, invisible(now - 20_000)],
    [
      'hide, never seen',
      settings('everyone'),
      true,
      { ...wasOffline, lastOnline: undefined },
      invisible(undefined),
    ],
    ['stay hidden', invisible(T0), true, wasOnline, invisible(T0)],
    // coming back: the frozen value stands until seen alive after `visibleSince`
    [
      'show while offline',
      invisible(T0),
      false,
      wasOffline,
      { visibility: 'everyone', invisible: false, frozenLastOnline: T0, visibleSince: now },
    ],
    [
      'show while online: seen alive from now on',
      invisible(T0),
      false,
      wasOnline,
      { visibility: 'everyone', invisible: false, frozenLastOnline: now, visibleSince: now },
    ],
    // hiding again before being seen: what others saw is still the frozen value
    [
      'hide again unseen',
      {
        visibility: 'everyone',
        invisible: false,
        frozenLastOnline: T0,
        visibleSince: now - 10_000,
      },
      true,
      wasOffline,
      invisible(T0),
    ],
    // a later change of visibility keeps a frozen value that still stands, drops a spent one
    [
      'visibility change, frozen stands',
      {
        visibility: 'everyone',
        invisible: false,
        frozenLastOnline: T0,
        visibleSince: now - 10_000,
      },
      false,
      wasOffline,
      {
        visibility: 'everyone',
        invisible: false,
        frozenLastOnline: T0,
        visibleSince: now - 10_000,
      },
    ],
    [
      'visibility change, frozen spent',
      {
        visibility: 'everyone',
        invisible: false,
        frozenLastOnline: T0,
        visibleSince: now - 30_000,
      },
      false,
      wasOffline,
      { visibility: 'everyone', invisible: false },
    ],
  ]
  for (const [name, current, next, presence, expected] of cases) {
    assert.deepEqual(nextSettings(current, to(next), presence, now), expected, name)
  }
})

test('lastOnlineSeenAt: now for a user seen online, else what is shown', () => {
  const now = T0 + 500
  const seenOnline = visiblePresence(online, { kind: 'presence' }, settings('nobody'), T0)
  assert.equal(lastOnlineSeenAt(seenOnline, now), now)
  const seenOffline = visiblePresence(offline, { kind: 'full' }, settings('everyone'), T0)
  assert.equal(lastOnlineSeenAt(seenOffline, now), T0 - 5)
  const hidden = visiblePresence(
    online,
    { kind: 'hidden', lastOnline: T0 - 9 },
    settings('everyone', true),
    T0,
  )
  assert.equal(lastOnlineSeenAt(hidden, now), T0 - 9)
})

test('settingsAudiences: whom a settings change concerns, judged as if the user were visible', () => {
  const at = (visibility: Visibility, invisible = false, frozen?: number): UserSettings => ({
    visibility,
    invisible,
    ...(frozen !== undefined && { frozenLastOnline: frozen }),
  })
  const none = { friends: false, others: false }
  // a non-friend sees whether, not where, under friends and nobody alike; friends see where
  assert.deepEqual(settingsAudiences(at('friends'), at('nobody')), { friends: true, others: false })
  assert.deepEqual(settingsAudiences(at('everyone'), at('friends')), {
    friends: false,
    others: true,
  })
  assert.deepEqual(settingsAudiences(at('everyone'), at('everyone')), none)
  // an invisible user's visibility change concerns whom a visible one's would (never none, so
  // that it does not tell an invisible user from an offline one)
  assert.deepEqual(settingsAudiences(at('everyone', true, 5), at('friends', true, 5)), {
    friends: false,
    others: true,
  })
  assert.deepEqual(settingsAudiences(at('friends', true, 5), at('nobody', true, 5)), {
    friends: true,
    others: false,
  })
  // invisibility, or the lastOnline others are shown: everyone
  const all = { friends: true, others: true }
  assert.deepEqual(settingsAudiences(at('everyone'), at('everyone', true, 5)), all)
  assert.deepEqual(settingsAudiences(at('nobody', true, 5), at('nobody', true, 6)), all)
})

test('audienceOf: self, else friends or others by the friendship, a block aside', () => {
  const me = { kind: 'user', userId: '7' as UserId } as const
  assert.equal(audienceOf(me, '7' as UserId, strangers), 'self')
  assert.equal(audienceOf(me, '8' as UserId, befriended), 'friends')
  assert.equal(audienceOf(me, '8' as UserId, { friends: true, blocked: true }), 'friends')
  assert.equal(audienceOf(me, '8' as UserId, { friends: false, blocked: true }), 'others')
  assert.equal(audienceOf(anonymous, '8' as UserId, strangers), 'others')
})

test('applyPrivacy over the shared defaults and strangers (defaultSettingsOf): as over the same settings one by one', () => {
  const playing = Object.freeze({
    kind: 'inGame',
    placeId: '7',
  }) as unknown as PresenceSummary['activity']
  const summaryOf = (userId: string, state: PresenceType, activity?: PresenceSummary['activity']) =>
    ({
      userId: userId as UserId,
      state,
      activity,
      updatedAt: activity ? T0 : 0,
      lastOnline: T0,
      sessions: activity ? 1 : 0,
      deviceType: '',
      source: 'app',
    }) satisfies PresenceSummary
  const all = (): PresenceSummary[] => [
    summaryOf('100', PresenceType.InGame, playing),
    summaryOf('200', PresenceType.Offline),
    // an Offline summary that names a place: never shown with it
    summaryOf('300', PresenceType.Offline, playing),
    summaryOf('400', PresenceType.Online),
  ]
  for (const viewer of [anonymous, self, other, reader, privateReader]) {
    for (const relations of [undefined, strangersOf(4)]) {
      const shared = all()
      applyPrivacy(viewer, shared, defaultSettingsOf(4), relations)
      const each = all()
      applyPrivacy(viewer, each, [...defaultSettingsOf(4)], relations && [...relations])
      assert.deepEqual(shared, each)
      assert.equal(shared[2]!.activity, undefined)
    }
  }
  assert.equal(defaultSettingsOf(4), defaultSettingsOf(4))
  assert.deepEqual(defaultSettingsOf(3), [defaultSettings, defaultSettings, defaultSettings])
})

test('settingsAt: invisible before the instant invisibility ended, else as now', () => {
  const visibleAgain: UserSettings = { visibility: 'everyone', invisible: false, visibleSince: 10 }
  assert.equal(settingsAt(visibleAgain, 9).invisible, true)
  assert.equal(settingsAt(visibleAgain, 10), visibleAgain)
  assert.equal(settingsAt(defaultSettings, 0), defaultSettings)
  const invisible: UserSettings = { ...visibleAgain, invisible: true }
  assert.equal(settingsAt(invisible, 9), invisible)
})

test('a session written while the user was hidden from the viewer shows as written when seen', () => {
  // invisible until T0 + 50, or a block between them until then: the live session, last written
  // at T0 (hidden), shows as written at T0 + 50, as one begun then would; its own later writes,
  // oneself and a hidden view are as they are
  const visibleAgain: UserSettings = { ...settings('everyone'), visibleSince: T0 + 50 }
  const unblocked = accessOf(other, target, settings('everyone'), {
    friends: false,
    blocked: false,
    lastOnline: T0 - 5,
    since: T0 + 50,
  })
  const now = T0 + 60
  const live: UserPresence = { ...online, sessions: [session('live', T0 + 1000)] }
  const cases: Array<[string, Access, UserSettings]> = [
    ['invisibility ended', accessOf(other, target, visibleAgain, strangers), visibleAgain],
    ['block ended', unblocked, settings('everyone')],
  ]
  for (const [label, access, targetSettings] of cases) {
    const seen = visiblePresence(live, access, targetSettings, now)
    assert.equal(shownWrite(seen.sessions[0]!, seen), T0 + 50, label)
    // the session keeps its own: which one is primary is the same in every view
    assert.equal(seen.sessions[0]!.updatedAt, T0, label)
    const summary = visibleSummary(summaryOf(live, now), access, targetSettings)
    assert.equal(summary.updatedAt, T0 + 50, `${label}, summary`)
    const later = { ...session('live', T0 + 1000), updatedAt: T0 + 55 }
    const laterSeen = visiblePresence({ ...live, sessions: [later] }, access, targetSettings, now)
    assert.equal(shownWrite(later, laterSeen), T0 + 55, `${label}, written since`)
  }
  const own = visiblePresence(
    live,
    accessOf(self, target, visibleAgain, strangers),
    visibleAgain,
    now,
  )
  assert.equal(shownWrite(own.sessions[0]!, own), T0, 'oneself')
})

test('sawAtBlockEnd: the other online and visible at the unblock is seen from then on', () => {
  const now = T0 + 500
  assert.equal(sawAtBlockEnd(T0 - 5, online, settings('everyone'), now), now)
  assert.equal(sawAtBlockEnd(T0 - 5, online, settings('friends'), now), now)
  assert.equal(sawAtBlockEnd(T0 - 5, offline, settings('everyone'), now), T0 - 5)
  const invisible = { ...settings('everyone'), invisible: true }
  assert.equal(sawAtBlockEnd(T0 - 5, online, invisible, now), T0 - 5, 'still hidden: as saw')
  assert.equal(sawAtBlockEnd(undefined, online, invisible, now), undefined)
})

test('a live session written while hidden keeps what shows it as written when seen', () => {
  // an app beaten after the unblock moved lastOnline past it, but a title written during the
  // block is still live: the ended block must stay (else its write instant showed again)
  const since = T0 + 50
  const hiddenWrite = { updatedAt: T0 + 10 }
  const end = { saw: T0 - 5, since }
  assert.equal(blockEndResolved(end, settings('everyone'), T0 + 60, [hiddenWrite]), false)
  assert.equal(blockEndResolved(end, settings('everyone'), T0 + 60, [{ updatedAt: T0 + 60 }]), true)
  // likewise visibleSince, kept by a settings change while such a session lives
  const visibleAgain: UserSettings = {
    ...settings('everyone'),
    frozenLastOnline: T0 - 5,
    visibleSince: since,
  }
  const title = { ...session('title', T0 + 1000), updatedAt: T0 + 10 }
  const app = { ...session('app', T0 + 1000), updatedAt: T0 + 60 }
  const presence: UserPresence = { userId: target, sessions: [title, app], lastOnline: T0 + 60 }
  const next = nextSettings(
    visibleAgain,
    { visibility: 'friends', invisible: false },
    presence,
    T0 + 70,
  )
  assert.equal(next.visibleSince, since)
  const refreshed = { ...presence, sessions: [{ ...title, updatedAt: T0 + 65 }, app] }
  const after = nextSettings(
    visibleAgain,
    { visibility: 'friends', invisible: false },
    refreshed,
    T0 + 70,
  )
  assert.equal(after.visibleSince, undefined)
})

test('showsMore: invisibility ending or a wider visibility while visible, nothing else', () => {
  const of = (visibility: 'everyone' | 'friends' | 'nobody', invisible = false) => ({
    visibility,
    invisible,
  })
  assert.equal(showsMore(of('nobody'), of('everyone')), true)
  assert.equal(showsMore(of('nobody'), of('friends')), true)
  assert.equal(showsMore(of('friends'), of('everyone')), true)
  assert.equal(showsMore(of('everyone', true), of('everyone')), true)
  assert.equal(showsMore(of('everyone', true), of('nobody')), true)
  // the same, narrower, or still (or newly) invisible: nothing shows more
  assert.equal(showsMore(of('everyone'), of('everyone')), false)
  assert.equal(showsMore(of('everyone'), of('nobody')), false)
  assert.equal(showsMore(of('friends'), of('nobody')), false)
  assert.equal(showsMore(of('nobody'), of('everyone', true)), false)
  assert.equal(showsMore(of('nobody', true), of('everyone', true)), false)
})

test('settingsOfChangeAt: at an earlier instant, the new settings never show more than the old', () => {
  const nobody = { visibility: 'nobody', invisible: false } as const
  const friends = { visibility: 'friends', invisible: false } as const
  const everyone = { visibility: 'everyone', invisible: false } as const
  const invisible = { visibility: 'everyone', invisible: true } as const
  // showing more: the old ones stand before the change
  assert.equal(settingsOfChangeAt(nobody, everyone, 9, 10).visibility, 'nobody')
  assert.equal(settingsOfChangeAt(friends, everyone, 9, 10).visibility, 'friends')
  assert.equal(settingsOfChangeAt(nobody, friends, 9, 10).visibility, 'nobody')
  assert.equal(settingsOfChangeAt(invisible, everyone, 9, 10).invisible, true)
  // hiding: the new ones at once
  assert.equal(settingsOfChangeAt(everyone, nobody, 9, 10).visibility, 'nobody')
  assert.equal(settingsOfChangeAt(everyone, invisible, 9, 10), invisible)
  // at the change itself: the new ones
  assert.equal(settingsOfChangeAt(nobody, everyone, 10, 10), everyone)
  // invisibility that ended after the instant (visibleSince) still hides there
  const visibleAgain = { ...everyone, visibleSince: 10 }
  assert.equal(settingsOfChangeAt(visibleAgain, visibleAgain, 9, 10).invisible, true)
})
