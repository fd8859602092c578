import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { startApp } from '../helpers/start-app.js'
import { assertRobloxError, json, send } from './wire.js'

/*
 * POST /v2/logout (auth host) as clients use it: empty, it only hands out a CSRF token; with a
 * valid x-csrf-token and a valid credential it really ends that login.
 */

const ALICE = '123' as UserId
const BOB = '456' as UserId

async function csrfFor(url: string, headers: [string, string][]): Promise<string> {
  const response = await send(url, { method: 'POST', path: '/v2/logout', headers })
  assert.equal(response.status, 403, 'an empty logout is only a CSRF fetch')
  return response.headers['x-csrf-token'] as string
}

test('logout with a cookie and its CSRF token revokes the login everywhere', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true })
  const token = await tokens.issue(ALICE)
  const bobToken = await tokens.issue(BOB)
  const cookie: [string, string] = ['Cookie', `.ROBLOSECURITY=${token};`]

  const csrf = await csrfFor(url, [cookie])
  // the CSRF fetch itself ended nothing
  const before = await send(url, {
    method: 'GET',
    path: '/v1/users/authenticated',
    headers: [cookie],
  })
  assert.equal(before.status, 200)

  const logout = await send(url, {
    method: 'POST',
    path: '/v2/logout',
    headers: [['Host', 'auth.roblox.com'], cookie, ['X-CSRF-TOKEN', csrf]],
  })
  assert.equal(logout.status, 200, logout.text)
  assert.deepEqual(json(logout), {})
  const cleared = String(logout.headers['set-cookie'])
  assert.match(cleared, /^\.ROBLOSECURITY=; Max-Age=0;/)
  assert.match(cleared, /Domain=\.roblox\.com/)

  // the revoked token: 401 on every route of every protocol
  assertRobloxError(
    await send(url, { method: 'GET', path: '/v1/users/authenticated', headers: [cookie] }),
    401,
    'Authorization has been denied for this request.',
  )
  assertRobloxError(
    await send(url, {
      method: 'POST',
      path: '/v1/presence/users',
      headers: [cookie, ['X-CSRF-TOKEN', csrf], ['Content-Type', 'application/json']],
      body: '{"userIds":[1]}',
    }),
    401,
  )
  assertRobloxError(
    await send(url, {
      method: 'POST',
      path: '/v1/presence/register-app-presence',
      headers: [
        ['Authorization', `Bearer ${token}`],
        ['Content-Type', 'application/json'],
      ],
      body: '{}',
    }),
    401,
  )
  const xbox = await send(url, {
    method: 'GET',
    path: '/users/me',
    headers: [
      ['Authorization', `XBL3.0 x=uhs;${token}`],
      ['x-xbl-contract-version', '3'],
    ],
  })
  assert.equal(xbox.status, 401)
  json(xbox)

  // a client with a dead cookie can still fetch a token (then learns it is signed out)
  const again = await csrfFor(url, [cookie])
  assertRobloxError(
    await send(url, {
      method: 'POST',
      path: '/v2/logout',
      headers: [cookie, ['X-CSRF-TOKEN', again]],
    }),
    401,
  )

  // other logins are untouched
  const bob = await send(url, {
    method: 'GET',
    path: '/v1/users/authenticated',
    headers: [['Cookie', `.ROBLOSECURITY=${bobToken}`]],
  })
  assert.equal(bob.status, 200)
})

test('logout with a Bearer token needs the CSRF token too, then revokes it', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true })
  const token = await tokens.issue(ALICE)
  const auth: [string, string] = ['Authorization', `Bearer ${token}`]
  // an empty logout must never sign a Bearer client out: it is how clients fetch tokens
  const csrf = await csrfFor(url, [auth])
  assert.equal(
    (await send(url, { method: 'GET', path: '/v1/users/authenticated', headers: [auth] })).status,
    200,
  )
  const logout = await send(url, {
    method: 'POST',
    path: '/v2/logout',
    headers: [auth, ['x-csrf-token', csrf], ['Content-Type', 'application/json']],
    body: '{}',
  })
  assert.equal(logout.status, 200, logout.text)
  assertRobloxError(
    await send(url, { method: 'GET', path: '/v1/users/authenticated', headers: [auth] }),
    401,
  )
})

test('logout refuses a CSRF token of another user, and anonymous callers', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true })
  const alice: [string, string] = ['Cookie', `.ROBLOSECURITY=${await tokens.issue(ALICE)}`]
  const bob: [string, string] = ['Cookie', `.ROBLOSECURITY=${await tokens.issue(BOB)}`]
  const bobsCsrf = await csrfFor(url, [bob])
  const refused = await send(url, {
    method: 'POST',
    path: '/v2/logout',
    headers: [alice, ['X-CSRF-TOKEN', bobsCsrf]],
  })
  assertRobloxError(refused, 403, 'Token Validation Failed')
  assert.notEqual(refused.headers['x-csrf-token'], bobsCsrf)
  // Alice is still signed in
  assert.equal(
    (await send(url, { method: 'GET', path: '/v1/users/authenticated', headers: [alice] })).status,
    200,
  )

  // anonymous: a valid (address-bound) token, but no login to end
  const anonymous = await csrfFor(url, [])
  assertRobloxError(
    await send(url, { method: 'POST', path: '/v2/logout', headers: [['X-CSRF-TOKEN', anonymous]] }),
    401,
  )
  // a made-up token is just refused with a fresh one
  const madeUp = await send(url, {
    method: 'POST',
    path: '/v2/logout',
    headers: [['X-CSRF-TOKEN', 'AAAAAAAAAAAAAAAAAAAAAA']],
  })
  assertRobloxError(madeUp, 403)
})

test('POST /v2/login hands out CSRF tokens and says password sign-in is not offered', async (t) => {
  const { url } = await startApp(t, { listen: true })
  const first = await send(url, {
    method: 'POST',
    path: '/v2/login',
    headers: [['Content-Type', 'application/json']],
    body: '{"ctype":"Username","cvalue":"alice","password":"x"}',
  })
  assertRobloxError(first, 403, 'Token Validation Failed')
  const second = await send(url, {
    method: 'POST',
    path: '/v2/login',
    headers: [
      ['Content-Type', 'application/json'],
      ['X-CSRF-TOKEN', first.headers['x-csrf-token'] as string],
    ],
    body: '{"ctype":"Username","cvalue":"alice","password":"x"}',
  })
  assertRobloxError(second, 400)
  assert.match(second.text, /presenced token --user/)
})

/** Logs `token` out through the wire (CSRF fetch, then logout); asserts it worked. */
async function logoutThrough(url: string, token: string): Promise<void> {
  const bearer: [string, string] = ['Authorization', `Bearer ${token}`]
  const csrf = await csrfFor(url, [bearer])
  const logout = await send(url, {
    method: 'POST',
    path: '/v2/logout',
    headers: [bearer, ['X-CSRF-TOKEN', csrf]],
  })
  assert.equal(logout.status, 200, logout.text)
}

async function authenticatedStatus(url: string, token: string): Promise<number> {
  const me = await send(url, {
    method: 'GET',
    path: '/v1/users/authenticated',
    headers: [['Authorization', `Bearer ${token}`]],
  })
  return me.status
}

test('a logout survives a restart: the revocation is durable', async (t) => {
  const first = await startApp(t, { listen: true })
  const token = await first.tokens.issue(ALICE)
  const other = await first.tokens.issue(ALICE)
  await logoutThrough(first.url, token)
  assert.equal(await authenticatedStatus(first.url, token), 401)
  await first.app.close()

  const second = await startApp(t, { listen: true, dataDir: first.dataDir })
  assert.equal(await authenticatedStatus(second.url, token), 401, 'revoked after a restart')
  assert.equal(await authenticatedStatus(second.url, other), 200, 'only that login ended')
})

test('a logout on one node of a fleet is refused by every node', async (t) => {
  const prefix = uniquePrefix('logout')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  const config = { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix }
  const a = await startApp(t, { listen: true, config })
  const b = await startApp(t, { listen: true, config })
  const token = await a.tokens.issue(ALICE)
  assert.equal(await authenticatedStatus(b.url, token), 200)
  await logoutThrough(a.url, token)
  // node B hears of it over the change bus at once (and polls the store for anything missed)
  const deadline = Date.now() + 10_000
  let status = await authenticatedStatus(b.url, token)
  while (status !== 401 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    status = await authenticatedStatus(b.url, token)
  }
  assert.equal(status, 401, 'node B refuses the token node A logged out')
  // a node started later loads it from Redis
  const c = await startApp(t, { listen: true, config })
  assert.equal(await authenticatedStatus(c.url, token), 401)
})
