import fc from 'fast-check'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { test } from 'node:test'
import type { InjectOptions } from 'fastify'
import { SignJWT } from 'jose'
import { WebSocket } from 'ws'
import { ManualClock } from '../../src/service/clock.js'
import { startApp } from '../helpers/start-app.js'
import { SEEDED, codedError, fixture, robloxError, xboxError } from './fuzz-kit.js'

const SECRET = 'test-token-secret-of-enough-length-0123456789'
const key = new TextEncoder().encode(SECRET)
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)

/** An HS256 token whose payload is exactly this JSON text (for literals JS cannot write). */
function signRaw(payload: string): string {
  const signed = `${b64({ alg: 'HS256', typ: 'JWT' })}.${Buffer.from(payload).toString('base64url')}`
  return `${signed}.${createHmac('sha256', SECRET).update(signed).digest('base64url')}`
}

/** Tokens that must be refused everywhere, each with why. */
async function badTokens(): Promise<Array<[string, string]>> {
  const sign = (claims: Record<string, unknown>, alg = 'HS256', secret = key) =>
    new SignJWT(claims).setProtectedHeader({ alg }).sign(secret)
  const sub = SEEDED[0]!
  const valid = await sign({ sub, exp: now() + 3600 })
  const [header, payload] = valid.split('.')
  return [
    ['expired', await sign({ sub, exp: now() - 10 })],
    ['not yet valid', await sign({ sub, exp: now() + 3600, nbf: now() + 600 })],
    [
      'wrongly signed',
      await sign({ sub, exp: now() + 3600 }, 'HS256', new TextEncoder().encode(`${SECRET}x`)),
    ],
    ['HS512 with the right secret', await sign({ sub, exp: now() + 3600 }, 'HS512')],
    ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub, exp: now() + 3600 })}.`],
    ['alg none, signature kept', `${b64({ alg: 'none' })}.${payload}.${valid.split('.')[2]}`],
    [
      'payload swapped',
      `${header}.${b64({ sub: SEEDED[1], exp: now() + 3600 })}.${valid.split('.')[2]}`,
    ],
    // a token valid forever would need its revocation kept forever: every token expires
    ['no exp', await sign({ sub, jti: 'no-exp' })],
    // a finite exp that overflows to Infinity in ms: its revocation was lost between nodes
    ['exp beyond year 9999 (1e306)', await sign({ sub, exp: 1e306 })],
    ['exp 10000-01-01', await sign({ sub, exp: 253402300800 })],
    ['exp Infinity (1e400)', signRaw(`{"sub":"${sub}","exp":1e400}`)],
    ['iat in an hour', await sign({ sub, exp: now() + 7200, iat: now() + 3600 })],
    ['iat beyond year 9999', await sign({ sub, exp: now() + 3600, iat: 1e306 })],
    ['nbf before 1970', await sign({ sub, exp: now() + 3600, nbf: -1e306 })],
    ['iat -Infinity', signRaw(`{"sub":"${sub}","exp":${now() + 3600},"iat":-1e400}`)],
    // a revocation keyed by a number was stored as text: lost after a restart, on another node
    ['jti a number', await sign({ sub, exp: now() + 3600, jti: 424242 })],
    ['jti an object', await sign({ sub, exp: now() + 3600, jti: { a: 1 } })],
    ['sub negative', await sign({ sub: '-1', exp: now() + 3600 })],
    ['sub beyond int64', await sign({ sub: '9223372036854775808', exp: now() + 3600 })],
    ['sub a number', await sign({ sub: 5, exp: now() + 3600 })],
    ['no sub', await sign({ exp: now() + 3600 })],
    ['truncated', valid.slice(0, -3)],
    ['two parts', `${header}.${payload}`],
    ['garbage', 'not-a-token'],
    ['unicode', 'tökén.☃.😀'],
    ['huge', 'a'.repeat(5000)],
  ]
}

test('bad tokens are 401 on every authenticated route of every protocol, in its format', async (t) => {
  const f = await fixture(t)
  const tokens = await badTokens()
  const routes: Array<{
    name: string
    request: (token: string) => InjectOptions
    shape: typeof robloxError
  }> = [
    {
      name: 'roblox users (Bearer)',
      request: (tk) => ({
        method: 'POST',
        url: '/v1/presence/users',
        headers: { authorization: `Bearer ${tk}` },
        payload: { userIds: [1] },
      }),
      shape: robloxError,
    },
    {
      name: 'roblox users (cookie)',
      request: (tk) => ({
        method: 'POST',
        url: '/v1/presence/users',
        headers: { cookie: `.ROBLOSECURITY=${tk}` },
        payload: { userIds: [1] },
      }),
      shape: robloxError,
    },
    {
      name: 'roblox register',
      request: (tk) => ({
        method: 'POST',
        url: '/v1/presence/register-app-presence',
        headers: { authorization: `Bearer ${tk}` },
        payload: { location: 'Website' },
      }),
      shape: robloxError,
    },
    {
      name: 'settings',
      request: (tk) => ({
        method: 'PUT',
        url: '/v1/presence/settings',
        headers: { authorization: `Bearer ${tk}` },
        payload: { invisible: true },
      }),
      shape: robloxError,
    },
    {
      name: 'users/authenticated',
      request: (tk) => ({
        method: 'GET',
        url: '/v1/users/authenticated',
        headers: { authorization: `Bearer ${tk}` },
      }),
      shape: robloxError,
    },
    {
      name: 'xbox me',
      request: (tk) => ({
        method: 'GET',
        url: '/users/me',
        headers: { authorization: `XBL3.0 x=1;${tk}`, 'x-xbl-contract-version': '3' },
      }),
      shape: xboxError,
    },
    {
      name: 'xbox title write',
      request: (tk) => ({
        method: 'POST',
        url: `/users/xuid(${SEEDED[0]})/devices/current/titles/current`,
        headers: { authorization: `XBL3.0 x=1;${tk}`, 'x-xbl-contract-version': '3' },
        payload: {},
      }),
      shape: xboxError,
    },
    {
      name: 'native sse',
      request: (tk) => ({
        method: 'GET',
        url: `/api/v1/realtime/sse?ids=1&access_token=${encodeURIComponent(tk)}`,
      }),
      shape: codedError,
    },
    {
      name: 'native ws (plain GET)',
      request: (tk) => ({
        method: 'GET',
        url: '/api/v1/realtime',
        headers: { authorization: `Bearer ${tk}` },
      }),
      shape: codedError,
    },
  ]
  const before = await f.snapshot()
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...tokens),
      fc.constantFrom(...routes),
      async ([why, token], route) => {
        const writes = f.writes()
        const response = await f.app.inject(route.request(token))
        route.shape(response, [401])
        assert.equal(f.writes(), writes, `${route.name}, ${why}: no write`)
        assert.ok(!response.body.includes(token.slice(0, 40)), 'the token is not echoed')
      },
    ),
    { numRuns: tokens.length * routes.length },
  )
  assert.deepEqual(await f.snapshot(), before)
})

test('a bad token is refused before the WebSocket upgrade, a good one connects', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true })
  const ws = url.replace('http', 'ws') + '/api/v1/realtime'
  const outcome = (token: string) =>
    new Promise<number | 'open'>((done) => {
      const socket = new WebSocket(`${ws}?access_token=${encodeURIComponent(token)}`)
      socket.on('unexpected-response', (_req, res) => {
        done(res.statusCode ?? 0)
        socket.terminate()
      })
      socket.on('open', () => {
        done('open')
        socket.close()
      })
      socket.on('error', () => {})
    })
  for (const [why, token] of await badTokens()) {
    assert.equal(await outcome(token), 401, why)
  }
  assert.equal(await outcome(await tokens.issue(SEEDED[0]!)), 'open')
})

test('a revoked login (POST /v2/logout) is refused at once on every protocol', async (t) => {
  const f = await fixture(t)
  const token = await f.userToken('42')
  const bearer = { authorization: `Bearer ${token}` }
  const first = await f.app.inject({ method: 'POST', url: '/v2/logout', headers: bearer })
  const csrf = String(first.headers['x-csrf-token'])
  const out = await f.app.inject({
    method: 'POST',
    url: '/v2/logout',
    headers: { ...bearer, 'x-csrf-token': csrf },
  })
  assert.equal(out.statusCode, 200, out.body)
  robloxError(
    await f.app.inject({
      method: 'POST',
      url: '/v1/presence/users',
      headers: bearer,
      payload: { userIds: [1] },
    }),
    [401],
  )
  xboxError(
    await f.app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { authorization: `XBL3.0 x=1;${token}`, 'x-xbl-contract-version': '3' },
    }),
    [401],
  )
  codedError(await f.app.inject({ method: 'GET', url: '/api/v1/realtime', headers: bearer }), [401])
})

test('a logged-out token stays refused for as long as it could be valid, past a year too', async (t) => {
  const clock = new ManualClock()
  const { app } = await startApp(t, { clock })
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key)
  const status = async (token: string) =>
    (
      await app.inject({
        method: 'GET',
        url: '/v1/users/authenticated',
        headers: { authorization: `Bearer ${token}` },
      })
    ).statusCode
  const logout = async (token: string) => {
    const bearer = { authorization: `Bearer ${token}` }
    const first = await app.inject({ method: 'POST', url: '/v2/logout', headers: bearer })
    const csrf = first.headers['x-csrf-token']
    if (csrf === undefined) return first.statusCode
    const out = await app.inject({
      method: 'POST',
      url: '/v2/logout',
      headers: { ...bearer, 'x-csrf-token': String(csrf) },
    })
    return out.statusCode
  }
  const twoYears = await sign({ sub: '42', jti: 'two-years', exp: now() + 2 * 365 * 86400 })
  // without exp, a revocation was kept 365 days: the token then worked again, for ever
  const forever = await sign({ sub: '43', jti: 'forever', iat: now() })
  assert.equal(await status(twoYears), 200)
  assert.equal(await logout(twoYears), 200)
  await logout(forever)
  clock.advance(400 * 86400 * 1000)
  assert.equal(await status(twoYears), 401, 'revoked until its exp, a year later included')
  assert.equal(await status(forever), 401, 'a token without exp is never valid')
})

test('CSRF: a token issued to one user is refused for every other, accepted for its own', async (t) => {
  const clock = new ManualClock()
  const { app, tokens } = await startApp(t, { clock })
  const cookie = async (id: string) => `.ROBLOSECURITY=${await tokens.issue(id as never)}`
  const register = (c: string, csrf?: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/presence/register-app-presence',
      headers: { cookie: c, ...(csrf !== undefined && { 'x-csrf-token': csrf }) },
      payload: { location: 'Website' },
    })
  const alice = await cookie('100')
  const challenge = await register(alice)
  robloxError(challenge, [403])
  const aliceCsrf = String(challenge.headers['x-csrf-token'])
  await fc.assert(
    fc.asyncProperty(
      fc.bigInt({ min: 1n, max: 9223372036854775807n }).filter((n) => n !== 100n),
      async (other) => {
        const response = await register(await cookie(String(other)), aliceCsrf)
        robloxError(response, [403])
        // the fresh token it hands out is that user's own, never alice's
        assert.notEqual(response.headers['x-csrf-token'], aliceCsrf)
      },
    ),
    { numRuns: 30 },
  )
  assert.equal((await register(alice, aliceCsrf)).statusCode, 200)
  // and it expires: 30 to 60 minutes
  clock.advance(61 * 60 * 1000)
  robloxError(await register(alice, aliceCsrf), [403])
})

test("no protocol lets a user write another user's presence", async (t) => {
  const f = await fixture(t, { xboxBurstMax: 1000, xboxSustainMax: 1000 })
  const before = await f.snapshot()
  const mallory = await f.userToken('666')
  const xbl = { authorization: `XBL3.0 x=1;${mallory}`, 'x-xbl-contract-version': '3' }
  for (const victim of SEEDED) {
    const title = `/users/xuid(${victim})/devices/current/titles/current`
    xboxError(
      await f.app.inject({
        method: 'POST',
        url: title,
        headers: xbl,
        payload: { state: 'active' },
      }),
      [403],
    )
    xboxError(await f.app.inject({ method: 'DELETE', url: title, headers: xbl }), [403])
    xboxError(
      await f.app.inject({
        method: 'PUT',
        url: `/users/xuid(${victim})/state`,
        headers: xbl,
        payload: { state: 'Cloaked' },
      }),
      [403],
    )
    xboxError(
      await f.app.inject({
        method: 'GET',
        url: `/users/xuid(${victim})/groups/People`,
        headers: xbl,
      }),
      [403],
    )
    // Roblox: the body cannot name a user; whatever it says, the caller's own session is written
    const roblox = await f.app.inject({
      method: 'POST',
      url: '/v1/presence/register-app-presence',
      headers: { authorization: `Bearer ${mallory}` },
      payload: { userId: victim, location: 'Website' },
    })
    assert.equal(roblox.statusCode, 200)
    // game server reports and admin writes need keys mallory does not have
    const report = await f.app.inject({
      method: 'PUT',
      url: '/api/v1/servers/6f1c1a52-3b0e-4a8e-9d65-0a3c0d2f8c11',
      headers: { authorization: `Bearer ${mallory}`, 'x-api-key': mallory },
      payload: { placeId: 1818, players: [victim] },
    })
    // a token and a "key" together: several credentials, 400 (a token or key alone: 401/403)
    codedError(report, [400, 401, 403])
    codedError(
      await f.app.inject({
        method: 'PUT',
        url: `/admin/v1/users/${victim}/settings`,
        headers: { 'x-api-key': mallory },
        payload: { invisible: true },
      }),
      [401],
    )
  }
  assert.deepEqual(
    { ...((await f.snapshot()) as object), stats: 0 },
    { ...(before as object), stats: 0 },
  )
  const [own] = await f.service.rawPresences(['666' as never])
  assert.equal(own!.sessions.length, 1, 'only her own session was written')
})
