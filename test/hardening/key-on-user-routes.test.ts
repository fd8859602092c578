import assert from 'node:assert/strict'
import { test } from 'node:test'
import WebSocket from 'ws'
import { parseUserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * A valid API key on a route that needs a user's token is refused with 403 (it authenticated,
 * and sending it again will not help), in the protocol's own error shape; an unknown or revoked
 * key stays 401. The decision is the authenticator's (requireUser), so every protocol agrees.
 * Over real HTTP, so the lean register-app-presence path is the one answering.
 */

const KEY_MESSAGE = /needs a user's token: an API key is not a user/

/** What each user-only route answers a credential with: status and the error's code/message. */
interface Refusal {
  status: number
  code: unknown
  message: string
}

type Shape = 'roblox' | 'native' | 'xbox'

async function call(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  shape: Shape,
): Promise<Refusal> {
  const response = await fetch(url, {
    method,
    headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body,
  })
  const json = (await response.json()) as Record<string, unknown>
  if (shape === 'roblox') {
    const [first] = json.errors as Array<{ code: unknown; message: string }>
    return { status: response.status, code: first!.code, message: first!.message }
  }
  if (shape === 'native') {
    const error = json.error as { code: unknown; message: string }
    return { status: response.status, code: error.code, message: error.message }
  }
  return { status: response.status, code: json.code, message: String(json.description) }
}

test('an API key on a user-only route is 403 in every protocol; an unknown or revoked key 401', async (t) => {
  const { url, service } = await startApp(t, { listen: true })
  const { secret } = await service.keys.create({
    name: 'reader-writer',
    scopes: ['presence:read', 'presence:write'],
  })
  const gone = await service.keys.create({ name: 'gone', scopes: ['presence:read'] })
  await service.keys.revoke(gone.key.id)
  const revoked = gone.secret
  const xbox = { 'x-xbl-contract-version': '3', accept: 'application/json' }
  const routes: Array<[string, string, string, string | undefined, Shape]> = [
    // the lean path (exact path) and Fastify's (a query string) of the same route
    [
      'roblox heartbeat',
      'POST',
      '/v1/presence/register-app-presence',
      '{"location":"x"}',
      'roblox',
    ],
    ['roblox heartbeat', 'POST', '/v1/presence/register-app-presence?via=fastify', '{}', 'roblox'],
    ['own settings', 'GET', '/v1/presence/settings', undefined, 'roblox'],
    ['own settings', 'PUT', '/v1/presence/settings', '{"invisible":true}', 'roblox'],
    ['signed-in user', 'GET', '/v1/users/authenticated', undefined, 'roblox'],
    ['native SSE', 'GET', '/api/v1/realtime/sse?ids=1', undefined, 'native'],
  ]
  for (const [name, method, path, body, shape] of routes) {
    const what = `${name}: ${method} ${path}`
    const refused = await call(url + path, method, { 'x-api-key': secret }, body, shape)
    assert.equal(refused.status, 403, `${what} ${JSON.stringify(refused)}`)
    assert.match(refused.message, KEY_MESSAGE, what)
    if (shape === 'roblox') assert.equal(refused.code, 0, what)
    if (shape === 'native') assert.equal(refused.code, 'USER_REQUIRED', what)
    for (const bad of ['pk_unknown', revoked]) {
      const unknown = await call(url + path, method, { 'x-api-key': bad }, body, shape)
      assert.equal(
        unknown.status,
        401,
        `${what} with ${bad === revoked ? 'a revoked' : 'an unknown'} key`,
      )
    }
    const none = await call(url + path, method, {}, body, shape)
    assert.equal(none.status, 401, `${what} without a credential`)
  }

  // Xbox: a key reads, but "me" and writes are a user's
  for (const [method, path, body] of [
    ['GET', '/users/me', undefined],
    ['POST', `/users/xuid(1)/devices/current/titles/current`, '{"id":"1"}'],
  ] as const) {
    const refused = await call(url + path, method, { ...xbox, 'x-api-key': secret }, body, 'xbox')
    assert.equal(refused.status, 403, `xbox ${method} ${path} ${JSON.stringify(refused)}`)
    assert.match(refused.message, KEY_MESSAGE)
  }

  // the WebSocket upgrade is refused before it happens, with the same status
  const upgrade = await new Promise<number>((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/api/v1/realtime`, {
      headers: { 'x-api-key': secret },
    })
    socket.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0)
      socket.terminate()
    })
    socket.on('open', () => reject(new Error('a key opened a user stream')))
    socket.on('error', () => {})
  })
  assert.equal(upgrade, 403)

  // nothing was written for anyone: the key is still good for what it may do
  const read = await fetch(`${url}/v1/presence/users`, {
    method: 'POST',
    headers: { 'x-api-key': secret, 'content-type': 'application/json' },
    body: '{"userIds":[1]}',
  })
  assert.equal(read.status, 200)
})

test('a key without a read scope on a user-only route is told it is no user, before any scope', async (t) => {
  const { url, service } = await startApp(t, { listen: true })
  const xbox = { 'x-xbl-contract-version': '3', accept: 'application/json' }
  const write = await service.keys.create({ name: 'writer', scopes: ['presence:write'] })
  const admin = await service.keys.create({ name: 'admin', scopes: ['admin'] })
  const keys: Array<[string, string]> = [
    ['write-only', write.secret],
    ['admin-scoped', admin.secret],
    ['the admin', ADMIN_KEY],
  ]
  for (const [kind, secret] of keys) {
    const routes: Array<[string, string, string | undefined, Shape, Record<string, string>]> = [
      ['POST', '/v1/presence/register-app-presence', '{"location":"x"}', 'roblox', {}],
      ['POST', '/v1/presence/register-app-presence?via=fastify', '{}', 'roblox', {}],
      ['GET', '/users/me', undefined, 'xbox', xbox],
      ['GET', '/users/xuid(1)/groups/People', undefined, 'xbox', xbox],
      ['PUT', '/users/xuid(1)/state', '{"state":"Cloaked"}', 'xbox', xbox],
      ['POST', '/users/xuid(1)/devices/current/titles/current', '{"id":"1"}', 'xbox', xbox],
      ['DELETE', '/users/xuid(1)/devices/current/titles/current', undefined, 'xbox', xbox],
      [
        'POST',
        `/users/xuid(1${'0'.repeat(120)})/devices/current/titles/current`,
        '{}',
        'xbox',
        xbox,
      ],
    ]
    for (const [method, path, body, shape, headers] of routes) {
      const what = `${kind} key: ${method} ${path.slice(0, 60)}`
      const refused = await call(
        url + path,
        method,
        { ...headers, 'x-api-key': secret },
        body,
        shape,
      )
      assert.equal(refused.status, 403, `${what} ${JSON.stringify(refused)}`)
      assert.match(refused.message, KEY_MESSAGE, what)
    }
    // a read route still names the scope the key lacks
    const read = await call(
      `${url}/v1/presence/users`,
      'POST',
      { 'x-api-key': secret },
      '{"userIds":[1]}',
      'roblox',
    )
    assert.equal(read.status, 403, kind)
    assert.match(read.message, /lacks the required scope: presence:read/, kind)
  }
  // nothing was written: user 1 is offline and not cloaked
  const read = await fetch(`${url}/v1/presence/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"userIds":[1]}',
  })
  const { userPresences } = (await read.json()) as { userPresences: Array<Record<string, unknown>> }
  assert.equal(userPresences[0]?.userPresenceType, 0)
  assert.equal((await service.getSettings(parseUserId('1')!)).invisible, false)
})
