import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { startApp } from '../helpers/start-app.js'

/*
 * A request asking for an upgrade leaves Node's HTTP parser (the app listens for upgrades): its
 * socket has no server timeouts and no keep-alive. @fastify/websocket routes every such request
 * through Fastify, but closed the socket only on the native routes' scope: a POST to the
 * WebSocket path, a Roblox route, an unknown path... answered, then held the socket open
 * forever (a client could hold any number for free), and an SSE route (in the WebSocket plugin's
 * scope) answered 101 Switching Protocols.
 */

const UPGRADE =
  'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'

interface Answer {
  text: string
  /** Whether the server closed the socket within `waitMs`. */
  closed: boolean
}

/** Sends `request` on a raw socket; resolves when the server closes it, or after `waitMs`. */
function send(port: number, request: string, waitMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ text, closed: false })
    }, waitMs)
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ text, closed: true })
    })
    socket.on('error', () => {})
    socket.write(request)
  })
}

function body(answer: Answer): unknown {
  return JSON.parse(answer.text.slice(answer.text.indexOf('\r\n\r\n') + 4))
}

test('a request asking for an upgrade that is not the WebSocket handshake is answered in its protocol, then closed', async (t) => {
  const app = await startApp(t, { listen: true })
  const port = Number(new URL(app.url).port)
  const token = await app.tokens.issue('9100' as UserId)
  const bearer = `Authorization: Bearer ${token}\r\n`
  const cases = [
    {
      name: 'POST to the WebSocket path',
      request: `POST /api/v1/realtime HTTP/1.1\r\nHost: x\r\n${UPGRADE}${bearer}Content-Length: 0\r\n\r\n`,
      status: 404,
      shape: 'native',
    },
    {
      name: 'DELETE to the WebSocket path',
      request: `DELETE /api/v1/realtime HTTP/1.1\r\nHost: x\r\n${UPGRADE}\r\n`,
      status: 404,
      shape: 'native',
    },
    {
      name: 'a Roblox route',
      request:
        `POST /v1/presence/users HTTP/1.1\r\nHost: x\r\n${UPGRADE}` +
        'Content-Type: application/json\r\nContent-Length: 15\r\n\r\n{"userIds":[1]}',
      status: 400,
      shape: 'roblox',
    },
    {
      name: 'an unknown path',
      request: `GET /nowhere HTTP/1.1\r\nHost: x\r\n${UPGRADE}\r\n`,
      status: 404,
      shape: 'roblox',
    },
    {
      name: 'the SSE route',
      request: `GET /api/v1/realtime/sse?ids=1 HTTP/1.1\r\nHost: x\r\n${UPGRADE}${bearer}\r\n`,
      status: 400,
      shape: 'native',
    },
    {
      name: 'the SSE route by POST',
      request:
        `POST /api/v1/realtime/sse HTTP/1.1\r\nHost: x\r\n${UPGRADE}${bearer}` +
        'Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{"ids":["1"]}',
      status: 400,
      shape: 'native',
    },
    {
      name: 'a plain GET (curl --http2 asks for h2c): served',
      request: 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n',
      status: 200,
      shape: 'none',
    },
  ]
  for (const { name, request, status, shape } of cases) {
    const answer = await send(port, request, 10_000)
    const statusLine = answer.text.slice(0, answer.text.indexOf('\r\n'))
    assert.equal(statusLine.split(' ')[1], String(status), `${name}: ${statusLine}`)
    assert.match(answer.text, /\r\nconnection: close\r\n/i, name)
    assert.ok(answer.closed, `${name}: the socket is closed after the answer`)
    const parsed = body(answer) as Record<string, unknown>
    if (shape === 'native') {
      assert.equal(typeof (parsed.error as { code?: unknown }).code, 'string', name)
    } else if (shape === 'roblox') {
      assert.ok(Array.isArray(parsed.errors), name)
    }
  }
})

test('sockets of many such requests are all closed by the server', async (t) => {
  const app = await startApp(t, { listen: true })
  const port = Number(new URL(app.url).port)
  const started = Date.now()
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      send(
        port,
        i % 2 === 0
          ? `POST /api/v1/realtime HTTP/1.1\r\nHost: x\r\n${UPGRADE}Content-Length: 0\r\n\r\n`
          : `GET /nowhere/${i} HTTP/1.1\r\nHost: x\r\n${UPGRADE}\r\n`,
        10_000,
      ),
    ),
  )
  const held = answers.filter((answer) => !answer.closed).length
  assert.equal(held, 0, `${held} of 20 sockets still open after ${Date.now() - started} ms`)
  // and the server holds none of them either
  const connections = () =>
    new Promise<number>((resolve, reject) =>
      app.app.server.getConnections((error, n) => (error ? reject(error) : resolve(n))),
    )
  for (let tries = 0; tries < 20 && (await connections()) > 0; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.equal(await connections(), 0)
})
