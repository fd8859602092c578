import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { startApp } from '../helpers/start-app.js'

/** The same flows over a real socket, as clients send them (fetch: real headers and framing). */
test('over HTTP: cookie + CSRF challenge, register, read, 413 and 415', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true, config: { bodyLimit: 2048 } })
  const cookie = `.ROBLOSECURITY=${await tokens.issue('9007199254740993' as UserId)};`
  const send = (path: string, body: string, headers: Record<string, string>) =>
    fetch(`${url}${path}`, { method: 'POST', body, headers })

  const body = '{"location":"Game","placeId":1818,"disconnect":false}'
  const json = { 'content-type': 'application/json', cookie }
  const challenge = await send('/v1/presence/register-app-presence', body, json)
  assert.equal(challenge.status, 403)
  assert.match(challenge.headers.get('content-type') ?? '', /^application\/json/)
  const csrf = challenge.headers.get('x-csrf-token')
  assert.ok(csrf)
  const ok = await send('/v1/presence/register-app-presence', body, {
    ...json,
    'x-csrf-token': csrf,
  })
  assert.equal(ok.status, 200)
  assert.equal(await ok.text(), '{}')
  assert.equal(ok.headers.get('x-presence-heartbeat-after'), '30')

  const read = await send('/v1/presence/users', 'userIds=9007199254740993', {
    'content-type': 'application/x-www-form-urlencoded',
  })
  assert.equal(read.status, 200)
  const text = await read.text()
  assert.ok(text.includes('"userPresenceType":2'), text)
  assert.ok(text.includes('"userId":9007199254740993,'), text)

  const big = await send('/v1/presence/users', `{"userIds":[1],"x":"${'x'.repeat(4096)}"}`, {
    'content-type': 'application/json',
  })
  assert.equal(big.status, 413)
  assert.equal(((await big.json()) as { errors: Array<{ code: number }> }).errors[0]!.code, 0)

  const xml = await send('/v1/presence/users', '<userIds/>', { 'content-type': 'application/xml' })
  assert.equal(xml.status, 415)
  assert.match(xml.headers.get('content-type') ?? '', /^application\/json/)
})

/** Resolves with what the server sent on `socket` once `done(text)` holds. */
function receive(socket: Socket, done: (text: string) => boolean): Promise<string> {
  let text = ''
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1')
      if (done(text)) {
        socket.off('data', onData)
        resolve(text)
      }
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.once('close', () => resolve(text))
  })
}

test('a body refused by its length is read on and dropped: the 413 arrives whole and the connection serves on; a far larger one is closed', async (t) => {
  const { url } = await startApp(t, { listen: true, config: { bodyLimit: 2048 } })
  const { port } = new URL(url)
  const head = (length: number) =>
    `POST /v1/presence/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`

  const socket = connect(Number(port), '127.0.0.1')
  t.after(() => socket.destroy())
  await once(socket, 'connect')
  // the head and a first part of a 6,000-byte body: the 413 comes before the rest is sent
  const refused = receive(
    socket,
    (text) => text.includes('\r\n\r\n{"errors"') && text.endsWith('}]}'),
  )
  socket.write(head(6000) + 'x'.repeat(1000))
  const first = await refused
  assert.match(first, /^HTTP\/1\.1 413 /)
  assert.doesNotMatch(first, /connection: close/i)
  // the rest of the body, then another request on the same connection
  const read = receive(socket, (text) => text.includes('"userPresences"'))
  socket.write('x'.repeat(5000) + head(15) + '{"userIds":[1]}')
  const second = await read
  assert.match(second, /^HTTP\/1\.1 200 /)
  assert.ok(!socket.destroyed, 'the connection is still open')

  // over DRAIN_LIMIT_FACTOR (4) times the limit: answered, then closed, as before
  const far = connect(Number(port), '127.0.0.1')
  t.after(() => far.destroy())
  await once(far, 'connect')
  const closed = once(far, 'close')
  const answer = receive(far, (text) => text.endsWith('}]}'))
  far.write(head(100_000) + 'x'.repeat(1000))
  assert.match(await answer, /^HTTP\/1\.1 413 [^]*connection: close/i)
  await closed
})
