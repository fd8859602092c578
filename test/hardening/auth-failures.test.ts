import assert from 'node:assert/strict'
import { request } from 'node:http'
import { test, type TestContext } from 'node:test'
import { SignJWT } from 'jose'
import { WebSocket } from 'ws'
import type { Config } from '../../src/app/config.js'
import { parseUserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'

/*
 * The limit on guessed credentials (PRESENCED_AUTH_FAILURE_LIMIT): LIMIT wrong credentials from
 * one client address, then even the right one is refused with 429 in the protocol's own format,
 * until the window ends; other addresses and anonymous reads go on. Each client address is a
 * loopback address of its own (127.0.0.x), bound as the connection's local end.
 */

const LIMIT = 3
const WINDOW_MS = 60_000
const SECRET = 'test-token-secret-of-enough-length-0123456789'
const METRICS_KEY = 'test-metrics-key'
const USER = parseUserId('77')!

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

/** One HTTP request from client address `from` (a 127.0.0.x of this machine). */
function send(
  url: string,
  from: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const call = request(
      new URL(path, url),
      {
        method,
        localAddress: from,
        headers: {
          ...(body !== undefined && {
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(body)),
          }),
          ...headers,
        },
      },
      (response) => {
        const chunks: Buffer[] = []
        const reply = () => ({
          status: response.statusCode!,
          headers: response.headers,
          text: Buffer.concat(chunks).toString(),
        })
        // a stream that opened (SSE) never ends by itself: its status is the answer
        if (response.headers['content-type']?.startsWith('text/event-stream')) {
          resolve(reply())
          return void call.destroy()
        }
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => resolve(reply()))
      },
    )
    call.on('error', reject)
    call.end(body)
  })
}

/** A WebSocket upgrade from `from`: the HTTP status it was refused with, or 101. */
function upgrade(url: string, from: string, token: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(
      `${url.replace('http', 'ws')}/api/v1/realtime?access_token=${encodeURIComponent(token)}`,
      { localAddress: from },
    )
    socket.once('open', () => {
      socket.close()
      resolve({ status: 101, headers: {}, text: '' })
    })
    socket.once('unexpected-response', (_request, response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () =>
        resolve({
          status: response.statusCode!,
          headers: response.headers,
          text: Buffer.concat(chunks).toString(),
        }),
      )
    })
    socket.once('error', reject)
  })
}

/** A token signed with a key presenced never had. */
function forged(userId: string): Promise<string> {
  return new SignJWT({ sub: userId })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(`${SECRET}-not-ours`))
}

/** A token presenced signed, expired an hour ago. */
function expired(userId: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ sub: userId })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(now - 3600)
    .sign(new TextEncoder().encode(SECRET))
}

/**
 * Tokens presenced signed whose claims refuse them (issued two hours ahead of the clock, or with
 * no expiry): genuine signatures, as a platform whose clock runs ahead makes them.
 */
function signedButRefused(userId: string): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000)
  const key = new TextEncoder().encode(SECRET)
  return Promise.all([
    new SignJWT({ sub: userId })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(now + 7200)
      .setExpirationTime(now + 3 * 3600)
      .sign(key),
    new SignJWT({ sub: userId }).setProtectedHeader({ alg: 'HS256' }).sign(key),
  ])
}

async function start(
  t: TestContext,
  clock: ManualClock,
  config: Partial<Config> = {},
): Promise<StartedApp> {
  return startApp(t, {
    clock,
    listen: true,
    config: {
      tokenSecret: SECRET,
      metricsKey: METRICS_KEY,
      authFailureLimit: LIMIT,
      authFailureWindowSeconds: WINDOW_MS / 1000,
      ...config,
    },
  })
}

/** A surface: a request with a credential, and how its protocol renders a 429. */
interface Surface {
  name: string
  call: (app: StartedApp, from: string, credential: string) => Promise<Reply>
  /** The right credential of this surface. */
  right: (app: StartedApp) => Promise<string>
  /** A wrong one (the i-th guess). */
  wrong: (i: number) => Promise<string>
  /** The status of the right credential from another address. */
  served: number
  /** Asserts a 429 in this protocol's error format. */
  limited: (reply: Reply) => void
}

const robloxLimited = (reply: Reply) => {
  const body = JSON.parse(reply.text) as { errors: Array<{ code: number; message: string }> }
  assert.equal(body.errors.length, 1)
  assert.equal(typeof body.errors[0]!.code, 'number')
  assert.equal(body.errors[0]!.message, 'Too many requests')
}
const xboxLimited = (reply: Reply) => {
  assert.deepEqual(JSON.parse(reply.text), {
    version: 1,
    currentRequests: LIMIT + 1,
    maxRequests: LIMIT,
    periodInSeconds: WINDOW_MS / 1000,
    type: 'auth-failures',
  })
}
const recordLimited = (reply: Reply) => {
  const body = JSON.parse(reply.text) as { error: { code: string; message: string } }
  assert.equal(body.error.code, 'RATE_LIMITED')
  assert.match(body.error.message, /failed authentication/)
}

const userToken = (app: StartedApp) => app.tokens.issue(USER)

/** A surface taking a user's token, where forged tokens are the guesses. */
function tokenSurface(
  name: string,
  call: Surface['call'],
  limited: Surface['limited'],
  served = 200,
): Surface {
  return { name, call, right: userToken, wrong: forgedToken, served, limited }
}
const forgedToken = (i: number) => forged(String(100 + i))
const wrongKey = (i: number) => Promise.resolve(`pk_guess-${i}`)
const users = JSON.stringify({ userIds: [1] })

const surfaces: Surface[] = [
  tokenSurface(
    'Roblox presence read, Bearer (lean path)',
    (app, from, token) =>
      send(
        app.url,
        from,
        'POST',
        '/v1/presence/users',
        { authorization: `Bearer ${token}` },
        users,
      ),
    robloxLimited,
  ),
  // a cookie caller's POST then meets the CSRF challenge: authenticated, not refused as a guess
  tokenSurface(
    'Roblox presence read, forged session cookie (Fastify path)',
    (app, from, token) =>
      send(
        app.url,
        from,
        'POST',
        '/v1/presence/users?via=fastify',
        { cookie: `.ROBLOSECURITY=${token}`, 'x-csrf-token': 'none' },
        users,
      ),
    robloxLimited,
    403,
  ),
  tokenSurface(
    'Roblox heartbeat, Bearer (lean path)',
    (app, from, token) =>
      send(
        app.url,
        from,
        'POST',
        '/v1/presence/register-app-presence',
        { authorization: `Bearer ${token}` },
        JSON.stringify({ location: 'Home' }),
      ),
    robloxLimited,
  ),
  {
    name: 'Roblox presence read, API key',
    call: (app, from, key) =>
      send(app.url, from, 'POST', '/v1/presence/users', { 'x-api-key': key }, users),
    right: async (app) =>
      (await app.service.keys.create({ name: 'reader', scopes: ['presence:read'] })).secret,
    wrong: wrongKey,
    served: 200,
    limited: robloxLimited,
  },
  tokenSurface(
    'companion, Bearer',
    (app, from, token) =>
      send(app.url, from, 'GET', '/v1/users/authenticated', { authorization: `Bearer ${token}` }),
    robloxLimited,
  ),
  tokenSurface(
    'own settings, Bearer',
    (app, from, token) =>
      send(app.url, from, 'GET', '/v1/presence/settings', { authorization: `Bearer ${token}` }),
    robloxLimited,
  ),
  tokenSurface(
    'Xbox batch, XBL3.0 (lean path)',
    (app, from, token) =>
      send(
        app.url,
        from,
        'POST',
        '/users/batch',
        { authorization: `XBL3.0 x=1;${token}`, 'x-xbl-contract-version': '3' },
        JSON.stringify({ users: ['1'] }),
      ),
    xboxLimited,
  ),
  tokenSurface(
    'Xbox own presence, XBL3.0 (Fastify path)',
    (app, from, token) =>
      send(app.url, from, 'GET', '/users/me', {
        authorization: `XBL3.0 x=1;${token}`,
        'x-xbl-contract-version': '3',
      }),
    xboxLimited,
  ),
  {
    // a header no issued token can make counts as a forged token does (a bad Bearer header does)
    name: 'Xbox own presence, malformed XBL3.0 headers',
    call: (app, from, authorization) =>
      send(app.url, from, 'GET', '/users/me', {
        authorization,
        'x-xbl-contract-version': '3',
      }),
    right: async (app) => `XBL3.0 x=1;${await userToken(app)}`,
    wrong: (i) =>
      Promise.resolve(
        [`XBL3.0 x=1;guess ${i}`, `XBL3.0 guess-${i}`, `XBL3.0 x=1;`, `Basic guess-${i}`][i % 4]!,
      ),
    served: 200,
    limited: xboxLimited,
  },
  tokenSurface(
    'native SSE, Bearer',
    (app, from, token) =>
      send(app.url, from, 'GET', '/api/v1/realtime/sse?ids=1', {
        authorization: `Bearer ${token}`,
      }),
    recordLimited,
  ),
  tokenSurface(
    'native WebSocket, ?access_token',
    (app, from, token) => upgrade(app.url, from, token),
    recordLimited,
    101,
  ),
  {
    name: 'admin API, admin key',
    call: (app, from, key) => send(app.url, from, 'GET', '/admin/v1/keys', { 'x-api-key': key }),
    right: async () => ADMIN_KEY,
    wrong: (i) => Promise.resolve(`admin-guess-${i}`),
    served: 200,
    limited: recordLimited,
  },
  {
    name: 'game servers, API key',
    call: (app, from, key) =>
      send(app.url, from, 'GET', '/api/v1/servers/00000000-0000-4000-8000-000000000000', {
        'x-api-key': key,
      }),
    right: async (app) =>
      (await app.service.keys.create({ name: 'servers', scopes: ['presence:read'] })).secret,
    wrong: wrongKey,
    served: 404,
    limited: recordLimited,
  },
  {
    name: 'metrics, metrics key',
    call: (app, from, key) =>
      send(app.url, from, 'GET', '/metrics', { authorization: `Bearer ${key}` }),
    right: async () => METRICS_KEY,
    wrong: (i) => Promise.resolve(`metrics-guess-${i}`),
    served: 200,
    limited: recordLimited,
  },
]

/** LIMIT wrong credentials from `guesser`, then the right one: refused; from `other`: served. */
async function guessThenRight(
  app: StartedApp,
  surface: Surface,
  guesser: string,
  other: string,
): Promise<void> {
  const right = await surface.right(app)
  for (let i = 0; i < LIMIT; i++) {
    const refused = await surface.call(app, guesser, await surface.wrong(i))
    assert.ok([401, 403].includes(refused.status), `${surface.name}: guess ${i}`)
  }
  const limited = await surface.call(app, guesser, right)
  assert.equal(limited.status, 429, `${surface.name}: the right credential after the guesses`)
  assert.equal(limited.headers['retry-after'], '55', `${surface.name}: until the window ends`)
  surface.limited(limited)
  const wrongAgain = await surface.call(app, guesser, await surface.wrong(99))
  assert.equal(wrongAgain.status, 429, `${surface.name}: a further guess`)
  const fromOther = await surface.call(app, other, right)
  assert.equal(fromOther.status, surface.served, `${surface.name}: another address`)
}

const fiveSecondsIn = () => new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 5))

for (const surface of surfaces) {
  test(`${surface.name}: after the limit of wrong credentials, the right one is refused with 429`, async (t) => {
    const app = await start(t, fiveSecondsIn())
    await guessThenRight(app, surface, '127.0.0.10', '127.0.0.11')
  })
}

test('each refusal is counted in the metrics, without addresses', async (t) => {
  const app = await start(t, fiveSecondsIn())
  let n = 10
  for (const surface of surfaces) {
    await guessThenRight(app, surface, `127.0.0.${n++}`, `127.0.0.${n++}`)
  }
  const metrics = await send(app.url, '127.0.0.200', 'GET', '/metrics', {
    authorization: `Bearer ${METRICS_KEY}`,
  })
  const refusals = /^presenced_auth_failure_refusals_total (\d+)$/m.exec(metrics.text)
  assert.equal(Number(refusals?.[1]), 2 * surfaces.length, 'each refusal counted once')
  assert.doesNotMatch(metrics.text, /127\.0\.0\.\d/, 'no address in the metrics')
})

test('the lean paths count and refuse too', async (t) => {
  const clock = new ManualClock()
  const app = await start(t, clock)
  const before = app.lean.served
  const from = '127.0.1.1'
  for (let i = 0; i < LIMIT; i++) {
    const reply = await send(
      app.url,
      from,
      'POST',
      '/v1/presence/users',
      { authorization: `Bearer ${await forged(String(i + 1))}` },
      users,
    )
    assert.equal(reply.status, 401)
  }
  const limited = await send(
    app.url,
    from,
    'POST',
    '/v1/presence/users',
    { authorization: `Bearer ${await userToken(app)}` },
    users,
  )
  assert.equal(limited.status, 429)
  assert.equal(app.lean.served, before + LIMIT + 1, 'every request took the lean path')
})

test('anonymous reads from a refused address are still served', async (t) => {
  const clock = new ManualClock()
  const app = await start(t, clock)
  const from = '127.0.2.1'
  for (let i = 0; i <= LIMIT; i++) {
    await send(app.url, from, 'GET', '/admin/v1/users/1', { 'x-api-key': `guess-${i}` })
  }
  const limited = await send(app.url, from, 'GET', '/admin/v1/users/1', { 'x-api-key': ADMIN_KEY })
  assert.equal(limited.status, 429)
  const roblox = await send(app.url, from, 'POST', '/v1/presence/users', {}, users)
  assert.equal(roblox.status, 200)
  assert.equal(JSON.parse(roblox.text).userPresences.length, 1)
  const companion = await send(app.url, from, 'GET', '/v1/users/1')
  assert.equal(companion.status, 200)
})

test('the window ending restores the address', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1))
  const app = await start(t, clock)
  const from = '127.0.3.1'
  const right = `Bearer ${await userToken(app)}`
  const read = (authorization: string) =>
    send(app.url, from, 'POST', '/v1/presence/users', { authorization }, users)
  for (let i = 0; i < LIMIT; i++)
    assert.equal((await read(`Bearer ${await forged('1')}`)).status, 401)
  assert.equal((await read(right)).status, 429)
  clock.advance(WINDOW_MS - 1)
  const last = await read(right)
  assert.equal(last.status, 429)
  assert.equal(last.headers['retry-after'], '1')
  clock.advance(1)
  assert.equal((await read(right)).status, 200, 'a new window')
  // and the new window counts afresh
  for (let i = 0; i < LIMIT; i++)
    assert.equal((await read(`Bearer ${await forged('1')}`)).status, 401)
  assert.equal((await read(right)).status, 429)
})

test('expired, revoked or not-yet-issued credentials that were issued do not count as guesses', async (t) => {
  const clock = new ManualClock()
  const app = await start(t, clock)
  const from = '127.0.4.1'
  const read = (headers: Record<string, string>) =>
    send(app.url, from, 'POST', '/v1/presence/users', headers, users)
  const old = await expired('77')
  const { secret, key } = await app.service.keys.create({
    name: 'old',
    scopes: ['presence:read'],
  })
  await app.service.keys.revoke(key.id)
  const [ahead, unending] = await signedButRefused('77')
  for (let i = 0; i < 3 * LIMIT; i++) {
    assert.equal((await read({ authorization: `Bearer ${old}` })).status, 401)
    assert.equal((await read({ 'x-api-key': secret })).status, 401)
    assert.equal((await read({ authorization: `Bearer ${ahead}` })).status, 401)
    assert.equal((await read({ authorization: `Bearer ${unending}` })).status, 401)
  }
  const right = { authorization: `Bearer ${await userToken(app)}` }
  assert.equal((await read(right)).status, 200)
  // while forged ones do
  for (let i = 0; i < LIMIT; i++) {
    assert.equal((await read({ authorization: `Bearer ${await forged('77')}` })).status, 401)
  }
  assert.equal((await read(right)).status, 429)
})

test("a user's token on /metrics is refused, but is no guess: it is a credential for other routes", async (t) => {
  const clock = new ManualClock()
  const app = await start(t, clock)
  const from = '127.0.4.2'
  const scrape = (authorization: string) =>
    send(app.url, from, 'GET', '/metrics', { authorization })
  const tokens = [await userToken(app), await expired('77'), ...(await signedButRefused('77'))]
  for (let i = 0; i < 3 * LIMIT; i++) {
    for (const token of tokens) {
      const refused = await scrape(`Bearer ${token}`)
      assert.equal(refused.status, 401, `token ${tokens.indexOf(token)}, try ${i}`)
      assert.equal(JSON.parse(refused.text).error.code, 'UNAUTHENTICATED')
    }
  }
  assert.equal((await scrape(`Bearer ${METRICS_KEY}`)).status, 200)
  // a token presenced never signed still counts
  for (let i = 0; i < LIMIT; i++) {
    assert.equal((await scrape(`Bearer ${await forged('77')}`)).status, 401)
  }
  assert.equal((await scrape(`Bearer ${METRICS_KEY}`)).status, 429)
  const text = (await send(app.url, '127.0.4.3', 'GET', '/metrics', { 'x-api-key': METRICS_KEY }))
    .text
  assert.match(text, /^presenced_auth_failure_refusals_total 1$/m)
})

test('behind a trusted proxy, the forwarded client address is counted', async (t) => {
  const clock = new ManualClock()
  const app = await start(t, clock, { trustProxy: { hops: 1 } })
  const read = (client: string, token: string) =>
    send(
      app.url,
      '127.0.0.1',
      'POST',
      '/v1/presence/users',
      { authorization: `Bearer ${token}`, 'x-forwarded-for': client },
      users,
    )
  for (let i = 0; i < LIMIT; i++)
    assert.equal((await read('203.0.113.7', await forged('1'))).status, 401)
  const right = await userToken(app)
  assert.equal((await read('203.0.113.7', right)).status, 429)
  assert.equal((await read('203.0.113.8', right)).status, 200, 'another client, same proxy')
  // an IPv6 client holds its /64 whole: a new address per guess is still one guesser
  for (let i = 1; i <= LIMIT; i++)
    assert.equal((await read(`2001:db8:7:7::${i}`, await forged('1'))).status, 401)
  assert.equal((await read('2001:db8:7:7:ffff::1', right)).status, 429)
  assert.equal((await read('2001:db8:7:8::1', right)).status, 200, 'another /64')
})

test('behind a proxy that appends to X-Forwarded-For, what the client wrote there is not its address', async (t) => {
  // nginx's $proxy_add_x_forwarded_for keeps the client's own header and adds the address it
  // saw: only that last entry is the front proxy's word
  const clock = new ManualClock()
  const app = await start(t, clock, { trustProxy: { hops: 1 } })
  const read = (forwardedFor: string, token: string) =>
    send(
      app.url,
      '127.0.8.1',
      'POST',
      '/v1/presence/users',
      { authorization: `Bearer ${token}`, 'x-forwarded-for': forwardedFor },
      users,
    )
  const served = app.lean.served
  for (let i = 0; i < LIMIT; i++)
    assert.equal((await read(`198.51.100.${i}, 203.0.113.9`, await forged('1'))).status, 401)
  const right = await userToken(app)
  assert.equal((await read('198.51.100.200, 203.0.113.9', right)).status, 429)
  assert.equal((await read('203.0.113.9, 203.0.113.10', right)).status, 200, 'another client')
  assert.equal(app.lean.served, served + LIMIT + 2, 'the lean path serves reads behind a proxy')
})

test('trusted proxies by address: a peer not among them is counted by its own address', async (t) => {
  const clock = new ManualClock()
  const app = await start(t, clock, { trustProxy: { addresses: ['127.0.9.0/24'] } })
  const read = (from: string, forwardedFor: string, token: string) =>
    send(
      app.url,
      from,
      'POST',
      '/v1/presence/users',
      { authorization: `Bearer ${token}`, 'x-forwarded-for': forwardedFor },
      users,
    )
  const right = await userToken(app)
  // an untrusted peer writing a new X-Forwarded-For each time is still one guesser
  for (let i = 0; i < LIMIT; i++)
    assert.equal((await read('127.0.10.1', `198.51.100.${i}`, await forged('1'))).status, 401)
  assert.equal((await read('127.0.10.1', '198.51.100.250', right)).status, 429)
  // the trusted proxy speaks for its clients: one of them guessing locks out only that one
  for (let i = 0; i < LIMIT; i++)
    assert.equal((await read('127.0.9.1', '203.0.113.20', await forged('1'))).status, 401)
  assert.equal((await read('127.0.9.1', '203.0.113.20', right)).status, 429)
  assert.equal((await read('127.0.9.1', '203.0.113.21', right)).status, 200)
})

test('in a fleet, the count is shared and a refused address is refused on every node', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 30))
  const prefix = uniquePrefix('auth-failures')
  const fleet = { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix, flapGraceMs: 0 }
  const a = await start(t, clock, fleet)
  const b = await start(t, clock, fleet)
  const c = await start(t, clock, fleet)
  t.after(async () => {
    t.diagnostic(`deleted ${await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)} keys`)
  })
  const from = '127.0.5.1'
  const read = (node: StartedApp, token: string) =>
    send(node.url, from, 'POST', '/v1/presence/users', { authorization: `Bearer ${token}` }, users)
  const right = await userToken(a)
  // LIMIT guesses spread over two nodes: b reaches the limit having seen two of them
  assert.equal((await read(a, await forged('1'))).status, 401)
  assert.equal((await read(b, await forged('2'))).status, 401)
  assert.equal((await read(b, await forged('3'))).status, 401)
  const refused = await read(b, right)
  assert.equal(refused.status, 429, 'the right token after the fleet-wide third guess')
  assert.equal(refused.headers['retry-after'], '30')
  // a saw one guess only, and counts the next in the same shared window
  assert.equal((await read(a, await forged('4'))).status, 429)
  assert.equal((await read(a, right)).status, 429)
  // c saw no guess at all: it hears of the refusal on the change bus
  const deadline = Date.now() + 5000
  let onC = await read(c, right)
  while (onC.status === 200 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    onC = await read(c, right)
  }
  assert.equal(onC.status, 429, 'c refuses the address too')
  // another address is served by every node
  for (const node of [a, b, c]) {
    const other = await send(
      node.url,
      '127.0.5.2',
      'POST',
      '/v1/presence/users',
      { authorization: `Bearer ${right}` },
      users,
    )
    assert.equal(other.status, 200)
  }
  clock.advance(30_000)
  assert.equal((await read(c, right)).status, 200, 'the window ended on every node')
  assert.equal((await read(a, right)).status, 200)
})

test('the limit settings are validated at start', async () => {
  const { loadConfig, ConfigError } = await import('../../src/app/config.js')
  for (const [name, value] of [
    ['PRESENCED_AUTH_FAILURE_LIMIT', '0'],
    ['PRESENCED_AUTH_FAILURE_LIMIT', 'many'],
    ['PRESENCED_AUTH_FAILURE_WINDOW', '-1'],
    ['PRESENCED_AUTH_FAILURE_WINDOW', '1.5'],
  ] as const) {
    assert.throws(() => loadConfig({ [name]: value }), ConfigError, `${name}=${value}`)
  }
  const defaults = loadConfig({})
  assert.deepEqual([defaults.authFailureLimit, defaults.authFailureWindowSeconds], [20, 60])
})
