import fc from 'fast-check'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  assertRefusedWithoutWrites,
  badId,
  contentType,
  fixture,
  goodId,
  headersOf,
  rawRequest,
  robloxError,
} from './fuzz-kit.js'

const USERS = '/v1/presence/users'
const REGISTER = '/v1/presence/register-app-presence'
const SETTINGS = '/v1/presence/settings'

test('POST /v1/presence/users: raw bodies of any type are 200 or a Roblox 4xx, never a write', async (t) => {
  const f = await fixture(t)
  await assertRefusedWithoutWrites(
    f,
    rawRequest,
    ({ body, type }) =>
      f.app.inject({ method: 'POST', url: USERS, headers: headersOf(type), payload: body }),
    (response) => {
      if (response.statusCode === 200) return
      robloxError(response, [400, 413, 415])
    },
  )
})

test('POST /v1/presence/users: any bad id among good ones is a 400 code 1', async (t) => {
  const f = await fixture(t)
  const ids = fc
    .tuple(fc.array(goodId, { maxLength: 10 }), badId, fc.array(goodId, { maxLength: 10 }))
    .map(([a, bad, b]) => [...a, bad, ...b])
  await assertRefusedWithoutWrites(
    f,
    fc.record({ ids, type: fc.constantFrom('application/json', 'text/json') }),
    ({ ids, type }) =>
      f.app.inject({
        method: 'POST',
        url: USERS,
        headers: { 'content-type': type },
        payload: JSON.stringify({ userIds: ids }),
      }),
    (response) => {
      robloxError(response, [400])
      assert.equal(JSON.parse(response.body).errors[0].code, 1, response.body)
    },
  )
})

test('POST /v1/presence/users: int64 edges exact, duplicates once, 51 ids refused', async (t) => {
  const f = await fixture(t)
  await fc.assert(
    fc.asyncProperty(fc.array(goodId, { minLength: 1, maxLength: 50 }), async (ids) => {
      // half as JSON numbers (lossless parser), half as strings; each id twice
      const literals = ids.map((id, i) => (i % 2 ? id : `"${id}"`))
      const response = await f.app.inject({
        method: 'POST',
        url: USERS,
        headers: { 'content-type': 'application/json' },
        payload: `{"userIds":[${[...literals, ...literals].join(',')}]}`,
      })
      if (ids.length * 2 > 50) {
        robloxError(response, [400])
        assert.equal(JSON.parse(response.body).errors[0].code, 2)
        return
      }
      assert.equal(response.statusCode, 200, response.body)
      const got = [...response.body.matchAll(/"userId":(\d+)/g)].map((m) => m[1])
      assert.deepEqual(got, [...new Set(ids)])
    }),
    { numRuns: 100 },
  )
})

test('POST register-app-presence: malformed bodies are a Roblox 4xx and write nothing', async (t) => {
  const f = await fixture(t)
  const auth = { authorization: `Bearer ${await f.userToken('5')}` }
  const bad = fc.oneof(
    fc.record({ placeId: badId.filter((v) => v !== 0 && v !== '0' && v !== null && v !== '') }),
    fc.record({
      location: fc.oneof(fc.integer(), fc.array(fc.string()), fc.string({ minLength: 201 })),
    }),
    fc.record({ disconnect: fc.oneof(fc.string(), fc.integer(), fc.object()) }),
    fc.record({ placeId: goodId, gameId: fc.string({ maxLength: 40 }) }),
    fc.record({ gameId: fc.uuid() }),
    fc.record({ platform: fc.string({ minLength: 33 }) }),
    fc.oneof(fc.array(fc.anything()), fc.string(), fc.integer(), fc.constant(null)),
  )
  await assertRefusedWithoutWrites(
    f,
    fc.record({ body: bad, type: fc.constantFrom('application/json', 'text/json') }),
    ({ body, type }) =>
      f.app.inject({
        method: 'POST',
        url: REGISTER,
        headers: { 'content-type': type, ...auth },
        payload: JSON.stringify(body),
      }),
    (response) => robloxError(response, [400]),
  )
})

test('POST register-app-presence: raw bodies of any type never 5xx; 4xx writes nothing', async (t) => {
  const f = await fixture(t)
  const auth = { authorization: `Bearer ${await f.userToken('5')}` }
  const before = await f.snapshot()
  await fc.assert(
    fc.asyncProperty(rawRequest, async ({ body, type }) => {
      const writes = f.writes()
      const response = await f.app.inject({
        method: 'POST',
        url: REGISTER,
        headers: headersOf(type, auth),
        payload: body,
      })
      if (response.statusCode === 200) return
      robloxError(response, [400, 413, 415])
      assert.equal(f.writes(), writes, 'a refused register writes nothing')
    }),
    { numRuns: 150 },
  )
  // user 5 is not among the seeded users: whatever was accepted left them as they were
  const withoutStats = (snapshot: unknown) => ({ ...(snapshot as object), stats: undefined })
  assert.deepEqual(withoutStats(await f.snapshot()), withoutStats(before))
})

test('GET/PUT /v1/presence/settings: malformed bodies and types are a Roblox 4xx, no write', async (t) => {
  const f = await fixture(t)
  const auth = { authorization: `Bearer ${await f.userToken('2')}` }
  const bad = fc.oneof(
    fc.record({
      visibility: fc.string().filter((s) => !['everyone', 'friends', 'nobody'].includes(s)),
    }),
    fc.record({
      invisible: fc.oneof(
        fc.string().filter((s) => s !== 'true' && s !== 'false'),
        fc.object(),
      ),
    }),
    fc.constant({}),
    fc.dictionary(
      fc.string().filter((k) => k !== 'visibility' && k !== 'invisible'),
      fc.jsonValue(),
      { minKeys: 1 },
    ),
    fc.oneof(fc.array(fc.jsonValue()), fc.string(), fc.integer(), fc.constant(null)),
  )
  await assertRefusedWithoutWrites(
    f,
    fc.record({ body: bad, type: contentType }),
    ({ body, type }) =>
      f.app.inject({
        method: 'PUT',
        url: SETTINGS,
        headers: headersOf(type, auth),
        payload: JSON.stringify(body),
      }),
    (response) => robloxError(response, [400, 415]),
  )
})

test('every Roblox route: a wrong method is a Roblox-shaped 4xx', async (t) => {
  const f = await fixture(t)
  const paths = [USERS, REGISTER, SETTINGS, '/v2/logout', '/v2/login', '/v1/users/authenticated']
  await assertRefusedWithoutWrites(
    f,
    fc.record({
      url: fc.constantFrom(...paths),
      method: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'POST'),
    }),
    ({ url, method }) => f.app.inject({ method: method as 'GET', url }),
    (response, { url, method }) => {
      if (response.statusCode === 200) {
        assert.ok(url === SETTINGS && method === 'GET', `${method} ${url}`)
        return
      }
      robloxError(response)
    },
    60,
  )
})
