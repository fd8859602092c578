import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { ManualClock } from '../../src/service/clock.js'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

const json = { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY }

function call(
  app: FastifyInstance,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  body?: unknown,
  headers: Record<string, string> = json,
) {
  return app.inject({
    method,
    url,
    headers: body === undefined ? { 'x-api-key': headers['x-api-key'] ?? '' } : headers,
    payload:
      body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
}

test('the admin API is off (404) while no admin key is configured', async (t) => {
  const { app } = await startApp(t, { config: { adminKey: undefined } })
  for (const url of ['/admin/v1/places/1', '/admin/v1/users/1/settings', '/admin/v1/keys']) {
    const res = await app.inject({ method: 'GET', url, headers: { 'x-api-key': 'anything' } })
    assert.equal(res.statusCode, 404)
    assert.equal(res.json().error.code, 'ADMIN_OFF')
  }
})

test('missing or wrong admin key: 401 JSON; nothing is written', async (t) => {
  const { app, service } = await startApp(t)
  const missing = await app.inject({
    method: 'PUT',
    url: '/admin/v1/users/1/settings',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ visibility: 'nobody' }),
  })
  assert.equal(missing.statusCode, 401)
  assert.equal(missing.json().error.code, 'API_KEY_MISSING')
  const wrong = await call(
    app,
    'PUT',
    '/admin/v1/users/1/settings',
    { visibility: 'nobody' },
    { ...json, 'x-api-key': ADMIN_KEY + 'x' },
  )
  assert.equal(wrong.statusCode, 401)
  assert.equal(wrong.json().error.code, 'API_KEY_INVALID')
  assert.equal((await service.getSettings('1' as UserId)).visibility, 'everyone')
})

test('places: PUT then GET, ids kept exact above 2^53; bad input refused', async (t) => {
  const { app } = await startApp(t)
  // a raw JSON literal above 2^53: JSON.stringify of a JS number would already have rounded it
  const put = await call(
    app,
    'PUT',
    '/admin/v1/places/9007199254740993',
    '{"universeId": 9007199254740995, "rootPlaceId": "9007199254740993", "name": "Big Place"}',
  )
  assert.equal(put.statusCode, 200, put.body)
  const expected = {
    placeId: '9007199254740993',
    universeId: '9007199254740995',
    rootPlaceId: '9007199254740993',
    name: 'Big Place',
  }
  assert.deepEqual(put.json(), expected)
  const get = await call(app, 'GET', '/admin/v1/places/9007199254740993')
  assert.deepEqual(get.json(), expected)
  // rootPlaceId defaults to the place itself
  const own = await call(app, 'PUT', '/admin/v1/places/5', { universeId: 6, name: 'Five' })
  assert.equal(own.json().rootPlaceId, '5')

  assert.equal((await call(app, 'GET', '/admin/v1/places/404')).statusCode, 404)
  const cases: Array<[string, unknown]> = [
    ['/admin/v1/places/abc', { universeId: 1, name: 'x' }],
    ['/admin/v1/places/-1', { universeId: 1, name: 'x' }],
    ['/admin/v1/places/1', { universeId: 1.5, name: 'x' }],
    ['/admin/v1/places/1', { universeId: 1 }],
    ['/admin/v1/places/1', { universeId: 1, name: '' }],
    ['/admin/v1/places/1', { universeId: 1, name: 'x', extra: true }],
    ['/admin/v1/places/1', '{"universeId": 1, "name": '],
    ['/admin/v1/places/1', '[]'],
  ]
  for (const [url, body] of cases) {
    const res = await call(app, 'PUT', url, body)
    assert.equal(res.statusCode, 400, `${url} ${JSON.stringify(body)}: ${res.body}`)
    assert.equal(typeof res.json().error.message, 'string')
  }
  assert.equal((await call(app, 'GET', '/admin/v1/places/1')).statusCode, 404)
})

test('settings: PUT/GET through the service; invisible freezes lastOnline; bus told', async (t) => {
  const clock = new ManualClock()
  const { app, service, stores } = await startApp(t, { clock })
  const events: unknown[] = []
  stores.bus.subscribe((e) => events.push(e))
  await service.heartbeat({
    userId: '7' as UserId,
    key: 'app:web',
    source: 'app',
    deviceType: 'Web',
    activity: { kind: 'online' },
  })
  clock.advance(5000)
  // online until it hides: others saw it until now, as if it had signed out now
  const seenAt = clock.now()

  const put = await call(app, 'PUT', '/admin/v1/users/7/settings', {
    visibility: 'friends',
    invisible: true,
  })
  assert.equal(put.statusCode, 200, put.body)
  assert.deepEqual(put.json(), { visibility: 'friends', invisible: true })
  assert.deepEqual(events.at(-1), {
    type: 'settings',
    userId: '7',
    before: { visibility: 'everyone', invisible: false },
    after: { visibility: 'friends', invisible: true, frozenLastOnline: seenAt },
  })
  assert.deepEqual((await call(app, 'GET', '/admin/v1/users/7/settings')).json(), {
    visibility: 'friends',
    invisible: true,
  })
  assert.equal((await service.getSettings('7' as UserId)).frozenLastOnline, seenAt)

  // partial update keeps the other field
  const partial = await call(app, 'PUT', '/admin/v1/users/7/settings', { visibility: 'nobody' })
  assert.deepEqual(partial.json(), { visibility: 'nobody', invisible: true })
  // unknown user: default settings
  assert.deepEqual((await call(app, 'GET', '/admin/v1/users/8/settings')).json(), {
    visibility: 'everyone',
    invisible: false,
  })

  for (const body of [
    { visibility: 'public' },
    { invisible: 'maybe' },
    {},
    { visibility: 'friends', colour: 'red' },
  ]) {
    const res = await call(app, 'PUT', '/admin/v1/users/7/settings', body)
    assert.equal(res.statusCode, 400, JSON.stringify(body))
    assert.equal(res.json().error.code, 'INVALID_REQUEST')
  }
  const badId = await call(app, 'PUT', '/admin/v1/users/9223372036854775808/settings', {
    visibility: 'nobody',
  })
  assert.equal(badId.statusCode, 400)
  assert.equal(badId.json().error.code, 'USER_ID_INVALID')
  const text = await call(app, 'PUT', '/admin/v1/users/7/settings', 'visibility=nobody', {
    ...json,
    'content-type': 'text/plain',
  })
  assert.equal(text.statusCode, 415)
  const huge = await call(app, 'PUT', '/admin/v1/users/7/settings', {
    visibility: 'everyone',
    padding: 'x'.repeat(2 * 1024 * 1024),
  })
  assert.equal(huge.statusCode, 413)
  assert.equal(huge.json().error.code, 'PAYLOAD_TOO_LARGE')
  assert.deepEqual((await call(app, 'GET', '/admin/v1/users/7/settings')).json(), {
    visibility: 'nobody',
    invisible: true,
  })
})

test('friends and blocks: mutual friendship, directional blocks, 204, bad pairs refused', async (t) => {
  const { app, stores } = await startApp(t)
  const events: unknown[] = []
  stores.bus.subscribe((e) => events.push(e))
  assert.equal((await call(app, 'PUT', '/admin/v1/users/1/friends/2')).statusCode, 204)
  assert.deepEqual(events.at(-1), { type: 'relation', users: ['1', '2'] })
  assert.deepEqual(await stores.profiles.listFriends('2' as UserId), ['1'])
  assert.deepEqual((await call(app, 'GET', '/admin/v1/users/1/friends')).json(), {
    userId: '1',
    friends: ['2'],
  })
  assert.equal((await call(app, 'DELETE', '/admin/v1/users/2/friends/1')).statusCode, 204)
  assert.deepEqual(await stores.profiles.listFriends('1' as UserId), [])

  assert.equal((await call(app, 'PUT', '/admin/v1/users/3/blocks/4')).statusCode, 204)
  const [rel] = await stores.profiles.getRelations('4' as UserId, ['3' as UserId])
  assert.deepEqual(rel, { friends: false, blocked: true })
  assert.equal((await call(app, 'DELETE', '/admin/v1/users/3/blocks/4')).statusCode, 204)
  // unblocked: what 4 saw of 3 through the block (nothing) stands until 3 is next seen alive
  const [after] = await stores.profiles.getRelations('4' as UserId, ['3' as UserId])
  assert.deepEqual(after, { friends: false, blocked: false, since: after!.since })
  assert.equal(typeof after!.since, 'number')

  for (const url of [
    '/admin/v1/users/1/friends/1',
    '/admin/v1/users/1/friends/x',
    '/admin/v1/users/0/blocks/2',
    '/admin/v1/users/1/blocks/1.5',
  ]) {
    const res = await call(app, 'PUT', url)
    assert.equal(res.statusCode, 400, url)
  }
  const unknown = await call(app, 'PUT', '/admin/v1/users/1/enemies/2')
  assert.equal(unknown.statusCode, 404)
  assert.equal(unknown.json().error.code, 'NOT_FOUND')
})

test('users catalogue and raw presence', async (t) => {
  const clock = new ManualClock()
  const { app, service } = await startApp(t, { clock })
  assert.equal((await call(app, 'GET', '/admin/v1/users/42')).statusCode, 404)
  const put = await call(app, 'PUT', '/admin/v1/users/42', { name: 'ada', displayName: 'Ada L' })
  assert.deepEqual(put.json(), { userId: '42', name: 'ada', displayName: 'Ada L' })
  assert.deepEqual((await call(app, 'GET', '/admin/v1/users/42')).json(), put.json())
  assert.equal((await call(app, 'PUT', '/admin/v1/users/42', { displayName: 'x' })).statusCode, 400)

  await call(app, 'PUT', '/admin/v1/places/100', { universeId: 200, name: 'Obby' })
  await call(app, 'PUT', '/admin/v1/users/42/settings', { invisible: true })
  await service.heartbeat({
    userId: '42' as UserId,
    key: 'app:pc',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'inGame', placeId: '100', gameId: 'b6a1b2c3-0000-4000-8000-000000000001' },
  })
  const raw = (await call(app, 'GET', '/admin/v1/users/42/presence')).json()
  assert.equal(raw.userId, '42')
  assert.equal(raw.state, 2)
  assert.equal(raw.stateName, 'inGame')
  assert.deepEqual(raw.settings, { visibility: 'everyone', invisible: true })
  assert.equal(raw.lastOnline, new Date(clock.now()).toISOString())
  assert.equal(raw.frozenLastOnline, null)
  assert.equal(raw.sessions.length, 1)
  assert.deepEqual(raw.sessions[0].activity, {
    kind: 'inGame',
    placeId: '100',
    gameId: 'b6a1b2c3-0000-4000-8000-000000000001',
    universeId: '200',
    rootPlaceId: '100',
    location: 'Obby',
  })
  assert.equal(raw.sessions[0].expiresAt, new Date(clock.now() + 60_000).toISOString())
})

test("a user's settings reads and writes spend the user's request budget, in the Roblox 429", async (t) => {
  // each PUT is a durable write and a privacy change fanned out to watchers: it was not limited
  // the clock held still: no window of the limit ends between the requests
  const { app, tokens } = await startApp(t, {
    config: { rateLimitMax: 3 },
    clock: new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 1)),
  })
  const token = await tokens.issue('56' as UserId)
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  const put = (invisible: boolean) =>
    app.inject({
      method: 'PUT',
      url: '/v1/presence/settings',
      headers: auth,
      payload: { invisible },
    })
  assert.equal((await put(true)).statusCode, 200)
  assert.equal((await put(false)).statusCode, 200)
  assert.equal(
    (await app.inject({ method: 'GET', url: '/v1/presence/settings', headers: auth })).statusCode,
    200,
  )
  const refused = await put(true)
  assert.equal(refused.statusCode, 429)
  assert.ok(Number(refused.headers['retry-after']) >= 1)
  assert.deepEqual(refused.json(), { errors: [{ code: 0, message: 'Too many requests' }] })
  // the same budget as the Roblox routes: spent here, refused there
  const read = await app.inject({
    method: 'POST',
    url: '/v1/presence/users',
    headers: auth,
    payload: { userIds: [1] },
  })
  assert.equal(read.statusCode, 429)
})

test('users change their own settings with the .ROBLOSECURITY cookie, a PUT with the CSRF token', async (t) => {
  const { app, tokens, service } = await startApp(t)
  const token = await tokens.issue('56' as UserId)
  const cookie = { cookie: `.ROBLOSECURITY=_|WARNING:-DO-NOT-SHARE-THIS.|_${token}; other=1` }
  const get = await app.inject({ method: 'GET', url: '/v1/presence/settings', headers: cookie })
  assert.equal(get.statusCode, 200, get.body)
  assert.deepEqual(get.json(), { visibility: 'everyone', invisible: false })
  const put = (headers: Record<string, string>) =>
    app.inject({
      method: 'PUT',
      url: '/v1/presence/settings',
      headers: { ...cookie, 'content-type': 'application/json', ...headers },
      payload: { invisible: true },
    })
  // without the token, or with a wrong one: refused, nothing written, the token handed out
  const challenge = await put({})
  assert.equal(challenge.statusCode, 403)
  assert.deepEqual(challenge.json(), {
    errors: [{ code: 0, message: 'Token Validation Failed' }],
  })
  const csrf = challenge.headers['x-csrf-token']
  assert.ok(typeof csrf === 'string' && csrf.length > 0)
  assert.equal((await put({ 'x-csrf-token': `${csrf}x` })).statusCode, 403)
  assert.equal((await service.getSettings('56' as UserId)).invisible, false)
  const done = await put({ 'x-csrf-token': csrf })
  assert.equal(done.statusCode, 200, done.body)
  assert.deepEqual(done.json(), { visibility: 'everyone', invisible: true })
  assert.equal((await service.getSettings('56' as UserId)).invisible, true)

  // a token beside the cookie is the credential (as on the Roblox routes): no CSRF token needed
  const other = await tokens.issue('57' as UserId)
  const bearer = await put({ authorization: `Bearer ${other}` })
  assert.equal(bearer.statusCode, 200, bearer.body)
  assert.equal((await service.getSettings('57' as UserId)).invisible, true)
  // a forged cookie is no user
  const forged = await app.inject({
    method: 'GET',
    url: '/v1/presence/settings',
    headers: { cookie: `.ROBLOSECURITY=${token.slice(0, -2)}xx` },
  })
  assert.equal(forged.statusCode, 401)
  assert.deepEqual(forged.json(), {
    errors: [{ code: 0, message: 'Authorization has been denied for this request.' }],
  })
})

test('users change their own settings with a Bearer token', async (t) => {
  const { app, tokens, service } = await startApp(t)
  const token = await tokens.issue('55' as UserId)
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  const get = await app.inject({ method: 'GET', url: '/v1/presence/settings', headers: auth })
  assert.deepEqual(get.json(), { visibility: 'everyone', invisible: false })
  const put = await app.inject({
    method: 'PUT',
    url: '/v1/presence/settings',
    headers: auth,
    payload: { invisible: true },
  })
  assert.deepEqual(put.json(), { visibility: 'everyone', invisible: true })
  assert.equal((await service.getSettings('55' as UserId)).invisible, true)

  const anonymous = await app.inject({
    method: 'PUT',
    url: '/v1/presence/settings',
    headers: { 'content-type': 'application/json' },
    payload: { invisible: false },
  })
  assert.equal(anonymous.statusCode, 401)
  assert.deepEqual(anonymous.json(), {
    errors: [{ code: 0, message: 'Authorization has been denied for this request.' }],
  })
  const forged = await app.inject({
    method: 'GET',
    url: '/v1/presence/settings',
    headers: { authorization: `Bearer ${token.slice(0, -2)}xx` },
  })
  assert.equal(forged.statusCode, 401)
  const bad = await app.inject({
    method: 'PUT',
    url: '/v1/presence/settings',
    headers: auth,
    payload: { visibility: 'strangers' },
  })
  assert.equal(bad.statusCode, 400)
  assert.equal(bad.json().errors[0].code, 0)
  const form = await app.inject({
    method: 'PUT',
    url: '/v1/presence/settings',
    headers: { ...auth, 'content-type': 'text/plain' },
    payload: 'invisible=false',
  })
  assert.equal(form.statusCode, 415)
  assert.equal((await service.getSettings('55' as UserId)).invisible, true)
})
