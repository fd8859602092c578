/**
 * A platform's JWKS that cannot be loaded, through a real `presenced serve` and a real local
 * JWKS endpoint taken down and brought back: every surface that takes a platform's token answers
 * one it cannot check 503 with Retry-After in its own error shape (never 401, never a
 * WWW-Authenticate invalid_token), a token the loaded set refuses 401 (also while the endpoint
 * is down: a signature a kept key refuses is a forgery), a good one 200; the set is
 * fetched at start without holding the start up, then again in the background until the app
 * closes; neither the log nor /metrics quote a token.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { test, type TestContext } from 'node:test'
import { SignJWT, type JWK } from 'jose'
import { makeKey, type SigningKey as Key } from '../helpers/signing-keys.js'
import WebSocket from 'ws'
import { createClient, PresencedError, type TokenRequest } from '@presenced/client'
import { loadConfig } from '../../src/app/config.js'
import { spawnServer } from '../helpers/spawn-server.js'
import { startApp } from '../helpers/start-app.js'
import { until } from '../helpers/until.js'
import { orAfter } from './sdk-kit.js'
import { Tokens } from '../../src/service/tokens.js'
import type { UserId } from '../../src/core/user-id.js'

const COOLDOWN_S = 3
const ADMIN_KEY = 'jwks-outage-admin-key-0123456789'
const SECRET = 'jwks-outage-token-secret-of-enough-length-0123'

function sign(key: Key, sub: string): Promise<string> {
  return new SignJWT({ sub })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .setExpirationTime('10m')
    .sign(key.privateKey)
}

/** A JWKS endpoint on a fixed port: `down()` closes it (connections refused), `up()` reopens. */
async function jwksEndpoint(t: TestContext, keys: JWK[]) {
  let failing = false
  let fetches = 0
  let server: Server | undefined
  const listen = async (port: number) => {
    server = createServer((_request, response) => {
      fetches++
      if (failing) return void response.writeHead(500).end('down')
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }))
    })
    await new Promise<void>((done) => server!.listen(port, '127.0.0.1', done))
    return (server.address() as { port: number }).port
  }
  const port = await listen(0)
  const down = async () => {
    const closing = server
    server = undefined
    if (!closing) return
    closing.closeAllConnections()
    await new Promise((done) => closing.close(done))
  }
  t.after(down)
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    down,
    up: async () => void (await listen(port)),
    fail: (how: boolean) => (failing = how),
    fetches: () => fetches,
  }
}

/** What a surface answered: status, headers that matter, body. */
interface Answer {
  status: number
  retryAfter: string | undefined
  challenge: string | undefined
  body: string
}

async function answerOf(response: Response): Promise<Answer> {
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after') ?? undefined,
    challenge: response.headers.get('www-authenticate') ?? undefined,
    body: await response.text(),
  }
}

/** A WebSocket upgrade with the token: 101, or the refusal. */
function upgrade(url: string, token: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/realtime`, {
      headers: { authorization: `Bearer ${token}` },
    })
    socket.on('open', () => {
      socket.close()
      resolve({ status: 101, retryAfter: undefined, challenge: undefined, body: '' })
    })
    socket.on('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString()))
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          retryAfter: response.headers['retry-after'],
          challenge: response.headers['www-authenticate'],
          body,
        }),
      )
    })
    socket.on('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error)
    })
  })
}

type Shape = 'roblox' | 'xbox' | 'record'

/** Every surface that takes a user's token, each asked once with `token`. */
const surfaces: Record<
  string,
  { shape: Shape; ask: (url: string, token: string) => Promise<Answer> }
> = {
  'Roblox heartbeat (lean)': {
    shape: 'roblox',
    ask: async (url, token) =>
      answerOf(
        await fetch(`${url}/v1/presence/register-app-presence`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ location: 'Game', placeId: 1818, disconnect: false }),
        }),
      ),
  },
  'Roblox users read': {
    shape: 'roblox',
    ask: async (url, token) =>
      answerOf(
        await fetch(`${url}/v1/presence/users`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: '{"userIds":[1]}',
        }),
      ),
  },
  'companion /v1/users/authenticated': {
    shape: 'roblox',
    ask: async (url, token) =>
      answerOf(
        await fetch(`${url}/v1/users/authenticated`, {
          headers: { authorization: `Bearer ${token}` },
        }),
      ),
  },
  'own settings /v1/presence/settings': {
    shape: 'roblox',
    ask: async (url, token) =>
      answerOf(
        await fetch(`${url}/v1/presence/settings`, {
          headers: { authorization: `Bearer ${token}` },
        }),
      ),
  },
  'Xbox read': {
    shape: 'xbox',
    ask: async (url, token) =>
      answerOf(
        await fetch(`${url}/users/xuid(2)`, {
          headers: {
            authorization: `XBL3.0 x=1;${token}`,
            'x-xbl-contract-version': '3',
            accept: 'application/json',
          },
        }),
      ),
  },
  'SSE stream (?access_token=)': {
    shape: 'record',
    ask: async (url, token) => {
      const controller = new AbortController()
      const response = await fetch(`${url}/api/v1/realtime/sse?ids=2&access_token=${token}`, {
        signal: controller.signal,
      })
      if (response.status === 200) {
        controller.abort()
        return { status: 200, retryAfter: undefined, challenge: undefined, body: '' }
      }
      return answerOf(response)
    },
  },
  'WebSocket upgrade': { shape: 'record', ask: (url, token) => upgrade(url, token) },
}

const MESSAGE = /identity provider's keys cannot be loaded/

/** The body of a 503 in the surface's own error shape. */
function assertShape(shape: Shape, body: string, what: string): void {
  const parsed = JSON.parse(body) as Record<string, unknown>
  if (shape === 'roblox') {
    const errors = parsed.errors as Array<{ code: number; message: string }>
    assert.equal(errors.length, 1, what)
    assert.equal(errors[0]!.code, 0, what)
    assert.match(errors[0]!.message, MESSAGE, what)
  } else if (shape === 'xbox') {
    assert.equal(parsed.code, 1013, what)
    assert.equal(parsed.source, 'presenced', what)
    assert.match(String(parsed.description), MESSAGE, what)
  } else {
    const error = parsed.error as { code: string; message: string }
    assert.equal(error.code, 'AUTH_UNAVAILABLE', what)
    assert.match(error.message, MESSAGE, what)
  }
}

/** Every surface answers `token` 503, Retry-After 1..COOLDOWN_S, no challenge, its own shape. */
async function assertUnavailable(url: string, token: string, when: string): Promise<void> {
  for (const [name, { shape, ask }] of Object.entries(surfaces)) {
    const what = `${name}, ${when}`
    const answer = await ask(url, token)
    assert.equal(answer.status, 503, `${what}: ${answer.body}`)
    const seconds = Number(answer.retryAfter)
    assert.ok(
      Number.isInteger(seconds) && seconds >= 1 && seconds <= COOLDOWN_S,
      `${what}: Retry-After ${answer.retryAfter}`,
    )
    assert.equal(answer.challenge, undefined, `${what}: no WWW-Authenticate`)
    assertShape(shape, answer.body, what)
  }
}

/** Every surface answers `token` `status` (200/101 for a good token, 401 for a refused one). */
async function assertAll(url: string, token: string, status: 200 | 401, when: string) {
  for (const [name, { ask }] of Object.entries(surfaces)) {
    const answer = await ask(url, token)
    const expected = status === 200 && name === 'WebSocket upgrade' ? 101 : status
    assert.equal(answer.status, expected, `${name}, ${when}: ${answer.body}`)
    if (status === 401) {
      assert.equal(answer.retryAfter, undefined, `${name}, ${when}`)
      assert.match(String(answer.challenge), /invalid_token/, `${name}, ${when}`)
    }
  }
}

test('while the JWKS cannot be loaded, every surface answers a platform token 503 + Retry-After, then 200 or 401 once it loads', async (t) => {
  const [key, ghost, forger] = await Promise.all([makeKey('k-1'), makeKey('ghost'), makeKey('k-1')])
  const jwks = await jwksEndpoint(t, [key.jwk])
  // taken down before the start: the fetch at start fails
  await jwks.down()
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-jwks-outage-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const server = await spawnServer(t, {
    PRESENCED_DATA_DIR: dataDir,
    PRESENCED_TOKEN_SECRET: SECRET,
    PRESENCED_ADMIN_KEY: ADMIN_KEY,
    PRESENCED_JWT_JWKS: jwks.url,
    PRESENCED_JWT_JWKS_COOLDOWN: String(COOLDOWN_S * 1000),
    LOG_LEVEL: 'debug',
    // every surface is asked each refused token: three rounds of them stay under the limit
    PRESENCED_AUTH_FAILURE_LIMIT: '100',
  })
  // fetched at start, in the background: the failure is said, the node is up and ready
  const warned = await server.logged(/^the platform's JWKS URL cannot be loaded \(ECONNREFUSED\)/)
  assert.match(String(warned.msg), /503 with Retry-After/)
  assert.equal((await fetch(`${server.url}/readyz`)).status, 200, 'ready without the JWKS')

  const used: string[] = []
  const token = async (signer: Key, sub: string) => {
    const signed = await sign(signer, sub)
    used.push(signed)
    return signed
  }
  // no set at all: within the cooldown of the failed fetch at start, then past it (fetched, fails)
  await assertUnavailable(server.url, await token(key, '10'), 'no set, at start')
  await sleep(COOLDOWN_S * 1000 + 200)
  await assertUnavailable(server.url, await token(key, '11'), 'no set, fetch failed again')
  // presenced's own tokens need no JWKS
  const own = await new Tokens(SECRET).issue('12' as UserId)
  used.push(own)
  await assertAll(server.url, own, 200, "presenced's own token")

  // the endpoint is back: past the cooldown the set loads, and can tell
  await jwks.up()
  await sleep(COOLDOWN_S * 1000 + 200)
  const good = await token(key, '13')
  await assertAll(server.url, good, 200, 'recovered')
  await assertAll(server.url, await token(ghost, '14'), 401, 'a kid the fetched set lacks')
  await assertAll(server.url, await token(forger, '15'), 401, 'a signature its key refuses')

  // the endpoint fails again: a kid the kept set lacks may be a new key, which it cannot tell
  jwks.fail(true)
  await sleep(COOLDOWN_S * 1000 + 200)
  await assertUnavailable(server.url, await token(ghost, '16'), 'a kid the kept set lacks')
  await assertAll(server.url, await token(key, '17'), 200, 'a key the kept set holds')
  // a key the kept set holds and that refuses the signature: a forgery, whatever the endpoint
  // says, so refused (and counted as a guess), not told to wait
  await assertAll(server.url, await token(forger, '18'), 401, 'a signature a kept key refuses')

  // neither the log nor the metrics quote a token
  const metrics = await (
    await fetch(`${server.url}/metrics`, { headers: { 'x-api-key': ADMIN_KEY } })
  ).text()
  assert.match(metrics, /presenced_/)
  const logs = JSON.stringify(server.logs)
  for (const signed of used) {
    const signature = signed.slice(signed.lastIndexOf('.') + 1)
    assert.ok(!logs.includes(signature), 'a token in the log')
    assert.ok(!metrics.includes(signature), 'a token in /metrics')
  }
  assert.equal(await server.stop(), 0)
})

test('the SDK takes the 503 as a wait, not a refused token: no fresh token asked, the call retried until the keys load', async (t) => {
  const key = await makeKey('k-1')
  const jwks = await jwksEndpoint(t, [key.jwk])
  await jwks.down()
  const cooldownMs = 1000
  const jwt = {
    ...loadConfig({ LOG_LEVEL: 'silent', PRESENCED_JWT_JWKS: jwks.url }).jwt!,
    jwksCooldownMs: cooldownMs,
  }
  const server = await startApp(t, { listen: true, config: { jwt } })
  const token = await sign(key, '20')
  const asked: TokenRequest[] = []
  const provider = (request: TokenRequest) => {
    asked.push(request)
    return token
  }
  const statuses: number[] = []
  // the real fetch, its answers recorded
  const recorded = async (input: string, init?: RequestInit) => {
    const response = await fetch(input, init)
    statuses.push(response.status)
    return response
  }

  const once = createClient({ baseUrl: server.url, token: provider, retry: false, fetch: recorded })
  const refused = await once.registerAppPresence({ location: 'x' }).then(
    () => assert.fail('accepted while the keys cannot be loaded'),
    (error: unknown) => error,
  )
  assert.ok(refused instanceof PresencedError)
  assert.equal(refused.status, 503)
  assert.equal(refused.reason, undefined, 'no token refusal')
  assert.ok(refused.retryAfterMs! >= 1000 && refused.retryAfterMs! <= cooldownMs, 'Retry-After')
  assert.deepEqual(
    asked.map((request) => request.forceRefresh),
    [false],
    'the provider was not asked for a fresh token',
  )

  // retried (Retry-After) while the endpoint comes back: the same token is accepted, by a call
  // and by a subscription on either transport (its refused connections are reconnected)
  statuses.length = 0
  asked.length = 0
  const watching = createClient({ baseUrl: server.url, token: provider, WebSocket })
  const subscriptions = (['websocket', 'sse'] as const).map((transport) => {
    const subscription = watching.subscribe([20], {
      transport,
      reconnect: { minDelayMs: 100, maxDelayMs: 2000 },
    })
    const refusals: unknown[] = []
    const fatal: unknown[] = []
    subscription.on('reconnecting', ({ error }) => refusals.push(error))
    subscription.on('error', (error) => fatal.push(error))
    t.after(() => subscription.close())
    return { transport, subscription, refusals, fatal }
  })
  const retrying = createClient({
    baseUrl: server.url,
    token: provider,
    retry: { maxAttempts: 8, baseDelayMs: 200, maxDelayMs: 5000 },
    fetch: recorded,
  })
  setTimeout(() => void jwks.up(), 300)
  const result = await retrying.registerAppPresence({ location: 'x' })
  assert.ok(result)
  assert.equal(statuses[0], 503)
  assert.equal(statuses.at(-1), 200)
  for (const { transport, subscription, refusals, fatal } of subscriptions) {
    const ready = await orAfter(subscription.ready, 10_000, 'not ready')
    assert.notEqual(ready, 'not ready', `${transport}: not ready 10 s after the keys loaded`)
    assert.deepEqual(fatal, [], `${transport}: no fatal error`)
    assert.ok(refusals.length >= 1, `${transport}: refused while the keys could not be loaded`)
    for (const error of refusals) {
      assert.ok(error instanceof PresencedError, transport)
      assert.equal(error.status, 503, transport)
      assert.equal(error.reason, undefined, transport)
    }
  }
  assert.ok(!asked.some((request) => request.forceRefresh), 'never asked for a fresh token')
})

/**
 * A process that keeps a JWKS URL's set fresh (PRESENCED_JWT_JWKS_MAX_AGE at its least, 1 s),
 * busy for `BUSY_MS`, then with nothing left to do but that refresh.
 */
const BUSY_MS = 2500
const REFRESHING_PROCESS = `
const { loadConfig } = await import('./src/app/config.ts')
const { Tokens } = await import('./src/service/tokens.ts')
const config = loadConfig({ PRESENCED_JWT_JWKS: process.env.JWKS_URL, PRESENCED_JWT_JWKS_MAX_AGE: '1000' })
await new Tokens('${SECRET}', { external: config.jwt }).prefetchKeys()
setTimeout(() => {}, ${BUSY_MS})
console.log('refreshing')
`

test('the set is fetched again in the background until the app closes, and that holds no process open', async (t) => {
  const key = await makeKey('k-1')
  const jwks = await jwksEndpoint(t, [key.jwk])
  const maxAgeMs = 400
  const jwt = {
    ...loadConfig({ LOG_LEVEL: 'silent', PRESENCED_JWT_JWKS: jwks.url }).jwt!,
    jwksMaxAgeMs: maxAgeMs,
  }
  const server = await startApp(t, { listen: true, config: { jwt } })
  // at start, then behind, no token asking
  await until(() => jwks.fetches() >= 3, maxAgeMs * 4, 'two fetches behind')
  await server.app.close()
  const fetches = jwks.fetches()
  await sleep(maxAgeMs * 3)
  assert.equal(jwks.fetches(), fetches, 'no fetch after close')

  // a process holding such a set, its own work done, exits: the refresh timer does not hold it
  const before = jwks.fetches()
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', REFRESHING_PROCESS],
    {
      cwd: resolve(import.meta.dirname, '../..'),
      env: { PATH: process.env.PATH ?? '', JWKS_URL: jwks.url },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const exited = new Promise<number | null>((done) => child.on('exit', done))
  t.after(() => void child.kill())
  // its start (tsx compiling the imports) may take seconds on a busy machine: timed from here
  await new Promise((done) => child.stdout!.once('data', done))
  const started = Date.now()
  const code = await orAfter(exited, BUSY_MS + 3000, 'still running')
  assert.equal(code, 0, `${Date.now() - started} ms after its set was fetched`)
  assert.ok(jwks.fetches() - before >= 2, `fetched behind meanwhile: ${jwks.fetches() - before}`)
})
