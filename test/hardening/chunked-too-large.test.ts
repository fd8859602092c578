import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * A chunked body (no Content-Length) that passes the body limit is refused with 413 as soon as
 * more than the limit has arrived, in the protocol's own error shape, and the connection closed:
 * it does not wait for the rest (a slow or endless client) nor for the request timeout (30 s).
 * Checked on 2026-12-02 for every body route: already so (Fastify's body reader counts the bytes
 * as they come, and the lean Roblox/Xbox paths only take bodies with a Content-Length); this
 * test pins it.
 */

const LIMIT = 1024
const GAME = '6d7c1f0a-5b7e-4f3e-9a51-0c2d9e8b7a61'

interface Answer {
  status: number
  body: string
  /** ms from the request's first byte until the server closed the connection; -1 if it did not. */
  closedMs: number
}

/**
 * Sends headers and one chunk of `bytes` bytes (valid JSON so far, never finished), then nothing
 * more; resolves once the server closed the connection, or after `waitMs`.
 */
function chunkedOverLimit(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  bytes: number,
  waitMs = 5000,
): Promise<Answer> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const started = performance.now()
    let answer = ''
    const socket = connect(Number(port), hostname, () => {
      const head = Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('')
      socket.write(
        `${method} ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n${head}\r\n`,
      )
      const chunk = `{"players":[${'1,'.repeat(bytes)}`.slice(0, bytes)
      socket.write(`${bytes.toString(16)}\r\n${chunk}\r\n`)
    })
    const done = (closedMs: number) => {
      clearTimeout(timer)
      socket.destroy()
      const [head = '', body = ''] = answer.split('\r\n\r\n')
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0), body, closedMs })
    }
    const timer = setTimeout(() => done(-1), waitMs)
    socket.on('data', (chunk) => (answer += chunk.toString()))
    socket.on('close', () => done(performance.now() - started))
    socket.on('error', () => {})
  })
}

test('a chunked body past the limit is a 413 at once on every body route, in its own shape, and the connection closed', async (t) => {
  const app = await startApp(t, { listen: true, config: { bodyLimit: LIMIT } })
  const token = await app.tokens.issue('5' as UserId)
  const made = await app.app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'server', scopes: ['presence:write'] }),
  })
  const key = (made.json() as { secret: string }).secret
  const json = { 'content-type': 'application/json' }
  const bearer = { ...json, authorization: `Bearer ${token}` }
  const robloxShape = { errors: [{ code: 0, message: 'The request body is too large.' }] }
  const recordShape = {
    error: { code: 'PAYLOAD_TOO_LARGE', message: 'Request body is too large' },
  }
  const routes: [string, string, Record<string, string>, (body: unknown) => void][] = [
    ['POST', '/v1/presence/users', bearer, (body) => assert.deepEqual(body, robloxShape)],
    [
      'POST',
      '/v1/presence/register-app-presence',
      bearer,
      (body) => assert.deepEqual(body, robloxShape),
    ],
    [
      'POST',
      '/users/batch',
      { ...json, authorization: `XBL3.0 x=5;${token}`, 'x-xbl-contract-version': '3' },
      (body) => assert.equal((body as { code: number }).code, 1011),
    ],
    ['POST', '/api/v1/realtime/sse', bearer, (body) => assert.deepEqual(body, recordShape)],
    [
      'POST',
      '/admin/v1/keys',
      { ...json, 'x-api-key': ADMIN_KEY },
      (body) => assert.deepEqual(body, recordShape),
    ],
    [
      'PUT',
      `/api/v1/servers/${GAME}`,
      { ...json, 'x-api-key': key },
      (body) => assert.deepEqual(body, recordShape),
    ],
  ]
  const answers = await Promise.all(
    routes.map(([method, path, headers]) =>
      chunkedOverLimit(app.url, method, path, headers, 4 * LIMIT),
    ),
  )
  routes.forEach(([method, path, , shape], i) => {
    const answer = answers[i]!
    assert.equal(answer.status, 413, `${method} ${path}: ${answer.body}`)
    shape(JSON.parse(answer.body))
    // closed by the server well before the 5 s this client would wait (and the 30 s timeout)
    assert.ok(answer.closedMs >= 0 && answer.closedMs < 4000, `${path}: ${answer.closedMs} ms`)
  })
  // nothing was written: no roster, no session, one key (the one made above)
  assert.equal(await app.stores.presence.getServer(GAME, Date.now()), undefined)
  assert.deepEqual(await app.stores.presence.stats(Date.now()), { sessions: 0, users: 0 })
  const keys = await app.app.inject({ url: '/admin/v1/keys', headers: { 'x-api-key': ADMIN_KEY } })
  assert.equal((keys.json() as { keys: unknown[] }).keys.length, 1, keys.body)
})
