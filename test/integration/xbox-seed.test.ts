import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { json, send, type WireResponse } from '../compat/wire.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * Issue 16 items 5-10 and issue 15 items 8 and 12, over real HTTP: the Xbox presence API as
 * the seed documents (uri-usersbatchpost, PresenceRecord, DeviceRecord, TitleRecord) have it.
 */

const ME = '2535428504476914' as UserId
const FRIEND = '2669321029139235' as UserId
const TITLE = '1234'

async function xbox(
  t: Parameters<typeof startApp>[0],
  config: Partial<Config> = {},
  clock?: ManualClock,
) {
  const app = await startApp(t, { listen: true, config, ...(clock && { clock }) })
  const tokenOf = async (id: UserId) => app.tokens.issue(id)
  const headers = async (id: UserId = ME): Promise<[string, string][]> => [
    ['authorization', `XBL3.0 x=1;${await tokenOf(id)}`],
    ['x-xbl-contract-version', '3'],
  ]
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    extra: [string, string][] = [],
    as: UserId = ME,
  ) =>
    send(app.url, {
      method,
      path,
      headers: [
        // a header in `extra` replaces the default of that name
        ...(await headers(as)).filter(([name]) => !extra.some(([other]) => other === name)),
        ...extra,
        ...(body === undefined
          ? []
          : ([['content-type', 'application/json']] as [string, string][])),
      ],
      ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    })
  return { ...app, headers, call }
}

interface Title {
  id: string
  lastModified: string
  timestamp: string
}
interface Record_ {
  xuid: string
  state: string
  devices?: { type: string; titles?: Title[] }[]
}

function xboxError(response: WireResponse, status: number, code: number) {
  assert.equal(response.status, status, response.text)
  const body = json(response) as { code: number; errorCode: number; description: string }
  assert.equal(body.code, code, response.text)
  assert.equal(body.errorCode, code)
  return body
}

test('item 5: no Authorization is 403 Forbidden (as the seed says); a bad or expired one is 401', async (t) => {
  const { url, tokens } = await xbox(t)
  const version: [string, string] = ['x-xbl-contract-version', '3']
  for (const path of ['/users/me', '/users/batch']) {
    const method = path === '/users/batch' ? 'POST' : 'GET'
    const body = method === 'POST' ? JSON.stringify({ users: [ME] }) : undefined
    const type: [string, string][] = body ? [['content-type', 'application/json']] : []
    xboxError(
      await send(url, { method, path, headers: [version, ...type], ...(body && { body }) }),
      403,
      1007,
    )
    for (const authorization of [
      'XBL3.0 x=1;not-a-token',
      'Bearer abc',
      `XBL3.0 x=1;${await tokens.issue(ME, { ttlSeconds: -60 })}`,
    ]) {
      xboxError(
        await send(url, {
          method,
          path,
          headers: [['authorization', authorization], version, ...type],
          ...(body && { body }),
        }),
        401,
        1006,
      )
    }
  }
})

test('item 6: x-xbl-contract-version vnext is the newest version, 3; others are 400', async (t) => {
  const { call } = await xbox(t)
  for (const version of ['vnext', 'VNext', '3']) {
    const response = await call('GET', '/users/me', undefined, [
      ['x-xbl-contract-version', version],
    ])
    assert.equal(response.status, 200, `${version}: ${response.text}`)
    assert.equal(response.headers['x-xbl-contract-version'], '3')
  }
  for (const version of ['2', '4', 'next', '3.0']) {
    xboxError(
      await call('GET', '/users/me', undefined, [['x-xbl-contract-version', version]]),
      400,
      1005,
    )
  }
})

test("item 7: the seed's device codes D and W8 filter a batch like the names they stand for", async (t) => {
  const { call } = await xbox(t)
  const write = (as: UserId, deviceType: string) =>
    call(
      'POST',
      `/users/xuid(${as})/devices/current/titles/current`,
      { id: TITLE },
      [['x-xbl-device-type', deviceType]],
      as,
    )
  assert.equal((await write(ME, 'XboxOne')).status, 200)
  assert.equal((await write(FRIEND, 'MoLive')).status, 200)
  const batch = async (deviceTypes: string[]) => {
    const response = await call('POST', '/users/batch', { users: [ME, FRIEND], deviceTypes })
    assert.equal(response.status, 200, response.text)
    return (json(response) as Record_[]).map((r) => [r.xuid, r.devices?.[0]?.type])
  }
  assert.deepEqual(await batch(['D']), [[ME, 'XboxOne']])
  assert.deepEqual(await batch(['MCapensis']), [[ME, 'XboxOne']])
  assert.deepEqual(await batch(['W8']), [[FRIEND, 'MoLive']])
  assert.deepEqual(await batch(['windows8', 'd']), [
    [ME, 'XboxOne'],
    [FRIEND, 'MoLive'],
  ])
  assert.deepEqual(await batch(['XboxOne']), [[ME, 'XboxOne']])
  // a write naming its device D is an XboxOne device in replies
  assert.equal((await write(FRIEND, 'D')).status, 200)
  const friend = json(await call('GET', `/users/xuid(${FRIEND})?level=device`)) as Record_
  assert.deepEqual(friend.devices?.map((d) => d.type).sort(), ['MoLive', 'XboxOne'])
})

test("item 8: titles carry the seed's timestamp (UTC, seven fraction digits, no zone) beside lastModified", async (t) => {
  const { call } = await xbox(t)
  await call('POST', `/users/xuid(${ME})/devices/current/titles/current`, { id: TITLE })
  for (const level of ['title', 'all']) {
    const record = json(await call('GET', `/users/me?level=${level}`)) as Record_
    const title = record.devices![0]!.titles![0]!
    assert.match(title.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}$/)
    assert.equal(title.timestamp, `${title.lastModified.slice(0, 23)}0000`)
    assert.match(title.lastModified, /Z$/)
  }
})

test('item 9: DELETE without a title id ends the titles this device runs, not the default title', async (t) => {
  const { call } = await xbox(t, { xboxBurstMax: 100 })
  const path = `/users/xuid(${ME})/devices/current/titles/current`
  const device = (type: string): [string, string][] => [['x-xbl-device-type', type]]
  assert.equal((await call('POST', path, { id: TITLE }, device('XboxOne'))).status, 200)
  assert.equal((await call('POST', path, { id: '5678' }, device('XboxOne'))).status, 200)
  assert.equal((await call('POST', path, { id: TITLE }, device('PC'))).status, 200)
  const titles = async () =>
    ((json(await call('GET', '/users/me')) as Record_).devices ?? [])
      .flatMap((d) => (d.titles ?? []).map((title) => `${d.type}:${title.id}`))
      .sort()
  assert.deepEqual(await titles(), ['PC:1234', 'XboxOne:1234', 'XboxOne:5678'])
  const deleted = await call('DELETE', path, undefined, device('XboxOne'))
  assert.equal(deleted.status, 200, deleted.text)
  assert.deepEqual(await titles(), ['PC:1234'])
  // naming the title still ends only that one; nothing running is a 200 too
  assert.equal(
    (await call('DELETE', `${path}?titleId=${TITLE}`, undefined, device('PC'))).status,
    200,
  )
  assert.equal((json(await call('GET', '/users/me')) as Record_).state, 'Offline')
  assert.equal((await call('DELETE', path, undefined, device('PC'))).status, 200)
})

test('item 10: unknown paths and methods under /users are Xbox-shaped 404s and 405s with Allow', async (t) => {
  const { call } = await xbox(t)
  const cases: [string, string, number, string | undefined][] = [
    ['GET', `/users/xuid(${ME})/devices/current/titles/current`, 405, 'POST, DELETE'],
    ['PUT', '/users/batch', 405, 'POST'],
    ['DELETE', '/users/batch', 405, 'POST'],
    ['GET', '/users/batch', 405, 'POST'],
    ['POST', '/users/me', 405, 'GET'],
    ['GET', '/users/me/state', 405, 'PUT'],
    ['POST', '/users/me/groups/People', 405, 'GET'],
    ['GET', '/users/me/devices', 404, undefined],
    ['GET', '/users/me/devices/current/titles', 404, undefined],
    ['GET', '/users', 404, undefined],
  ]
  for (const [method, path, status, allow] of cases) {
    const response = await call(method, path, method === 'GET' ? undefined : '{}')
    xboxError(response, status, status === 405 ? 1009 : 1008)
    assert.equal(response.headers.allow, allow, `${method} ${path}`)
  }
})

test('issue 15 item 8: a platform named __proto__, constructor or toString is just a name; Xbox filters answer', async (t) => {
  const { url, call, tokens } = await xbox(t)
  const names = ['__proto__', 'constructor', 'toString']
  for (const platform of names) {
    const beat = await send(url, {
      method: 'POST',
      path: '/v1/presence/register-app-presence',
      headers: [
        ['authorization', `Bearer ${await tokens.issue(ME)}`],
        ['content-type', 'application/json'],
      ],
      body: JSON.stringify({ location: 'Home', platform }),
    })
    assert.equal(beat.status, 200, beat.text)
  }
  for (const deviceTypes of [['Web'], ['XboxOne'], ['constructor', 'toString']]) {
    const response = await call('POST', '/users/batch', { users: [ME], deviceTypes, level: 'all' })
    assert.equal(response.status, 200, `${deviceTypes.join()}: ${response.text}`)
  }
  // not a device type name at all: refused as such, in the Xbox shape
  xboxError(
    await call('POST', '/users/batch', { users: [ME], deviceTypes: ['__proto__'] }),
    400,
    1000,
  )
  const record = json(await call('GET', '/users/me?level=device')) as Record_
  assert.deepEqual(record.devices, [{ type: 'Web' }])
  const raw = await send(url, {
    method: 'GET',
    path: `/admin/v1/users/${ME}/presence`,
    headers: [['x-api-key', ADMIN_KEY]],
  })
  const sessions = (json(raw) as { sessions: { key: string; deviceType: string }[] }).sessions
  assert.deepEqual(sessions.map((s) => `${s.key} ${s.deviceType}`).sort(), [
    'app:__proto__ Web',
    'app:constructor Web',
    'app:toString Web',
  ])
})

test('issue 15 item 12: Xbox reads have a per-caller budget; beyond it, the Xbox 429 body', async (t) => {
  // a clock that stands still: the burst window (15 s) cannot roll over between the reads
  const { call } = await xbox(
    t,
    { xboxReadBurstMax: 3, xboxReadSustainMax: 100 },
    new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 1)),
  )
  const reads: [string, string, unknown][] = [
    ['POST', '/users/batch', { users: [ME] }],
    ['GET', `/users/xuid(${FRIEND})`, undefined],
    ['GET', '/users/me/groups/People', undefined],
  ]
  for (const [method, path, body] of reads) {
    assert.equal((await call(method, path, body)).status, 200, path)
  }
  for (const [method, path, body] of reads) {
    const refused = await call(method, path, body)
    assert.equal(refused.status, 429, `${path}: ${refused.text}`)
    assert.ok(Number(refused.headers['retry-after']) >= 1)
    assert.deepEqual(json(refused), {
      version: 1,
      currentRequests: (json(refused) as { currentRequests: number }).currentRequests,
      maxRequests: 3,
      periodInSeconds: 15,
      type: 'burst',
    })
  }
  // another caller has a budget of its own, and writes are not reads
  assert.equal((await call('GET', '/users/me', undefined, [], FRIEND)).status, 200)
  const write = await call('POST', `/users/xuid(${ME})/devices/current/titles/current`, {
    id: TITLE,
  })
  assert.equal(write.status, 200, write.text)
})
