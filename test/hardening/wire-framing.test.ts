import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { gzipSync } from 'node:zlib'
import type { UserId } from '../../src/core/user-id.js'
import { parseJsonLossless } from '../../src/protocols/shared/lossless-json.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'

/*
 * What a client can get wrong below JSON, over a real socket: the framing Node's HTTP parser
 * refuses (before any route runs), an Expect it does not know, duplicated and parameterised
 * headers, broken compression, a BOM, an empty body. Each write route of each protocol is sent
 * each one; every answer is the protocol's own error shape (or a success where the input is
 * acceptable), never Fastify's or Node's bare bodies, never a 5xx, and nothing is written.
 */

const USER = '9223372036854775807' as UserId
const GAME = '6d7c1f0a-5b7e-4f3e-9a51-0c2d9e8b7a61'

type Shape = 'roblox' | 'xbox' | 'record'

interface Route {
  name: string
  method: string
  path: string
  headers: string[]
  body: string
  shape: Shape
}

/** One request written as is; resolves with status, head and body once the reply is whole. */
function exchange(
  app: StartedApp,
  bytes: Buffer,
): Promise<{ status: number; head: string; body: string }> {
  const { port } = new URL(app.url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1')
    let got = Buffer.alloc(0)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no whole reply: ${got.toString('latin1').slice(0, 200)}`))
    }, 5000)
    const done = () => {
      const text = got.toString('utf8')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) return false
      const head = text.slice(0, end)
      const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1]
      const body = text.slice(end + 4)
      if (length === undefined || Buffer.byteLength(body) < Number(length)) return false
      clearTimeout(timer)
      socket.destroy()
      resolve({ status: Number(head.split(' ')[1]), head, body })
      return true
    }
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk])
      done()
    })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      if (!done()) {
        clearTimeout(timer)
        reject(new Error(`closed without a whole reply: ${got.toString('latin1').slice(0, 200)}`))
      }
    })
    socket.write(bytes)
  })
}

function assertShape(shape: Shape, reply: { status: number; head: string; body: string }) {
  const where = `${reply.status} ${reply.body.slice(0, 200)}`
  assert.ok(reply.status < 500, where)
  if (reply.status < 300) return
  assert.ok(reply.status >= 400, where)
  assert.match(reply.head, /\r\ncontent-type: application\/json/i, where)
  const body = parseJsonLossless(reply.body) as Record<string, unknown>
  if (shape === 'roblox') {
    const errors = body.errors as Array<Record<string, unknown>>
    assert.ok(Array.isArray(errors) && errors.length === 1, where)
    assert.deepEqual(Object.keys(errors[0]!), ['code', 'message'], where)
    assert.equal(typeof errors[0]!.message, 'string', where)
  } else if (shape === 'xbox') {
    assert.deepEqual(
      Object.keys(body).sort(),
      ['code', 'description', 'errorCode', 'errorMessage', 'source'],
      where,
    )
    assert.equal(body.code, body.errorCode, where)
  } else {
    const error = body.error as Record<string, unknown>
    assert.equal(typeof error, 'object', where)
    assert.match(String(error.code), /^[A-Z_]+$/, where)
    assert.equal(typeof error.message, 'string', where)
  }
}

function request(route: Route, extra: string[], body: Buffer | string, length = true): Buffer {
  const bytes = Buffer.from(body)
  const head = [
    `${route.method} ${route.path} HTTP/1.1`,
    'Host: presenced',
    ...route.headers,
    ...extra,
    ...(length ? [`Content-Length: ${bytes.length}`] : []),
    'Connection: close',
  ]
  return Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'), bytes])
}

async function world(t: Parameters<typeof startApp>[0]) {
  const app = await startApp(t, {
    listen: true,
    config: { xboxBurstMax: 100_000, xboxSustainMax: 100_000 },
  })
  const token = await app.tokens.issue(USER)
  const created = await app.app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY },
    payload: { name: 'server', scopes: ['presence:write', 'presence:read'] },
  })
  const serverKey = (JSON.parse(created.body) as { secret: string }).secret
  const routes: Route[] = [
    {
      name: 'Roblox users (lean path)',
      method: 'POST',
      path: '/v1/presence/users',
      headers: [],
      body: `{"userIds":[${USER}]}`,
      shape: 'roblox',
    },
    {
      name: 'Roblox register-app-presence',
      method: 'POST',
      path: '/v1/presence/register-app-presence',
      headers: [`Authorization: Bearer ${token}`],
      body: '{"placeId":1818}',
      shape: 'roblox',
    },
    {
      name: 'Xbox title write',
      method: 'POST',
      path: `/users/xuid(${USER})/devices/current/titles/current`,
      headers: [`Authorization: XBL3.0 x=1;${token}`, 'x-xbl-contract-version: 3'],
      body: '{"id":"1","state":"active"}',
      shape: 'xbox',
    },
    {
      name: 'Xbox batch',
      method: 'POST',
      path: '/users/batch',
      headers: [`Authorization: XBL3.0 x=1;${token}`, 'x-xbl-contract-version: 3'],
      body: `{"users":["${USER}"]}`,
      shape: 'xbox',
    },
    {
      name: 'game server report',
      method: 'PUT',
      path: `/api/v1/servers/${GAME}`,
      headers: [`x-api-key: ${serverKey}`],
      body: `{"placeId":1818,"players":["${USER}"]}`,
      shape: 'record',
    },
    {
      name: 'admin settings',
      method: 'PUT',
      path: `/admin/v1/users/${USER}/settings`,
      headers: [`x-api-key: ${ADMIN_KEY}`],
      body: '{"invisible":true}',
      shape: 'record',
    },
  ]
  /** Everything the write routes above could change. */
  const state = async () => ({
    presence: await app.service.rawPresences([USER]),
    settings: await app.stores.profiles.getSettings([USER]),
  })
  return { app, routes, state }
}

const JSON_TYPE = 'Content-Type: application/json'

/** Framing the parser refuses: a protocol-shaped 400, the connection closed, nothing written. */
const REFUSED_FRAMING: Array<[string, (route: Route) => Buffer]> = [
  [
    'Content-Length beside Transfer-Encoding',
    (r) =>
      request(
        r,
        [JSON_TYPE, 'Transfer-Encoding: chunked'],
        `${r.body.length.toString(16)}\r\n${r.body}\r\n0\r\n\r\n`,
      ),
  ],
  [
    'two Content-Lengths',
    (r) => request(r, [JSON_TYPE, `Content-Length: ${r.body.length + 1}`], r.body),
  ],
  [
    'a chunk size that is not hex',
    (r) =>
      request(r, [JSON_TYPE, 'Transfer-Encoding: chunked'], `zz\r\n${r.body}\r\n0\r\n\r\n`, false),
  ],
  ['Content-Length -1', (r) => request(r, [JSON_TYPE, 'Content-Length: -1'], r.body, false)],
  ['Content-Length 1e3', (r) => request(r, [JSON_TYPE, 'Content-Length: 1e3'], r.body, false)],
  ['Content-Length +15', (r) => request(r, [JSON_TYPE, 'Content-Length: +15'], r.body, false)],
  [
    'Content-Length past 2^64',
    (r) => request(r, [JSON_TYPE, 'Content-Length: 99999999999999999999'], r.body, false),
  ],
  ['a header line without a colon', (r) => request(r, [JSON_TYPE, 'not a header'], r.body)],
  [
    'no Host header (HTTP/1.1)',
    (r) =>
      Buffer.from(
        request(r, [JSON_TYPE], r.body).toString('latin1').replace('Host: presenced\r\n', ''),
        'latin1',
      ),
  ],
]

/** Acceptable or refused in the protocol's shape, never Node's or Fastify's bodies. */
const HEADER_PROBES: Array<[string, (route: Route) => Buffer]> = [
  ['Expect: something-else', (r) => request(r, [JSON_TYPE, 'Expect: something-else'], r.body)],
  ['two Content-Types', (r) => request(r, [JSON_TYPE, 'Content-Type: text/plain'], r.body)],
  [
    'two Content-Types, JSON second',
    (r) => request(r, ['Content-Type: text/plain', JSON_TYPE], r.body),
  ],
  ['charset=latin1', (r) => request(r, ['Content-Type: application/json; charset=latin1'], r.body)],
  [
    'a boundary parameter',
    (r) => request(r, ['Content-Type: application/json; boundary=x'], r.body),
  ],
  ['a Content-Type of ";;;"', (r) => request(r, ['Content-Type: ;;;'], r.body)],
  [
    'a UTF-8 BOM',
    (r) =>
      request(
        r,
        [JSON_TYPE],
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(r.body)]),
      ),
  ],
  ['corrupt gzip', (r) => request(r, [JSON_TYPE, 'Content-Encoding: gzip'], r.body)],
  ['corrupt deflate', (r) => request(r, [JSON_TYPE, 'Content-Encoding: deflate'], r.body)],
  ['corrupt br', (r) => request(r, [JSON_TYPE, 'Content-Encoding: br'], r.body)],
  [
    'an unknown Content-Encoding',
    (r) => request(r, [JSON_TYPE, 'Content-Encoding: x-zip'], r.body),
  ],
  [
    'a gzip bomb (50 MB of spaces)',
    (r) => request(r, [JSON_TYPE, 'Content-Encoding: gzip'], gzipSync(Buffer.alloc(50e6, 32))),
  ],
  ['an empty body', (r) => request(r, [JSON_TYPE], '')],
  [
    'a chunked body',
    (r) =>
      request(
        r,
        [JSON_TYPE, 'Transfer-Encoding: chunked'],
        `${r.body.length.toString(16)}\r\n${r.body}\r\n0\r\n\r\n`,
        false,
      ),
  ],
  [
    'invalid UTF-8',
    (r) => request(r, [JSON_TYPE], Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])),
  ],
]

test("framing the HTTP parser refuses is a 400 in each protocol's shape, nothing written", async (t) => {
  const { app, routes, state } = await world(t)
  const before = await state()
  for (const route of routes) {
    for (const [name, build] of REFUSED_FRAMING) {
      const reply = await exchange(app, build(route))
      assert.equal(reply.status, 400, `${route.name}, ${name}: ${reply.body}`)
      assertShape(route.shape, reply)
      assert.match(reply.head, /\r\nconnection: close/i, `${route.name}, ${name}`)
    }
  }
  assert.deepEqual(await state(), before, 'nothing was written')
  // and the node still answers, ids exact
  const alive = await app.app.inject({
    method: 'POST',
    url: '/v1/presence/users',
    payload: { userIds: [USER] },
  })
  assert.match(alive.body, /"userId":9223372036854775807,/)
})

test("odd headers, encodings and bodies on each write route: 2xx or the protocol's 4xx", async (t) => {
  const { app, routes, state } = await world(t)
  for (const route of routes) {
    for (const [name, build] of HEADER_PROBES) {
      const before = await state()
      const reply = await exchange(app, build(route))
      assertShape(route.shape, reply)
      if (reply.status >= 400) {
        assert.deepEqual(await state(), before, `${route.name}, ${name}: a refusal wrote nothing`)
      }
    }
  }
  // the Expect a client does not need is ignored, not answered with Node's empty 417
  const [users] = routes
  const reply = await exchange(
    app,
    request(users!, [JSON_TYPE, 'Expect: something-else'], users!.body),
  )
  assert.equal(reply.status, 200, reply.body)
  assert.match(reply.body, /"userId":9223372036854775807,/)
})

test("an unknown Content-Encoding is a 415 with each protocol's media type code", async (t) => {
  const { app, routes } = await world(t)
  const token = await app.tokens.issue(USER)
  const sse: Route = {
    name: 'SSE by POST',
    method: 'POST',
    path: '/api/v1/realtime/sse',
    headers: [`Authorization: Bearer ${token}`],
    body: `{"ids":["${USER}"]}`,
    shape: 'record',
  }
  // Roblox's errors carry code 0 whatever the status: its status alone says which
  const codeOf: Record<Shape, (body: Record<string, unknown>) => unknown> = {
    roblox: () => undefined,
    xbox: (body) => body.code,
    record: (body) => (body.error as { code: string }).code,
  }
  const expected: Record<Shape, unknown> = {
    roblox: undefined,
    xbox: 1012,
    record: 'UNSUPPORTED_MEDIA_TYPE',
  }
  for (const route of [...routes, sse]) {
    const reply = await exchange(
      app,
      request(route, [JSON_TYPE, 'Content-Encoding: x-zip'], route.body),
    )
    assert.equal(reply.status, 415, `${route.name}: ${reply.body}`)
    assertShape(route.shape, reply)
    const body = JSON.parse(reply.body) as Record<string, unknown>
    assert.equal(codeOf[route.shape](body), expected[route.shape], route.name)
  }
})

test('a request line the parser cannot read at all is answered in the Roblox shape', async (t) => {
  const { app } = await world(t)
  const reply = await exchange(app, Buffer.from('\x00\x01garbage\r\n\r\n', 'latin1'))
  assert.equal(reply.status, 400)
  assertShape('roblox', reply)
})

test('headers past the size limit are a 431 in the shape of the path they were sent to', async (t) => {
  const { app, routes } = await world(t)
  for (const route of routes) {
    const reply = await exchange(
      app,
      request(route, [JSON_TYPE, `X-Filler: ${'a'.repeat(20_000)}`], route.body),
    )
    assert.equal(reply.status, 431, `${route.name}: ${reply.body}`)
    assertShape(route.shape, reply)
  }
})
