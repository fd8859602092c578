import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ADMIN_KEY } from '../helpers/start-app.js'
import { T0, seedTimestamp, startXbox, type XboxApp } from './xbox-helpers.js'

const ME = '2533274790395904'
const OTHER = '2533274790395905'
const TITLE = '1717113201'

async function putTitle(x: XboxApp, titleId: string, body: unknown) {
  return x.app.inject({
    method: 'PUT',
    url: `/admin/v1/titles/${titleId}`,
    headers: { 'x-api-key': ADMIN_KEY },
    payload: body as Record<string, unknown>,
  })
}

const contoso = {
  name: 'Contoso 5',
  strings: {
    playingMap: {
      default: 'Playing {0} on {1}',
      'en-US': 'Playing {0} on {1} (US)',
      fr: 'Joue à {0} sur {1}',
    },
  },
}

test('a title write answers 200 with X-Heartbeat-After and shows at every level', async (t) => {
  const x = await startXbox(t)
  assert.equal((await putTitle(x, TITLE, contoso)).statusCode, 200)
  const written = await x.writeTitle(
    ME,
    {
      id: TITLE,
      state: 'active',
      placement: 'fill',
      activity: {
        richPresence: { id: 'playingMap', scid: 'abba0123', params: ['Deathmatch', 'Nirvana'] },
      },
    },
    { 'x-xbl-device-type': 'XboxOne' },
  )
  assert.equal(written.statusCode, 200)
  assert.equal(written.headers['x-heartbeat-after'], '300')

  const title = {
    id: TITLE,
    name: 'Contoso 5',
    lastModified: T0,
    timestamp: seedTimestamp(T0),
    placement: 'fill',
    state: 'active',
  }
  assert.deepEqual(await x.get(ME, '/users/me?level=user'), { xuid: ME, state: 'Online' })
  assert.deepEqual(await x.get(ME, '/users/me?level=device'), {
    xuid: ME,
    state: 'Online',
    devices: [{ type: 'XboxOne' }],
  })
  const titleLevel = { xuid: ME, state: 'Online', devices: [{ type: 'XboxOne', titles: [title] }] }
  assert.deepEqual(await x.get(ME, '/users/me?level=title'), titleLevel)
  assert.deepEqual(await x.get(ME, '/users/me'), titleLevel, 'title is the default level')
  assert.deepEqual(await x.get(ME, '/users/me?level=all', { 'accept-language': 'fr-CA' }), {
    xuid: ME,
    state: 'Online',
    devices: [
      {
        type: 'XboxOne',
        titles: [{ ...title, activity: { richPresence: 'Joue à Deathmatch sur Nirvana' } }],
      },
    ],
  })
  // the same record through the xuid form, by another reader (everyone may see by default)
  assert.deepEqual(await x.get(OTHER, `/users/xuid(${ME})?level=title`), titleLevel)
  assert.deepEqual(await x.get(OTHER, `/users/xuid%28${ME}%29?level=user`), {
    xuid: ME,
    state: 'Online',
  })
})

test('rich presence follows Accept-Language: exact, language, default, first', async (t) => {
  const x = await startXbox(t)
  await putTitle(x, TITLE, contoso)
  await putTitle(x, '42', { name: 'Other', strings: { s: { 'de-DE': 'Spielt {0}', ja: '{0}' } } })
  await x.writeTitle(ME, {
    id: TITLE,
    activity: { richPresence: { id: 'playingMap', scid: 's', params: ['A', 'B'] } },
  })
  await x.writeTitle(ME, { id: '42', activity: { richPresence: { id: 's', params: ['X'] } } })
  const rich = async (language?: string) => {
    const record = (await x.get(
      ME,
      '/users/me?level=all',
      language ? { 'accept-language': language } : {},
    )) as { devices: { titles: { id: string; activity?: { richPresence: string } }[] }[] }
    return Object.fromEntries(
      record.devices[0]!.titles.map((title) => [title.id, title.activity?.richPresence]),
    )
  }
  assert.deepEqual(await rich('en-US'), { [TITLE]: 'Playing A on B (US)', 42: 'Spielt X' })
  assert.deepEqual(await rich('fr-FR,en;q=0.5'), { [TITLE]: 'Joue à A sur B', 42: 'Spielt X' })
  assert.deepEqual(await rich('de-DE'), { [TITLE]: 'Playing A on B', 42: 'Spielt X' })
  assert.deepEqual(await rich('ja;q=0.9,fr;q=0.1'), { [TITLE]: 'Joue à A sur B', 42: 'X' })
  assert.deepEqual(await rich(), { [TITLE]: 'Playing A on B', 42: 'Spielt X' })
})

test('a TitleRequest updates only the members it has; state alone is valid', async (t) => {
  const x = await startXbox(t)
  await putTitle(x, TITLE, contoso)
  assert.equal((await x.writeTitle(ME, { state: 'active' })).statusCode, 200)
  await x.writeTitle(ME, {
    id: TITLE,
    placement: 'snapped',
    activity: { richPresence: { id: 'playingMap', params: ['A', 'B'] } },
  })
  x.clock.advance(1000)
  await x.writeTitle(ME, { id: TITLE, state: 'inactive' })
  const record = (await x.get(ME, '/users/me?level=all')) as {
    devices: { type: string; titles: unknown[] }[]
  }
  assert.deepEqual(record.devices, [
    {
      type: 'Web',
      titles: [
        {
          id: '1',
          name: '',
          lastModified: T0,
          timestamp: seedTimestamp(T0),
          placement: 'full',
          state: 'active',
        },
        {
          id: TITLE,
          name: 'Contoso 5',
          lastModified: new Date(Date.parse(T0) + 1000).toISOString(),
          timestamp: seedTimestamp(new Date(Date.parse(T0) + 1000).toISOString()),
          placement: 'snapped',
          state: 'inactive',
          activity: { richPresence: 'Playing A on B' },
        },
      ],
    },
  ])
})

test('the title id may come from x-xbl-title-id; device types are spelled the Xbox way', async (t) => {
  const x = await startXbox(t)
  await x.writeTitle(ME, {}, { 'x-xbl-title-id': '77', 'x-xbl-device-type': 'xboxone' })
  await x.writeTitle(ME, { id: 78 }, { 'x-xbl-device-type': 'Stadia' })
  await x.writeTitle(ME, { id: '79' }, { 'x-xbl-device-type': 'scarlett' })
  const record = (await x.get(ME, '/users/me')) as {
    devices: { type: string; titles: { id: string }[] }[]
  }
  assert.deepEqual(
    record.devices.map((d) => [d.type, d.titles.map((title) => title.id)]),
    [
      ['XboxOne', ['77']],
      ['Stadia', ['78']],
      ['Scarlett', ['79']],
    ],
  )
  const bad = await x.writeTitle(ME, {}, { 'x-xbl-device-type': '../etc' })
  assert.equal(bad.statusCode, 400)
  const badTitle = await x.writeTitle(ME, {}, { 'x-xbl-title-id': 'abc' })
  assert.equal(badTitle.statusCode, 400)
})

test('a title not refreshed within its heartbeat expires; DELETE ends it at once', async (t) => {
  const x = await startXbox(t, { xboxHeartbeatSeconds: 60 })
  const written = await x.writeTitle(ME, { id: TITLE })
  assert.equal(written.headers['x-heartbeat-after'], '60')
  // the session lives one heartbeat plus a grace period of max(10 s, 20%): 72 s here
  x.clock.advance(71_999)
  assert.equal(((await x.get(OTHER, `/users/xuid(${ME})`)) as { state: string }).state, 'Online')
  x.clock.advance(1)
  const expired = (await x.get(OTHER, `/users/xuid(${ME})`)) as Record<string, unknown>
  assert.equal(expired.state, 'Offline')
  assert.equal(expired.devices, undefined)
  // last seen at its last write, or at its expiry once the janitor has swept it
  const seen = Date.parse((expired.lastSeen as { timestamp: string }).timestamp)
  assert.ok(seen === Date.parse(T0) || seen === Date.parse(T0) + 72_000, String(seen))

  await x.writeTitle(ME, { id: TITLE }, { 'x-xbl-device-type': 'PC' })
  x.clock.advance(5000)
  const removed = await x.app.inject({
    method: 'DELETE',
    url: `/users/xuid(${ME})/devices/current/titles/current?titleId=${TITLE}`,
    headers: { ...(await x.as(ME)), 'x-xbl-device-type': 'PC' },
  })
  assert.equal(removed.statusCode, 200)
  assert.deepEqual(await x.get(OTHER, `/users/xuid(${ME})`), {
    xuid: ME,
    state: 'Offline',
    lastSeen: {
      deviceType: 'Unknown',
      titleName: '',
      timestamp: new Date(Date.parse(T0) + 77_000).toISOString(),
    },
  })
  // DELETE of a title that is not there is still fine (idempotent)
  const again = await x.app.inject({
    method: 'DELETE',
    url: '/users/me/devices/current/titles/current',
    headers: await x.as(ME),
  })
  assert.equal(again.statusCode, 200)
})

test("writing another user's presence is 403, as is an API key's", async (t) => {
  const x = await startXbox(t)
  for (const method of ['POST', 'DELETE'] as const) {
    const response = await x.app.inject({
      method,
      url: `/users/xuid(${OTHER})/devices/current/titles/current`,
      headers: await x.as(ME),
      ...(method === 'POST' && { payload: { state: 'active' } }),
    })
    assert.equal(response.statusCode, 403)
    assert.match(response.headers['content-type'] as string, /^application\/json/)
    assert.equal(response.json().code, 1007)
  }
  assert.equal(((await x.get(ME, `/users/xuid(${OTHER})`)) as { state: string }).state, 'Offline')
})

test('fine-grained rate limits per (user, title): burst then sustain, with Retry-After', async (t) => {
  const x = await startXbox(t, { xboxBurstMax: 3, xboxSustainMax: 5 })
  for (let i = 0; i < 3; i++) assert.equal((await x.writeTitle(ME, { id: TITLE })).statusCode, 200)
  const limited = await x.writeTitle(ME, { id: TITLE })
  assert.equal(limited.statusCode, 429)
  assert.equal(limited.headers['retry-after'], '15')
  assert.deepEqual(JSON.parse(limited.body), {
    version: 1,
    currentRequests: 4,
    maxRequests: 3,
    periodInSeconds: 15,
    type: 'burst',
  })
  // another title, and another user, have their own counts
  assert.equal((await x.writeTitle(ME, { id: '99' })).statusCode, 200)
  assert.equal((await x.writeTitle(OTHER, { id: TITLE })).statusCode, 200)

  x.clock.advance(15_000)
  // refused requests count towards the sustain limit too (4 so far): one more, then refused
  assert.equal((await x.writeTitle(ME, { id: TITLE })).statusCode, 200)
  const sustained = await x.writeTitle(ME, { id: TITLE })
  assert.equal(sustained.statusCode, 429)
  assert.equal(JSON.parse(sustained.body).type, 'sustain')
  assert.equal(JSON.parse(sustained.body).periodInSeconds, 300)
  assert.equal(Number(sustained.headers['retry-after']), 300 - 15)
})

test('PUT state Cloaked hides the user from others, not from themself', async (t) => {
  const x = await startXbox(t)
  await x.writeTitle(ME, { id: TITLE })
  const put = async (body: unknown, who = ME, as = ME) =>
    x.app.inject({
      method: 'PUT',
      url: `/users/xuid(${who})/state`,
      headers: { ...(await x.as(as)), 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    })
  const cloaked = await put({ state: 'Cloaked' })
  assert.equal(cloaked.statusCode, 200)
  assert.deepEqual(cloaked.json(), { xuid: ME, state: 'Cloaked' })
  assert.deepEqual(await x.get(OTHER, `/users/xuid(${ME})`), {
    xuid: ME,
    state: 'Offline',
    lastSeen: { deviceType: 'Unknown', titleName: '', timestamp: T0 },
  })
  x.clock.advance(60_000)
  await x.writeTitle(ME, { id: TITLE })
  // lastSeen stays frozen as it was when cloaking, whatever the user does meanwhile
  assert.deepEqual(await x.get(OTHER, `/users/xuid(${ME})?level=user`), {
    xuid: ME,
    state: 'Offline',
    lastSeen: { deviceType: 'Unknown', titleName: '', timestamp: T0 },
  })
  assert.equal(((await x.get(ME, '/users/me')) as { state: string }).state, 'Online')
  assert.equal((await put({ state: 'Active' })).statusCode, 200)
  assert.equal(((await x.get(OTHER, `/users/xuid(${ME})`)) as { state: string }).state, 'Online')

  assert.equal((await put({ state: 'Cloaked' }, ME, OTHER)).statusCode, 403)
  assert.equal((await put({ state: 'cloaked' })).statusCode, 400)
  assert.equal((await put({ state: 'Active', extra: 1 })).statusCode, 400)
  assert.equal((await put('Active')).statusCode, 400)
})

test('title writes naming ever new titles are limited too: a user has a budget over all titles', async (t) => {
  // each title has its own budget, and presenced tokens name no title: a client naming a new
  // title at each write went past every limit, each write a session of its own (700 writes in
  // a row were 700 sessions)
  const x = await startXbox(t, { xboxBurstMax: 3, xboxSustainMax: 5 })
  for (let i = 1; i <= 30; i++) {
    assert.equal((await x.writeTitle(ME, { id: String(i) })).statusCode, 200, `title ${i}`)
  }
  const limited = await x.writeTitle(ME, { id: '31' })
  assert.equal(limited.statusCode, 429)
  assert.equal(limited.headers['retry-after'], '15')
  assert.deepEqual(JSON.parse(limited.body), {
    version: 1,
    currentRequests: 31,
    maxRequests: 30,
    periodInSeconds: 15,
    type: 'burst',
  })
  // nothing was written by the refused write
  const me = (await x.get(ME, '/users/me')) as { devices: Array<{ titles: unknown[] }> }
  assert.equal(me.devices[0]!.titles.length, 30)
  // another user's budget is their own
  assert.equal((await x.writeTitle(OTHER, { id: '31' })).statusCode, 200)
  // the sustain window over all titles: 10 × PRESENCED_XBOX_SUSTAIN per 300 s
  x.clock.advance(15_000)
  const statuses: number[] = []
  for (let i = 100; i < 130; i++)
    statuses.push((await x.writeTitle(ME, { id: String(i) })).statusCode)
  assert.equal(statuses.filter((s) => s === 200).length, 19, 'the sustain window had 31 of 50')
  assert.equal(statuses.filter((s) => s === 429).length, 11)
})

test("DELETEs naming ever new titles the device does not run spend the default title's budget", async (t) => {
  // each title has its own budget: a DELETE naming a new title id each time spent a fresh one
  // each time (40 of 40 answered 200 with a burst of 3)
  const x = await startXbox(t, { xboxBurstMax: 3, xboxSustainMax: 5 })
  const end = async (titleId: string) =>
    (
      await x.app.inject({
        method: 'DELETE',
        url: `/users/xuid(${ME})/devices/current/titles/current?titleId=${titleId}`,
        headers: await x.as(ME),
      })
    ).statusCode
  const statuses: number[] = []
  for (let i = 1; i <= 5; i++) statuses.push(await end(String(9000 + i)))
  assert.deepEqual(statuses, [200, 200, 200, 429, 429])
  // a title the device runs is ended on its own budget, as before
  assert.equal((await x.writeTitle(ME, { id: TITLE })).statusCode, 200)
  assert.equal(await end(TITLE), 200)
})

test('PUT state spends a write budget per user: burst then sustain, 429 in the Xbox shape', async (t) => {
  // each state write is a durable settings write and a privacy change fanned out to watchers:
  // it was the one Xbox write no limit counted
  const x = await startXbox(t, { xboxBurstMax: 3, xboxSustainMax: 5 })
  const put = async (who = ME) =>
    x.app.inject({
      method: 'PUT',
      url: `/users/xuid(${who})/state`,
      headers: { ...(await x.as(who)), 'content-type': 'application/json' },
      payload: '{"state":"Cloaked"}',
    })
  for (let i = 0; i < 3; i++) assert.equal((await put()).statusCode, 200)
  const limited = await put()
  assert.equal(limited.statusCode, 429)
  assert.equal(limited.headers['retry-after'], '15')
  assert.deepEqual(JSON.parse(limited.body), {
    version: 1,
    currentRequests: 4,
    maxRequests: 3,
    periodInSeconds: 15,
    type: 'burst',
  })
  // another user has a budget of their own, and title writes are not spent by it
  assert.equal((await put(OTHER)).statusCode, 200)
  assert.equal((await x.writeTitle(ME, { id: TITLE })).statusCode, 200)
  x.clock.advance(15_000)
  assert.equal((await put()).statusCode, 200)
  const sustained = await put()
  assert.equal(sustained.statusCode, 429)
  assert.equal(JSON.parse(sustained.body).type, 'sustain')
})

test("GET groups/People lists the caller's friends' presence", async (t) => {
  const x = await startXbox(t)
  const FRIEND_A = '1001'
  const FRIEND_B = '1002'
  await x.service.setFriends(ME as never, FRIEND_A as never, true)
  await x.service.setFriends(ME as never, FRIEND_B as never, true)
  await x.writeTitle(FRIEND_A, { id: TITLE })
  const expected = [
    { xuid: FRIEND_A, state: 'Online', devices: [{ type: 'Web' }] },
    { xuid: FRIEND_B, state: 'Offline' },
  ]
  const sorted = (records: unknown) =>
    (records as { xuid: string }[]).sort((a, b) => a.xuid.localeCompare(b.xuid))
  assert.deepEqual(sorted(await x.get(ME, '/users/me/groups/People?level=device')), expected)
  assert.deepEqual(
    sorted(await x.get(ME, `/users/xuid(${ME})/groups/People?level=device`)),
    expected,
  )
  assert.deepEqual(await x.get(OTHER, '/users/me/groups/People'), [])

  const others = await x.app.inject({
    method: 'GET',
    url: `/users/xuid(${ME})/groups/People`,
    headers: await x.as(OTHER),
  })
  assert.equal(others.statusCode, 403)
  const moniker = await x.app.inject({
    method: 'GET',
    url: '/users/me/groups/people',
    headers: await x.as(ME),
  })
  assert.equal(moniker.statusCode, 404)
})

test('headers: XBL3.0 auth (403 missing, 401 invalid), contract version 3 or vnext (400), Accept (406)', async (t) => {
  const x = await startXbox(t)
  const good = await x.as(ME)
  const cases: [Record<string, string | undefined>, number][] = [
    [{}, 200],
    [{ authorization: undefined }, 403],
    [{ authorization: good.authorization!.replace('XBL3.0', 'Bearer') }, 401],
    [{ authorization: `XBL3.0 x=1;not-a-token` }, 401],
    [{ authorization: `XBL3.0 ${good.authorization!.split(';')[1]}` }, 401],
    [{ 'x-xbl-contract-version': undefined }, 400],
    [{ 'x-xbl-contract-version': '2' }, 400],
    [{ 'x-xbl-contract-version': 'vnext' }, 200],
    [{ 'x-xbl-contract-version': 'vnext2' }, 400],
    [{ accept: 'text/html' }, 406],
    [{ accept: 'application/json;q=0, text/html' }, 406],
    [{ accept: 'text/html, */*;q=0.1' }, 200],
    [{ accept: 'application/*' }, 200],
    [{ accept: undefined }, 200],
  ]
  for (const [change, status] of cases) {
    const headers: Record<string, string> = { ...good }
    for (const [name, value] of Object.entries(change)) {
      if (value === undefined) delete headers[name]
      else headers[name] = value
    }
    for (const request of [
      { method: 'GET' as const, url: '/users/me' },
      { method: 'POST' as const, url: '/users/batch', payload: { users: [ME] } },
    ]) {
      const response = await x.app.inject({ ...request, headers })
      assert.equal(response.statusCode, status, `${JSON.stringify(change)} ${request.url}`)
      assert.match(response.headers['content-type'] as string, /^application\/json/)
      if (status !== 200) {
        const body = response.json()
        assert.equal(typeof body.code, 'number')
        assert.equal(typeof body.description, 'string')
        assert.equal(body.errorMessage, body.description)
      }
    }
  }
})

test('bad paths and bodies are 4xx in the Xbox shape, never 500', async (t) => {
  const x = await startXbox(t)
  const headers = await x.as(ME)
  const cases: [string, string, unknown, number, string?][] = [
    ['GET', '/users/xuid(abc)', undefined, 400],
    ['GET', '/users/xuid(0)', undefined, 400],
    ['GET', '/users/xuid(-5)', undefined, 400],
    ['GET', '/users/xuid(9223372036854775808)', undefined, 400],
    ['GET', '/users/xuid()', undefined, 400],
    ['GET', '/users/nobody', undefined, 404],
    ['GET', '/users/me?level=everything', undefined, 400],
    ['GET', '/users/batch', undefined, 405],
    ['POST', `/users/xuid(${ME})/devices/current/titles/current`, { state: 'asleep' }, 400],
    ['POST', `/users/xuid(${ME})/devices/current/titles/current`, { placement: 'left' }, 400],
    ['POST', `/users/xuid(${ME})/devices/current/titles/current`, { id: 4294967296 }, 400],
    ['POST', `/users/xuid(${ME})/devices/current/titles/current`, { id: 'x' }, 400],
    ['POST', `/users/xuid(${ME})/devices/current/titles/current`, { id: 1.5 }, 400],
    ['POST', `/users/xuid(${ME})/devices/current/titles/current`, { color: 'red' }, 400],
    ['POST', `/users/xuid(${ME})/devices/current/titles/current`, [], 400],
    [
      'POST',
      `/users/xuid(${ME})/devices/current/titles/current`,
      { activity: { richPresence: { params: ['a'] } } },
      400,
    ],
    [
      'POST',
      `/users/xuid(${ME})/devices/current/titles/current`,
      { activity: { richPresence: { id: 'x', params: 'a' } } },
      400,
    ],
    [
      'POST',
      `/users/xuid(${ME})/devices/current/titles/current`,
      { activity: { richPresence: { id: 'x', params: [1] } } },
      400,
    ],
    [
      'POST',
      `/users/xuid(${ME})/devices/current/titles/current`,
      { activity: { richPresence: { id: 'x' }, extra: true } },
      400,
    ],
    ['POST', `/users/xuid(${ME})/devices/current/titles/current`, '{"state":', 400, 'json'],
    ['POST', `/users/xuid(${ME})/devices/current/titles/current`, '<state/>', 415, 'xml'],
  ]
  for (const [method, url, payload, status, kind] of cases) {
    const contentType =
      kind === 'xml' ? 'application/xml' : payload === undefined ? undefined : 'application/json'
    const response = await x.app.inject({
      method: method as 'GET',
      url,
      headers: { ...headers, ...(contentType && { 'content-type': contentType }) },
      ...(payload !== undefined && {
        payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
      }),
    })
    assert.equal(response.statusCode, status, `${method} ${url} ${JSON.stringify(payload)}`)
    assert.match(response.headers['content-type'] as string, /^application\/json/)
    assert.equal(typeof response.json().description, 'string')
  }
  // nothing was written by any of those
  assert.deepEqual(await x.get(ME, '/users/me'), { xuid: ME, state: 'Offline' })
})

test('an XUID past the 100 characters of a path parameter is 400 (1004), as a short invalid one', async (t) => {
  const x = await startXbox(t)
  const headers = await x.as(ME)
  const long = `xuid(${'1'.repeat(95)})`
  const cases: [string, string, number, number][] = [
    ['GET', `/users/${long}`, 400, 1004],
    ['GET', `/users/${long}/groups/People`, 400, 1004],
    ['PUT', `/users/${long}/state`, 400, 1004],
    ['POST', `/users/${long}/devices/current/titles/current`, 400, 1004],
    ['DELETE', `/users/${long}/devices/current/titles/current`, 400, 1004],
    // the other methods of those paths are still 405, and a long name that is no XUID 404
    ['GET', `/users/${long}/state`, 405, 1009],
    ['GET', `/users/${'a'.repeat(120)}`, 404, 1008],
    ['GET', `/users/me/groups/${'P'.repeat(120)}`, 404, 1008],
  ]
  for (const [method, url, status, code] of cases) {
    const response = await x.app.inject({
      method: method as 'GET',
      url,
      headers: { ...headers, ...(method !== 'GET' && { 'content-type': 'application/json' }) },
      ...(method === 'PUT' && { payload: '{"state":"Active"}' }),
      ...(method === 'POST' && { payload: `{"id":${TITLE}}` }),
    })
    assert.equal(response.statusCode, status, `${method} ${url.slice(0, 40)}`)
    assert.equal(response.json().code, code, `${method} ${url.slice(0, 40)}`)
  }
  // the checks every request passes come first, as on the route itself
  const anonymous = await x.app.inject({ method: 'GET', url: `/users/${long}` })
  assert.equal(anonymous.statusCode, 403)
})

test('a form or text/plain body is 415 (1012) on every Xbox write, and writes nothing', async (t) => {
  const x = await startXbox(t)
  const headers = await x.as(ME)
  const cases: [string, string, string, string][] = [
    ['PUT', '/users/me/state', 'application/x-www-form-urlencoded', 'state=Cloaked'],
    ['PUT', `/users/xuid(${ME})/state`, 'text/plain', '{"state":"Cloaked"}'],
    ['POST', '/users/batch', 'application/x-www-form-urlencoded', `users=${ME}`],
    ['POST', '/users/batch', 'text/plain', `{"users":["${ME}"]}`],
    [
      'POST',
      `/users/xuid(${ME})/devices/current/titles/current`,
      'application/x-www-form-urlencoded',
      `id=${TITLE}`,
    ],
    ['POST', `/users/xuid(${ME})/devices/current/titles/current`, 'text/plain', `{"id":${TITLE}}`],
  ]
  for (const [method, url, contentType, payload] of cases) {
    const response = await x.app.inject({
      method: method as 'PUT',
      url,
      headers: { ...headers, 'content-type': contentType },
      payload,
    })
    assert.equal(response.statusCode, 415, `${method} ${url} ${contentType}`)
    assert.equal(response.json().code, 1012, `${method} ${url} ${contentType}`)
  }
  assert.deepEqual(await x.get(OTHER, `/users/xuid(${ME})`), { xuid: ME, state: 'Offline' })
  assert.deepEqual(await x.get(ME, '/users/me'), { xuid: ME, state: 'Offline' })
})

test('a DELETE of title presence with bad input is a 4xx in the Xbox shape, never 500, and ends nothing', async (t) => {
  const x = await startXbox(t)
  assert.equal((await x.writeTitle(ME, { id: TITLE })).statusCode, 200)
  const path = `/users/xuid(${ME})/devices/current/titles/current`
  const cases: [string, Record<string, string>, number][] = [
    [`${path}?titleId=abc`, {}, 400],
    [`${path}?titleId=0`, {}, 400],
    [`${path}?titleId=-1`, {}, 400],
    [`${path}?titleId=4294967296`, {}, 400],
    [`${path}?titleId=1.5`, {}, 400],
    [`${path}?titleId=%7B1%7D`, {}, 400],
    [`${path}?titleId=${TITLE}&titleId=${TITLE}`, {}, 400],
    // two titles named, one in the query and one in the header: neither is picked
    [`${path}?titleId=${TITLE}`, { 'x-xbl-title-id': '1234' }, 400],
    [`${path}?titleId=1234`, { 'x-xbl-title-id': TITLE }, 400],
    [path, { 'x-xbl-title-id': 'x' }, 400],
    [path, { 'x-xbl-title-id': '99999999999' }, 400],
    [path, { 'x-xbl-device-type': '{b1}' }, 400],
    [path, { 'x-xbl-device-type': 'x'.repeat(200) }, 400],
    ['/users/xuid(abc)/devices/current/titles/current', {}, 400],
    ['/users/xuid(9223372036854775808)/devices/current/titles/current', {}, 400],
    [`/users/xuid(${OTHER})/devices/current/titles/current`, {}, 403],
    ['/users/nobody/devices/current/titles/current', {}, 404],
  ]
  for (const [url, extra, status] of cases) {
    const response = await x.app.inject({
      method: 'DELETE',
      url,
      headers: { ...(await x.as(ME)), ...extra },
    })
    const what = `DELETE ${url} ${JSON.stringify(extra)}`
    assert.equal(response.statusCode, status, `${what}: ${response.body}`)
    assert.match(response.headers['content-type'] as string, /^application\/json/, what)
    const body = response.json() as { code: unknown; description: unknown }
    assert.equal(typeof body.code, 'number', what)
    assert.equal(typeof body.description, 'string', what)
    if (
      url.includes('titleId=') &&
      (url.match(/titleId=/g)!.length > 1 || extra['x-xbl-title-id'])
    ) {
      assert.match(body.description as string, /given once|two titles/, what)
    }
  }
  // the same title in both is one title
  const both = await x.app.inject({
    method: 'DELETE',
    url: `${path}?titleId=${TITLE}`,
    headers: { ...(await x.as(ME)), 'x-xbl-title-id': ` ${TITLE}` },
  })
  assert.equal(both.statusCode, 200, both.body)
  assert.equal((await x.writeTitle(ME, { id: TITLE })).statusCode, 200)
  // none of those ended the title
  const record = (await x.get(ME, '/users/me?level=title')) as {
    state: string
    devices?: { titles: { id: string }[] }[]
  }
  assert.equal(record.state, 'Online')
  assert.equal(record.devices?.[0]?.titles[0]?.id, TITLE)
})

test('admin titles catalogue: PUT/GET with the admin key; off without one', async (t) => {
  const x = await startXbox(t)
  const put = await putTitle(x, TITLE, contoso)
  assert.equal(put.statusCode, 200)
  assert.deepEqual(put.json(), { titleId: TITLE, ...contoso })
  const got = await x.app.inject({
    method: 'GET',
    url: `/admin/v1/titles/${TITLE}`,
    headers: { 'x-api-key': ADMIN_KEY },
  })
  assert.deepEqual(got.json(), { titleId: TITLE, ...contoso })

  const refusals: [Record<string, string>, string, unknown, number][] = [
    [{}, TITLE, contoso, 401],
    [{ 'x-api-key': 'wrong' }, TITLE, contoso, 401],
    [{ 'x-api-key': ADMIN_KEY }, 'abc', contoso, 400],
    [{ 'x-api-key': ADMIN_KEY }, TITLE, { name: '' }, 400],
    [{ 'x-api-key': ADMIN_KEY }, TITLE, { name: 'A', strings: { s: 'x' } }, 400],
    [{ 'x-api-key': ADMIN_KEY }, TITLE, { name: 'A', strings: { s: { 'en US': 'x' } } }, 400],
    [{ 'x-api-key': ADMIN_KEY }, TITLE, { name: 'A', strings: { __proto__x: { a: 1 } } }, 400],
    [{ 'x-api-key': ADMIN_KEY }, TITLE, { name: 'A', other: 1 }, 400],
  ]
  for (const [headers, titleId, body, status] of refusals) {
    const response = await x.app.inject({
      method: 'PUT',
      url: `/admin/v1/titles/${titleId}`,
      headers,
      payload: body as Record<string, unknown>,
    })
    assert.equal(response.statusCode, status, JSON.stringify(body))
    assert.equal(typeof response.json().error.code, 'string')
  }
  const missing = await x.app.inject({
    method: 'GET',
    url: '/admin/v1/titles/5',
    headers: { 'x-api-key': ADMIN_KEY },
  })
  assert.equal(missing.statusCode, 404)
  assert.equal(
    ((await x.stores.profiles.getTitle(TITLE)) ?? { name: '' }).name,
    'Contoso 5',
    'refused writes changed nothing',
  )
})

test('the titles admin is off (404) while no admin key is set', async (t) => {
  const x = await startXbox(t, { adminKey: undefined })
  const response = await x.app.inject({
    method: 'PUT',
    url: `/admin/v1/titles/${TITLE}`,
    headers: { 'x-api-key': 'anything' },
    payload: contoso,
  })
  assert.equal(response.statusCode, 404)
})
