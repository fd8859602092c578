import assert from 'node:assert/strict'
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
