import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { NativeClient } from '../integration/native-client.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * A request asking for an upgrade (Connection: Upgrade) leaves Node's HTTP parser once its head
 * is read (the app listens for upgrades): its socket has none of the server's timeouts and no
 * keep-alive, and its body is left on the socket. @fastify/websocket routes every such request
 * through Fastify, but closed the socket only in the native routes' scope: a Roblox route, an
 * unknown path, /healthz... answered, then held the socket for ever (a client could hold any
 * number for free, and app.close() waited on them), a body was lost (a 400 for its length), and
 * an SSE route (in the WebSocket plugin's scope) answered 101 Switching Protocols.
 */

const UPGRADE =
  'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'

interface Answer {
  text: string
  /** Whether the server closed the socket within the wait. */
  closed: boolean
  /** Milliseconds from the first write to the close (or to the end of the wait). */
  ms: number
}

/**
 * Writes each part of `request` on a raw socket, `gapMs` apart; resolves when the server closes
 * the socket, or after `waitMs`.
 */
function send(port: number, request: string | string[], waitMs: number, gapMs = 0) {
  const parts = typeof request === 'string' ? [request] : request
  return new Promise<Answer>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const started = Date.now()
    let text = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ text, closed: false, ms: Date.now() - started })
    }, waitMs)
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ text, closed: true, ms: Date.now() - started })
    })
    socket.on('error', () => {})
    parts.forEach((part, i) => setTimeout(() => socket.writable && socket.write(part), i * gapMs))
  })
}

function statusOf(answer: Answer): number {
  return Number(answer.text.slice(0, answer.text.indexOf('\r\n')).split(' ')[1])
}

function bodyOf(answer: Answer): string {
  return answer.text.slice(answer.text.indexOf('\r\n\r\n') + 4)
}

/** What `POST /v1/presence/users` answers `json` without an Upgrade header (a 200). */
async function plainUsers(url: string, json: string): Promise<string> {
  const plain = await fetch(`${url}/v1/presence/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: json,
  })
  assert.equal(plain.status, 200)
  return plain.text()
}

test('POST /v1/presence/users asking for an upgrade gets the answer it would without, then its socket closed', async (t) => {
  const app = await startApp(t, { listen: true })
  const port = Number(new URL(app.url).port)
  await app.service.heartbeat({
    userId: '1' as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online' },
  })
  const json = '{"userIds":[1,2]}'
  const expected = await plainUsers(app.url, json)
  const head =
    `POST /v1/presence/users HTTP/1.1\r\nHost: x\r\n${UPGRADE}` +
    `Content-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n`
  // the body with the head, and the body in three writes after it (read from the socket)
  const ways = {
    'in one write': [head + json],
    'in parts': [head, json.slice(0, 5), json.slice(5, 9), json.slice(9)],
  }
  for (const [name, parts] of Object.entries(ways)) {
    const answer = await send(port, parts, 5000, 50)
    assert.equal(statusOf(answer), 200, `${name}: ${answer.text}`)
    assert.equal(bodyOf(answer), expected, name)
    assert.match(answer.text, /\r\nconnection: close\r\n/i, name)
    assert.ok(answer.closed, `${name}: the socket is closed after the answer`)
  }
})

test('an SSE route asked for an upgrade refuses it in the native format (was 101)', async (t) => {
  const app = await startApp(t, { listen: true })
  const port = Number(new URL(app.url).port)
  const token = await app.tokens.issue('9100' as UserId)
  const bearer = `Authorization: Bearer ${token}\r\n`
  const requests = {
    GET: `GET /api/v1/realtime/sse?ids=1 HTTP/1.1\r\nHost: x\r\n${UPGRADE}${bearer}\r\n`,
    POST:
      `POST /api/v1/realtime/sse HTTP/1.1\r\nHost: x\r\n${UPGRADE}${bearer}` +
      'Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{"ids":["1"]}',
  }
  for (const [method, request] of Object.entries(requests)) {
    const answer = await send(port, request, 5000)
    assert.equal(statusOf(answer), 400, `${method}: ${answer.text}`)
    const body = JSON.parse(bodyOf(answer)) as { error: { code: string; message: string } }
    assert.equal(body.error.code, 'INVALID_REQUEST', method)
    assert.match(body.error.message, /Upgrade header/, method)
    assert.match(answer.text, /\r\nconnection: close\r\n/i, method)
    assert.ok(answer.closed, method)
  }
})

test('other requests asking for an upgrade are answered in their protocol, then closed', async (t) => {
  const app = await startApp(t, { listen: true })
  const port = Number(new URL(app.url).port)
  const cases = [
    {
      name: 'POST to the WebSocket path',
      request: `POST /api/v1/realtime HTTP/1.1\r\nHost: x\r\n${UPGRADE}Content-Length: 0\r\n\r\n`,
      status: 404,
      shape: 'record',
    },
    {
      name: 'an unknown path',
      request: `GET /nowhere HTTP/1.1\r\nHost: x\r\n${UPGRADE}\r\n`,
      status: 404,
      shape: 'roblox',
    },
    {
      name: 'a URL the router refuses (no hook runs)',
      request: `GET /api/v1/%zz HTTP/1.1\r\nHost: x\r\n${UPGRADE}\r\n`,
      status: 400,
      shape: 'record',
    },
    {
      name: 'a Roblox route refusing the body',
      request:
        `POST /v1/presence/users HTTP/1.1\r\nHost: x\r\n${UPGRADE}` +
        'Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{"userIds":',
      status: 400,
      shape: 'roblox',
    },
    {
      name: 'a plain GET (curl --http2 asks for h2c)',
      request: 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n',
      status: 200,
      shape: 'any',
    },
  ]
  for (const { name, request, status, shape } of cases) {
    const answer = await send(port, request, 5000)
    assert.equal(statusOf(answer), status, `${name}: ${answer.text}`)
    assert.match(answer.text, /\r\nconnection: close\r\n/i, name)
    assert.ok(answer.closed, `${name}: the socket is closed after the answer`)
    const body = JSON.parse(bodyOf(answer)) as Record<string, unknown>
    if (shape === 'record') assert.equal(typeof (body.error as { code?: unknown }).code, 'string')
    if (shape === 'roblox') assert.ok(Array.isArray(body.errors), name)
  }
  // many at once: all closed, and the server holds none
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      send(port, `GET /nowhere/${i} HTTP/1.1\r\nHost: x\r\n${UPGRADE}\r\n`, 5000),
    ),
  )
  assert.equal(answers.filter((answer) => !answer.closed).length, 0)
  const connections = () =>
    new Promise<number>((resolve, reject) =>
      app.app.server.getConnections((error, n) => (error ? reject(error) : resolve(n))),
    )
  for (let tries = 0; tries < 20 && (await connections()) > 0; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.equal(await connections(), 0)
})

test('a request asking for an upgrade whose body never comes is answered 408 at the request timeout, then closed', async (t) => {
  const app = await startApp(t, {
    listen: true,
    config: { requestTimeoutMs: 600, headersTimeoutMs: 600 },
  })
  const port = Number(new URL(app.url).port)
  const head = (path: string, length: number) =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\n${UPGRADE}` +
    `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`
  const cases = {
    'headers, then nothing': [head('/v1/presence/users', 17)],
    'half the body, then nothing': [head('/v1/presence/users', 17) + '{"userIds"'],
    // a byte every 200 ms: never idle, never done
    'a body trickled': [head('/v1/presence/users', 17), ...'{"userIds":[1,2]}'.split('')],
  }
  for (const [name, parts] of Object.entries(cases)) {
    const answer = await send(port, parts, 5000, 200)
    assert.ok(answer.closed, `${name}: held open`)
    assert.equal(statusOf(answer), 408, `${name}: ${answer.text}`)
    assert.ok(Array.isArray((JSON.parse(bodyOf(answer)) as { errors?: unknown }).errors), name)
    assert.ok(answer.ms >= 500 && answer.ms < 3000, `${name}: closed after ${answer.ms} ms`)
  }
  // the native format on a native route
  const native = await send(port, head('/api/v1/realtime/sse', 13), 5000)
  assert.ok(native.closed)
  assert.equal(statusOf(native), 400, 'refused before its body is read')
})

test('the WebSocket route still upgrades, and its refusals still close', async (t) => {
  const app = await startApp(t, { listen: true })
  const token = await app.tokens.issue('9101' as UserId)
  const client = await NativeClient.connect(app.url, token)
  client.send({ type: 'subscribe', ids: ['9101'] })
  assert.equal((await client.take()).type, 'snapshot')
  client.socket.close()
  await client.closed
  const port = Number(new URL(app.url).port)
  const refused = await send(
    port,
    `GET /api/v1/realtime HTTP/1.1\r\nHost: x\r\n${UPGRADE}\r\n`,
    5000,
  )
  assert.equal(statusOf(refused), 401, refused.text)
  assert.ok(refused.closed)
})

test('app.close() is not held by sockets asking for an upgrade', async (t) => {
  const app = await startApp(t, { listen: true })
  const port = Number(new URL(app.url).port)
  const open = (request: string) =>
    new Promise<Socket>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => resolve(socket))
      socket.on('error', () => {})
      socket.write(request)
    })
  // one whose body never comes (the request timeout is 30 s), one answered that the client keeps
  const sockets = [
    await open(
      `POST /v1/presence/users HTTP/1.1\r\nHost: x\r\n${UPGRADE}` +
        'Content-Type: application/json\r\nContent-Length: 17\r\n\r\n',
    ),
    await open(`GET /nowhere HTTP/1.1\r\nHost: x\r\n${UPGRADE}\r\n`),
  ]
  await new Promise((resolve) => setTimeout(resolve, 200))
  const started = Date.now()
  const closing = app.app.close()
  const held = await Promise.race([
    closing.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 3000)),
  ])
  const ms = Date.now() - started
  for (const socket of sockets) socket.destroy()
  assert.equal(held, false, `app.close() held by the sockets for ${ms} ms`)
  await closing
  assert.ok(ms < 2000, `closed in ${ms} ms`)
})

/**
 * Writes `head`, then `body` only once the server sent `100 Continue` (a client that waits for
 * it, as curl does for a while); resolves when the server closes the socket, or after `waitMs`.
 */
function sendAfterContinue(port: number, head: string, body: string, waitMs: number) {
  return new Promise<Answer>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const started = Date.now()
    let text = ''
    let sent = false
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ text, closed: false, ms: Date.now() - started })
    }, waitMs)
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      if (!sent && text.includes(' 100 Continue\r\n\r\n')) {
        sent = true
        socket.write(body)
      }
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ text, closed: true, ms: Date.now() - started })
    })
    socket.on('error', () => {})
    socket.write(head)
  })
}

/** `json` as a chunked body: chunks of `size` bytes, each with an extension, then a trailer. */
function chunked(json: string, size: number): string {
  let body = ''
  for (let at = 0; at < json.length; at += size) {
    const part = json.slice(at, at + size)
    body += `${Buffer.byteLength(part).toString(16)};n=${at}\r\n${part}\r\n`
  }
  return `${body}0\r\nX-Checksum: none\r\n\r\n`
}

/** `text` cut every `size` characters: framing split across writes. */
function cut(text: string, size: number): string[] {
  const parts: string[] = []
  for (let at = 0; at < text.length; at += size) parts.push(text.slice(at, at + size))
  return parts
}

/** The final answer's text: past any `100 Continue`. */
function finalOf(answer: Answer): Answer {
  const text = answer.text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')
  return { ...answer, text }
}

test('Expect: 100-continue with an Upgrade header gets 100 Continue, then the answer it would without (was 408)', async (t) => {
  const app = await startApp(t, {
    listen: true,
    config: { requestTimeoutMs: 1500, headersTimeoutMs: 1500 },
  })
  const port = Number(new URL(app.url).port)
  const json = '{"userIds":[1,2]}'
  const expected = await plainUsers(app.url, json)
  const head = (framing: string) =>
    `POST /v1/presence/users HTTP/1.1\r\nHost: x\r\n${UPGRADE}Expect: 100-continue\r\n` +
    `Content-Type: application/json\r\n${framing}\r\n`
  const ways = {
    'Content-Length': [head(`Content-Length: ${json.length}\r\n`), json],
    chunked: [head('Transfer-Encoding: chunked\r\n'), chunked(json, 5)],
  }
  for (const [name, [requestHead, body]] of Object.entries(ways)) {
    const answer = await sendAfterContinue(port, requestHead!, body!, 5000)
    assert.ok(answer.text.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), `${name}: ${answer.text}`)
    const final = finalOf(answer)
    assert.equal(statusOf(final), 200, `${name}: ${answer.text}`)
    assert.equal(bodyOf(final), expected, name)
    assert.match(final.text, /\r\nconnection: close\r\n/i, name)
    assert.ok(answer.closed, `${name}: the socket is closed after the answer`)
    assert.ok(answer.ms < 1000, `${name}: answered in ${answer.ms} ms, not at the request timeout`)
  }
})

test('a chunked body with an Upgrade header is read as without (was refused 400); bytes after it are dropped', async (t) => {
  const app = await startApp(t, { listen: true })
  const port = Number(new URL(app.url).port)
  const json = '{"userIds":[1,2]}'
  const expected = await plainUsers(app.url, json)
  const head =
    `POST /v1/presence/users HTTP/1.1\r\nHost: x\r\n${UPGRADE}` +
    'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
  const pipelined = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
  const ways = {
    'in one write, a request pipelined after it': [head + chunked(json, 4) + pipelined],
    // sizes, data, CRLFs and the trailer each split across writes
    'in parts': [head, ...cut(chunked(json, 3), 4)],
    'one chunk': [head + chunked(json, 100)],
  }
  for (const [name, parts] of Object.entries(ways)) {
    const answer = await send(port, parts, 5000, 20)
    assert.equal(statusOf(answer), 200, `${name}: ${answer.text}`)
    assert.equal(bodyOf(answer), expected, name)
    assert.match(answer.text, /\r\nconnection: close\r\n/i, name)
    assert.equal(answer.text.split('HTTP/1.1 ').length, 2, `${name}: one answer only`)
    assert.ok(answer.closed, `${name}: the socket is closed after the answer`)
  }
  // a route of the native error format: the same answer as without the header
  const settings = '{"visibility":"friends"}'
  const path = '/admin/v1/users/77/settings'
  const adminHead = (upgrade: string, framing: string) =>
    `PUT ${path} HTTP/1.1\r\nHost: x\r\n${upgrade}x-api-key: ${ADMIN_KEY}\r\n` +
    `Content-Type: application/json\r\n${framing}\r\n`
  const upgraded = await send(
    port,
    adminHead(UPGRADE, 'Transfer-Encoding: chunked\r\n') + chunked(settings, 7),
    5000,
  )
  const without = await send(
    port,
    adminHead('Connection: close\r\n', `Content-Length: ${settings.length}\r\n`) + settings,
    5000,
  )
  assert.equal(statusOf(upgraded), 200, upgraded.text)
  assert.equal(bodyOf(upgraded), bodyOf(without))
  assert.ok(upgraded.closed)
})

test('a chunked body with an Upgrade header past the limit, malformed or too slow: 413, 400, 408 in the route format', async (t) => {
  const limit = 1024
  const app = await startApp(t, {
    listen: true,
    config: { bodyLimit: limit, requestTimeoutMs: 800, headersTimeoutMs: 800 },
  })
  const port = Number(new URL(app.url).port)
  const head = (path: string) =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\n${UPGRADE}` +
    'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
  const big = `{"userIds":[${'1,'.repeat(2 * limit)}1]}`
  const cases = [
    {
      name: 'past the limit (the rest never sent)',
      parts: [
        head('/v1/presence/users') + `${(4 * limit).toString(16)}\r\n${big.slice(0, 4 * limit)}`,
      ],
      status: 413,
    },
    {
      name: 'past the limit in many chunks, all sent',
      parts: [head('/v1/presence/users') + chunked(big, 100)],
      status: 413,
    },
    {
      name: 'a size not hexadecimal',
      parts: [head('/v1/presence/users') + 'zz\r\n{}\r\n0\r\n\r\n'],
      status: 400,
    },
    {
      name: "a chunk's data longer than its size",
      parts: [head('/v1/presence/users') + '2\r\n{}}\r\n0\r\n\r\n'],
      status: 400,
    },
    {
      name: 'a bare LF after a size',
      parts: [head('/v1/presence/users') + '2\n{}\r\n0\r\n\r\n'],
      status: 400,
    },
    {
      name: 'an endless size line',
      parts: [head('/v1/presence/users') + '1;' + 'x'.repeat(20_000)],
      status: 400,
    },
    {
      name: 'a trailer that is no header field',
      parts: [head('/v1/presence/users') + '2\r\n{}\r\n0\r\nnot a field\r\n\r\n'],
      status: 400,
    },
    {
      name: 'a last transfer coding other than chunked (no length)',
      parts: [
        `POST /v1/presence/users HTTP/1.1\r\nHost: x\r\n${UPGRADE}` +
          'Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n{}',
      ],
      status: 400,
    },
    {
      name: 'the first chunk, then nothing',
      parts: [head('/v1/presence/users') + '5\r\n{"use\r\n'],
      status: 408,
    },
  ]
  for (const { name, parts, status } of cases) {
    const answer = await send(port, parts, 5000)
    assert.equal(statusOf(answer), status, `${name}: ${answer.text}`)
    const body = JSON.parse(bodyOf(answer)) as { errors?: unknown }
    assert.ok(Array.isArray(body.errors), `${name}: Roblox's format`)
    assert.match(answer.text, /\r\nconnection: close\r\n/i, name)
    assert.ok(answer.closed && answer.ms < 3000, `${name}: closed after ${answer.ms} ms`)
  }
  // the native format on a route speaking it
  const native = await send(
    port,
    `PUT /admin/v1/users/77/settings HTTP/1.1\r\nHost: x\r\n${UPGRADE}x-api-key: ${ADMIN_KEY}\r\n` +
      'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    5000,
  )
  assert.equal(statusOf(native), 400, native.text)
  const error = (JSON.parse(bodyOf(native)) as { error: { code: string; message: string } }).error
  assert.equal(error.code, 'INVALID_REQUEST')
  assert.match(error.message, /chunked request body is malformed/)
  // the process serves on
  assert.equal((await fetch(`${app.url}/healthz`)).status, 200)
})
