/**
 * A platform's own tokens (PRESENCED_JWT_*), through a running presenced over HTTP: a local JWKS
 * server with keys made here, heartbeats with those tokens, and reads of what they did.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { test, type TestContext } from 'node:test'
import {
  CompactSign,
  SignJWT,
  exportJWK,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  type CryptoKey,
  type JWK,
} from 'jose'
import { ConfigError, JWKS_COOLDOWN_MIN_MS, loadConfig } from '../../src/app/config.js'
import { spawnServer } from '../helpers/spawn-server.js'
import { startApp } from '../helpers/start-app.js'

const ISSUER = 'https://id.platform.test'
const AUDIENCE = 'presenced'
const BIG = '9223372036854775807'
/** 2^53 + 1: the first integer a JS number cannot hold. */
const PAST_2_53 = '9007199254740993'
/**
 * Tests wait longer than this before expecting a rotated key to be fetched. Below the least
 * PRESENCED_JWT_JWKS_COOLDOWN allows (1000), so set past the variable's check (`fastCooldown`).
 */
const COOLDOWN_MS = 100

interface SigningKey {
  kid: string
  alg: string
  privateKey: CryptoKey
  publicKey: CryptoKey
  jwk: JWK
}

async function makeKey(alg: 'RS256' | 'ES256' | 'EdDSA', kid: string): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { kid, alg, privateKey, publicKey, jwk }
}

/** How a JWKS endpoint fails: an error status, a connection dropped unanswered, a 200 of junk. */
type JwksFailure = 500 | 'hang-up' | 'not-a-jwks'

/**
 * A platform's JWKS endpoint: serves the keys last published, counts its fetches (the failed
 * ones too); `fail` makes it fail until `fail(undefined)`.
 */
async function jwksServer(t: TestContext) {
  let keys: JWK[] = []
  let fetches = 0
  let failure: JwksFailure | undefined
  const server = createServer((request, response) => {
    fetches++
    if (failure === 'hang-up') return void request.socket.destroy()
    if (failure === 500) return void response.writeHead(500).end('down')
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(failure === 'not-a-jwks' ? '{"keys":"none"}' : JSON.stringify({ keys }))
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  t.after(() => new Promise((done) => server.close(done)))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    publish: (signing: SigningKey[]) => (keys = signing.map((key) => key.jwk)),
    fail: (how: JwksFailure | undefined) => (failure = how),
    fetches: () => fetches,
  }
}

/** Claims of a test token; null leaves the claim out. */
interface SignOptions {
  iss?: string | null
  aud?: string | null
  /** Seconds from now. */
  expiresIn?: number | null
  kid?: string
}

function sign(key: SigningKey, claims: Record<string, unknown>, options: SignOptions = {}) {
  const { iss = ISSUER, aud = AUDIENCE, expiresIn = 600 } = options
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: options.kid ?? key.kid, typ: 'JWT' })
    .setIssuedAt()
  if (iss !== null) jwt.setIssuer(iss)
  if (aud !== null) jwt.setAudience(aud)
  if (expiresIn !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn)
  return jwt.sign(key.privateKey)
}

/** A token whose payload is exactly this JSON text (for number literals JS cannot hold). */
function signRaw(key: SigningKey, payload: string) {
  return new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .sign(key.privateKey)
}

/** A Roblox heartbeat with the token; the status code. */
async function beat(url: string, token: string): Promise<number> {
  return (await beatReply(url, token)).status
}

/** A Roblox heartbeat with the token; the reply, read. */
async function beatReply(url: string, token: string): Promise<Response> {
  const response = await fetch(`${url}/v1/presence/register-app-presence`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ location: 'Game', placeId: 1818, disconnect: false }),
  })
  await response.arrayBuffer()
  return response
}

/**
 * A heartbeat with a token the platform's keys cannot tell now: 503 with a Retry-After of at
 * least 1 s and at most the cooldown, never a 401 or an invalid_token challenge.
 */
async function beatUnavailable(url: string, token: string, cooldownMs: number, what: string) {
  const response = await beatReply(url, token)
  assert.equal(response.status, 503, what)
  const seconds = Number(response.headers.get('retry-after'))
  assert.ok(
    Number.isInteger(seconds) && seconds >= 1 && seconds <= Math.max(1, cooldownMs / 1000),
    `${what}: Retry-After ${response.headers.get('retry-after')}`,
  )
  assert.equal(response.headers.get('www-authenticate'), null, what)
}

/** userPresenceType of a user, read anonymously; the id goes as an exact JSON literal. */
async function stateOf(url: string, id: string): Promise<number> {
  const response = await fetch(`${url}/v1/presence/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `{"userIds":[${id}]}`,
  })
  const text = await response.text()
  assert.equal(response.status, 200, text)
  const match = new RegExp(`"userPresenceType":(\\d),[^}]*"userId":${id},`).exec(text)
  assert.ok(match, `the reply names user ${id} exactly: ${text}`)
  return Number(match[1])
}

function jwtEnv(extra: Record<string, string>) {
  return loadConfig({ LOG_LEVEL: 'silent', ...extra }).jwt
}

/** `jwtEnv` with a JWKS cooldown of COOLDOWN_MS, shorter than the variable accepts. */
function fastCooldown(extra: Record<string, string>) {
  return { ...jwtEnv(extra)!, jwksCooldownMs: COOLDOWN_MS }
}

/**
 * A platform whose JWKS URL serves `published`, and presenced checking its issuer and audience
 * with a JWKS cooldown of COOLDOWN_MS, so that keys rotated into it are fetched soon.
 */
async function rotatingPlatform(t: TestContext, published: SigningKey[], config = {}) {
  const jwks = await jwksServer(t)
  jwks.publish(published)
  const jwt = fastCooldown({
    PRESENCED_JWT_JWKS: jwks.url,
    PRESENCED_JWT_ISSUER: ISSUER,
    PRESENCED_JWT_AUDIENCE: AUDIENCE,
  })
  const server = await startApp(t, { listen: true, config: { jwt, ...config } })
  return { jwks, server }
}

test('RS256, ES256 and EdDSA tokens from a JWKS URL are accepted; ids past 2^53 stay exact', async (t) => {
  const [rs, es, ed] = await Promise.all([
    makeKey('RS256', 'rs-1'),
    makeKey('ES256', 'es-1'),
    makeKey('EdDSA', 'ed-1'),
  ])
  const jwks = await jwksServer(t)
  jwks.publish([rs, es, ed])
  const jwt = jwtEnv({
    PRESENCED_JWT_JWKS: jwks.url,
    PRESENCED_JWT_ISSUER: ISSUER,
    PRESENCED_JWT_AUDIENCE: `other, ${AUDIENCE}`,
  })
  const server = await startApp(t, { listen: true, config: { jwt } })

  for (const [key, id] of [
    [rs, BIG],
    [es, PAST_2_53],
    [ed, '42'],
  ] as const) {
    assert.equal(await stateOf(server.url, id), 0)
    assert.equal(await beat(server.url, await sign(key, { sub: id })), 200, key.alg)
    assert.equal(await stateOf(server.url, id), 2, `${key.alg} made user ${id} InGame`)
  }
  // the keys were fetched once and cached, not once per token
  assert.equal(jwks.fetches(), 1)
  // presenced's own tokens keep working beside the platform's
  assert.equal(await beat(server.url, await server.tokens.issue('77' as never)), 200)
  assert.equal(await stateOf(server.url, '77'), 2)
})

test('an unknown or forged key is refused; a key rotated into the JWKS is picked up', async (t) => {
  const [current, next, ghost, forged] = await Promise.all([
    makeKey('RS256', 'k-1'),
    makeKey('ES256', 'k-2'),
    makeKey('RS256', 'ghost'),
    makeKey('RS256', 'k-1'),
  ])
  const { jwks, server } = await rotatingPlatform(t, [current])

  assert.equal(await beat(server.url, await sign(current, { sub: '1' })), 200)
  assert.equal(await beat(server.url, await sign(ghost, { sub: '2' })), 401, 'unknown kid')
  assert.equal(await beat(server.url, await sign(forged, { sub: '3' })), 401, 'kid of another key')

  const rotated = await sign(next, { sub: '4' })
  await sleep(COOLDOWN_MS * 3)
  const before = jwks.fetches()
  assert.equal(await beat(server.url, rotated), 401, 'not published yet')
  assert.equal(jwks.fetches(), before + 1, 'an unknown kid fetched the JWKS again')
  jwks.publish([current, next])
  await sleep(COOLDOWN_MS * 3)
  assert.equal(await beat(server.url, rotated), 200, 'published: fetched and accepted')
  assert.equal(await stateOf(server.url, '4'), 2)
  assert.equal(await stateOf(server.url, '2'), 0)
  assert.equal(await stateOf(server.url, '3'), 0)
})

test('a key replaced under the same kid is fetched on its first token, not counted as a wrong credential', async (t) => {
  const [old, replaced, later] = await Promise.all([
    makeKey('RS256', 'k-1'),
    makeKey('RS256', 'k-1'),
    makeKey('ES256', 'k-1'),
  ])
  // two wrong credentials would lock this address out: the new key's tokens must not be any
  const { jwks, server } = await rotatingPlatform(t, [old], { authFailureLimit: 2 })
  assert.equal(await beat(server.url, await sign(old, { sub: '50' })), 200)
  assert.equal(jwks.fetches(), 1)

  // the platform regenerates its key under the same kid and signs with it at once
  jwks.publish([replaced])
  await sleep(COOLDOWN_MS * 3)
  const tokens = await Promise.all(['51', '52', '53', '54'].map((sub) => sign(replaced, { sub })))
  const statuses = await Promise.all(tokens.map((token) => beat(server.url, token)))
  assert.deepEqual(statuses, [200, 200, 200, 200], 'verified against the set fetched again')
  assert.equal(jwks.fetches(), 2, 'one fetch for all of them')
  for (const id of ['51', '52', '53', '54']) assert.equal(await stateOf(server.url, id), 2)

  // and again, to a key of another type under the same kid (jose's unknown-key path)
  jwks.publish([later])
  await sleep(COOLDOWN_MS * 3)
  assert.equal(await beat(server.url, await sign(later, { sub: '55' })), 200)
  assert.equal(jwks.fetches(), 3)
  // the replaced key's new tokens are refused now that the set no longer has it
  await sleep(COOLDOWN_MS * 3)
  assert.equal(await beat(server.url, await sign(replaced, { sub: '56' })), 401)
  assert.equal(await stateOf(server.url, '56'), 0)
})

test('bad signatures under a known kid fetch the JWKS at most once per cooldown', async (t) => {
  const cooldownMs = JWKS_COOLDOWN_MIN_MS
  const [current, forged, replaced] = await Promise.all([
    makeKey('ES256', 'k-1'),
    makeKey('ES256', 'k-1'),
    makeKey('ES256', 'k-1'),
  ])
  const jwks = await jwksServer(t)
  jwks.publish([current])
  const jwt = jwtEnv({
    PRESENCED_JWT_JWKS: jwks.url,
    PRESENCED_JWT_JWKS_COOLDOWN: String(cooldownMs),
  })
  // the set is fetched at start, before the first token: the cooldown runs from then at most
  const firstAt = Date.now()
  const server = await startApp(t, { listen: true, config: { jwt } })
  // signed beforehand, so that a burst takes little more than its requests
  const forgeries = async (first: number) =>
    Promise.all(Array.from({ length: 8 }, (_, i) => sign(forged, { sub: String(first + i) })))
  const bursts = await Promise.all([100, 200, 300].map(forgeries))
  const firstToken = await sign(current, { sub: '60' })

  /** A burst of forged tokens, all refused; the fetches it caused. */
  const burst = async (tokens: string[]) => {
    const before = jwks.fetches()
    const statuses = await Promise.all(tokens.map((token) => beat(server.url, token)))
    assert.deepEqual(statuses, Array(8).fill(401), 'forged')
    return jwks.fetches() - before
  }
  /** Fetches a cooldown allows in `ms`, counting from a fetch that may start the period. */
  const allowed = (ms: number) => 1 + Math.floor(ms / cooldownMs)

  assert.equal(await beat(server.url, firstToken), 200)
  assert.equal(jwks.fetches(), 1)
  // within the cooldown of the first fetch: none (if this machine was quick enough to be within)
  const early = await burst(bursts[0]!)
  const earlyMs = Date.now() - firstAt
  assert.ok(early <= allowed(earlyMs) - 1, `fetched ${early} times ${earlyMs} ms after a fetch`)
  // past it: one fetch (checks whether the key was replaced), then none until the cooldown ends
  for (const tokens of bursts.slice(1)) {
    await sleep(cooldownMs + 200)
    const started = Date.now()
    const fetched = await burst(tokens)
    const tookMs = Date.now() - started
    assert.ok(
      fetched >= 1 && fetched <= allowed(tookMs),
      `fetched ${fetched} times in ${tookMs} ms`,
    )
  }
  for (const id of ['100', '200', '300']) assert.equal(await stateOf(server.url, id), 0)
  // a real replacement is still picked up past the cooldown the forgeries used
  jwks.publish([replaced])
  await sleep(cooldownMs + 200)
  assert.equal(await beat(server.url, await sign(replaced, { sub: '61' })), 200)
})

/**
 * Sends `tokens` one after another while the platform's JWKS endpoint fails; all must be
 * answered unavailable (503, Retry-After: the keys cannot tell), and the endpoint tried at least
 * once and at most once per `cooldownMs`, however many tokens name a key presenced lacks (or may
 * have: an expired set). `since`: the fetches and the time counted from (the
 * start, whose own fetch counts), else from now.
 */
async function refusedWhileDown(
  url: string,
  jwks: { fetches(): number },
  tokens: string[],
  cooldownMs: number,
  what: string,
  since?: { fetches: number; at: number },
) {
  const before = since?.fetches ?? jwks.fetches()
  const started = since?.at ?? Date.now()
  for (const [i, token] of tokens.entries()) {
    await beatUnavailable(url, token, cooldownMs, `${what}: token ${i}`)
  }
  const tookMs = Date.now() - started
  const fetched = jwks.fetches() - before
  const allowed = 1 + Math.floor(tookMs / cooldownMs)
  assert.ok(
    fetched >= 1 && fetched <= allowed,
    `${what}: ${tokens.length} tokens fetched the JWKS ${fetched} times in ${tookMs} ms`,
  )
}

test('a failing JWKS endpoint is tried once per cooldown, however many unknown kids arrive', async (t) => {
  const cooldownMs = JWKS_COOLDOWN_MIN_MS
  const [current, stranger] = await Promise.all([makeKey('ES256', 'k-1'), makeKey('ES256', 'k-1')])
  const jwks = await jwksServer(t)
  jwks.publish([current])
  const jwt = { ...jwtEnv({ PRESENCED_JWT_JWKS: jwks.url })!, jwksCooldownMs: cooldownMs }
  // three wrong credentials would lock this address out: tokens refused because the keys
  // cannot be fetched must not count as any
  const server = await startApp(t, { listen: true, config: { jwt, authFailureLimit: 3 } })
  assert.equal(await beat(server.url, await sign(current, { sub: '70' })), 200)
  assert.equal(jwks.fetches(), 1)

  let user = 71
  for (const failure of [500, 'hang-up', 'not-a-jwks'] as const) {
    jwks.fail(failure)
    // past the cooldown of the last fetch, when an unknown kid may fetch again
    await sleep(cooldownMs + 200)
    // random kids the set lacks
    const tokens = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        sign(stranger, { sub: String(1000 + i) }, { kid: randomUUID() }),
      ),
    )
    await refusedWhileDown(server.url, jwks, tokens, cooldownMs, String(failure))
    // a signature the key of a known kid refuses is a forgery, fetch or no fetch: refused as
    // such, and counted (once in all: a third would lock the address out)
    if (failure === 500) {
      const forged = await sign(stranger, { sub: '1100' }, { kid: 'k-1' })
      assert.equal(await beat(server.url, forged), 401, 'a forgery while the endpoint fails')
    }
    // a known key still verifies from the set fetched before; no refusal above was counted
    assert.equal(
      await beat(server.url, await sign(current, { sub: String(user) })),
      200,
      String(failure),
    )
    assert.equal(await stateOf(server.url, String(user++)), 2)

    // recovered, with a new key: used again once the cooldown of the failed fetch ends (the
    // set kept fresh is fetched behind then, before the token comes, or by the token)
    const next = await makeKey('ES256', `k-${user}`)
    jwks.publish([current, next])
    const before = jwks.fetches()
    jwks.fail(undefined)
    await sleep(cooldownMs + 200)
    assert.equal(
      await beat(server.url, await sign(next, { sub: String(user) })),
      200,
      String(failure),
    )
    assert.equal(jwks.fetches(), before + 1, `${failure}: one fetch on recovery`)
    assert.equal(await stateOf(server.url, String(user++)), 2)
  }
  for (let i = 0; i < 24; i++) assert.equal(await stateOf(server.url, String(1000 + i)), 0)
  assert.equal(await stateOf(server.url, '1100'), 0)
})

test('a JWKS endpoint down at the first token, or when the set expires unkept, is tried once per cooldown', async (t) => {
  const cooldownMs = JWKS_COOLDOWN_MIN_MS
  const maxAgeMs = 1500
  const key = await makeKey('RS256', 'k-1')
  const jwks = await jwksServer(t)
  jwks.publish([key])
  jwks.fail(500)
  const jwt = {
    ...jwtEnv({ PRESENCED_JWT_JWKS: jwks.url })!,
    jwksCooldownMs: cooldownMs,
    jwksMaxAgeMs: maxAgeMs,
    // the expired set is not used meanwhile (as once PRESENCED_JWT_JWKS_MAX_STALE has passed)
    jwksMaxStaleMs: 0,
  }
  const tokens = await Promise.all(
    Array.from({ length: 24 }, (_, i) => sign(key, { sub: String(2000 + i) })),
  )
  // the fetch at start fails; then each token would fetch the set
  const start = { fetches: jwks.fetches(), at: Date.now() }
  const server = await startApp(t, { listen: true, config: { jwt, authFailureLimit: 3 } })
  await refusedWhileDown(server.url, jwks, tokens, cooldownMs, 'first use', start)
  jwks.fail(undefined)
  await sleep(cooldownMs + 200)
  assert.equal(await beat(server.url, tokens[0]!), 200, 'recovered')
  const fetchedAt = Date.now()

  // the fetched set expires while the endpoint is down: each token would fetch it again (the
  // set kept fresh is tried behind before it expires too: those fetches count from here)
  const down = { fetches: jwks.fetches(), at: Date.now() }
  jwks.fail('hang-up')
  await sleep(Math.max(0, fetchedAt + maxAgeMs + 200 - Date.now()))
  await refusedWhileDown(server.url, jwks, tokens.slice(1), cooldownMs, 'expired', down)
  jwks.fail(undefined)
  await sleep(cooldownMs + 200)
  assert.equal(await beat(server.url, tokens[1]!), 200, 'recovered again, not locked out')
})

test('while the JWKS endpoint fails, its expired set verifies its keys for PRESENCED_JWT_JWKS_MAX_STALE more', async (t) => {
  const maxAgeMs = 300
  const maxStaleMs = 2000
  const [known, stranger] = await Promise.all([makeKey('ES256', 'k-1'), makeKey('ES256', 'k-2')])
  const jwks = await jwksServer(t)
  jwks.publish([known])
  const jwt = {
    ...jwtEnv({ PRESENCED_JWT_JWKS: jwks.url })!,
    jwksCooldownMs: COOLDOWN_MS,
    jwksMaxAgeMs: maxAgeMs,
    jwksMaxStaleMs: maxStaleMs,
  }
  // two wrong credentials would lock this address out: tokens refused for want of keys are none
  const server = await startApp(t, { listen: true, config: { jwt, authFailureLimit: 2 } })
  assert.equal(await beat(server.url, await sign(known, { sub: '90' })), 200)
  const fetchedAt = Date.now()
  const fetchedBefore = jwks.fetches()
  jwks.fail('hang-up')
  await sleep(maxAgeMs + 100)

  for (const sub of ['91', '92', '93']) {
    assert.equal(await beat(server.url, await sign(known, { sub })), 200, `stale set, user ${sub}`)
    // a kid the kept set lacks may be a key published since: it cannot tell
    await beatUnavailable(server.url, await sign(stranger, { sub: '99' }), COOLDOWN_MS, 'kid')
    await sleep(COOLDOWN_MS)
  }
  // from the failure on: the set kept fresh is tried behind before it expires and any token comes
  const fetched = jwks.fetches() - fetchedBefore
  const allowed = 1 + Math.floor((Date.now() - fetchedAt) / COOLDOWN_MS)
  assert.ok(fetched >= 1 && fetched <= allowed, `fetched ${fetched} times`)
  for (const sub of ['91', '92', '93']) assert.equal(await stateOf(server.url, sub), 2)

  // past the stale limit the set is not used: unavailable, still not counted
  await sleep(Math.max(0, fetchedAt + maxAgeMs + maxStaleMs + 100 - Date.now()))
  for (const sub of ['94', '95', '96']) {
    const token = await sign(known, { sub })
    await beatUnavailable(server.url, token, COOLDOWN_MS, `too stale, user ${sub}`)
  }
  jwks.fail(undefined)
  await sleep(COOLDOWN_MS * 2)
  assert.equal(await beat(server.url, await sign(known, { sub: '97' })), 200, 'fetched again')
  assert.equal(await stateOf(server.url, '99'), 0)
})

test('wrong issuer or audience, expired, no expiry, alg none and other secrets are refused', async (t) => {
  const key = await makeKey('ES256', 'es')
  const jwks = await jwksServer(t)
  jwks.publish([key])
  const jwt = jwtEnv({
    PRESENCED_JWT_JWKS: jwks.url,
    PRESENCED_JWT_ISSUER: ISSUER,
    PRESENCED_JWT_AUDIENCE: AUDIENCE,
  })
  const server = await startApp(t, { listen: true, config: { jwt } })
  const claims = { sub: '10' }
  const none = (payload: object) =>
    [{ alg: 'none', typ: 'JWT' }, payload].map((part) => b64(JSON.stringify(part))).join('.') + '.'
  const otherSecret = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode('not-the-server-secret-0123456789abcdef'))

  const refused: Record<string, string> = {
    'wrong issuer': await sign(key, claims, { iss: 'https://evil.test' }),
    'no issuer': await sign(key, claims, { iss: null }),
    'wrong audience': await sign(key, claims, { aud: 'someone-else' }),
    'no audience': await sign(key, claims, { aud: null }),
    expired: await sign(key, claims, { expiresIn: -5 }),
    'no expiry': await sign(key, claims, { expiresIn: null }),
    'exp beyond year 9999': await sign(key, { ...claims, exp: 1e306 }, { expiresIn: null }),
    'exp 1e400 (Infinity)': await signRaw(
      key,
      `{"sub":"10","iss":"${ISSUER}","aud":"${AUDIENCE}","exp":1e400}`,
    ),
    'iat in an hour': await signRaw(
      key,
      `{"sub":"10","iss":"${ISSUER}","aud":"${AUDIENCE}","iat":${Math.floor(Date.now() / 1000) + 3600},"exp":${Math.floor(Date.now() / 1000) + 7200}}`,
    ),
    'nbf before 1970': await sign(key, { ...claims, nbf: -1e306 }),
    'alg none': none({ ...claims, iss: ISSUER, aud: AUDIENCE, exp: 4102444800 }),
    'HS256 with another secret': otherSecret,
    'kid-less signature of garbage': 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA',
  }
  for (const [name, token] of Object.entries(refused)) {
    assert.equal(await beat(server.url, token), 401, name)
  }
  assert.equal(await stateOf(server.url, '10'), 0)
  assert.equal(await beat(server.url, await sign(key, claims)), 200, 'the same, well formed')
  assert.equal(await stateOf(server.url, '10'), 2)
})

test('the user id claim: configurable, exact as a string, a JSON number only while safe', async (t) => {
  const key = await makeKey('RS256', 'rs')
  const jwks = await jwksServer(t)
  jwks.publish([key])
  const jwt = jwtEnv({
    PRESENCED_JWT_JWKS: jwks.url,
    PRESENCED_JWT_USER_CLAIM: 'uid',
  })
  // the platform signed every token below: a wrong or missing user id is no guess, not counted
  const server = await startApp(t, { listen: true, config: { jwt, authFailureLimit: 3 } })
  const exp = Math.floor(Date.now() / 1000) + 600

  // the configured claim decides, not sub
  assert.equal(await beat(server.url, await sign(key, { uid: BIG, sub: '5' })), 200)
  assert.equal(await stateOf(server.url, BIG), 2)
  assert.equal(await stateOf(server.url, '5'), 0)
  // a JSON number is taken while a JS number holds it exactly
  assert.equal(
    await beat(server.url, await signRaw(key, `{"uid":9007199254740991,"exp":${exp}}`)),
    200,
  )
  assert.equal(await stateOf(server.url, '9007199254740991'), 2)
  // past 2^53 the number would be rounded to another user: refused, whatever its literal
  for (const literal of [PAST_2_53, '9223372036854775806', '1e3', '12.5', '0', '-4']) {
    const token = await signRaw(key, `{"uid":${literal},"exp":${exp}}`)
    assert.equal(await beat(server.url, token), literal === '1e3' ? 200 : 401, literal)
  }
  assert.equal(await stateOf(server.url, '9007199254740992'), 0, 'no rounded neighbour went online')
  assert.equal(await stateOf(server.url, PAST_2_53), 0)
  for (const uid of ['abc', '', '0', '9223372036854775808', ' 7', null, true]) {
    assert.equal(await beat(server.url, await sign(key, { uid })), 401, JSON.stringify(uid))
  }
  assert.equal(await beat(server.url, await sign(key, { sub: '8' })), 401, 'no uid claim')
  assert.equal(await beat(server.url, await sign(key, { uid: '9' })), 200, 'not locked out')
})

test('a PEM public key verifies its own algorithm only', async (t) => {
  const [es, rs] = await Promise.all([makeKey('ES256', 'any'), makeKey('RS256', 'any')])
  const dir = tempDir(t)
  const pemFile = join(dir, 'platform.pem')
  writeFileSync(pemFile, await exportSPKI(es.publicKey))
  const jwt = jwtEnv({ PRESENCED_JWT_PUBLIC_KEY: pemFile, PRESENCED_JWT_ISSUER: ISSUER })
  assert.deepEqual(jwt?.algorithms, ['ES256'])
  const server = await startApp(t, { listen: true, config: { jwt }, dataDir: dir })
  assert.equal(await beat(server.url, await sign(es, { sub: '20' })), 200)
  assert.equal(await beat(server.url, await sign(rs, { sub: '21' })), 401)

  // inline, as one line with \n escapes (an env file), the same key works too
  const inline = (await exportSPKI(es.publicKey)).replaceAll('\n', '\\n')
  const fromEnv = jwtEnv({ PRESENCED_JWT_PUBLIC_KEY: inline })
  const other = await startApp(t, { listen: true, config: { jwt: fromEnv } })
  assert.equal(await beat(other.url, await sign(es, { sub: '22' }, { iss: null })), 200)
})

test('a JWKS file is read at start and again when a token names a key it lacks', async (t) => {
  const [first, second] = await Promise.all([makeKey('EdDSA', 'f-1'), makeKey('RS256', 'f-2')])
  const dir = tempDir(t)
  const file = join(dir, 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [first.jwk] }))
  const jwt = fastCooldown({
    PRESENCED_JWT_JWKS: file,
  })
  const server = await startApp(t, { listen: true, config: { jwt }, dataDir: dir })
  assert.equal(await beat(server.url, await sign(first, { sub: '30' })), 200)
  const rotated = await sign(second, { sub: '31' })
  assert.equal(await beat(server.url, rotated), 401)
  writeFileSync(file, JSON.stringify({ keys: [first.jwk, second.jwk] }))
  await sleep(COOLDOWN_MS * 3)
  assert.equal(await beat(server.url, rotated), 200)
  assert.equal(await stateOf(server.url, '31'), 2)
})

test('a key replaced under the same kid in a JWKS file is re-read, once per cooldown', async (t) => {
  const [old, replaced, forged] = await Promise.all([
    makeKey('EdDSA', 'f-1'),
    makeKey('EdDSA', 'f-1'),
    makeKey('EdDSA', 'f-1'),
  ])
  const dir = tempDir(t)
  const file = join(dir, 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [old.jwk] }))
  const jwt = fastCooldown({ PRESENCED_JWT_JWKS: file })
  const server = await startApp(t, { listen: true, config: { jwt }, dataDir: dir })
  assert.equal(await beat(server.url, await sign(old, { sub: '70' })), 200)

  writeFileSync(file, JSON.stringify({ keys: [replaced.jwk] }))
  await sleep(COOLDOWN_MS * 3)
  assert.equal(await beat(server.url, await sign(replaced, { sub: '71' })), 200, 're-read')
  assert.equal(await stateOf(server.url, '71'), 2)

  // a forged signature re-reads the file too; a key written right after waits for the cooldown
  const next = await makeKey('EdDSA', 'f-1')
  const early = await sign(next, { sub: '73' })
  const rotation = JSON.stringify({ keys: [next.jwk] })
  await sleep(COOLDOWN_MS * 3)
  const started = Date.now()
  assert.equal(await beat(server.url, await sign(forged, { sub: '72' })), 401)
  writeFileSync(file, rotation)
  const status = await beat(server.url, early)
  // a machine slower than the cooldown between the two re-reads the file; else it is not read
  if (Date.now() - started < COOLDOWN_MS) assert.equal(status, 401, 'within the cooldown')
  await sleep(COOLDOWN_MS * 3)
  assert.equal(await beat(server.url, await sign(next, { sub: '74' })), 200, 'past it')
  assert.equal(await stateOf(server.url, '72'), 0)
})

test('a JWKS file that turns broken keeps its keys; tokens it cannot tell are no wrong credentials, forgeries are', async (t) => {
  const [known, forged] = await Promise.all([makeKey('EdDSA', 'f-1'), makeKey('EdDSA', 'f-1')])
  const dir = tempDir(t)
  const file = join(dir, 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [known.jwk] }))
  const jwt = fastCooldown({ PRESENCED_JWT_JWKS: file })
  // two wrong credentials would lock this address out
  const config = { jwt, authFailureLimit: 2 }
  const server = await startApp(t, { listen: true, config, dataDir: dir })
  assert.equal(await beat(server.url, await sign(known, { sub: '80' })), 200)

  let user = 81
  // an operator's rewrite caught half-written, a file that is no JWKS, one removed
  for (const broken of ['{"keys":[{"kty":"OKP"', '{"keys":"none"}', undefined]) {
    if (broken === undefined) unlinkSync(file)
    else writeFileSync(file, broken)
    const rotated = await makeKey('EdDSA', `f-${user}`)
    for (let i = 0; i < 3; i++) {
      await sleep(COOLDOWN_MS * 2)
      const what = `${broken}, read ${i}`
      // a kid the file's kept set lacks: it cannot tell (503)
      await beatUnavailable(server.url, await sign(rotated, { sub: '89' }), COOLDOWN_MS, what)
    }
    // a signature its key refuses is a forgery, file or no file (401, counted: once in all)
    if (user === 81) assert.equal(await beat(server.url, await sign(forged, { sub: '89' })), 401)
    const sub = String(user++)
    assert.equal(await beat(server.url, await sign(known, { sub })), 200, 'the keys read before')
    assert.equal(await stateOf(server.url, sub), 2)

    writeFileSync(file, JSON.stringify({ keys: [known.jwk, rotated.jwk] }))
    await sleep(COOLDOWN_MS * 2)
    assert.equal(await beat(server.url, await sign(rotated, { sub: String(user++) })), 200)
  }
  assert.equal(await stateOf(server.url, '89'), 0)
})

test('PRESENCED_JWT_* mistakes stop the start with a message naming the variable', async (t) => {
  const dir = tempDir(t)
  const rs = await makeKey('RS256', 'x')
  const publicPem = join(dir, 'public.pem')
  const privatePem = join(dir, 'private.pem')
  const badJwks = join(dir, 'bad.json')
  writeFileSync(publicPem, await exportSPKI(rs.publicKey))
  writeFileSync(privatePem, await exportPKCS8(rs.privateKey))
  writeFileSync(badJwks, '{"nokeys":[]}')
  const numbersJwks = join(dir, 'numbers.json')
  writeFileSync(numbersJwks, '{"keys":[1,2]}')
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PRESENCED_JWT_ISSUER: ISSUER }, /^PRESENCED_JWT_ISSUER is set but no keys are/],
    [
      { PRESENCED_JWT_PUBLIC_KEY: publicPem, PRESENCED_JWT_JWKS: 'https://a.test/jwks' },
      /not both/,
    ],
    [
      { PRESENCED_JWT_PUBLIC_KEY: join(dir, 'missing.pem') },
      /PRESENCED_JWT_PUBLIC_KEY: cannot read/,
    ],
    [{ PRESENCED_JWT_PUBLIC_KEY: privatePem }, /must be a public key, not a private one/],
    [
      { PRESENCED_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' },
      /is not a PEM public key/,
    ],
    [
      { PRESENCED_JWT_PUBLIC_KEY: publicPem, PRESENCED_JWT_ALGORITHMS: 'ES256' },
      /is a rsa key, which verifies RS256.*names none of them/,
    ],
    [{ PRESENCED_JWT_JWKS: badJwks }, /PRESENCED_JWT_JWKS: .*is not a JWKS/],
    [{ PRESENCED_JWT_JWKS: numbersJwks }, /PRESENCED_JWT_JWKS: .*is not a JWKS: a member/],
    [{ PRESENCED_JWT_JWKS: join(dir, 'missing.json') }, /PRESENCED_JWT_JWKS: .*ENOENT/],
    [{ PRESENCED_JWT_JWKS: 'https://exa mple.test/' }, /PRESENCED_JWT_JWKS is not a valid URL/],
    [
      { PRESENCED_JWT_JWKS: 'https://a.test/jwks', PRESENCED_JWT_ALGORITHMS: 'RS256,HS256' },
      /PRESENCED_JWT_ALGORITHMS must name some of RS256/,
    ],
    [
      { PRESENCED_JWT_JWKS: 'https://a.test/jwks', PRESENCED_JWT_JWKS_COOLDOWN: 'soon' },
      /PRESENCED_JWT_JWKS_COOLDOWN must be an integer/,
    ],
    [
      // no cooldown: each token naming an unknown kid would fetch the JWKS again
      { PRESENCED_JWT_JWKS: 'https://a.test/jwks', PRESENCED_JWT_JWKS_COOLDOWN: '0' },
      /^PRESENCED_JWT_JWKS_COOLDOWN must be an integer >= 1000, got "0"$/,
    ],
    [
      { PRESENCED_JWT_JWKS: 'https://a.test/jwks', PRESENCED_JWT_JWKS_COOLDOWN: '999' },
      /^PRESENCED_JWT_JWKS_COOLDOWN must be an integer >= 1000, got "999"$/,
    ],
    [{ PRESENCED_JWT_JWKS_MAX_STALE: '0' }, /^PRESENCED_JWT_JWKS_MAX_STALE is set but no keys are/],
    [
      { PRESENCED_JWT_JWKS: 'https://a.test/jwks', PRESENCED_JWT_JWKS_MAX_STALE: '-1' },
      /^PRESENCED_JWT_JWKS_MAX_STALE must be an integer >= 0, got "-1"$/,
    ],
    [{ PRESENCED_JWT_JWKS_MAX_BYTES: '4096' }, /^PRESENCED_JWT_JWKS_MAX_BYTES is set but no keys/],
    [
      { PRESENCED_JWT_JWKS: 'https://a.test/jwks', PRESENCED_JWT_JWKS_MAX_BYTES: '1023' },
      /^PRESENCED_JWT_JWKS_MAX_BYTES must be an integer >= 1024, got "1023"$/,
    ],
    [{ PRESENCED_JWT_JWKS_TIMEOUT: '1000' }, /^PRESENCED_JWT_JWKS_TIMEOUT is set but no keys/],
    [
      { PRESENCED_JWT_JWKS: 'https://a.test/jwks', PRESENCED_JWT_JWKS_TIMEOUT: '99' },
      /^PRESENCED_JWT_JWKS_TIMEOUT must be an integer >= 100, got "99"$/,
    ],
    [
      // past a timer's longest delay: AbortSignal.timeout fired after 1 ms (or threw past
      // 2^32 - 1), and every platform token was refused as unavailable
      { PRESENCED_JWT_JWKS: 'https://a.test/jwks', PRESENCED_JWT_JWKS_TIMEOUT: '3000000000' },
      /^PRESENCED_JWT_JWKS_TIMEOUT must be an integer <= 2147483647, got "3000000000"$/,
    ],
  ]
  for (const [env, message] of cases) {
    assert.throws(
      () => loadConfig({ LOG_LEVEL: 'silent', ...env }),
      (error: unknown) => error instanceof ConfigError && message.test(error.message),
      JSON.stringify(env),
    )
  }
  assert.equal(loadConfig({}).jwt, undefined, 'off by default')
  const jwks = { PRESENCED_JWT_JWKS: 'https://a.test/jwks' }
  assert.equal(jwtEnv(jwks)?.jwksMaxStaleMs, 86_400_000, 'a day by default')
  assert.equal(jwtEnv({ ...jwks, PRESENCED_JWT_JWKS_MAX_STALE: '0' })?.jwksMaxStaleMs, 0)
  assert.equal(jwtEnv(jwks)?.jwksMaxBytes, 1024 * 1024, '1 MiB by default')
  assert.equal(jwtEnv({ ...jwks, PRESENCED_JWT_JWKS_MAX_BYTES: '4096' })?.jwksMaxBytes, 4096)
  assert.equal(jwtEnv(jwks)?.jwksTimeoutMs, 5000, "jose's 5 s by default")
  assert.equal(jwtEnv({ ...jwks, PRESENCED_JWT_JWKS_TIMEOUT: '1500' })?.jwksTimeoutMs, 1500)
})

test('unchecked iss or aud: such tokens work, and the start says so once, naming the variables', async (t) => {
  const es = await makeKey('ES256', 'es')
  const dir = tempDir(t)
  const pem = join(dir, 'platform.pem')
  writeFileSync(pem, await exportSPKI(es.publicKey))
  const warnings = async (env: Record<string, string>) => {
    const server = await spawnServer(t, {
      PRESENCED_DATA_DIR: join(dir, 'data'),
      PRESENCED_JWT_PUBLIC_KEY: pem,
      LOG_LEVEL: 'info',
      ...env,
    })
    // a token the platform issued for its store, with no issuer: accepted when unchecked
    const forStore = await sign(es, { sub: '40' }, { aud: 'store', iss: null })
    const status = await beat(server.url, forStore)
    assert.equal(await server.stop(), 0)
    const warned = server.logs.filter((line) =>
      /^platform tokens are accepted/.test(line.msg ?? ''),
    )
    return { status, warned }
  }
  const unchecked = await warnings({})
  assert.equal(unchecked.status, 200)
  assert.equal(unchecked.warned.length, 1)
  assert.deepEqual(unchecked.warned[0]!.unset, ['PRESENCED_JWT_ISSUER', 'PRESENCED_JWT_AUDIENCE'])
  assert.match(unchecked.warned[0]!.msg!, /whatever their iss and aud/)
  const checked = await warnings({
    PRESENCED_JWT_ISSUER: ISSUER,
    PRESENCED_JWT_AUDIENCE: AUDIENCE,
  })
  assert.equal(checked.status, 401)
  assert.deepEqual(checked.warned, [])
})

function b64(text: string): string {
  return Buffer.from(text).toString('base64url')
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-jwt-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
