import fc from 'fast-check'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  anyJson,
  assertRefusedWithoutWrites,
  badId,
  badSegment,
  codedError,
  fixture,
  goodId,
  headersOf,
  rawRequest,
  robloxError,
} from './fuzz-kit.js'

test('companion: /v2/logout and /v2/login take any body, answer the CSRF 403, write nothing', async (t) => {
  const f = await fixture(t)
  const token = await f.userToken('1')
  await assertRefusedWithoutWrites(
    f,
    fc.record({
      url: fc.constantFrom('/v2/logout', '/v2/login'),
      raw: rawRequest,
      auth: fc.constantFrom<Record<string, string>>(
        {},
        { authorization: `Bearer ${token}` },
        { cookie: '.ROBLOSECURITY=x' },
      ),
    }),
    ({ url, raw, auth }) =>
      f.app.inject({ method: 'POST', url, headers: headersOf(raw.type, auth), payload: raw.body }),
    (response) => {
      robloxError(response, [403, 413])
      if (response.statusCode === 403) assert.ok(response.headers['x-csrf-token'])
    },
  )
})

test('companion: GET /v1/users/:id with bad ids is a Roblox 4xx', async (t) => {
  const f = await fixture(t)
  await assertRefusedWithoutWrites(
    f,
    badSegment.filter((s) => s !== 'authenticated'),
    (id) => f.app.inject({ method: 'GET', url: `/v1/users/${id}` }),
    (response) => robloxError(response, [400, 404, 414]),
  )
  const ok = await f.app.inject({ method: 'GET', url: '/v1/users/9223372036854775807' })
  assert.match(ok.body, /"id":9223372036854775807,/)
})

test('native: SSE ids that are not user ids, or too many, are a native 400', async (t) => {
  const f = await fixture(t)
  const token = await f.userToken('1')
  const ids = fc.oneof(
    fc
      .tuple(fc.array(goodId, { maxLength: 5 }), badId, fc.array(goodId, { maxLength: 5 }))
      .map(([a, bad, b]) =>
        [...a, typeof bad === 'string' ? bad : JSON.stringify(bad), ...b].join(','),
      ),
    fc.constant(Array.from({ length: 1001 }, (_, i) => i + 1).join(',')),
    fc.constantFrom('', ',', ',,,'),
  )
  await assertRefusedWithoutWrites(
    f,
    ids,
    (list) =>
      f.app.inject({
        method: 'GET',
        url: `/api/v1/realtime/sse?ids=${encodeURIComponent(list)}`,
        headers: { authorization: `Bearer ${token}` },
      }),
    (response) => codedError(response, [400]),
  )
})

test('game servers: malformed reports, gameIds and keys are refused whole, nothing written', async (t) => {
  const f = await fixture(t)
  const keys = f.service.keys
  const writer = (await keys.create({ name: 'gs', scopes: ['presence:write'] })).secret
  const reader = (await keys.create({ name: 'r', scopes: ['presence:read'] })).secret
  const gameId = '6f1c1a52-3b0e-4a8e-9d65-0a3c0d2f8c11'
  const badReport = fc.oneof(
    fc.record({ placeId: badId, players: fc.constant(['1']) }),
    fc.record({ placeId: goodId, players: fc.tuple(goodId, badId).map(([a, b]) => [a, b]) }),
    fc.record({
      placeId: goodId,
      players: fc.constant(Array.from({ length: 10_001 }, (_, i) => i + 1)),
    }),
    fc.record({ placeId: goodId }),
    fc.record({ placeId: goodId, players: fc.oneof(fc.string(), fc.integer(), fc.object()) }),
    fc.oneof(fc.array(anyJson), fc.string(), fc.constant(null)),
  )
  const request = fc.oneof(
    badReport.map((body) => ({
      url: gameId,
      body: JSON.stringify(body),
      key: writer,
      type: 'application/json',
    })),
    badSegment.map((g) => ({
      url: g,
      body: '{"placeId":1,"players":["1"]}',
      key: writer,
      type: 'application/json',
    })),
    fc.constantFrom(reader, 'pk_forged', '').map((key) => ({
      url: gameId,
      body: '{"placeId":1,"players":["1"]}',
      key,
      type: 'application/json',
    })),
    rawRequest.map((r) => ({
      url: gameId,
      body: r.body,
      key: writer,
      type: r.type === 'application/json' ? 'text/plain' : r.type,
    })),
  )
  await assertRefusedWithoutWrites(
    f,
    request,
    ({ url, body, key, type }) =>
      f.app.inject({
        method: 'PUT',
        url: `/api/v1/servers/${url}`,
        headers: headersOf(type, key === '' ? {} : { 'x-api-key': key }),
        payload: body,
      }),
    (response) => codedError(response, [400, 401, 403, 404, 413, 414, 415]),
    100,
  )
})
