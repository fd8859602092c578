import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { startApp } from '../helpers/start-app.js'
import { ISO_Z, json, send } from './wire.js'

/*
 * Replays of Xbox Live presence clients against a real presenced: xbox-webapi-python (the
 * PresenceProvider and its pydantic models), xbox-webapi (npm 1.4.2, run by hand: src/providers/)
 * and a title writing its presence as the Xbox Live API (xbox-live-api) does.
 */

const ME = '2535428504476914' as UserId
const OTHER = '2669321029139235'
const TITLE = '1717113201'

const isStr = (v: unknown) => typeof v === 'string'
const optional = (v: unknown, check: (v: unknown) => boolean) =>
  v === undefined || v === null || check(v)

/**
 * xbox/webapi/api/provider/presence/models.py, as pydantic would validate it: PresenceItem
 * {xuid: str, state: str, last_seen?: LastSeen, devices?: [DeviceRecord]}, LastSeen
 * {device_type: str, title_id?: str, title_name: str, timestamp: str}, DeviceRecord
 * {titles?: [TitleRecord], type?: str}, TitleRecord {id?, name?, lastModified?, placement?,
 * state?: str, activity?}.
 */
function assertPythonPresenceItem(item: unknown): void {
  const r = item as Record<string, unknown>
  assert.ok(isStr(r.xuid) && isStr(r.state), JSON.stringify(r))
  assert.ok(
    optional(r.lastSeen, (v) => {
      const s = v as Record<string, unknown>
      return (
        isStr(s.deviceType) &&
        isStr(s.titleName) &&
        isStr(s.timestamp) &&
        optional(s.titleId, isStr)
      )
    }),
    `LastSeen needs deviceType, titleName, timestamp: ${JSON.stringify(r.lastSeen)}`,
  )
  assert.ok(optional(r.devices, Array.isArray))
  for (const device of (r.devices as Record<string, unknown>[] | undefined) ?? []) {
    assert.ok(optional(device.type, isStr) && optional(device.titles, Array.isArray))
    for (const title of (device.titles as Record<string, unknown>[] | undefined) ?? []) {
      for (const key of ['id', 'name', 'lastModified', 'placement', 'state']) {
        assert.ok(optional(title[key], isStr), `TitleRecord.${key}`)
      }
    }
  }
}

async function world(t: Parameters<typeof startApp>[0]) {
  const presenced = await startApp(t, { listen: true })
  const token = await presenced.tokens.issue(ME)
  // XboxLiveClient: Authorization on the whole session; the provider adds its own headers;
  // httpx/aiohttp add Accept-Encoding, and the client its Accept-Language and MS-CV
  const session: [string, string][] = [
    ['Authorization', `XBL3.0 x=2535428504476914;${token}`],
    ['Accept-Language', 'en-US'],
    ['MS-CV', 'nlBFF+75FkeVgg7dthiY8Q.1'],
    ['Accept-Encoding', 'gzip, deflate'],
    ['User-Agent', 'python-httpx/0.27.0'],
  ]
  const provider: [string, string][] = [
    ['x-xbl-contract-version', '3'],
    ['Accept', 'application/json'],
  ]
  return { ...presenced, session, provider }
}

test('a title writes its presence as xbox-live-api does; the XUID is then Online', async (t) => {
  const { url, session, provider } = await world(t)
  const write = await send(url, {
    method: 'POST',
    path: `/users/xuid(${ME})/devices/current/titles/current`,
    headers: [
      ['Host', 'userpresence.xboxlive.com'],
      ...session,
      ...provider,
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ id: TITLE, state: 'active', placement: 'full' }),
  })
  assert.equal(write.status, 200, write.text)
  assert.ok(Number(write.headers['x-heartbeat-after']) > 0)
})

test('xbox-webapi-python: get_presence_batch and get_presence_own parse into its models', async (t) => {
  const { url, session, provider } = await world(t)
  await send(url, {
    method: 'POST',
    path: `/users/xuid(${ME})/devices/current/titles/current`,
    headers: [...session, ...provider, ['Content-Type', 'application/json']],
    body: JSON.stringify({ id: TITLE, state: 'active' }),
  })

  // PresenceProvider.get_presence_batch: POST /users/batch, json={"users": [str], "onlineOnly":
  // False, "level": "user"} (json.dumps spacing), then PresenceBatchResponse.parse_raw
  for (const level of ['user', 'device', 'title']) {
    const batch = await send(url, {
      method: 'POST',
      path: '/users/batch',
      headers: [
        ['Host', 'userpresence.xboxlive.com'],
        ...session,
        ...provider,
        ['Content-Type', 'application/json'],
      ],
      body: `{"users": ["${ME}", "${OTHER}"], "onlineOnly": false, "level": "${level}"}`,
    })
    assert.equal(batch.status, 200, batch.text)
    // resp.raise_for_status() then parse: a JSON array of PresenceItem, in the order asked
    const items = json(batch) as { xuid: string; state: string }[]
    assert.ok(Array.isArray(items))
    assert.deepEqual(
      items.map((i) => [i.xuid, i.state]),
      [
        [ME, 'Online'],
        [OTHER, 'Offline'],
      ],
    )
    items.forEach(assertPythonPresenceItem)
  }

  // a script's GET /users/me?level=all (get_presence_own's own spelling: the next test)
  const own = await send(url, {
    method: 'GET',
    path: '/users/me?level=all',
    headers: [...session, ...provider],
  })
  assert.equal(own.status, 200, own.text)
  const item = json(own) as { devices: { titles: { id: string; lastModified: string }[] }[] }
  assertPythonPresenceItem(item)
  assert.equal(item.devices[0]!.titles[0]!.id, TITLE)
  assert.match(item.devices[0]!.titles[0]!.lastModified, ISO_Z)

  // an XUID that went offline carries a LastSeen the model accepts
  const gone = await send(url, {
    method: 'DELETE',
    path: `/users/xuid(${ME})/devices/current/titles/current?titleId=${TITLE}`,
    headers: [...session, ...provider],
  })
  assert.equal(gone.status, 200, gone.text)
  const offline = json(
    await send(url, {
      method: 'POST',
      path: '/users/batch',
      headers: [...session, ...provider, ['Content-Type', 'application/json']],
      body: `{"users": ["${ME}"], "onlineOnly": false, "level": "user"}`,
    }),
  ) as { state: string; lastSeen: { timestamp: string } }[]
  assert.equal(offline[0]!.state, 'Offline')
  assert.match(offline[0]!.lastSeen.timestamp, ISO_Z)
  offline.forEach(assertPythonPresenceItem)
})

test('xbox-webapi-python: get_presence_own() sends level as str() of its enum, PresenceLevel.ALL', async (t) => {
  const { url, session, provider } = await world(t)
  await send(url, {
    method: 'POST',
    path: `/users/xuid(${ME})/devices/current/titles/current`,
    headers: [...session, ...provider, ['Content-Type', 'application/json']],
    body: JSON.stringify({ id: TITLE, state: 'active' }),
  })
  // PresenceProvider.get_presence_own(presence_level=PresenceLevel.ALL) passes
  // params={"level": presence_level}; httpx writes a query value as str(value), and str() of a
  // (str, Enum) member is "PresenceLevel.ALL", not its value (recorded with httpx 0.28.1 on
  // Python 3.11: GET /users/me?level=PresenceLevel.ALL). get_presence() and the batch build the
  // value by concatenation or json.dumps, which give "all".
  const expected = { USER: [], DEVICE: ['Web'], TITLE: [TITLE], ALL: [TITLE] } as const
  for (const [member, titles] of Object.entries(expected)) {
    const own = await send(url, {
      method: 'GET',
      path: `/users/me?level=PresenceLevel.${member}`,
      headers: [
        ['Host', 'userpresence.xboxlive.com'],
        ...session.slice(2),
        ...provider,
        ...session.slice(0, 2),
      ],
    })
    assert.equal(own.status, 200, `${member}: ${own.text}`)
    const item = json(own) as {
      state: string
      devices?: { type: string; titles?: { id: string }[] }[]
    }
    assertPythonPresenceItem(item)
    assert.equal(item.state, 'Online')
    const seen =
      member === 'DEVICE'
        ? (item.devices ?? []).map((d) => d.type)
        : (item.devices ?? []).flatMap((d) => (d.titles ?? []).map((x) => x.id))
    assert.deepEqual(seen, member === 'USER' ? [] : titles, member)
  }
  // (the write sent no x-xbl-device-type: Web) only those four spellings; anything else is 400
  const other = await send(url, {
    method: 'GET',
    path: '/users/me?level=PresenceLevel.NONE',
    headers: [...session, ...provider],
  })
  assert.equal(other.status, 400, other.text)
})

test('xbox-webapi-python: set_presence_own(Cloaked) then (Active) succeed (it returns status == 200)', async (t) => {
  const { url, session, provider } = await world(t)
  // PresenceProvider.set_presence_own: PUT /users/xuid({client.xuid})/state, json={"state":
  // presence_state.value} (PresenceState: "Active", "Cloaked"), HEADERS_PRESENCE
  for (const state of ['Cloaked', 'Active']) {
    const put = await send(url, {
      method: 'PUT',
      path: `/users/xuid(${ME})/state`,
      headers: [
        ['Host', 'userpresence.xboxlive.com'],
        ...session,
        ...provider,
        ['Content-Type', 'application/json'],
      ],
      body: `{"state": "${state}"}`,
    })
    assert.equal(put.status, 200, put.text)
  }
})

test('a Node script: POST /users/batch (level all) and GET /users/xuid() with Content-Type and Accept', async (t) => {
  const { url, session, provider } = await world(t)
  // xbox-webapi (npm 1.4.2, and its TypeScript source) has only getCurrentUser() for presence;
  // scripts call the rest through provider.get/post (the next test replays what that really
  // sends, with no Content-Type). This one is a script that names its types.
  const batch = await send(url, {
    method: 'POST',
    path: '/users/batch',
    headers: [...session.slice(0, 1), ...provider, ['Content-Type', 'application/json']],
    body: JSON.stringify({ users: [ME, OTHER], onlineOnly: false, level: 'all' }),
  })
  assert.equal(batch.status, 200, batch.text)
  assert.equal((json(batch) as unknown[]).length, 2)
  const one = await send(url, {
    method: 'GET',
    path: `/users/xuid(${OTHER})?level=all`,
    headers: [...session.slice(0, 1), ...provider],
  })
  assert.equal(one.status, 200, one.text)
  assert.equal((json(one) as { xuid: string }).xuid, OTHER)
})

test('xbox-webapi 1.4.2 (npm), as run by hand: getCurrentUser, and provider.post() with no Content-Type', async (t) => {
  const { url, tokens } = await world(t)
  const token = await tokens.issue(ME)
  // src/providers/base.js builds these headers, in this order, for every call; userpresence.js
  // sets x-xbl-contract-version to the number 3; src/http.js sends them as given, with no
  // Accept and no Accept-Encoding. Recorded at the TLS front (docs/guides/real-clients.md).
  const base: [string, string][] = [
    ['Authorization', `XBL3.0 x=1234567890123456;${token}`],
    ['Accept-Language', 'en-US'],
    ['x-xbl-contract-version', '3'],
    ['x-xbl-client-name', 'XboxApp'],
    ['x-xbl-client-type', 'UWA'],
    ['x-xbl-client-version', '39.39.22001.0'],
    ['Host', 'userpresence.xboxlive.com'],
    ['Connection', 'keep-alive'],
  ]
  // http.js post(): Content-Length first, then the provider's headers, and no Content-Type: the
  // JSON body goes out untyped, as the library posts to every Xbox Live service
  const post = (path: string, body: string) =>
    send(url, {
      method: 'POST',
      path,
      headers: [['Content-Length', String(Buffer.byteLength(body))], ...base],
      body,
    })
  const write = await post(
    `/users/xuid(${ME})/devices/current/titles/current`,
    JSON.stringify({ id: TITLE, state: 'active', placement: 'full' }),
  )
  assert.equal(write.status, 200, write.text)

  // userpresence.getCurrentUser(): GET /users/me?level=all, then JSON.parse (status 200 only)
  const me = await send(url, { method: 'GET', path: '/users/me?level=all', headers: base })
  assert.equal(me.status, 200, me.text)
  assert.equal((json(me) as { xuid: string; state: string }).state, 'Online')

  const batch = await post('/users/batch', JSON.stringify({ users: [ME, OTHER], level: 'all' }))
  assert.equal(batch.status, 200, batch.text)
  assert.deepEqual(
    (json(batch) as { xuid: string; state: string }[]).map((i) => [i.xuid, i.state]),
    [
      [ME, 'Online'],
      [OTHER, 'Offline'],
    ],
  )

  // a body that names a type other than JSON is still refused, in Xbox's shape
  const typed = await send(url, {
    method: 'POST',
    path: '/users/batch',
    headers: [...base, ['Content-Type', 'application/xml']],
    body: JSON.stringify({ users: [ME] }),
  })
  assert.equal(typed.status, 415, typed.text)
  assert.equal((json(typed) as { code: number }).code, 1012)
})

test('a title that wrote {"id":...} as xbox-live-api does, then DELETEs as the seed documents it, is gone at once', async (t) => {
  const { url, session, provider } = await world(t)
  const path = `/users/xuid(${ME})/devices/current/titles/current`
  // presence_title_request::serialize: the title id as a string, state and placement
  const write = await send(url, {
    method: 'POST',
    path,
    headers: [
      ['Host', 'userpresence.xboxlive.com'],
      ...session,
      ...provider,
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ id: '1234', state: 'active', placement: 'full' }),
  })
  assert.equal(write.status, 200, write.text)
  const state = async () =>
    (
      json(
        await send(url, {
          method: 'POST',
          path: '/users/batch',
          headers: [...session, ...provider, ['Content-Type', 'application/json']],
          body: `{"users": ["${ME}"], "level": "title"}`,
        }),
      ) as { state: string; devices?: { titles: { id: string }[] }[] }[]
    )[0]!
  assert.equal((await state()).devices?.[0]?.titles[0]?.id, '1234')
  // DELETE /users/xuid({xuid})/devices/current/titles/current: no body, no title id (the real
  // service knows the title from the caller's token)
  const removed = await send(url, {
    method: 'DELETE',
    path,
    headers: [['Host', 'userpresence.xboxlive.com'], ...session, ...provider],
  })
  assert.equal(removed.status, 200, removed.text)
  const after = await state()
  assert.equal(after.state, 'Offline')
  assert.equal(after.devices, undefined)
})
