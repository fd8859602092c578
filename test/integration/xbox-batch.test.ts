import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { T0, seedTimestamp, startXbox, type XboxApp } from './xbox-helpers.js'

const VIEWER = '9'
const A = '100'
const B = '200'
const PLATFORM = '1' // the default title: the platform's own games (Roblox-side sessions)

/** Who is where: [xuid, [deviceType, titleId | undefined][]] (undefined: signed in, no title). */
const world: [string, [string, string | undefined][]][] = [
  ['11', [['XboxOne', A]]],
  ['12', [['PC', B]]],
  [
    '13',
    [
      ['XboxOne', B],
      ['PC', A],
    ],
  ],
  ['14', []],
  ['15', [['iOS', undefined]]],
  ['16', [['Android', PLATFORM]]],
]
const users = world.map(([xuid]) => xuid)

async function populate(x: XboxApp) {
  await x.stores.profiles.putTitle({ titleId: A, name: 'Title A', strings: {} })
  await x.stores.profiles.putTitle({ titleId: PLATFORM, name: 'Roblox', strings: {} })
  for (const [xuid, sessions] of world) {
    for (const [deviceType, titleId] of sessions) {
      if (xuid === '15') {
        // a Roblox app session: signed in, in no game
        await x.service.heartbeat({
          userId: xuid as UserId,
          key: 'app:iOS',
          source: 'app',
          deviceType,
          activity: { kind: 'online' },
        })
      } else if (xuid === '16') {
        // a Roblox client in a game: shows as the platform title
        await x.service.heartbeat({
          userId: xuid as UserId,
          key: 'app:Android',
          source: 'app',
          deviceType,
          activity: { kind: 'inGame', placeId: '1818', location: 'Crossroads' },
        })
      } else {
        const written = await x.writeTitle(
          xuid,
          { id: titleId },
          { 'x-xbl-device-type': deviceType },
        )
        assert.equal(written.statusCode, 200)
      }
    }
  }
}

interface Rec {
  xuid: string
  state: string
  devices?: { type: string; titles?: { id: string; name: string }[] }[]
  lastSeen?: unknown
}

test('every filter combination: OR within a property, AND across, onlineOnly', async (t) => {
  const x = await startXbox(t)
  await populate(x)
  const deviceChoices: string[][] = [[], ['XboxOne'], ['xboxone', 'PC'], ['iOS'], ['Android']]
  const titleChoices: string[][] = [[], [A], [A, B], [PLATFORM]]
  let combinations = 0
  for (const deviceTypes of deviceChoices) {
    for (const titles of titleChoices) {
      for (const onlineOnly of [undefined, false, true]) {
        const body: Record<string, unknown> = { users }
        if (deviceTypes.length > 0 || combinations % 2 === 0) body.deviceTypes = deviceTypes
        if (titles.length > 0 || combinations % 3 === 0) body.titles = titles
        if (onlineOnly !== undefined) body.onlineOnly = onlineOnly
        combinations++
        const { status, json } = await x.batch(VIEWER, body)
        assert.equal(status, 200)

        // the oracle: a (device, title) pair matches when both filters (if any) take it
        const wantedDevices = new Set(deviceTypes.map((d) => d.toLowerCase()))
        const filtered = deviceTypes.length > 0 || titles.length > 0
        const expected: [string, [string, string[]][]][] = []
        for (const [xuid, sessions] of world) {
          const kept = new Map<string, string[]>()
          for (const [deviceType, titleId] of sessions) {
            if (wantedDevices.size > 0 && !wantedDevices.has(deviceType.toLowerCase())) continue
            if (titles.length > 0 && (titleId === undefined || !titles.includes(titleId))) continue
            const list = kept.get(deviceType) ?? []
            if (titleId !== undefined) list.push(titleId)
            kept.set(deviceType, list)
          }
          if (filtered && kept.size === 0) continue
          if (onlineOnly && sessions.length === 0) continue
          expected.push([xuid, [...kept]])
        }
        const actual = (json as Rec[]).map((r): [string, [string, string[]][]] => [
          r.xuid,
          (r.devices ?? []).map((d) => [d.type, (d.titles ?? []).map((title) => title.id)]),
        ])
        assert.deepEqual(actual, expected, JSON.stringify(body))
      }
    }
  }
  assert.equal(combinations, 60)
})

test('each level has its exact shape, for titles, Roblox sessions and offline users', async (t) => {
  const x = await startXbox(t)
  await populate(x)
  const at = async (level?: string) =>
    (await x.batch(VIEWER, level ? { users, level } : { users })).json as Rec[]
  const titleA = {
    id: A,
    name: 'Title A',
    lastModified: T0,
    timestamp: seedTimestamp(T0),
    placement: 'full',
    state: 'active',
  }
  const titleB = { ...titleA, id: B, name: '' }
  const roblox = { ...titleA, id: PLATFORM, name: 'Roblox' }
  assert.deepEqual(await at('user'), [
    { xuid: '11', state: 'Online' },
    { xuid: '12', state: 'Online' },
    { xuid: '13', state: 'Online' },
    { xuid: '14', state: 'Offline' },
    { xuid: '15', state: 'Away' },
    { xuid: '16', state: 'Online' },
  ])
  assert.deepEqual(await at('device'), [
    { xuid: '11', state: 'Online', devices: [{ type: 'XboxOne' }] },
    { xuid: '12', state: 'Online', devices: [{ type: 'PC' }] },
    { xuid: '13', state: 'Online', devices: [{ type: 'XboxOne' }, { type: 'PC' }] },
    { xuid: '14', state: 'Offline' },
    { xuid: '15', state: 'Away', devices: [{ type: 'iOS' }] },
    { xuid: '16', state: 'Online', devices: [{ type: 'Android' }] },
  ])
  const titleLevel = [
    { xuid: '11', state: 'Online', devices: [{ type: 'XboxOne', titles: [titleA] }] },
    { xuid: '12', state: 'Online', devices: [{ type: 'PC', titles: [titleB] }] },
    {
      xuid: '13',
      state: 'Online',
      devices: [
        { type: 'XboxOne', titles: [titleB] },
        { type: 'PC', titles: [titleA] },
      ],
    },
    { xuid: '14', state: 'Offline' },
    { xuid: '15', state: 'Away', devices: [{ type: 'iOS', titles: [] }] },
    { xuid: '16', state: 'Online', devices: [{ type: 'Android', titles: [roblox] }] },
  ]
  assert.deepEqual(await at('title'), titleLevel)
  assert.deepEqual(await at(), titleLevel)
  const all = await at('all')
  assert.deepEqual(all.slice(0, 5), titleLevel.slice(0, 5), 'no rich presence was written')
  assert.deepEqual(all[5], {
    xuid: '16',
    state: 'Online',
    devices: [
      { type: 'Android', titles: [{ ...roblox, activity: { richPresence: 'Crossroads' } }] },
    ],
  })
})

test('batch refuses every malformed request with 400 and the reason', async (t) => {
  const x = await startXbox(t)
  const many = (n: number) => Array.from({ length: n }, (_, i) => String(1000 + i))
  const cases: [unknown, number][] = [
    [{}, 1000],
    [{ users: [] }, 1000],
    [{ users: many(1101) }, 1003],
    [{ users: ['1'], extra: true }, 1002],
    [{ users: ['1'], Users: ['2'] }, 1002],
    [{ users: ['1'], userIds: ['2'] }, 1002],
    [{ users: ['abc'] }, 1004],
    [{ users: ['0'] }, 1004],
    [{ users: [-1] }, 1004],
    [{ users: [1.5] }, 1004],
    [{ users: [true] }, 1004],
    [{ users: [null] }, 1004],
    [{ users: [[1]] }, 1004],
    [{ users: ['9223372036854775808'] }, 1004],
    // ASCII whitespace around a XUID is taken (test/integration/id-padding.test.ts); not these
    [{ users: ['\u00a012'] }, 1004],
    [{ users: ['+12'] }, 1004],
    [{ users: ['012'] }, 1004],
    [{ users: '1' }, 1000],
    [{ users: { 0: '1' } }, 1000],
    [{ users: ['1'], deviceTypes: 'XboxOne' }, 1000],
    [{ users: ['1'], deviceTypes: [1] }, 1000],
    [{ users: ['1'], deviceTypes: ['Xbox One'] }, 1000],
    [{ users: ['1'], titles: [true] }, 1000],
    [{ users: ['1'], titles: ['x'] }, 1000],
    [{ users: ['1'], titles: [4294967296] }, 1000],
    [{ users: ['1'], titles: 100 }, 1000],
    [{ users: ['1'], level: 'everything' }, 1000],
    [{ users: ['1'], level: 1 }, 1000],
    [{ users: ['1'], onlineOnly: 'true' }, 1000],
    [{ users: ['1'], onlineOnly: 1 }, 1000],
    [null, 1000],
    [[{ users: ['1'] }], 1000],
    ['users', 1000],
  ]
  for (const [body, code] of cases) {
    const response = await x.app.inject({
      method: 'POST',
      url: '/users/batch',
      headers: { ...(await x.as(VIEWER)), 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    })
    assert.equal(response.statusCode, 400, JSON.stringify(body)?.slice(0, 80))
    assert.match(response.headers['content-type'] as string, /^application\/json/)
    assert.equal(response.json().code, code, JSON.stringify(body)?.slice(0, 80))
  }
  // a value that is no id is named by its kind, not by String() of it ("[object Object]")
  for (const [body, said] of [
    [{ users: [{ id: 1 }] }, /^Invalid XUID an object: /],
    [{ users: ['1'], titles: [{}] }, /, got an object\.$/],
    [{ users: ['1'], deviceTypes: [['XboxOne']] }, /, got an array\.$/],
  ] as const) {
    const response = await x.app.inject({
      method: 'POST',
      url: '/users/batch',
      headers: { ...(await x.as(VIEWER)), 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    })
    assert.equal(response.statusCode, 400)
    assert.match(response.json().description, said)
  }
  const notJson = await x.app.inject({
    method: 'POST',
    url: '/users/batch',
    headers: { ...(await x.as(VIEWER)), 'content-type': 'application/json' },
    payload: '{"users": [',
  })
  assert.equal(notJson.statusCode, 400)
  assert.equal(notJson.json().code, 1001)
})

test('batch takes 1100 users, keeps int64 XUIDs exact, dedupes, keeps order', async (t) => {
  const x = await startXbox(t)
  const big = '9223372036854775807'
  await x.writeTitle(big, { id: A })
  const full = Array.from({ length: 1100 }, (_, i) => String(5000 + i))
  const { status, json } = await x.batch(VIEWER, { users: full, level: 'user' })
  assert.equal(status, 200)
  assert.deepEqual(
    (json as Rec[]).map((r) => r.xuid),
    full,
  )
  // a JSON number literal above 2^53 stays exact; numbers and strings both name XUIDs
  const response = await x.app.inject({
    method: 'POST',
    url: '/users/batch',
    headers: { ...(await x.as(VIEWER)), 'content-type': 'application/json' },
    payload: `{"users":[${big},"42",42,"${big}"],"level":"user"}`,
  })
  assert.equal(response.statusCode, 200)
  assert.ok(response.body.includes(`"xuid":"${big}"`))
  assert.deepEqual(response.json(), [
    { xuid: big, state: 'Online' },
    { xuid: '42', state: 'Offline' },
  ])
})
