import assert from 'node:assert/strict'
import { request } from 'node:http'
import { test } from 'node:test'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * A request carrying two credentials is refused 400 on presenced's own routes, as the admin API
 * (856d91f), the native streams and the dashboard's statistics refuse it, rather than served
 * with one of them silently ignored. (The Roblox and Xbox routes take their protocol's token
 * first, as documented in docs/reference; they are not here.)
 */

const METRICS_KEY = 'metrics-key-of-the-several-credentials-test'
const GAME = '0f0e0d0c-0b0a-4908-8706-050403020100'

test('users settings, /metrics and the game-server routes refuse a key beside a token (400)', async (t) => {
  const server = await startApp(t, { listen: true, config: { metricsKey: METRICS_KEY } })
  const token = await server.tokens.issue('500' as never)
  const created = await fetch(`${server.url}/admin/v1/keys`, {
    method: 'POST',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'game servers', scopes: ['presence:write', 'presence:read'] }),
  })
  const serverKey = ((await created.json()) as { secret: string }).secret
  const ask = async (method: string, path: string, headers: Record<string, string>) => {
    const res = await fetch(`${server.url}${path}`, { method, headers })
    return { status: res.status, body: await res.text() }
  }
  const several =
    /Send one credential, not several: this request carries Authorization, x-api-key\./
  const cases: Array<
    [label: string, method: string, path: string, headers: Record<string, string>, shape: RegExp]
  > = [
    // Roblox shape, as the routes beside
    [
      'settings: a token and a bogus key',
      'GET',
      '/v1/presence/settings',
      { authorization: `Bearer ${token}`, 'x-api-key': 'bogus' },
      /^\{"errors":\[\{"code":/,
    ],
    [
      'settings: a token and the admin key',
      'GET',
      '/v1/presence/settings',
      { authorization: `Bearer ${token}`, 'x-api-key': ADMIN_KEY },
      /^\{"errors":\[\{"code":/,
    ],
    [
      'metrics: the key as Bearer and a bogus x-api-key',
      'GET',
      '/metrics',
      { authorization: `Bearer ${METRICS_KEY}`, 'x-api-key': 'bogus' },
      /^\{"error":\{"code":"INVALID_REQUEST"/,
    ],
    [
      'metrics: a bogus Bearer and the key in x-api-key',
      'GET',
      '/metrics',
      { authorization: 'Bearer bogus', 'x-api-key': METRICS_KEY },
      /^\{"error":\{"code":"INVALID_REQUEST"/,
    ],
    [
      'servers: a key and a user token',
      'GET',
      `/api/v1/servers/${GAME}`,
      { 'x-api-key': serverKey, authorization: `Bearer ${token}` },
      /^\{"error":\{"code":"INVALID_REQUEST"/,
    ],
    [
      'servers: a key and a bogus token',
      'DELETE',
      `/api/v1/servers/${GAME}`,
      { 'x-api-key': serverKey, authorization: 'Bearer bogus' },
      /^\{"error":\{"code":"INVALID_REQUEST"/,
    ],
  ]
  for (const [label, method, path, headers, shape] of cases) {
    const { status, body } = await ask(method, path, headers)
    assert.equal(status, 400, `${label}: ${status} ${body.slice(0, 160)}`)
    assert.match(body, shape, label)
    assert.match(body, several, label)
  }
  // one credential each, as before
  assert.equal(
    (await ask('GET', '/v1/presence/settings', { authorization: `Bearer ${token}` })).status,
    200,
  )
  assert.equal(
    (await ask('GET', '/metrics', { authorization: `Bearer ${METRICS_KEY}` })).status,
    200,
  )
  assert.equal((await ask('GET', '/metrics', { 'x-api-key': METRICS_KEY })).status, 200)
  assert.equal(
    (await ask('GET', `/api/v1/servers/${GAME}`, { 'x-api-key': serverKey })).status,
    404,
  )
  const tokenAlone = await ask('GET', `/api/v1/servers/${GAME}`, {
    authorization: `Bearer ${token}`,
  })
  assert.equal(tokenAlone.status, 401, tokenAlone.body)
  assert.match(tokenAlone.body, /API_KEY_MISSING/)
})

/** A GET whose headers are sent as given, a repeated one included (fetch would join them). */
function rawGet(url: string, headers: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port, pathname, search, host } = new URL(url)
    const req = request(
      { hostname, port, path: pathname + search, headers: ['host', host, ...headers] },
      (res) => {
        if (String(res.headers['content-type']).startsWith('text/event-stream')) {
          // a stream opened: the credential was taken
          res.destroy()
          return resolve({ status: res.statusCode ?? 0, body: '(stream)' })
        }
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

test('Authorization sent twice is several credentials (400), not the first one read', async (t) => {
  // Node's parser keeps the first of repeated Authorization headers and drops the others
  const server = await startApp(t, { listen: true, config: { metricsKey: METRICS_KEY } })
  const alice = await server.tokens.issue('500' as never)
  const bob = await server.tokens.issue('501' as never)
  const twice = (first: string, second: string) => [
    'authorization',
    `Bearer ${first}`,
    'authorization',
    `Bearer ${second}`,
  ]
  const cases: Array<[label: string, path: string, headers: string[]]> = [
    ['settings: two users', '/v1/presence/settings', twice(alice, bob)],
    ['metrics: the key, then a bogus one', '/metrics', twice(METRICS_KEY, 'bogus')],
    ['SSE: two users', '/api/v1/realtime/sse?ids=1', twice(alice, bob)],
    ['stats: a token, then a bogus one', '/api/v1/stats', twice(alice, 'bogus')],
    ['admin: a token, then another', '/admin/v1/keys', twice(alice, bob)],
  ]
  for (const [label, path, headers] of cases) {
    const { status, body } = await rawGet(`${server.url}${path}`, headers)
    assert.equal(status, 400, `${label}: ${status} ${body.slice(0, 160)}`)
    assert.match(body, /Send one credential, not several: .*Authorization, Authorization/, label)
  }
  // once is one credential
  const once = await rawGet(`${server.url}/v1/presence/settings`, [
    'authorization',
    `Bearer ${alice}`,
  ])
  assert.equal(once.status, 200, once.body)
})
