import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import type { Config } from '../../src/app/config.js'
import { MIRRORED_HOOKS } from '../../src/protocols/shared/lean-routes.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import {
  assertSameReply,
  leanAndFastify,
  postRaw,
  routeHooks,
  startFixedClockApp,
} from '../helpers/lean-vs-fastify.js'
import { HEARTBEAT_ROUTE_HOOKS } from '../../src/protocols/roblox/lean-heartbeat.js'
import { REGISTER, USERS } from './roblox-helpers.js'

/*
 * POST /v1/presence/users is answered on node:http (protocols/shared/lean-routes.ts) when the
 * request is ordinary, by Fastify otherwise. Both must answer alike: each request here is sent
 * as is (lean) and with a query string, which only Fastify takes (same route, same
 * handler), and the two replies must match byte for byte, headers included (but Date).
 */

/** Sends the request both ways (lean, then Fastify). */
function both(
  app: StartedApp,
  headers: Record<string, string>,
  body: string | Buffer,
  path = USERS,
) {
  return leanAndFastify(app, path, headers, body)
}

async function seeded(t: TestContext, config: Partial<Config> = {}) {
  const { app, clock } = await startFixedClockApp(t, config)
  const { service } = app
  await service.putPlace({
    placeId: '1818',
    universeId: '13058',
    rootPlaceId: '1818',
    name: 'Obby',
  })
  await service.heartbeat({
    userId: '1' as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'inGame', placeId: '1818', gameId: '6f1c1b4e-2f7a-4f5e-9a57-1e2d3c4b5a69' },
  })
  await service.heartbeat({
    userId: '9223372036854775807' as UserId,
    key: 'app:Web',
    source: 'app',
    deviceType: 'Web',
    activity: { kind: 'online', location: 'Home "quoted"' },
  })
  await service.putSettings('2' as UserId, { visibility: 'nobody', invisible: true })
  await service.heartbeat({
    userId: '2' as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'inStudio' },
  })
  await service.setFriends('1' as UserId, '3' as UserId, true)
  await service.putSettings('3' as UserId, { visibility: 'friends', invisible: false })
  await service.heartbeat({
    userId: '3' as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'inGame', placeId: '1818' },
  })
  clock.advance(1234)
  return app
}

const json = { 'content-type': 'application/json' }

test('lean and Fastify paths give the same bytes for good and bad requests', async (t) => {
  const app = await seeded(t)
  const token = await app.tokens.issue('1' as UserId)
  const invisibleSelf = await app.tokens.issue('2' as UserId)
  const many = Array.from({ length: 50 }, (_, i) => i + 1)
  const cases: Array<[string, Record<string, string>, string]> = [
    ['anonymous', json, JSON.stringify({ userIds: [1, 2, 3, 4] })],
    ['50 ids', json, JSON.stringify({ userIds: many })],
    [
      'int64 beyond 2^53, duplicates',
      json,
      '{"userIds":[9223372036854775807,"1",1,9223372036854775807]}',
    ],
    ['charset', { 'content-type': 'application/json; charset=utf-8' }, '{"userIds":[1]}'],
    [
      'signed in (friend sees where)',
      { ...json, authorization: `Bearer ${token}` },
      '{"userIds":[1,2,3]}',
    ],
    [
      'self while invisible',
      { ...json, authorization: `Bearer ${invisibleSelf}` },
      '{"userIds":[2]}',
    ],
    ['invalid JSON', json, '{"userIds":[1,'],
    ['empty body', json, ''],
    ['not an object', json, '[1,2]'],
    ['no userIds', json, '{}'],
    ['userIds empty', json, '{"userIds":[]}'],
    ['51 ids', json, JSON.stringify({ userIds: [...many, 51] })],
    ['a boolean id', json, '{"userIds":[true]}'],
    ['a negative id', json, '{"userIds":[-5]}'],
    ['a fraction', json, '{"userIds":[1.5]}'],
    ['beyond int64', json, '{"userIds":[9223372036854775808]}'],
    ['a bad bearer token', { ...json, authorization: 'Bearer nope' }, '{"userIds":[1]}'],
    ['a malformed Authorization', { ...json, authorization: 'Basic abc' }, '{"userIds":[1]}'],
    ['an unknown API key', { ...json, 'x-api-key': 'pk_unknown' }, '{"userIds":[1]}'],
    ['a cookie without CSRF', { ...json, cookie: `.ROBLOSECURITY=${token}` }, '{"userIds":[1]}'],
  ]
  for (const [name, headers, body] of cases) {
    const { lean, fastify } = await both(app, headers, body)
    assertSameReply(lean, fastify, name)
  }
  // the cases did reach the states they name
  const { lean } = await both(
    app,
    json,
    JSON.stringify({ userIds: [1, 9223372036854775807n.toString()] }),
  )
  assert.match(lean.body.toString(), /"userPresenceType":2,"lastLocation":"Obby","placeId":1818/)
  assert.match(
    lean.body.toString(),
    /"userId":9223372036854775807,"lastOnline":"2026-03-01T12:00:00.007Z"/,
  )
})

test('bodies read as bytes: the same replies as Fastify for long ids, odd bytes and spellings', async (t) => {
  const app = await seeded(t)
  const bytes = (...parts: Array<string | number[]>) =>
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))))
  const cases: Array<[string, Buffer]> = [
    // ids of 16 to 19 digits: read as their digits, the last two alike as doubles
    [
      'long ids',
      bytes('{"userIds":[9223372036854775807,1000000000000000,9007199254740993,9007199254740992]}'),
    ],
    ['long ids repeated', bytes('{"userIds":[9223372036854775807,1,9223372036854775807,1]}')],
    ['beyond int64', bytes('{"userIds":[9223372036854775808,1]}')],
    ['20 digits', bytes('{"userIds":[10000000000000000000]}')],
    ['whitespace everywhere', bytes(' \r\n\t{ "userIds" :\n[ 1 ,\t9223372036854775807 ] }\n ')],
    ['escaped member name', bytes('{"\\u0075serIds":[1,2]}')],
    ['escaped id string', bytes('{"userIds":["\\u0031"]}')],
    ['byte-order mark', bytes([0xef, 0xbb, 0xbf], '{"userIds":[1]}')],
    ['not UTF-8', bytes('{"userIds":[1,', [0xff], '2]}')],
    ['a truncated UTF-8 sequence', bytes('{"userIds":[1]', [0xc3], '}')],
    ['a no-break space', bytes('{"userIds":[1,', [0xc2, 0xa0], '2]}')],
    ['a full-width digit', bytes('{"userIds":["', [0xef, 0xbc, 0x91], '"]}')],
    ['a NUL byte', bytes('{"userIds":[1]}', [0])],
  ]
  for (const [name, body] of cases) {
    const { lean, fastify } = await both(app, json, body)
    assertSameReply(lean, fastify, name)
  }
  // the long ids did reach the store: the seeded user beyond 2^53 is online, as sent
  const { lean } = await both(app, json, '{"userIds":[9223372036854775807,1]}')
  assert.match(lean.body.toString(), /"userPresenceType":1,[^}]*"userId":9223372036854775807,/)
  // form and text/json bodies still go to Fastify, long ids kept exact
  const served = app.lean.served
  for (const [type, body] of [
    ['application/x-www-form-urlencoded', 'userIds=9223372036854775807&userIds=1'],
    ['text/json', '{"userIds":[9223372036854775807,1]}'],
  ]) {
    const reply = await postRaw(app.url, USERS, { 'content-type': type! }, body!)
    assert.equal(reply.status, 200, type)
    assert.deepEqual(
      [...reply.body.toString().matchAll(/"userId":(\d+)/g)].map((m) => m[1]),
      ['9223372036854775807', '1'],
      type,
    )
  }
  assert.equal(app.lean.served, served)
})

test("an API key's scope is checked alike on both paths: a write-only key may not read", async (t) => {
  const app = await seeded(t)
  const keyWith = async (scopes: string[]): Promise<string> => {
    const created = await app.app.inject({
      method: 'POST',
      url: '/admin/v1/keys',
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: scopes.join(' '), scopes }),
    })
    assert.equal(created.statusCode, 201, created.body)
    return created.json().secret
  }
  const writer = await keyWith(['presence:write'])
  const reader = await keyWith(['presence:read'])
  const body = '{"userIds":[1]}'
  const refused = await both(app, { ...json, 'x-api-key': writer }, body)
  assertSameReply(refused.lean, refused.fastify, 'write-only key')
  assert.equal(refused.lean.status, 403)
  const read = await both(app, { ...json, 'x-api-key': reader }, body)
  assertSameReply(read.lean, read.fastify, 'read key')
  assert.equal(read.lean.status, 200)
})

test('lean and Fastify paths refuse alike once the rate limit is reached', async (t) => {
  const app = await seeded(t, { rateLimitMax: 2 })
  const first = await both(app, json, '{"userIds":[1]}')
  assert.equal(first.lean.status, 200)
  assert.equal(first.fastify.status, 200)
  const { lean, fastify } = await both(app, json, '{"userIds":[1]}')
  assert.equal(lean.status, 429)
  assert.deepEqual(lean.headers, fastify.headers)
  assert.equal(lean.body.toString(), fastify.body.toString())
  assert.ok(lean.headers['retry-after'])
})

test('unusual requests go to Fastify: compression, other types, no length, query strings', async (t) => {
  const app = await seeded(t)
  const served = app.lean.served
  const gzip = await postRaw(
    app.url,
    USERS,
    { ...json, 'accept-encoding': 'gzip' },
    JSON.stringify({ userIds: Array.from({ length: 50 }, (_, i) => i + 1) }),
  )
  assert.equal(gzip.status, 200)
  assert.equal(gzip.headers['content-encoding'], 'gzip')
  const form = await postRaw(
    app.url,
    USERS,
    { 'content-type': 'application/x-www-form-urlencoded' },
    'userIds=1&userIds=2',
  )
  assert.equal(form.status, 200)
  const text = await postRaw(app.url, USERS, { 'content-type': 'text/plain' }, '{"userIds":[1]}')
  assert.equal(text.status, 415)
  assert.equal(app.lean.served, served)
  // and the lean path's requests count in the metrics like Fastify's
  await postRaw(app.url, USERS, json, '{"userIds":[1]}')
  assert.equal(app.lean.served, served + 1)
  const metrics = await app.app.inject({
    method: 'GET',
    url: '/metrics',
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  })
  assert.match(
    metrics.body,
    /presenced_http_request_duration_seconds_count\{method="POST",route="\/v1\/presence\/users",status="200"\} [1-9]/,
  )
})

test('register-app-presence: lean and Fastify paths give the same bytes and the same writes', async (t) => {
  const app = await seeded(t, { rateLimitMax: 1000 })
  const token = await app.tokens.issue('5' as UserId)
  const auth = { ...json, authorization: `Bearer ${token}` }
  const cases: Array<[string, Record<string, string>, string]> = [
    ['online', auth, '{"location":"Home"}'],
    ['in a catalogued place', auth, '{"location":"Game","placeId":1818}'],
    [
      'in an uncatalogued place, a game id',
      auth,
      '{"placeId":"77","gameId":"6F1C1B4E-2F7A-4F5E-9A57-1E2D3C4B5A69"}',
    ],
    ['studio, a platform', { ...auth, 'user-agent': 'RobloxStudio/1.0' }, '{"location":"Studio"}'],
    ['charset', { ...auth, 'content-type': 'application/json; charset=utf-8' }, '{}'],
    ['disconnect', auth, '{"disconnect":true}'],
    ['anonymous', json, '{"location":"Home"}'],
    ['a bad bearer token', { ...json, authorization: 'Bearer nope' }, '{}'],
    ['a cookie without CSRF', { ...json, cookie: `.ROBLOSECURITY=${token}` }, '{}'],
    ['an API key without a user', { ...json, 'x-api-key': 'pk_unknown' }, '{}'],
    ['invalid JSON', auth, '{"location":'],
    ['empty body', auth, ''],
    ['not an object', auth, '[1]'],
    ['a bad placeId', auth, '{"placeId":1.5}'],
    ['a gameId without a place', auth, '{"gameId":"6f1c1b4e-2f7a-4f5e-9a57-1e2d3c4b5a69"}'],
    ['disconnect not a boolean', auth, '{"disconnect":"maybe"}'],
  ]
  const presenceOf = async () =>
    JSON.stringify(await app.service.rawPresence('5' as UserId).then((p) => p.presence))
  for (const [name, headers, body] of cases) {
    const { lean } = await both(app, headers, body, REGISTER)
    const afterLean = await presenceOf()
    // the same request again through Fastify leaves the same presence (times aside: fixed clock)
    const { fastify } = await both(app, headers, body, REGISTER)
    assert.equal(await presenceOf(), afterLean, name)
    assertSameReply(lean, fastify, name)
  }
  // the cases did reach the states they name
  await both(app, auth, '{"location":"Game","placeId":1818}', REGISTER)
  const { presence } = await app.service.rawPresence('5' as UserId)
  const inGame = presence.sessions.find((session) => session.activity.kind === 'inGame')
  assert.equal(inGame?.activity.location, 'Obby')
  const refused = await postRaw(app.url, REGISTER, json, '{}')
  assert.equal(refused.status, 401)
})

test('every hook Fastify runs on a lean route is one the lean path mirrors', async (t) => {
  const { app } = await startApp(t)
  await app.ready()
  const ownHooks: Record<string, Readonly<Record<string, readonly string[]>>> = {
    [`${REGISTER} (POST)`]: HEARTBEAT_ROUTE_HOOKS,
  }
  for (const route of [`${USERS} (POST)`, `${REGISTER} (POST)`]) {
    const hooks = routeHooks(app, route)
    const expected: Record<string, string[]> = {}
    for (const [name, list] of Object.entries(MIRRORED_HOOKS)) expected[name] = [...list]
    // a route's own hooks run among the app's in Fastify's order: compared as sets
    for (const [name, list] of Object.entries(ownHooks[route] ?? {})) {
      expected[name] = [...(expected[name] ?? []), ...list].sort()
      hooks[name]?.sort()
    }
    assert.deepEqual(
      hooks,
      expected,
      `${route}: a hook was added to the app; mirror it in LeanRoutes and list it in MIRRORED_HOOKS`,
    )
  }
})
