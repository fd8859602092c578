import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { parseJsonLossless } from '../../src/protocols/shared/lossless-json.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * A request that reaches the server while it closes (SIGTERM), on a connection opened before:
 * Fastify refused it with a 503 of its own body, in no protocol's format and without
 * Retry-After; each protocol's client must read it as the "try another node" it is.
 */

function open(url: string): Promise<Socket> {
  const { port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Everything the server sends on `socket` until it closes it. */
function received(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let got = ''
    socket.on('data', (chunk: Buffer) => (got += chunk.toString('utf8')))
    socket.on('error', () => undefined)
    socket.on('close', () => resolve(got))
  })
}

function post(path: string, headers: string[], body: string): string {
  return [
    `POST ${path} HTTP/1.1`,
    'Host: presenced',
    'Content-Type: application/json',
    ...headers,
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n')
}

test('a request that arrives while the server closes is a 503 in its protocol format, with Retry-After', async (t) => {
  const app = await startApp(t, { listen: true })
  const token = await app.tokens.issue('42' as UserId)
  const requests: Array<[string, string, (body: Record<string, unknown>) => void]> = [
    [
      'roblox',
      post('/v1/presence/users', [], '{"userIds":[1]}'),
      (body) =>
        assert.equal(typeof (body.errors as Array<{ message: string }>)[0]!.message, 'string'),
    ],
    [
      'xbox',
      post(
        '/users/batch',
        [`Authorization: XBL3.0 x=1;${token}`, 'x-xbl-contract-version: 3'],
        '{"users":["1"]}',
      ),
      (body) => assert.equal(body.code, body.errorCode),
    ],
    [
      'admin',
      post('/admin/v1/places/1818', [`x-api-key: ${ADMIN_KEY}`], '{"name":"x"}').replace(
        'POST',
        'PUT',
      ),
      (body) => assert.equal((body.error as { code: string }).code, 'UNAVAILABLE'),
    ],
  ]
  const sockets = await Promise.all(requests.map(() => open(app.url)))
  const replies = sockets.map(received)
  // each request begun before the close (so that its connection is not closed as idle), its
  // headers ended after it began: the request reaches the app while it closes
  const split = requests.map(([, bytes]) => bytes.indexOf('\r\n') + 2)
  requests.forEach(([, bytes], i) => sockets[i]!.write(bytes.slice(0, split[i])))
  await new Promise((resolve) => setTimeout(resolve, 50))
  const closing = app.app.close()
  requests.forEach(([, bytes], i) => sockets[i]!.write(bytes.slice(split[i])))
  await closing
  const texts = await Promise.all(replies)
  for (const [i, text] of texts.entries()) {
    const [name, , shape] = requests[i]!
    const [head, body] = text.split('\r\n\r\n') as [string, string]
    assert.match(head, /^HTTP\/1\.1 503 /, `${name}: ${text}`)
    assert.match(head, /\r\nretry-after: 1\r\n/i, `${name}: ${head}`)
    assert.match(head, /\r\ncontent-type: application\/json/i, `${name}: ${head}`)
    shape(parseJsonLossless(body) as Record<string, unknown>)
  }
})
