import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { T0, seedTimestamp, startXbox, type XboxApp } from './xbox-helpers.js'

const TARGET = '500'
const FRIEND = '501'
const STRANGER = '502'
const BLOCKER = '503' // the target blocked this viewer
const BLOCKED = '504' // this viewer blocked the target
const TITLE = '1717113201'

const full = {
  xuid: TARGET,
  state: 'Online',
  devices: [
    {
      type: 'XboxOne',
      titles: [
        {
          id: TITLE,
          name: 'Contoso',
          lastModified: T0,
          timestamp: seedTimestamp(T0),
          placement: 'fill',
          state: 'active',
          activity: { richPresence: 'Playing Nirvana' },
        },
      ],
    },
  ],
}
/** Online, but not where: the titles' identity and activity are omitted. */
const presenceOnly = { xuid: TARGET, state: 'Online', devices: [{ type: 'XboxOne', titles: [] }] }
const offlineUnseen = { xuid: TARGET, state: 'Offline' }
const offlineSeenAt = (timestamp: string) => ({
  xuid: TARGET,
  state: 'Offline',
  lastSeen: { deviceType: 'Unknown', titleName: '', timestamp },
})

type Viewer = 'me' | 'friend' | 'non-friend' | 'third-party' | 'private-key' | 'blocker' | 'blocked'
type Setting = 'everyone' | 'friends only' | 'blocked' | 'cloaked'

async function world(t: Parameters<typeof startXbox>[0]) {
  const x = await startXbox(t)
  await x.stores.profiles.putTitle({
    titleId: TITLE,
    name: 'Contoso',
    strings: { map: { default: 'Playing {0}' } },
  })
  await x.service.setFriends(TARGET as UserId, FRIEND as UserId, true)
  await x.service.setBlocked(TARGET as UserId, BLOCKER as UserId, true)
  await x.service.setBlocked(BLOCKED as UserId, TARGET as UserId, true)
  const keys = x.service.keys
  const site = (await keys.create({ name: 'site', scopes: ['presence:read'] })).secret
  const trusted = (await keys.create({ name: 'trusted', scopes: ['presence:read:private'] })).secret
  const written = await x.writeTitle(
    TARGET,
    {
      id: TITLE,
      placement: 'fill',
      activity: { richPresence: { id: 'map', scid: 's', params: ['Nirvana'] } },
    },
    { 'x-xbl-device-type': 'XboxOne' },
  )
  assert.equal(written.statusCode, 200)

  const headersOf = async (viewer: Viewer): Promise<Record<string, string>> => {
    const xbl = { 'x-xbl-contract-version': '3', accept: 'application/json' }
    switch (viewer) {
      case 'third-party':
        return { ...xbl, 'x-api-key': site }
      case 'private-key':
        return { ...xbl, 'x-api-key': trusted }
      default: {
        const id = { me: TARGET, friend: FRIEND, 'non-friend': STRANGER, blocker: BLOCKER }[
          viewer as 'me'
        ]
        return x.as(id ?? BLOCKED)
      }
    }
  }

  /** The target as `viewer` sees it through GET, batch and (for users) the People group. */
  const seenBy = async (viewer: Viewer, level = 'all'): Promise<unknown> => {
    const headers = await headersOf(viewer)
    const single = await x.app.inject({
      method: 'GET',
      url: `/users/xuid(${TARGET})?level=${level}`,
      headers,
    })
    assert.equal(single.statusCode, 200, single.body)
    const batch = await x.app.inject({
      method: 'POST',
      url: '/users/batch',
      headers,
      payload: { users: [TARGET], level },
    })
    assert.equal(batch.statusCode, 200, batch.body)
    assert.deepEqual(batch.json(), [single.json()], `batch agrees with GET for ${viewer}`)
    if (viewer === 'friend') {
      const group = await x.app.inject({
        method: 'GET',
        url: `/users/me/groups/People?level=${level}`,
        headers,
      })
      assert.deepEqual(group.json(), [single.json()], 'People agrees with GET')
    }
    return single.json()
  }

  const setting = async (value: Setting) => {
    if (value === 'cloaked') {
      const response = await x.app.inject({
        method: 'PUT',
        url: `/users/xuid(${TARGET})/state`,
        headers: await x.as(TARGET),
        payload: { state: 'Cloaked' },
      })
      assert.equal(response.statusCode, 200)
      return
    }
    const visibility = { everyone: 'everyone', 'friends only': 'friends', blocked: 'nobody' }[value]
    await x.service.putSettings(TARGET as UserId, {
      visibility: visibility as 'everyone',
      invisible: false,
    })
  }
  return { x, seenBy, setting, headersOf }
}

/*
 * The seed's privacy table (POST /users/batch, GET /users/xuid): "always 200 OK, but might not
 * return content". An Xbox privacy setting of "blocked" maps to visibility `nobody`: the user is
 * seen online, but not where. The third-party site is an API key with presence:read only.
 */
const seedRows: [Viewer, Setting, unknown][] = [
  ['me', 'everyone', full],
  ['friend', 'everyone', full],
  ['friend', 'friends only', full],
  ['friend', 'blocked', presenceOnly],
  ['non-friend', 'everyone', full],
  ['non-friend', 'friends only', presenceOnly],
  ['non-friend', 'blocked', presenceOnly],
  ['third-party', 'everyone', full],
  ['third-party', 'friends only', presenceOnly],
  ['third-party', 'blocked', presenceOnly],
]

for (const [viewer, value, expected] of seedRows) {
  test(`seed privacy row: ${viewer} × ${value}`, async (t) => {
    const { seenBy, setting } = await world(t)
    await setting(value)
    assert.deepEqual(await seenBy(viewer), expected)
  })
}

test('beyond the seed rows: blocks either way, cloaking, self, private keys', async (t) => {
  const { x, seenBy, setting } = await world(t)
  for (const value of ['everyone', 'friends only', 'blocked'] as const) {
    await setting(value)
    // a block in either direction: Offline, not even a lastSeen
    assert.deepEqual(await seenBy('blocker'), offlineUnseen, `blocker × ${value}`)
    assert.deepEqual(await seenBy('blocked'), offlineUnseen, `blocked × ${value}`)
    assert.deepEqual(await seenBy('me'), full, `me × ${value}`)
    assert.deepEqual(await seenBy('private-key'), full, `private key × ${value}`)
  }
  x.clock.advance(5000)
  await setting('cloaked')
  // seen online until cloaking: last seen then, as if the user had signed out
  for (const viewer of ['friend', 'non-friend', 'third-party'] as const) {
    assert.deepEqual(
      await seenBy(viewer),
      offlineSeenAt(new Date(Date.parse(T0) + 5000).toISOString()),
      `${viewer} × cloaked`,
    )
    assert.deepEqual(
      await seenBy(viewer, 'user'),
      offlineSeenAt(new Date(Date.parse(T0) + 5000).toISOString()),
    )
  }
  assert.deepEqual(await seenBy('blocker'), offlineUnseen)
  assert.deepEqual(await seenBy('me'), full)
})

test('filters and onlineOnly reveal nothing privacy hides', async (t) => {
  const { x, setting, headersOf } = await world(t)
  const batch = async (viewer: Viewer, body: Record<string, unknown>) => {
    const response = await x.app.inject({
      method: 'POST',
      url: '/users/batch',
      headers: await headersOf(viewer),
      payload: { users: [TARGET], ...body },
    })
    assert.equal(response.statusCode, 200)
    return response.json() as unknown[]
  }
  await setting('friends only')
  // the title filter cannot find a title whose identity is hidden
  assert.equal((await batch('non-friend', { titles: [TITLE] })).length, 0)
  assert.equal((await batch('friend', { titles: [TITLE] })).length, 1)
  // the device type is not hidden: a device filter still finds the user online
  assert.equal((await batch('non-friend', { deviceTypes: ['XboxOne'] })).length, 1)
  assert.equal((await batch('non-friend', { deviceTypes: ['PC'] })).length, 0)
  // blocked and cloaked users are offline to onlineOnly, and match no filter
  assert.equal((await batch('blocker', { onlineOnly: true })).length, 0)
  assert.equal((await batch('blocker', { deviceTypes: ['XboxOne'] })).length, 0)
  await setting('cloaked')
  assert.equal((await batch('friend', { onlineOnly: true })).length, 0)
  assert.equal((await batch('friend', { titles: [TITLE] })).length, 0)
  assert.equal((await batch('me', { onlineOnly: true, titles: [TITLE] })).length, 1)
})

async function robloxRegister(x: XboxApp, id: string, body: Record<string, unknown>) {
  const token = await x.tokens.issue(id as UserId)
  const response = await x.app.inject({
    method: 'POST',
    url: '/v1/presence/register-app-presence',
    headers: { authorization: `Bearer ${token}` },
    payload: body,
  })
  assert.equal(response.statusCode, 200, response.body)
}

async function robloxType(x: XboxApp, id: string): Promise<number> {
  const response = await x.app.inject({
    method: 'POST',
    url: '/v1/presence/users',
    payload: { userIds: [id] },
  })
  assert.equal(response.statusCode, 200, response.body)
  return response.json().userPresences[0].userPresenceType
}

test('one user through Roblox and Xbox shows consistently in both', async (t) => {
  const x = await startXbox(t, { sessionTtlSeconds: 60 })
  const USER = '700'
  const VIEWER = '701'
  await x.stores.profiles.putTitle({ titleId: '1', name: 'Roblox', strings: {} })

  // signed in through the Roblox app, in no game: Online on Roblox, Away on Xbox
  await robloxRegister(x, USER, { platform: 'iOS' })
  assert.equal(await robloxType(x, USER), 1)
  assert.deepEqual(await x.get(VIEWER, `/users/xuid(${USER})`), {
    xuid: USER,
    state: 'Away',
    devices: [{ type: 'iOS', titles: [] }],
  })

  // in a Roblox game: InGame on Roblox, Online in the platform title on Xbox
  await robloxRegister(x, USER, { platform: 'iOS', placeId: 1818, location: 'Crossroads' })
  assert.equal(await robloxType(x, USER), 2)
  assert.deepEqual(await x.get(VIEWER, `/users/xuid(${USER})?level=all`), {
    xuid: USER,
    state: 'Online',
    devices: [
      {
        type: 'iOS',
        titles: [
          {
            id: '1',
            name: 'Roblox',
            lastModified: T0,
            timestamp: seedTimestamp(T0),
            placement: 'full',
            state: 'active',
            activity: { richPresence: 'Crossroads' },
          },
        ],
      },
    ],
  })

  // leaving Roblox while an Xbox title runs: Online on both
  await robloxRegister(x, USER, { platform: 'iOS', disconnect: true })
  await x.writeTitle(USER, { id: '77' }, { 'x-xbl-device-type': 'XboxOne' })
  assert.equal(await robloxType(x, USER), 1)
  assert.equal(((await x.get(VIEWER, `/users/xuid(${USER})`)) as { state: string }).state, 'Online')

  // the title stops heartbeating: Offline on both once its session expires (300 s + 60 s)
  x.clock.advance(360_000)
  assert.equal(await robloxType(x, USER), 0)
  assert.equal(
    ((await x.get(VIEWER, `/users/xuid(${USER})`)) as { state: string }).state,
    'Offline',
  )
})

test('a session written while hidden shows no instant of the hidden time once seen (lastModified, timestamp)', async (t) => {
  const x = await startXbox(t)
  const viewer = '600'
  // hidden at T0 and online through a title or the Roblox app; seen from T0 + 5 s, when each
  // control comes online the same way: the replies must be the same, the ids aside
  const [cloakedTitle, cloakedApp, blockingTitle] = ['610', '611', '612']
  const [titleControl, appControl] = ['620', '621']
  await x.service.putSettings(cloakedTitle as UserId, { invisible: true })
  await x.service.putSettings(cloakedApp as UserId, { invisible: true })
  await x.service.setBlocked(blockingTitle as UserId, viewer as UserId, true)
  const title = { id: TITLE, placement: 'fill' }
  const device = { 'x-xbl-device-type': 'XboxOne' }
  for (const id of [cloakedTitle, blockingTitle]) {
    assert.equal((await x.writeTitle(id, title, device)).statusCode, 200)
  }
  await robloxRegister(x, cloakedApp, { location: 'Game', placeId: 1818 })
  x.clock.advance(5000)
  await x.service.putSettings(cloakedTitle as UserId, { invisible: false })
  await x.service.putSettings(cloakedApp as UserId, { invisible: false })
  await x.service.setBlocked(blockingTitle as UserId, viewer as UserId, false)
  assert.equal((await x.writeTitle(titleControl, title, device)).statusCode, 200)
  await robloxRegister(x, appControl, { location: 'Game', placeId: 1818 })
  const pairs = [
    [cloakedTitle, titleControl],
    [blockingTitle, titleControl],
    [cloakedApp, appControl],
  ] as const
  for (const level of ['title', 'all']) {
    for (const [hidden, control] of pairs) {
      const seen = async (id: string) => {
        const batch = await x.batch(viewer, { users: [id], level })
        const single = await x.get(viewer, `/users/xuid(${id})?level=${level}`)
        return JSON.stringify([batch, single]).split(id).join('<id>')
      }
      assert.equal(
        await seen(hidden),
        await seen(control),
        `${hidden} against ${control}, ${level}`,
      )
    }
  }
})
