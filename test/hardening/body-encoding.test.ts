import assert from 'node:assert/strict'
import { test } from 'node:test'
import { json, send, type WireResponse } from '../compat/wire.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * Every body is read as UTF-8 (src/protocols/shared/body-text.ts): a body in another charset is
 * a 415, bytes that are not UTF-8 a 400 (never read as U+FFFD: a name or a rich presence string
 * other than the one sent), a UTF-8 byte-order mark at the start skipped; each in its
 * protocol's own error shape, and a refused body writes nothing. Over real HTTP, so the lean
 * read and heartbeat paths (application/json) and Fastify's (text/json) are both taken.
 */

const GAME = '6d7c1f0a-5b7e-4f3e-9a51-0c2d9e8b7a61'
const BOM = Buffer.from([0xef, 0xbb, 0xbf])
/** `text` with each `\xff` marker turned into the byte 0xFF, which UTF-8 never has. */
const withBadByte = (text: string) =>
  Buffer.concat(
    text
      .split('\xff')
      .flatMap((part, i) => (i ? [Buffer.from([0xff]), Buffer.from(part)] : [Buffer.from(part)])),
  )

type Shape = 'roblox' | 'xbox' | 'record'

function assertShape(shape: Shape, response: WireResponse, status: number, what: string) {
  assert.equal(response.status, status, `${what}: ${response.status} ${response.text}`)
  const body = json(response) as Record<string, unknown>
  if (shape === 'roblox') {
    const errors = body.errors as Array<{ code: unknown; message: unknown }>
    assert.equal(typeof errors[0]!.message, 'string', what)
  } else if (shape === 'xbox') {
    assert.equal(typeof body.code, 'number', what)
    assert.equal(body.code, body.errorCode, what)
  } else {
    assert.match(String((body.error as { code: unknown }).code), /^[A-Z_]+$/, what)
  }
}

interface Route {
  name: string
  method: string
  path: string
  shape: Shape
  auth: 'none' | 'user' | 'xbl' | 'admin' | 'server'
  good: string
  /** The good body with a byte that is not UTF-8 where the text is (`\xff`). */
  bad: string
  /** What the good body wrote, read back (undefined: a read). */
  written?: (app: Awaited<ReturnType<typeof world>>) => Promise<unknown>
  /** Not answered before the end of the stream (SSE): refusals only. */
  streams?: boolean
}

const ROUTES: Route[] = [
  {
    name: 'Roblox users',
    method: 'POST',
    path: '/v1/presence/users',
    shape: 'roblox',
    auth: 'none',
    good: '{"userIds":[1]}',
    bad: '{"userIds":[1],"\xff":1}',
  },
  {
    name: 'Roblox register-app-presence',
    method: 'POST',
    path: '/v1/presence/register-app-presence',
    shape: 'roblox',
    auth: 'user',
    good: '{"location":"Game"}',
    bad: '{"location":"G\xffame"}',
    written: async (w) => (await w.service.rawPresences(['77' as never]))[0]?.sessions.length,
  },
  {
    name: 'companion users',
    method: 'POST',
    path: '/v1/users',
    shape: 'roblox',
    auth: 'none',
    good: '{"userIds":[1]}',
    bad: '{"userIds":[1],"\xff":1}',
  },
  {
    name: 'Xbox batch',
    method: 'POST',
    path: '/users/batch',
    shape: 'xbox',
    auth: 'xbl',
    good: '{"users":["1"]}',
    bad: '{"users":["1"],"level":"\xff"}',
  },
  {
    name: 'Xbox title write',
    method: 'POST',
    path: '/users/xuid(77)/devices/current/titles/current',
    shape: 'xbox',
    auth: 'xbl',
    good: '{"id":"1717113201","state":"active"}',
    bad: '{"id":"1717113201","state":"active","activity":{"richPresence":{"id":"m\xff","params":[]}}}',
    written: async (w) => (await w.service.rawPresences(['77' as never]))[0]?.sessions.length,
  },
  {
    name: 'admin user entry',
    method: 'PUT',
    path: '/admin/v1/users/5',
    shape: 'record',
    auth: 'admin',
    good: '{"name":"five"}',
    bad: '{"name":"fi\xffve"}',
    written: async (w) => w.service.getUser('5' as never),
  },
  {
    name: 'admin title',
    method: 'PUT',
    path: '/admin/v1/titles/9',
    shape: 'record',
    auth: 'admin',
    good: '{"name":"T","strings":{"m":{"default":"Playing"}}}',
    bad: '{"name":"T","strings":{"m":{"default":"Play\xffing"}}}',
    written: async (w) => w.stores.profiles.getTitle('9'),
  },
  {
    name: 'admin place',
    method: 'PUT',
    path: '/admin/v1/places/5',
    shape: 'record',
    auth: 'admin',
    good: '{"universeId":1,"name":"P"}',
    bad: '{"universeId":1,"name":"P\xff"}',
    written: async (w) => w.stores.profiles.getPlace('5'),
  },
  {
    name: 'game server report',
    method: 'PUT',
    path: `/api/v1/servers/${GAME}`,
    shape: 'record',
    auth: 'server',
    good: '{"placeId":1818,"players":["1"]}',
    bad: '{"placeId":1818,"players":["1\xff"]}',
    written: async (w) => (await w.service.rawPresences(['1' as never]))[0]?.sessions.length,
  },
  {
    name: 'native SSE (POST)',
    method: 'POST',
    path: '/api/v1/realtime/sse',
    shape: 'record',
    auth: 'user',
    good: '{"ids":[1]}',
    bad: '{"ids":[1],"resume":"\xff"}',
    streams: true,
  },
]

async function world(t: Parameters<typeof startApp>[0]) {
  const app = await startApp(t, { listen: true })
  const token = await app.tokens.issue('77' as never)
  const server = (await app.service.keys.create({ name: 's', scopes: ['presence:write'] })).secret
  const auth: Record<Route['auth'], [string, string][]> = {
    none: [],
    user: [['authorization', `Bearer ${token}`]],
    xbl: [
      ['authorization', `XBL3.0 x=1;${token}`],
      ['x-xbl-contract-version', '3'],
    ],
    admin: [['x-api-key', ADMIN_KEY]],
    server: [['x-api-key', server]],
  }
  const request = (route: Route, type: string, body: string | Buffer) =>
    send(app.url, {
      method: route.method,
      path: route.path,
      headers: [...auth[route.auth], ['content-type', type]],
      body,
    })
  return { ...app, request }
}

for (const route of ROUTES) {
  test(`${route.name}: another charset 415, bytes not UTF-8 400, nothing written; a BOM skipped`, async (t) => {
    const w = await world(t)
    for (const type of ['application/json', 'text/json']) {
      for (const charset of ['utf-16', 'UTF-16LE', '"iso-8859-1"', 'latin1']) {
        const response = await w.request(route, `${type}; charset=${charset}`, route.good)
        assertShape(route.shape, response, 415, `${type}; charset=${charset}`)
      }
      const response = await w.request(route, type, withBadByte(route.bad))
      assertShape(route.shape, response, 400, `${type}, 0xFF in the body`)
      if (route.written) assert.ok(!(await route.written(w)), `${type}: nothing written`)
    }
    if (route.streams) return
    for (const type of ['application/json', 'text/json', 'application/json; charset=UTF-8']) {
      const response = await w.request(route, type, Buffer.concat([BOM, Buffer.from(route.good)]))
      assert.ok(response.status < 300, `${type} with a BOM: ${response.status} ${response.text}`)
    }
    if (route.written) assert.ok(await route.written(w), 'the good body wrote')
  })
}

test('Roblox form bodies: a percent-escape or a byte that is not UTF-8 is 400, nothing written', async (t) => {
  const w = await world(t)
  const route = ROUTES[1]!
  const form = 'application/x-www-form-urlencoded'
  for (const body of [
    'location=G%E9me',
    'location=G%ED%A0%80me',
    withBadByte('location=G\xffme'),
  ]) {
    const response = await w.request(route, form, body)
    assertShape('roblox', response, 400, String(body))
  }
  const latin1 = await w.request(route, `${form}; charset=iso-8859-1`, 'location=Game')
  assertShape('roblox', latin1, 415, 'charset=iso-8859-1')
  assert.ok(!(await route.written!(w)), 'nothing written')
  // a malformed escape stays text, as before; UTF-8 escapes are read
  const ok = await w.request(route, `${form}; charset=utf-8`, 'location=G%C3%A9me%zz')
  assert.equal(ok.status, 200, ok.text)
  const [presence] = await w.service.rawPresences(['77' as never])
  assert.equal(presence?.sessions[0]?.activity.location, 'Géme%zz')
})

test('import: a BOM is skipped, another charset is 415, a line not UTF-8 is refused by its number', async (t) => {
  const w = await world(t)
  const route: Route = {
    name: 'import',
    method: 'POST',
    path: '/admin/v1/import',
    shape: 'record',
    auth: 'admin',
    good: '',
    bad: '',
  }
  const lines =
    '{"type":"user","userId":"5","name":"five"}\n{"type":"user","userId":"6","name":"si\xffx"}\n'
  const bad = await w.request(route, 'application/x-ndjson', withBadByte(lines))
  assertShape('record', bad, 400, 'line 2 not UTF-8')
  assert.equal((json(bad) as { error: { line: number } }).error.line, 2, bad.text)
  for (const charset of ['utf-16', 'utf-16le', '"windows-1252"']) {
    const refused = await w.request(
      route,
      `application/x-ndjson; charset=${charset}`,
      '{"type":"user","userId":"5","name":"five"}\n',
    )
    assertShape('record', refused, 415, charset)
  }
  assert.equal(await w.service.getUser('5' as never), undefined, 'nothing written')
  const ok = await w.request(
    route,
    'application/x-ndjson; charset=utf-8',
    Buffer.concat([BOM, Buffer.from('{"type":"user","userId":"5","name":"five"}\n')]),
  )
  assert.equal(ok.status, 200, ok.text)
  assert.equal((await w.service.getUser('5' as never))?.name, 'five')
})

test('a string escaping a lone surrogate (\\ud800) is no text: 400 in the shape, nothing written; pairs are text', async (t) => {
  const w = await world(t)
  for (const route of ROUTES) {
    for (const escape of ['\\ud800', '\\uDFFF', '\\ud83d', '\\ude00\\ud83d']) {
      const response = await w.request(route, 'application/json', route.bad.replace('\xff', escape))
      assertShape(route.shape, response, 400, `${route.name} ${escape}`)
      if (route.written) assert.ok(!(await route.written(w)), `${route.name}: nothing written`)
    }
  }
  const admin = ROUTES.find((route) => route.name === 'admin user entry')!
  const pair = await w.request(admin, 'text/json', '{"name":"fi\\ud83d\\ude00ve"}')
  assert.equal(pair.status, 200, pair.text)
  assert.equal((await w.service.getUser('5' as never))?.name, 'fi😀ve')
  const line =
    '{"type":"user","userId":"6","name":"six"}\n{"type":"user","userId":"7","name":"s\\udc00"}\n'
  const imported = await send(w.url, {
    method: 'POST',
    path: '/admin/v1/import',
    headers: [
      ['x-api-key', ADMIN_KEY],
      ['content-type', 'application/x-ndjson'],
    ],
    body: line,
  })
  assertShape('record', imported, 400, 'import')
  assert.equal((json(imported) as { error: { line: number } }).error.line, 2, imported.text)
  assert.equal(await w.service.getUser('6' as never), undefined)
})
