import fc from 'fast-check'
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import {
  SEEDED,
  anyJson,
  assertRefusedWithoutWrites,
  badId,
  badSegment,
  contentType,
  fixture,
  goodId,
  headersOf,
  rawRequest,
  xboxError,
} from './fuzz-kit.js'

const ME = SEEDED[2]!

async function xbox(t: TestContext) {
  const f = await fixture(t, { xboxBurstMax: 1_000_000, xboxSustainMax: 1_000_000 })
  const token = await f.userToken(ME)
  const headers = {
    authorization: `XBL3.0 x=1234;${token}`,
    'x-xbl-contract-version': '3',
    accept: 'application/json',
  }
  return { ...f, headers }
}

const TITLE = `/users/xuid(${ME})/devices/current/titles/current`

test('POST /users/batch: raw bodies of any type are 200 or an Xbox 4xx, never a write', async (t) => {
  const f = await xbox(t)
  await assertRefusedWithoutWrites(
    f,
    rawRequest,
    ({ body, type }) =>
      f.app.inject({
        method: 'POST',
        url: '/users/batch',
        headers: headersOf(type, f.headers),
        payload: body,
      }),
    (response) => {
      if (response.statusCode === 200) return
      xboxError(response, [400, 413, 415])
    },
  )
})

test('POST /users/batch: bad xuids, prohibited members, bad levels and 1101 users are 400', async (t) => {
  const f = await xbox(t)
  const bad = fc.oneof(
    fc
      .tuple(fc.array(goodId, { maxLength: 5 }), badId, fc.array(goodId, { maxLength: 5 }))
      .map(([a, x, b]) => ({ users: [...a, x, ...b] })),
    fc.record({
      users: fc.constant(['1']),
      level: fc.string().filter((s) => !/^(user|device|title|all)$/.test(s)),
    }),
    fc
      .dictionary(
        fc
          .string()
          .filter((k) => !['users', 'deviceTypes', 'titles', 'level', 'onlineOnly'].includes(k)),
        anyJson,
        { minKeys: 1 },
      )
      .map((extra) => ({ users: ['1'], ...extra })),
    fc.constant({ users: Array.from({ length: 1101 }, (_, i) => String(i + 1)) }),
    fc.constant({ users: [] }),
    fc.constant({ users: '1' }),
    fc.record({ users: fc.constant(['1']), deviceTypes: fc.oneof(fc.string(), fc.integer()) }),
  )
  await assertRefusedWithoutWrites(
    f,
    bad,
    (body) =>
      f.app.inject({
        method: 'POST',
        url: '/users/batch',
        headers: { ...f.headers, 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      }),
    (response) => xboxError(response, [400]),
  )
})

test('GET /users/:target and groups: bad segments, levels and monikers are Xbox 4xx', async (t) => {
  const f = await xbox(t)
  const path = fc.oneof(
    badSegment.filter((s) => s !== 'me').map((s) => `/users/${s}`),
    badSegment.map((s) => `/users/xuid(${s})`),
    badSegment.map((s) => `/users/xuid(${s})/groups/People`),
    fc
      .string({ minLength: 1, maxLength: 10 })
      .filter((m) => m !== 'People' && !/[/?#%]/.test(m))
      .map((m) => `/users/me/groups/${encodeURIComponent(m)}`),
    fc
      .string()
      .filter((l) => !/^(user|device|title|all)$/.test(l))
      .map((l) => `/users/me?level=${encodeURIComponent(l)}`),
    goodId.filter((id) => id !== ME).map((id) => `/users/xuid(${id})/groups/People`),
  )
  await assertRefusedWithoutWrites(
    f,
    path,
    (url) => f.app.inject({ method: 'GET', url, headers: f.headers }),
    (response) => xboxError(response),
  )
})

test('title write and delete: malformed bodies, ids and device types are 4xx, no write', async (t) => {
  const f = await xbox(t)
  const badBody = fc.oneof(
    fc.record({ id: badId }),
    fc.record({ id: fc.constantFrom('4294967296', -1, '99999999999') }),
    fc.record({ state: fc.string().filter((s) => s !== 'active' && s !== 'inactive') }),
    fc.record({
      placement: fc.oneof(
        fc.integer(),
        fc.string().filter((s) => !/^(full|fill|snapped|background)$/.test(s)),
      ),
    }),
    fc.record({
      activity: fc.oneof(
        fc.string(),
        fc.array(fc.anything()),
        fc.record({ richPresence: fc.record({ params: fc.array(fc.string()) }) }),
      ),
    }),
    fc.record({
      activity: fc.record({
        richPresence: fc.record({
          id: fc.string(),
          params: fc.array(fc.string(), { minLength: 200, maxLength: 300 }),
        }),
      }),
    }),
    fc.dictionary(
      fc.string().filter((k) => !['id', 'state', 'placement', 'activity'].includes(k)),
      anyJson,
      { minKeys: 1 },
    ),
    fc.oneof(fc.array(anyJson), fc.string(), fc.integer(), fc.constant(null)),
  )
  const request = fc.oneof(
    badBody.map((body) => ({
      method: 'POST',
      url: TITLE,
      body: JSON.stringify(body),
      headers: {},
    })),
    // another user's presence: the claim must match the URI
    fc
      .tuple(
        goodId.filter((id) => id !== ME),
        fc.constantFrom('POST', 'DELETE'),
      )
      .map(([id, method]) => ({
        method,
        url: `/users/xuid(${id})/devices/current/titles/current`,
        body: method === 'POST' ? '{"state":"active"}' : undefined,
        headers: {},
      })),
    fc
      .tuple(
        fc
          .string({ minLength: 1, maxLength: 40 })
          .filter((s) => !/^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/.test(s) && /^[\x21-\x7e]+$/.test(s)),
        fc.constantFrom('POST', 'DELETE'),
      )
      .map(([device, method]) => ({
        method,
        url: TITLE,
        body: method === 'POST' ? '{}' : undefined,
        headers: { 'x-xbl-device-type': device },
      })),
    fc
      .tuple(fc.constantFrom('x', '-1', '4294967296', '1.5'), fc.constantFrom('POST', 'DELETE'))
      .map(([titleId, method]) => ({
        method,
        url: `${TITLE}?titleId=${titleId}`,
        body: method === 'POST' ? '{}' : undefined,
        headers: {},
      })),
  )
  await assertRefusedWithoutWrites(
    f,
    request,
    ({ method, url, body, headers }) =>
      f.app.inject({
        method: method as 'POST',
        url,
        headers: {
          ...f.headers,
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body !== undefined && { payload: body }),
      }),
    (response) => xboxError(response, [400, 403]),
  )
})

test('PUT /users/:target/state: anything but {state: Active|Cloaked} of your own is refused', async (t) => {
  const f = await xbox(t)
  const request = fc.oneof(
    fc.record({
      url: fc.constant(`/users/xuid(${ME})/state`),
      body: fc.oneof(
        anyJson.filter((v) => !(typeof v === 'object' && v !== null && 'state' in v)),
        fc.record({ state: fc.string().filter((s) => s !== 'Active' && s !== 'Cloaked') }),
        fc.record({ state: fc.constantFrom('Active'), extra: fc.jsonValue() }),
      ),
      type: contentType,
    }),
    fc.record({
      url: goodId.filter((id) => id !== ME).map((id) => `/users/xuid(${id})/state`),
      body: fc.constant({ state: 'Cloaked' }),
      type: fc.constant('application/json'),
    }),
  )
  await assertRefusedWithoutWrites(
    f,
    request,
    ({ url, body, type }) =>
      f.app.inject({
        method: 'PUT',
        url,
        headers: headersOf(type, f.headers),
        payload: JSON.stringify(body) ?? 'null',
      }),
    (response) => xboxError(response, [400, 403, 415]),
  )
})

test('Xbox headers: missing or bad contract version, Accept, Authorization are refused', async (t) => {
  const f = await xbox(t)
  const variant = fc.oneof(
    fc.record({
      'x-xbl-contract-version': fc
        .string()
        .filter((v) => v !== '3' && !/[\r\n]/.test(v) && /^[\x20-\x7e]*$/.test(v)),
    }),
    fc.record({
      accept: fc.constantFrom('text/html', 'application/xml', 'application/json;q=0', 'image/*'),
    }),
    fc.record({
      authorization: fc.constantFrom(
        'XBL3.0 x=1;nope',
        'Bearer x',
        'XBL3.0',
        'XBL3.0 x=;',
        'XBL2.0 x=1;t',
      ),
    }),
    fc.record({
      'x-api-key': fc.constantFrom('pk_nope', 'x', 'test-admin-key'),
      authorization: fc.constant(''),
    }),
  )
  const route = fc.constantFrom(
    { method: 'POST', url: '/users/batch', body: '{"users":["1"]}' },
    { method: 'GET', url: '/users/me' },
    { method: 'POST', url: TITLE, body: '{}' },
    { method: 'DELETE', url: TITLE },
    { method: 'PUT', url: `/users/xuid(${ME})/state`, body: '{"state":"Cloaked"}' },
  )
  await assertRefusedWithoutWrites(
    f,
    fc.tuple(variant, route),
    ([variant, route]) =>
      f.app.inject({
        method: route.method as 'GET',
        url: route.url,
        headers: {
          ...f.headers,
          ...(route.body !== undefined && { 'content-type': 'application/json' }),
          ...variant,
        } as Record<string, string>,
        ...(route.body !== undefined && { payload: route.body }),
      }),
    (response) => xboxError(response, [400, 401, 403, 406]),
  )
  // the refusals wrote nothing, and the right credentials still work
  const ok = await f.app.inject({ method: 'GET', url: '/users/me', headers: f.headers })
  assert.equal(ok.statusCode, 200, ok.body)
})
