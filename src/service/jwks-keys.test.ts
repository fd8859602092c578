/**
 * A platform's JWKS that cannot be loaded again (a file rewritten or removed, an endpoint down):
 * what Tokens.check answers meanwhile, and what the log says. A real file and a real local HTTP
 * server; the cooldowns are shorter than PRESENCED_JWT_JWKS_COOLDOWN accepts, to keep it quick.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { test, type TestContext } from 'node:test'
import { SignJWT, type JWK } from 'jose'
import { makeKey, type SigningKey as Key } from '../../test/helpers/signing-keys.js'
import { until } from '../../test/helpers/until.js'
import type { ExternalKeySource, ExternalTokenOptions } from './external-tokens.js'
import { Tokens } from './tokens.js'

const SECRET = 'unit-test-secret-of-enough-length-0123456789'
const COOLDOWN_MS = 100
/** Written into broken files and replies: the log must never quote them. */
const MARKER = 'do-not-log-me'

let users = 0
/** A fresh token (a new user each time: Tokens remembers a token it verified). */
function sign(key: Key, claims: Record<string, unknown> = { sub: String(++users) }) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .setExpirationTime('10m')
    .sign(key.privateKey)
}

/** What the log was told, one line per call. */
function recordingLog() {
  const lines: Array<{ level: 'warn' | 'info'; msg: string; details: object }> = []
  return {
    lines,
    warn: (details: object, msg: string) => void lines.push({ level: 'warn', msg, details }),
    info: (details: object, msg: string) => void lines.push({ level: 'info', msg, details }),
  }
}

function tokensFor(keys: ExternalKeySource, log: ReturnType<typeof recordingLog>, times = {}) {
  const external: ExternalTokenOptions = {
    keys,
    issuer: undefined,
    audience: undefined,
    userClaim: 'sub',
    algorithms: ['ES256'],
    jwksCooldownMs: COOLDOWN_MS,
    jwksMaxAgeMs: 600_000,
    jwksMaxStaleMs: 86_400_000,
    jwksMaxBytes: 1024 * 1024,
    jwksTimeoutMs: 5000,
    ...times,
  }
  return new Tokens(SECRET, { external, log })
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-jwks-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The kind of each answer: the refusal, or 'ok' for claims. */
async function kinds(tokens: Tokens, signed: Array<Promise<string>>): Promise<string[]> {
  const answers = await Promise.all(signed.map(async (token) => tokens.check(await token)))
  return answers.map((answer) => (typeof answer === 'string' ? answer : 'ok'))
}

test('a JWKS file that turns broken keeps its keys; a kid they lack is unavailable, a signature they refuse forged, said once', async (t) => {
  const [known, forged] = await Promise.all([makeKey('k-1'), makeKey('k-1')])
  const file = join(tempDir(t), 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [known.jwk] }))
  const log = recordingLog()
  const tokens = tokensFor({ kind: 'jwks-file', path: file }, log)
  assert.deepEqual(await kinds(tokens, [sign(known), sign(forged)]), ['ok', 'forged'])

  const broken = {
    'half written': `{"keys":[{"kty":"EC","x":"${MARKER}`,
    'no keys array': `{"keys":"${MARKER}"}`,
    removed: undefined,
  }
  for (const [how, text] of Object.entries(broken)) {
    // a key the platform rotates in while its file is broken
    const rotated = await makeKey(`k-${how}`)
    if (text === undefined) unlinkSync(file)
    else writeFileSync(file, text)
    log.lines.length = 0
    // past the cooldown, each tries to read the file again; within it, none does
    for (let i = 0; i < 3; i++) {
      await sleep(COOLDOWN_MS * 2)
      assert.deepEqual(
        await kinds(tokens, [sign(known), sign(rotated), sign(forged, { sub: '7' })]),
        ['ok', 'unavailable', 'forged'],
        `${how}: the key read before verifies; an unknown kid cannot be told; a signature a kept key refuses is a forgery`,
      )
    }
    assert.equal(
      log.lines.length,
      1,
      `${how}: said once, not per read: ${JSON.stringify(log.lines)}`,
    )
    const [warning] = log.lines
    assert.equal(warning!.level, 'warn')
    assert.match(
      warning!.msg,
      /^the platform's JWKS file cannot be loaded \((not JSON|not a JWKS: no "keys" array|ENOENT)\): tokens are verified against the keys loaded \d+ s ago; tokens whose key they lack are refused as unavailable/,
    )
    assert.doesNotMatch(JSON.stringify(log.lines), new RegExp(`${MARKER}|${file}`))

    writeFileSync(file, JSON.stringify({ keys: [known.jwk, rotated.jwk] }))
    await sleep(COOLDOWN_MS * 2)
    assert.deepEqual(await kinds(tokens, [sign(rotated), sign(forged)]), ['ok', 'forged'])
    assert.equal(log.lines.length, 2)
    assert.equal(log.lines[1]!.level, 'info')
    assert.match(log.lines[1]!.msg, /^the platform's JWKS file loaded again after \d+ s$/)
  }
})

/** A JWKS endpoint serving `keys` until `failing`; counts its requests. */
async function jwksServer(t: TestContext, keys: JWK[]) {
  let fetches = 0
  let failing = false
  const server = createServer((_request, response) => {
    fetches++
    if (failing) return void response.writeHead(503).end(MARKER)
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }))
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  t.after(() => new Promise((done) => server.close(done)))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/jwks.json?token=${MARKER}`,
    fail: (down: boolean) => (failing = down),
    fetches: () => fetches,
  }
}

test('a JWKS URL down past the max age: its last set verifies for PRESENCED_JWT_JWKS_MAX_STALE more', async (t) => {
  const maxAgeMs = 300
  const maxStaleMs = 1500
  const [known, stranger] = await Promise.all([makeKey('k-1'), makeKey('k-2')])
  const jwks = await jwksServer(t, [known.jwk])
  const log = recordingLog()
  const tokens = tokensFor({ kind: 'jwks-url', url: jwks.url }, log, {
    jwksMaxAgeMs: maxAgeMs,
    jwksMaxStaleMs: maxStaleMs,
  })
  assert.deepEqual(await kinds(tokens, [sign(known)]), ['ok'])
  const fetchedAt = Date.now()
  jwks.fail(true)
  await sleep(maxAgeMs + 50)

  // expired and unfetchable: the set fetched before still verifies its own keys
  let rounds = 0
  const started = Date.now()
  while (Date.now() - fetchedAt < maxAgeMs + maxStaleMs - 400) {
    assert.deepEqual(
      await kinds(tokens, [sign(known), sign(known), sign(stranger)]),
      ['ok', 'ok', 'unavailable'],
      `${Date.now() - fetchedAt} ms after the fetch`,
    )
    rounds++
    await sleep(30)
  }
  const tried = jwks.fetches() - 1
  const allowed = 1 + Math.floor((Date.now() - started) / COOLDOWN_MS)
  assert.ok(tried >= 1 && tried <= allowed, `${rounds} rounds fetched ${tried} times`)
  assert.equal(log.lines.length, 1, JSON.stringify(log.lines))
  assert.match(
    log.lines[0]!.msg,
    /^the platform's JWKS URL cannot be loaded \(HTTP 503\): tokens are verified against the keys loaded \d+ s ago \(at most PRESENCED_JWT_JWKS_MAX_STALE past their max age\)/,
  )
  const keptUntil = Date.parse((log.lines[0]!.details as { keptUntil: string }).keptUntil)
  assert.ok(Math.abs(keptUntil - (fetchedAt + maxAgeMs + maxStaleMs)) < 1000, 'keptUntil')

  // past the stale limit: refused as unavailable, said once more
  await sleep(Math.max(0, fetchedAt + maxAgeMs + maxStaleMs + 50 - Date.now()))
  await sleep(COOLDOWN_MS)
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await kinds(tokens, [sign(known)]), ['unavailable'], 'too stale')
    await sleep(COOLDOWN_MS)
  }
  assert.equal(log.lines.length, 2, JSON.stringify(log.lines))
  assert.match(
    log.lines[1]!.msg,
    /^the platform's JWKS URL cannot be loaded \(HTTP 503\): platform tokens are refused as unavailable/,
  )
  assert.doesNotMatch(JSON.stringify(log.lines), new RegExp(MARKER))

  jwks.fail(false)
  await sleep(COOLDOWN_MS * 2)
  assert.deepEqual(await kinds(tokens, [sign(known)]), ['ok'], 'fetched again')
  assert.match(log.lines[2]!.msg, /^the platform's JWKS URL loaded again after \d+ s$/)
})

test('a JWKS URL with no stale allowance refuses as soon as its set expires', async (t) => {
  const known = await makeKey('k-1')
  const jwks = await jwksServer(t, [known.jwk])
  const log = recordingLog()
  const tokens = tokensFor({ kind: 'jwks-url', url: jwks.url }, log, {
    jwksMaxAgeMs: 200,
    jwksMaxStaleMs: 0,
  })
  assert.deepEqual(await kinds(tokens, [sign(known)]), ['ok'])
  jwks.fail(true)
  await sleep(250)
  assert.deepEqual(await kinds(tokens, [sign(known)]), ['unavailable'])
  assert.match(log.lines[0]!.msg, /platform tokens are refused as unavailable/)
})

test("a platform's token with no user in its claim is no guess: stale, not forged", async (t) => {
  const key = await makeKey('k-1')
  const file = join(tempDir(t), 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [key.jwk] }))
  const tokens = tokensFor({ kind: 'jwks-file', path: file }, recordingLog())
  for (const sub of ['abc', '0', '9223372036854775808', undefined]) {
    assert.equal(await tokens.check(await sign(key, { sub })), 'stale', String(sub))
  }
})

/**
 * A JWKS endpoint whose reply is, by `mode`: the keys; those keys padded past `padBytes` with a
 * content-length saying so; or a body with no length that goes on (up to `endlessCap`, so that
 * a client reading it all ends too), written as fast as the client reads it. Counts the bytes
 * it got to write.
 */
async function oversizedJwksServer(t: TestContext, keys: () => JWK[], endlessCap: number) {
  let mode: 'keys' | 'padded' | 'endless' = 'keys'
  let written = 0
  const server = createServer((_request, response) => {
    const body = JSON.stringify({ keys: keys() })
    if (mode === 'keys') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(body)
      return
    }
    if (mode === 'padded') {
      // a JWKS every parser takes: only its size is wrong
      const padded = `${body.slice(0, -1)},"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`
      response.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(padded),
      })
      written += Buffer.byteLength(padded)
      response.end(padded)
      return
    }
    response.writeHead(200, { 'content-type': 'application/json' })
    const chunk = Buffer.alloc(64 * 1024, 'x')
    let sent = 0
    const pump = () => {
      while (!response.destroyed && sent < endlessCap) {
        sent += chunk.length
        written += chunk.length
        if (!response.write(sent === chunk.length ? `${body.slice(0, -1)},"pad":"` : chunk)) {
          return void response.once('drain', pump)
        }
      }
      if (!response.destroyed) response.end('"}')
    }
    pump()
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  t.after(() => new Promise((done) => server.close(done)))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    serve: (how: typeof mode) => {
      mode = how
      written = 0
    },
    written: () => written,
  }
}

test('a JWKS reply past PRESENCED_JWT_JWKS_MAX_BYTES is a failed fetch: cut off, the last keys kept', async (t) => {
  const maxBytes = 64 * 1024
  const endlessCap = 256 * 1024 * 1024
  const known = await makeKey('k-1')
  const rotated: Key[] = []
  const jwks = await oversizedJwksServer(
    t,
    () => [known.jwk, ...rotated.map((key) => key.jwk)],
    endlessCap,
  )
  const log = recordingLog()
  const tokens = tokensFor({ kind: 'jwks-url', url: jwks.url }, log, { jwksMaxBytes: maxBytes })
  assert.deepEqual(await kinds(tokens, [sign(known)]), ['ok'])

  for (const mode of ['padded', 'endless'] as const) {
    // a key rotated in: its first token fetches the set, which comes too large
    const key = await makeKey(`k-${mode}`)
    rotated.push(key)
    jwks.serve(mode)
    log.lines.length = 0
    await sleep(COOLDOWN_MS * 2)
    const started = Date.now()
    assert.deepEqual(
      await kinds(tokens, [sign(key), sign(known)]),
      ['unavailable', 'ok'],
      `${mode}: the set is not taken; the keys fetched before still verify`,
    )
    const tookMs = Date.now() - started
    assert.equal(log.lines.length, 1, JSON.stringify(log.lines))
    assert.match(
      log.lines[0]!.msg,
      new RegExp(`^the platform's JWKS URL cannot be loaded \\(a reply over ${maxBytes} bytes\\)`),
      mode,
    )
    if (mode === 'endless') {
      // what the sockets between hold, at most, not what the endpoint would send
      assert.ok(
        jwks.written() < 32 * 1024 * 1024,
        `the endless reply was cut off: ${jwks.written()} bytes written`,
      )
      assert.ok(tookMs < 2000, `cut off at once, not at the fetch's timeout: ${tookMs} ms`)
    }

    jwks.serve('keys')
    await sleep(COOLDOWN_MS * 2)
    assert.deepEqual(await kinds(tokens, [sign(key)]), ['ok'], `${mode}: fetched again`)
  }
})

/**
 * A JWKS endpoint that counts its requests and answers each, by `mode`: the keys after
 * `delayMs`; never (the request is held open); or its headers at once and then its body a byte
 * at a time, every 50 ms, for ever.
 */
async function slowJwksServer(t: TestContext, keys: JWK[]) {
  let mode: 'late' | 'hang' | 'drip' = 'late'
  let delayMs = 0
  let requests = 0
  const timers = new Set<NodeJS.Timeout>()
  const server = createServer((_request, response) => {
    requests++
    const body = JSON.stringify({ keys })
    if (mode === 'hang') return
    if (mode === 'late') {
      const timer = setTimeout(() => {
        timers.delete(timer)
        response.writeHead(200, { 'content-type': 'application/json' }).end(body)
      }, delayMs)
      return void timers.add(timer)
    }
    response.writeHead(200, { 'content-type': 'application/json' })
    let at = 0
    const timer = setInterval(() => response.write(body[at++ % body.length]!), 50)
    timers.add(timer)
    response.on('close', () => clearInterval(timer))
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  t.after(() => {
    for (const timer of timers) clearTimeout(timer)
    server.closeAllConnections()
    return new Promise((done) => server.close(done))
  })
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    serve: (how: typeof mode, delay = 0) => {
      mode = how
      delayMs = delay
    },
    requests: () => requests,
  }
}

test('concurrent first tokens share one JWKS fetch, which lasts PRESENCED_JWT_JWKS_TIMEOUT at most', async (t) => {
  const timeoutMs = 300
  const known = await makeKey('k-1')
  const jwks = await slowJwksServer(t, [known.jwk])
  const first = async (mode: 'late' | 'hang' | 'drip', delayMs = 0) => {
    jwks.serve(mode, delayMs)
    const log = recordingLog()
    const tokens = tokensFor({ kind: 'jwks-url', url: jwks.url }, log, {
      jwksTimeoutMs: timeoutMs,
    })
    const before = jwks.requests()
    const started = Date.now()
    // 50 users signing in at once, to a node that has no set yet
    const answers = await kinds(
      tokens,
      Array.from({ length: 50 }, () => sign(known)),
    )
    const fetches = jwks.requests() - before
    return { answers, tookMs: Date.now() - started, fetches, log, tokens, before }
  }

  const late = await first('late', 150)
  assert.deepEqual(new Set(late.answers), new Set(['ok']), 'a slow endpoint, within the timeout')
  assert.equal(late.fetches, 1, 'one fetch for all of them, not one each')

  for (const mode of ['hang', 'drip'] as const) {
    const { answers, tookMs, fetches, log, tokens, before } = await first(mode)
    assert.deepEqual(new Set(answers), new Set(['unavailable']), mode)
    assert.equal(fetches, 1, `${mode}: one fetch for all of them`)
    assert.ok(
      tookMs >= timeoutMs - 20 && tookMs < timeoutMs + 1000,
      `${mode}: refused after PRESENCED_JWT_JWKS_TIMEOUT, not jose's 5 s: ${tookMs} ms`,
    )
    assert.equal(log.lines.length, 1, JSON.stringify(log.lines))
    assert.match(
      log.lines[0]!.msg,
      new RegExp(`^the platform's JWKS URL cannot be loaded \\(no reply within ${timeoutMs} ms\\)`),
    )
    // the cooldown (100 ms, shorter than the timeout) runs from the failure, not from the start
    assert.deepEqual(await kinds(tokens, [sign(known)]), ['unavailable'], `${mode}: just after`)
    assert.equal(jwks.requests() - before, 1, `${mode}: not fetched again at once`)
  }
})

test('a token refused as unavailable waits until the next load may be tried: the rest of the cooldown, at least 1 s', async (t) => {
  const cooldownMs = 3000
  const known = await makeKey('k-1')
  const jwks = await jwksServer(t, [known.jwk])
  const tokens = tokensFor({ kind: 'jwks-url', url: jwks.url }, recordingLog(), {
    jwksCooldownMs: cooldownMs,
  })
  assert.equal(tokens.unavailableRetryAfter(), 1, 'nothing failed: 1 s')
  jwks.fail(true)
  assert.deepEqual(await kinds(tokens, [sign(known)]), ['unavailable'])
  assert.equal(tokens.unavailableRetryAfter(), 3, 'just after the failed fetch: the cooldown')
  await sleep(1200)
  assert.equal(tokens.unavailableRetryAfter(), 2, 'its rest, rounded up')
  assert.deepEqual(await kinds(tokens, [sign(known)]), ['unavailable'])
  assert.equal(jwks.fetches(), 1, 'within the cooldown: not fetched again')
  await sleep(cooldownMs - 1200 + 50)
  assert.equal(tokens.unavailableRetryAfter(), 1, 'past it: a load may be tried now')
  jwks.fail(false)
  assert.deepEqual(await kinds(tokens, [sign(known)]), ['ok'])
  assert.equal(tokens.unavailableRetryAfter(), 1)
})

test('prefetchKeys loads a JWKS URL before any token; a failed one is said, never thrown', async (t) => {
  const known = await makeKey('k-1')
  const jwks = await jwksServer(t, [known.jwk])
  const log = recordingLog()
  const tokens = tokensFor({ kind: 'jwks-url', url: jwks.url }, log)
  await tokens.prefetchKeys()
  assert.equal(jwks.fetches(), 1)
  assert.deepEqual(await kinds(tokens, [sign(known), sign(known)]), ['ok', 'ok'])
  assert.equal(jwks.fetches(), 1, 'the tokens used the set fetched before them')

  jwks.fail(true)
  const failing = tokensFor({ kind: 'jwks-url', url: jwks.url }, log)
  await failing.prefetchKeys()
  assert.equal(jwks.fetches(), 2)
  assert.match(log.lines[0]!.msg, /cannot be loaded \(HTTP 503\): platform tokens are refused/)
  // within the cooldown of the failed fetch: refused at once, not fetched again
  assert.deepEqual(await kinds(failing, [sign(known)]), ['unavailable'])
  assert.equal(jwks.fetches(), 2)

  // a file is read at start already, and a PEM key or no platform at all has nothing to load
  const file = join(tempDir(t), 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [known.jwk] }))
  await tokensFor({ kind: 'jwks-file', path: file }, log).prefetchKeys()
  await new Tokens(SECRET).prefetchKeys()
})

/** A JWKS endpoint serving `keys`, and Tokens keeping its set fresh (prefetchKeys) until the end. */
async function keptFresh(t: TestContext, keys: JWK[], times: Partial<ExternalTokenOptions>) {
  const jwks = await jwksServer(t, keys)
  const log = recordingLog()
  const tokens = tokensFor({ kind: 'jwks-url', url: jwks.url }, log, times)
  t.after(() => tokens.stopKeyRefresh())
  await tokens.prefetchKeys()
  return { jwks, log, tokens, fetchedAt: Date.now() }
}

test('prefetchKeys keeps a JWKS URL fresh: fetched again behind before it expires, a key published meanwhile verifies with no fetch of its own', async (t) => {
  const maxAgeMs = 2000
  const [known, rotated] = await Promise.all([makeKey('k-1'), makeKey('k-2')])
  const published = [known.jwk]
  // a cooldown as long as the default: the new kid's first token could not fetch the set itself
  const { jwks, log, tokens, ...first } = await keptFresh(t, published, {
    jwksMaxAgeMs: maxAgeMs,
    jwksCooldownMs: 30_000,
  })
  let { fetchedAt } = first
  assert.equal(jwks.fetches(), 1)
  // the platform publishes its next key before it signs with it
  published.push(rotated.jwk)

  for (const fetches of [2, 3]) {
    await until(() => jwks.fetches() === fetches, maxAgeMs, `fetch ${fetches}, behind`)
    const afterMs = Date.now() - fetchedAt
    fetchedAt = Date.now()
    assert.ok(afterMs >= maxAgeMs * 0.6, `at 65-85 % of the max age, not sooner: ${afterMs} ms`)
    const started = Date.now()
    assert.deepEqual(await kinds(tokens, [sign(rotated), sign(known)]), ['ok', 'ok'])
    assert.equal(jwks.fetches(), fetches, 'the new kid verified with the set fetched behind')
    const tookMs = Date.now() - started
    assert.ok(tookMs < 500, `no token waited: ${tookMs} ms`)
  }
  assert.deepEqual(log.lines, [])
})

test('a JWKS URL down when its fetch behind comes: the set kept verifies until PRESENCED_JWT_JWKS_MAX_STALE, tried again behind once per cooldown, loaded again behind', async (t) => {
  // the fetch behind comes 300-700 ms before the set expires, time for a late timer
  const maxAgeMs = 2000
  const maxStaleMs = 1500
  const [known, stranger] = await Promise.all([makeKey('k-1'), makeKey('k-2')])
  const { jwks, log, tokens, fetchedAt } = await keptFresh(t, [known.jwk], {
    jwksMaxAgeMs: maxAgeMs,
    jwksMaxStaleMs: maxStaleMs,
  })
  jwks.fail(true)

  // the fetch behind fails before the set expires, with no token asking for it: said once
  await until(() => log.lines.length === 1, maxAgeMs, 'the failed fetch behind')
  const failedAt = Date.now()
  assert.ok(failedAt - fetchedAt < maxAgeMs, `before the set expired: ${failedAt - fetchedAt} ms`)
  assert.match(
    log.lines[0]!.msg,
    /^the platform's JWKS URL cannot be loaded \(HTTP 503\): tokens are verified against the keys loaded \d+ s ago \(at most PRESENCED_JWT_JWKS_MAX_STALE past their max age\)/,
  )
  const triedBefore = jwks.fetches()

  // fresh, then past its max age: the set kept verifies its own keys; what it lacks it cannot tell
  while (Date.now() - fetchedAt < maxAgeMs + maxStaleMs - 300) {
    assert.deepEqual(
      await kinds(tokens, [sign(known), sign(stranger)]),
      ['ok', 'unavailable'],
      `${Date.now() - fetchedAt} ms after the fetch`,
    )
    await sleep(50)
  }
  const tried = jwks.fetches() - triedBefore
  const cooldowns = (Date.now() - failedAt) / COOLDOWN_MS
  assert.ok(
    tried >= cooldowns / 3 && tried <= cooldowns + 1,
    `${tried} tries in ${cooldowns} cooldowns`,
  )
  assert.equal(log.lines.length, 1, JSON.stringify(log.lines))

  // past the stale limit: a try behind says so, no token needed; tokens are refused
  await until(() => log.lines.length === 2, maxStaleMs, 'the set kept running out')
  assert.ok(Date.now() - fetchedAt >= maxAgeMs + maxStaleMs - 50, 'not before the stale limit')
  assert.match(log.lines[1]!.msg, /: platform tokens are refused as unavailable/)
  assert.deepEqual(await kinds(tokens, [sign(known)]), ['unavailable'])

  // back: loaded behind, so the next tokens fetch nothing
  jwks.fail(false)
  await until(() => log.lines.length === 3, COOLDOWN_MS * 10, 'loaded again behind')
  assert.match(log.lines[2]!.msg, /^the platform's JWKS URL loaded again after \d+ s$/)
  const fetches = jwks.fetches()
  assert.deepEqual(await kinds(tokens, [sign(known), sign(known)]), ['ok', 'ok'])
  assert.equal(jwks.fetches(), fetches)
  // the set can tell again (a kid it lacks may fetch it, past the cooldown: then it still lacks it)
  assert.deepEqual(await kinds(tokens, [sign(stranger)]), ['forged'])
})

test('a fetch behind that hangs holds no token up: past the max age, the set kept verifies at once', async (t) => {
  const maxAgeMs = 1000
  const timeoutMs = 3000
  const known = await makeKey('k-1')
  const jwks = await slowJwksServer(t, [known.jwk])
  const tokens = tokensFor({ kind: 'jwks-url', url: jwks.url }, recordingLog(), {
    jwksMaxAgeMs: maxAgeMs,
    jwksTimeoutMs: timeoutMs,
  })
  t.after(() => tokens.stopKeyRefresh())
  await tokens.prefetchKeys()
  jwks.serve('hang')
  await sleep(maxAgeMs + 100)
  for (let i = 0; i < 3; i++) {
    const started = Date.now()
    assert.deepEqual(await kinds(tokens, [sign(known)]), ['ok'])
    const tookMs = Date.now() - started
    assert.ok(tookMs < 500, `not after the fetch's timeout (${timeoutMs} ms): ${tookMs} ms`)
  }
  assert.equal(jwks.requests(), 2, 'the fetch at start, and one behind that hangs')
})

test('a token naming no kid, with several keys in the set (a rotation), verifies against the one that signed it', async (t) => {
  const [oldKey, newKey, other] = await Promise.all([makeKey('a'), makeKey('b'), makeKey('c')])
  const path = join(tempDir(t), 'jwks.json')
  // the platform names no kid in its tokens: its set has both keys of the rotation
  const withoutKid = ({ kid, ...jwk }: JWK) => (void kid, jwk)
  writeFileSync(path, JSON.stringify({ keys: [oldKey.jwk, newKey.jwk].map(withoutKid) }))
  const tokens = tokensFor({ kind: 'jwks-file', path }, recordingLog())
  const noKid = (key: Key) =>
    new SignJWT({ sub: String(++users) })
      .setProtectedHeader({ alg: 'ES256' })
      .setExpirationTime('10m')
      .sign(key.privateKey)
  assert.deepEqual(await kinds(tokens, [noKid(oldKey), noKid(newKey)]), ['ok', 'ok'])
  // a key the set lacks verifies against none of them: forged, as ever
  assert.deepEqual(await kinds(tokens, [noKid(other)]), ['forged'])
})
