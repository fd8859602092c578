import assert from 'node:assert/strict'
import { test } from 'node:test'
import WebSocket from 'ws'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'

/*
 * The promise audit's second promise, black box over real HTTP: a credential does exactly what it
 * was issued for. Every kind of credential (a user's token by each channel, `?access_token=` too,
 * expired, revoked; an API key of each scope, limited to a universe, expired, revoked; the admin
 * key; each sent where another kind goes) against every route, each answer's status against the
 * table below, written from the references (docs/reference/*.md), not from the code.
 */

const VIEWER = '8001'
const GAME = '5f2b7f3e-9c1d-4e0a-8b6f-1a2b3c4d5e6f'

const CREDENTIALS = [
  'none',
  'bearer',
  'bearerExpired',
  'bearerRevoked',
  'cookie',
  'cookieNoCsrf',
  'xbl',
  'keyRead',
  'keyPrivate',
  'keyWrite',
  'keyUniverse',
  'keyAdmin',
  'keyExpired',
  'keyRevoked',
  'adminKey',
  'tokenAsKey',
  'adminKeyAsBearer',
  'keyAsCookie',
  'queryToken',
] as const
type CredentialName = (typeof CREDENTIALS)[number]

const XBOX = { 'x-xbl-contract-version': '3' }
/** Not a header: the token goes in the path's `?access_token=`. */
const QUERY_TOKEN = '?access_token'

interface Route {
  method: string
  path: string
  body?: unknown
  headers?: Record<string, string>
  /** One status per credential, in CREDENTIALS' order (101: the WebSocket opened). */
  expected: string
  /** Run before each credential's try (a game server to end, say). */
  before?: () => Promise<void>
}

// prettier-ignore
const USER_ONLY_XBOX = '403 401 401 401 403 403 200 403 403 403 403 403 401 401 403 401 401 403 403'
// prettier-ignore
const ADMIN_ONLY = '401 401 401 401 401 401 401 403 403 403 403 200 401 401 200 401 401 401 401'

function routes(app: StartedApp, writeKey: () => string): Route[] {
  const report = async () => {
    const res = await fetch(`${app.url}/api/v1/servers/${GAME}`, {
      method: 'PUT',
      headers: { 'x-api-key': writeKey(), 'content-type': 'application/json' },
      body: JSON.stringify({ placeId: 1818, players: [VIEWER] }),
    })
    assert.equal(res.status, 200, await res.text())
  }
  const titles = `/users/xuid(${VIEWER})/devices/current/titles/current`
  // prettier-ignore
  return [
    // a read: a cookie needs no CSRF token for it (cookieNoCsrf 200)
    { method: 'POST', path: '/v1/presence/users', body: { userIds: [VIEWER] },
      expected: '200 200 401 401 200 200 401 200 200 403 403 403 401 401 403 401 401 401 200' },
    { method: 'POST', path: '/v1/presence/register-app-presence', body: { placeId: 1818 },
      expected: '401 200 401 401 200 403 401 403 403 403 403 403 401 401 403 401 401 401 401' },
    // a user's own settings: as the Roblox routes beside, a cookie too (a PUT with its CSRF token)
    { method: 'GET', path: '/v1/presence/settings',
      expected: '401 200 401 401 200 200 401 403 403 403 403 403 401 401 403 401 401 401 401' },
    { method: 'PUT', path: '/v1/presence/settings', body: { invisible: false },
      expected: '401 200 401 401 200 403 401 403 403 403 403 403 401 401 403 401 401 401 401' },
    { method: 'GET', path: '/v1/users/authenticated',
      expected: '401 200 401 401 200 200 401 403 403 403 403 403 401 401 403 401 401 401 401' },
    { method: 'GET', path: `/v1/users/${VIEWER}`,
      expected: '200 200 401 401 200 200 401 200 200 403 403 403 401 401 403 401 401 401 200' },
    { method: 'POST', path: '/v1/users', body: { userIds: [VIEWER] },
      expected: '200 200 401 401 200 403 401 200 200 403 403 403 401 401 403 401 401 401 200' },
    { method: 'POST', path: '/users/batch', body: { users: [VIEWER], level: 'all' }, headers: XBOX,
      expected: '403 401 401 401 403 403 200 200 200 403 403 403 401 401 403 401 401 403 403' },
    { method: 'GET', path: `/users/xuid(${VIEWER})`, headers: XBOX,
      expected: '403 401 401 401 403 403 200 200 200 403 403 403 401 401 403 401 401 403 403' },
    { method: 'GET', path: '/users/me', headers: XBOX, expected: USER_ONLY_XBOX },
    { method: 'GET', path: `/users/xuid(${VIEWER})/groups/People`, headers: XBOX, expected: USER_ONLY_XBOX },
    { method: 'PUT', path: `/users/xuid(${VIEWER})/state`, body: { state: 'Active' }, headers: XBOX,
      expected: USER_ONLY_XBOX },
    { method: 'POST', path: titles, body: { id: '1', state: 'active' }, headers: XBOX, expected: USER_ONLY_XBOX },
    { method: 'DELETE', path: titles, headers: XBOX, expected: USER_ONLY_XBOX },
    { method: 'WS', path: '/api/v1/realtime',
      expected: '401 101 401 401 401 401 401 403 403 403 403 403 401 401 403 401 401 401 101' },
    // the real-time routes take a token in ?access_token= too (a browser's only way); no other
    // route does: there it is no credential
    { method: 'GET', path: `/api/v1/realtime/sse?ids=${VIEWER}`,
      expected: '401 200 401 401 401 401 401 403 403 403 403 403 401 401 403 401 401 401 200' },
    { method: 'POST', path: '/api/v1/realtime/sse', body: { ids: [VIEWER] },
      expected: '401 200 401 401 401 401 401 403 403 403 403 403 401 401 403 401 401 401 200' },
    // a key limited to universe 5 reports no server of place 1818 (universe 99), nor ends one
    { method: 'PUT', path: `/api/v1/servers/${GAME}`, body: { placeId: 1818, players: [VIEWER] },
      expected: '401 401 401 401 401 401 401 403 403 200 403 403 401 401 403 401 401 401 401' },
    { method: 'GET', path: `/api/v1/servers/${GAME}`, before: report,
      expected: '401 401 401 401 401 401 401 200 200 403 403 403 401 401 403 401 401 401 401' },
    { method: 'DELETE', path: `/api/v1/servers/${GAME}`, before: report,
      expected: '401 401 401 401 401 401 401 403 403 200 403 403 401 401 403 401 401 401 401' },
    // public without a key; with one, only the admin's; a token presented is checked (a bad
    // one is refused, a good one gets the public answer); cookies are not read here
    { method: 'GET', path: '/api/v1/stats',
      expected: '200 200 401 401 200 200 401 403 403 403 403 200 401 401 200 401 401 200 200' },
    // public; any credential presented is checked, and a good one gets the public feed
    { method: 'GET', path: '/api/v1/stats/feed',
      expected: '200 200 401 401 200 200 401 200 200 200 200 200 401 401 200 401 401 200 200' },
    { method: 'GET', path: '/admin/v1/stats/feed', expected: ADMIN_ONLY },
    // the metrics key is the admin key here, which /metrics takes as a bearer token too
    { method: 'GET', path: '/metrics',
      expected: '401 401 401 401 401 401 401 403 403 403 403 200 401 401 200 401 200 401 401' },
    { method: 'GET', path: `/admin/v1/users/${VIEWER}/presence`, expected: ADMIN_ONLY },
    { method: 'PUT', path: `/admin/v1/users/${VIEWER}/settings`, body: { visibility: 'everyone' },
      expected: ADMIN_ONLY },
    { method: 'GET', path: '/admin/v1/keys', expected: ADMIN_ONLY },
    { method: 'GET', path: '/admin/v1/webhooks', expected: ADMIN_ONLY },
  ]
}

async function status(
  app: StartedApp,
  route: Route,
  headers: Record<string, string>,
): Promise<number> {
  const { [QUERY_TOKEN]: queryToken, ...sent } = headers
  headers = sent
  const path =
    queryToken === undefined
      ? route.path
      : `${route.path}${route.path.includes('?') ? '&' : '?'}access_token=${queryToken}`
  if (route.method === 'WS') {
    const socket = new WebSocket(`${app.url.replace(/^http/, 'ws')}${path}`, { headers })
    return new Promise((resolve, reject) => {
      socket.once('open', () => {
        socket.close()
        resolve(101)
      })
      socket.once('unexpected-response', (_request, response) => {
        response.resume()
        socket.terminate()
        resolve(response.statusCode ?? 0)
      })
      socket.once('error', reject)
    })
  }
  const res = await fetch(`${app.url}${path}`, {
    method: route.method,
    headers: {
      ...(route.body !== undefined && { 'content-type': 'application/json' }),
      ...route.headers,
      ...headers,
    },
    body: route.body === undefined ? undefined : JSON.stringify(route.body),
  })
  // a stream is not read further: its status is the answer
  await res.body?.cancel()
  return res.status
}

test('every credential on every route: exactly what it was issued for', async (t) => {
  const app = await startApp(t, { listen: true })
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${app.url}${path}`, {
      method,
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`)
    return text === '' ? {} : (JSON.parse(text) as { secret: string; id: string })
  }
  const key = (scopes: string[], extra: object = {}) =>
    admin('POST', '/admin/v1/keys', { name: scopes.join(' '), scopes, ...extra }) as Promise<{
      secret: string
      id: string
    }>
  await admin('PUT', '/admin/v1/places/1818', { universeId: 99, name: 'Crossroads' })

  const viewer = VIEWER as UserId
  const token = await app.tokens.issue(viewer)
  const expiring = await app.tokens.issue(viewer, { ttlSeconds: 1 })
  const revoked = await app.tokens.issue(viewer)
  const read = await key(['presence:read'])
  const readPrivate = await key(['presence:read:private'])
  const write = await key(['presence:write'])
  const universe = await key(['presence:write'], { universes: ['5'] })
  const adminScoped = await key(['admin'])
  const expiringKey = await key(['admin'], { expiresIn: 1 })
  const revokedKey = await key(['admin'])
  await admin('DELETE', `/admin/v1/keys/${revokedKey.id}`)
  // a logout revokes the token it is sent with (after the CSRF challenge)
  const logout = (csrf?: string) =>
    fetch(`${app.url}/v2/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${revoked}`, ...(csrf && { 'x-csrf-token': csrf }) },
    })
  const challenge = await logout()
  assert.equal(challenge.status, 403)
  assert.equal((await logout(challenge.headers.get('x-csrf-token')!)).status, 200)
  const cookieChallenge = await fetch(`${app.url}/v1/presence/register-app-presence`, {
    method: 'POST',
    headers: { cookie: `.ROBLOSECURITY=${token}`, 'content-type': 'application/json' },
    body: '{}',
  })
  assert.equal(cookieChallenge.status, 403)
  const csrf = cookieChallenge.headers.get('x-csrf-token')!
  // both expire: a token's exp is in whole seconds, so 2.1 s is past it whatever the start
  await new Promise((resolve) => setTimeout(resolve, 2100))

  const credentials: Record<CredentialName, Record<string, string>> = {
    none: {},
    bearer: { authorization: `Bearer ${token}` },
    bearerExpired: { authorization: `Bearer ${expiring}` },
    bearerRevoked: { authorization: `Bearer ${revoked}` },
    cookie: { cookie: `.ROBLOSECURITY=${token}`, 'x-csrf-token': csrf },
    cookieNoCsrf: { cookie: `.ROBLOSECURITY=${token}` },
    xbl: { authorization: `XBL3.0 x=1;${token}` },
    keyRead: { 'x-api-key': read.secret },
    keyPrivate: { 'x-api-key': readPrivate.secret },
    keyWrite: { 'x-api-key': write.secret },
    keyUniverse: { 'x-api-key': universe.secret },
    keyAdmin: { 'x-api-key': adminScoped.secret },
    keyExpired: { 'x-api-key': expiringKey.secret },
    keyRevoked: { 'x-api-key': revokedKey.secret },
    adminKey: { 'x-api-key': ADMIN_KEY },
    tokenAsKey: { 'x-api-key': token },
    adminKeyAsBearer: { authorization: `Bearer ${ADMIN_KEY}` },
    keyAsCookie: { cookie: `.ROBLOSECURITY=${adminScoped.secret}` },
    queryToken: { [QUERY_TOKEN]: token },
  }

  const wrong: string[] = []
  for (const route of routes(app, () => write.secret)) {
    const expected = route.expected.split(' ').map(Number)
    assert.equal(expected.length, CREDENTIALS.length, `${route.method} ${route.path}'s row`)
    for (const [i, name] of CREDENTIALS.entries()) {
      await route.before?.()
      const got = await status(app, route, credentials[name])
      if (got !== expected[i]) {
        wrong.push(`${route.method} ${route.path} with ${name}: ${got}, expected ${expected[i]}`)
      }
    }
  }
  assert.deepEqual(wrong, [])
})

test('what a revoked admin key made, down a chain, is refused as a revoked key on every route', async (t) => {
  const app = await startApp(t, { listen: true })
  const call = async (key: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${app.url}${path}`, {
      method,
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`)
    return text === '' ? {} : (JSON.parse(text) as { secret: string; id: string })
  }
  const key = (by: string, scopes: string[], extra: object = {}) =>
    call(by, 'POST', '/admin/v1/keys', { name: scopes.join(' '), scopes, ...extra }) as Promise<{
      secret: string
      id: string
    }>
  await call(ADMIN_KEY, 'PUT', '/admin/v1/places/1818', { universeId: 99, name: 'Crossroads' })
  // the operator's keys are not made by an API key: revoking one made by another touches none
  const write = await key(ADMIN_KEY, ['presence:write'])
  const leaked = await key(ADMIN_KEY, ['admin'])
  const child = await key(leaked.secret, ['admin'])
  const made = {
    child,
    read: await key(child.secret, ['presence:read']),
    private: await key(child.secret, ['presence:read:private']),
    write: await key(child.secret, ['presence:write']),
    universe: await key(child.secret, ['presence:write'], { universes: ['5'] }),
  }
  await call(ADMIN_KEY, 'DELETE', `/admin/v1/keys/${leaked.id}`)

  const revokedAt = CREDENTIALS.indexOf('keyRevoked')
  const wrong: string[] = []
  for (const route of routes(app, () => write.secret)) {
    const expected = Number(route.expected.split(' ')[revokedAt])
    for (const [name, { secret }] of Object.entries(made)) {
      await route.before?.()
      const got = await status(app, route, { 'x-api-key': secret })
      if (got !== expected) {
        wrong.push(`${route.method} ${route.path} with ${name}: ${got}, expected ${expected}`)
      }
    }
  }
  assert.deepEqual(wrong, [])
})
