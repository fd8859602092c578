import fc from 'fast-check'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  admin,
  anyJson,
  assertRefusedWithoutWrites,
  badId,
  badSegment,
  codedError,
  contentType,
  fixture,
  goodId,
  headersOf,
  rawRequest,
} from './fuzz-kit.js'

const idRoutes = [
  ['GET', '/admin/v1/users/:id/settings'],
  ['PUT', '/admin/v1/users/:id/settings'],
  ['GET', '/admin/v1/users/:id/friends'],
  ['GET', '/admin/v1/users/:id'],
  ['PUT', '/admin/v1/users/:id'],
  ['GET', '/admin/v1/users/:id/presence'],
  ['GET', '/admin/v1/places/:id'],
  ['PUT', '/admin/v1/places/:id'],
  ['GET', '/admin/v1/titles/:id'],
  ['PUT', '/admin/v1/titles/:id'],
  ['DELETE', '/admin/v1/keys/:id'],
] as const

const bodies: Record<string, unknown> = {
  '/admin/v1/users/:id/settings': { visibility: 'friends' },
  '/admin/v1/users/:id': { name: 'x' },
  '/admin/v1/places/:id': { universeId: 1, name: 'x' },
  '/admin/v1/titles/:id': { name: 'x' },
}

test('admin: bad ids in every path are an admin-shaped 4xx and write nothing', async (t) => {
  const f = await fixture(t)
  const request = fc.oneof(
    fc.tuple(fc.constantFrom(...idRoutes), badSegment).map(([[method, route], id]) => ({
      method,
      url: route.replace(':id', id),
      body: method === 'PUT' ? bodies[route] : undefined,
    })),
    fc
      .tuple(
        fc.constantFrom('friends', 'blocks'),
        fc.constantFrom('PUT', 'DELETE'),
        fc.oneof(
          fc.tuple(badSegment, goodId),
          fc.tuple(goodId, badSegment),
          goodId.map((id) => [id, id] as const),
        ),
      )
      .map(([kind, method, [a, b]]) => ({
        method,
        url: `/admin/v1/users/${a}/${kind}/${b}`,
        body: undefined,
      })),
  )
  await assertRefusedWithoutWrites(
    f,
    request,
    ({ method, url, body }) =>
      f.app.inject({
        method: method as 'GET',
        url,
        headers: headersOf(body === undefined ? undefined : 'application/json', admin),
        ...(body !== undefined && { payload: JSON.stringify(body) }),
      }),
    (response) => codedError(response, [400, 404, 414]),
  )
})

test('admin: malformed bodies and content types on every write are 4xx, no write', async (t) => {
  const f = await fixture(t)
  const id = '9007199254740993'
  const badBodies: Array<[string, string, fc.Arbitrary<unknown>]> = [
    [
      'PUT',
      `/admin/v1/users/${id}/settings`,
      fc.oneof(
        fc.constant({}),
        fc.record({
          visibility: fc.string().filter((s) => !['everyone', 'friends', 'nobody'].includes(s)),
        }),
        fc.record({ visibility: fc.constant('friends'), extra: anyJson }),
        fc.record({ invisible: fc.oneof(fc.object(), fc.array(fc.string(), { minLength: 2 })) }),
      ),
    ],
    [
      'PUT',
      `/admin/v1/users/${id}`,
      fc.oneof(
        fc.constant({}),
        fc.record({
          name: fc.oneof(
            fc.constant(''),
            fc.string({ minLength: 101, maxLength: 300 }),
            fc.object(),
          ),
        }),
        fc.record({
          name: fc.constant('a'),
          displayName: fc.string({ minLength: 101, maxLength: 300 }),
        }),
        fc.record({ name: fc.constant('a'), role: fc.jsonValue() }),
      ),
    ],
    [
      'PUT',
      '/admin/v1/places/1818',
      fc.oneof(
        fc.record({ universeId: badId, name: fc.constant('x') }),
        fc.record({
          universeId: goodId,
          rootPlaceId: badId.filter((v) => v !== undefined),
          name: fc.constant('x'),
        }),
        fc.record({
          universeId: goodId,
          name: fc.oneof(fc.constant(''), fc.string({ minLength: 201, maxLength: 400 })),
        }),
        fc.record({ universeId: goodId }),
      ),
    ],
    [
      'PUT',
      '/admin/v1/titles/1',
      fc.oneof(
        fc.record({ name: fc.oneof(fc.constant(' '), fc.integer()) }),
        fc.record({
          name: fc.constant('x'),
          strings: fc.oneof(fc.array(fc.string()), fc.string()),
        }),
        fc.record({
          name: fc.constant('x'),
          strings: fc.dictionary(
            fc.string().filter((k) => !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(k)),
            fc.constant({ default: 'x' }),
            { minKeys: 1 },
          ),
        }),
        fc.record({
          name: fc.constant('x'),
          strings: fc.constant({ s: { 'not a locale!': 'x' } }),
        }),
        fc.record({ name: fc.constant('x'), strings: fc.constant({ s: {} }) }),
      ),
    ],
    [
      'POST',
      '/admin/v1/keys',
      fc.oneof(
        fc.constant({}),
        fc.record({
          name: fc.constant('k'),
          scopes: fc.oneof(
            fc.constant([]),
            fc.array(
              fc.string().filter((s) => !s.startsWith('presence') && s !== 'admin'),
              { minLength: 1, maxLength: 3 },
            ),
          ),
        }),
        fc.record({
          name: fc.constant('k'),
          scopes: fc.constant(['admin']),
          expiresAt: fc.oneof(fc.string(), fc.constant('2000-01-01T00:00:00Z')),
        }),
        fc.record({
          name: fc.constant('k'),
          scopes: fc.constant(['admin']),
          expiresIn: fc.integer({ max: 0 }),
        }),
        fc.record({
          name: fc.constant('k'),
          scopes: fc.constant(['admin']),
          universes: fc.array(badId, { minLength: 1, maxLength: 3 }),
        }),
        fc.record({
          name: fc.constant('k'),
          scopes: fc.constant(['admin']),
          expiresIn: fc.constant(5),
          expiresAt: fc.constant('2099-01-01T00:00:00Z'),
        }),
      ),
    ],
  ]
  const request = fc.oneof(
    ...badBodies.map(([method, url, body]) =>
      fc.record({
        method: fc.constant(method),
        url: fc.constant(url),
        body: body.map((b) => JSON.stringify(b)),
        type: fc.constant('application/json'),
      }),
    ),
    fc.record({
      method: fc.constantFrom('PUT'),
      url: fc.constantFrom(
        `/admin/v1/users/${id}/settings`,
        `/admin/v1/users/${id}`,
        '/admin/v1/places/1818',
        '/admin/v1/titles/1',
      ),
      body: rawRequest.map((r) => r.body),
      type: contentType.filter((t) => t === undefined || !/json/i.test(t)),
    }),
  )
  await assertRefusedWithoutWrites(
    f,
    request,
    ({ method, url, body, type }) =>
      f.app.inject({
        method: method as 'PUT',
        url,
        headers: headersOf(type, admin),
        payload: body,
      }),
    (response) => codedError(response, [400, 413, 415]),
  )
})

test('admin: JSON garbage of any shape is 4xx or harmless, never a 5xx', async (t) => {
  const f = await fixture(t)
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(
        '/admin/v1/users/77/settings',
        '/admin/v1/users/77',
        '/admin/v1/places/77',
        '/admin/v1/titles/77',
        '/admin/v1/keys',
      ),
      rawRequest,
      async (url, { body, type }) => {
        const writes = f.writes()
        const response = await f.app.inject({
          method: url.endsWith('keys') ? 'POST' : 'PUT',
          url,
          headers: headersOf(type, admin),
          payload: body,
        })
        if (response.statusCode < 300) return
        codedError(response, [400, 413, 415])
        assert.equal(f.writes(), writes)
      },
    ),
    { numRuns: 150 },
  )
})

test('admin: NDJSON imports with any bad line refuse the whole body', async (t) => {
  const f = await fixture(t)
  const goodLine = goodId.map((id) =>
    JSON.stringify({ type: 'settings', userId: id, visibility: 'nobody' }),
  )
  const badLine = fc.oneof(
    fc
      .string({ unit: 'binary', maxLength: 50 })
      .filter((s) => s.trim() !== '' && !s.includes('\n')),
    anyJson.map((v) => JSON.stringify(v)).filter((s) => s !== undefined && !s.includes('\n')),
    badId.map((id) => JSON.stringify({ type: 'settings', userId: id, visibility: 'nobody' })),
    fc.constant(JSON.stringify({ type: 'friends', a: '1', b: '1' })),
    fc.constant(JSON.stringify({ type: 'unknown' })),
  )
  const body = fc
    .tuple(fc.array(goodLine, { maxLength: 20 }), badLine, fc.array(goodLine, { maxLength: 20 }))
    .map(([a, bad, b]) => [...a, bad, ...b].join('\n'))
  await assertRefusedWithoutWrites(
    f,
    body,
    (payload) =>
      f.app.inject({
        method: 'POST',
        url: '/admin/v1/import',
        headers: { ...admin, 'content-type': 'application/x-ndjson' },
        payload,
      }),
    (response) => codedError(response, [400]),
    100,
  )
})

test('admin: no key, a wrong key, a scoped key without admin: refused, nothing written', async (t) => {
  const f = await fixture(t)
  const keys = await f.app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: admin,
    payload: { name: 'reader', scopes: ['presence:read', 'presence:write'] },
  })
  const readerKey = (JSON.parse(keys.body) as { secret: string }).secret
  const routes = [
    ...idRoutes.map(([m, r]) => [m, r.replace(':id', '1818')] as const),
    ['PUT', '/admin/v1/users/1/friends/2'],
    ['DELETE', '/admin/v1/users/1/friends/2'],
    ['PUT', '/admin/v1/users/1/blocks/2'],
    ['POST', '/admin/v1/keys'],
    ['GET', '/admin/v1/keys'],
    ['POST', '/admin/v1/import'],
  ] as const
  await assertRefusedWithoutWrites(
    f,
    fc.tuple(
      fc.constantFrom(...routes),
      fc.constantFrom<Record<string, string>>(
        {},
        { 'x-api-key': '' },
        { 'x-api-key': 'test-admin-ke' },
        { 'x-api-key': 'TEST-ADMIN-KEY' },
        { 'x-api-key': 'test-admin-key ' },
        { authorization: 'Bearer test-admin-key' },
        { 'x-api-key': readerKey },
        { 'x-api-key': 'pk_forged' },
      ),
    ),
    ([[method, url], headers]) =>
      f.app.inject({
        method: method as 'GET',
        url,
        headers: {
          ...headers,
          ...(method !== 'GET' && method !== 'DELETE' && { 'content-type': 'application/json' }),
        },
        ...(method !== 'GET' &&
          method !== 'DELETE' && {
            payload: '{"name":"x","visibility":"nobody","universeId":1,"scopes":["admin"]}',
          }),
      }),
    (response, [, headers]) => {
      codedError(response, [401, 403])
      if (headers['x-api-key'] === readerKey) {
        assert.equal(response.statusCode, 403)
        assert.match(response.body, /admin/)
      }
      // the key is never echoed back
      assert.ok(!response.body.includes('test-admin'), response.body)
    },
    120,
  )
})

test('admin off (no PRESENCED_ADMIN_KEY): every admin route is 404, even with a key', async (t) => {
  const f = await fixture(t, { adminKey: undefined })
  await assertRefusedWithoutWrites(
    f,
    fc.constantFrom(...idRoutes).map(([m, r]) => [m, r.replace(':id', '1')] as const),
    ([method, url]) => f.app.inject({ method: method as 'GET', url, headers: admin }),
    (response) => {
      codedError(response, [404])
      assert.match(response.body, /ADMIN_OFF/)
    },
    30,
  )
})

test('admin and self settings: no id or flag is made by type coercion (true → 1, null → false)', async (t) => {
  const f = await fixture(t)
  const user = { authorization: `Bearer ${await f.userToken('2')}` }
  const cases: Array<[string, string, unknown, Record<string, string>]> = [
    ['POST', '/admin/v1/keys', { name: 'k', scopes: ['admin'], universes: [true] }, admin],
    ['POST', '/admin/v1/keys', { name: 'k', scopes: ['admin'], universes: [[7]] }, admin],
    ['PUT', '/admin/v1/places/1818', { universeId: true, name: 'x' }, admin],
    ['PUT', '/admin/v1/places/1818', { universeId: [99], name: 'x' }, admin],
    ['PUT', '/admin/v1/places/1818', { universeId: 99, rootPlaceId: false, name: 'x' }, admin],
    ['PUT', '/admin/v1/users/2/settings', { invisible: null }, admin],
    ['PUT', '/admin/v1/users/2/settings', { invisible: 0 }, admin],
    ['PUT', '/v1/presence/settings', { invisible: 'false' }, user],
  ]
  await assertRefusedWithoutWrites(
    f,
    fc.constantFrom(...cases),
    ([method, url, body, headers]) =>
      f.app.inject({ method: method as 'PUT', url, headers, payload: body as object }),
    (response, [, url]) => {
      assert.equal(response.statusCode, 400, response.body)
      if (!url.startsWith('/v1/')) codedError(response, [400])
    },
    cases.length * 3,
  )
})
