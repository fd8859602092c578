import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SignJWT } from 'jose'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { startApp } from '../helpers/start-app.js'
import {
  REGISTER,
  USERS,
  assertRobloxError,
  bearer,
  lookup,
  post,
  type Headers,
} from './roblox-helpers.js'

const DENIED = {
  errors: [{ code: 0, message: 'Authorization has been denied for this request.' }],
}
const CSRF_FAILED = { errors: [{ code: 0, message: 'Token Validation Failed' }] }
const BANNER =
  '_|WARNING:-DO-NOT-SHARE-THIS.--Sharing-this-will-allow-someone-to-log-in-as-you-and-to-steal-your-ROBUX-and-items.|_'

test('register-app-presence needs a user: 401 in the exact Roblox shape', async (t) => {
  const { app } = await startApp(t)
  const anonymousHeaders: Headers[] = [
    {},
    { cookie: '' },
    { cookie: 'other=1' },
    { cookie: '.ROBLOSECURITY=' },
  ]
  for (const headers of anonymousHeaders) {
    const response = await post(app, REGISTER, { location: 'Home' }, headers)
    assert.equal(response.statusCode, 401)
    assert.match(String(response.headers['content-type']), /^application\/json/)
    assert.deepEqual(JSON.parse(response.body), DENIED)
  }
  // anonymous reads are fine, with an empty Cookie header too
  assert.equal((await lookup(app, [1], { cookie: '' })).length, 1)
})

test('a credential present but invalid or expired is refused with 401, reads included', async (t) => {
  const { app, tokens } = await startApp(t)
  const secret = new TextEncoder().encode('test-token-secret-of-enough-length-0123456789')
  const expired = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('5')
    .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
    .sign(secret)
  const forged = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('5')
    .sign(new TextEncoder().encode('another-secret-another-secret-another'))
  const valid = await tokens.issue('5' as UserId)
  const unsigned = `${valid.split('.').slice(0, 2).join('.')}.`
  const cases: Headers[] = [
    { authorization: `Bearer ${expired}` },
    { authorization: `Bearer ${forged}` },
    { authorization: `Bearer ${unsigned}` },
    { authorization: 'Bearer' },
    { authorization: 'Basic dXNlcjpwYXNz' },
    { authorization: `Bearer ${valid}x` },
    { cookie: `.ROBLOSECURITY=${expired}` },
    { cookie: `.ROBLOSECURITY=garbage; x-csrf=1` },
  ]
  for (const headers of cases) {
    for (const url of [USERS, REGISTER]) {
      const response = await post(app, url, { userIds: [5] }, headers)
      assert.equal(response.statusCode, 401, `${url} ${JSON.stringify(headers)}`)
      assert.deepEqual(JSON.parse(response.body), DENIED)
    }
  }
})

test('cookie callers: 403 with a fresh x-csrf-token, and the retry succeeds', async (t) => {
  const { app, tokens } = await startApp(t)
  const token = await tokens.issue('123' as UserId)
  for (const cookie of [
    `.ROBLOSECURITY=${token}`,
    `.ROBLOSECURITY=${token};`,
    `a=b; .ROBLOSECURITY=${token}; c=d`,
    `.ROBLOSECURITY=${BANNER}${token}`,
  ]) {
    // the read needs no token (a cookie alone is 200), but one sent is checked: a wrong one
    // gets the challenge as a write without one does
    const read = await post(app, USERS, { userIds: [123] }, { cookie })
    assert.equal(read.statusCode, 200, read.body)
    for (const [url, body, sent] of [
      [REGISTER, { location: 'Home', disconnect: false }, {}],
      [USERS, { userIds: [123] }, { 'x-csrf-token': 'not-a-real-token' }],
    ] as const) {
      const first = await post(app, url, body, { cookie, ...sent })
      assert.equal(first.statusCode, 403, `${cookie} ${url}`)
      assert.deepEqual(JSON.parse(first.body), CSRF_FAILED)
      assert.match(String(first.headers['content-type']), /^application\/json/)
      const csrf = first.headers['x-csrf-token']
      assert.equal(typeof csrf, 'string')
      assert.ok((csrf as string).length >= 12)

      const retry = await post(app, url, body, { cookie, 'x-csrf-token': csrf as string })
      assert.equal(retry.statusCode, 200, retry.body)
    }
  }
  // the cookie user is who registered
  assert.equal((await lookup(app, [123]))[0]!.userPresenceType, 1)

  // a wrong token gets another challenge, and nothing is written
  const wrong = await post(
    app,
    REGISTER,
    { disconnect: true },
    {
      cookie: `.ROBLOSECURITY=${token}`,
      'x-csrf-token': 'not-a-real-token',
    },
  )
  assertRobloxError(wrong, 403, 0, 'Token Validation Failed')
  assert.equal((await lookup(app, [123]))[0]!.userPresenceType, 1)
})

test("another user's CSRF token is refused; Bearer callers need none", async (t) => {
  const { app, tokens } = await startApp(t)
  const alice = `.ROBLOSECURITY=${await tokens.issue('1' as UserId)}`
  const bob = `.ROBLOSECURITY=${await tokens.issue('2' as UserId)}`
  const aliceCsrf = (await post(app, REGISTER, {}, { cookie: alice })).headers[
    'x-csrf-token'
  ] as string
  const bobTry = await post(
    app,
    REGISTER,
    { placeId: 9 },
    { cookie: bob, 'x-csrf-token': aliceCsrf },
  )
  assertRobloxError(bobTry, 403, 0, 'Token Validation Failed')
  assert.notEqual(bobTry.headers['x-csrf-token'], aliceCsrf)
  assert.equal((await lookup(app, [2]))[0]!.userPresenceType, 0)

  const viaBearer = await post(app, REGISTER, { placeId: 9 }, await bearer(tokens, '2'))
  assert.equal(viaBearer.statusCode, 200)
  // Bearer wins over a cookie, so a stale cookie beside it does not matter
  const both = await post(
    app,
    USERS,
    { userIds: [2] },
    {
      ...(await bearer(tokens, '2')),
      cookie: '.ROBLOSECURITY=stale',
    },
  )
  assert.equal(both.statusCode, 200)
  assert.equal((await lookup(app, [2]))[0]!.userPresenceType, 2)
})

test('a CSRF token lives 30 to 60 minutes', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 0))
  const { app, tokens } = await startApp(t, { clock })
  const cookie = `.ROBLOSECURITY=${await tokens.issue('3' as UserId)}`
  const csrf = (await post(app, USERS, { userIds: [3] }, { cookie, 'x-csrf-token': 'none' }))
    .headers['x-csrf-token'] as string
  clock.advance(59 * 60_000)
  assert.equal(
    (await post(app, USERS, { userIds: [3] }, { cookie, 'x-csrf-token': csrf })).statusCode,
    200,
  )
  clock.advance(2 * 60_000)
  const stale = await post(app, USERS, { userIds: [3] }, { cookie, 'x-csrf-token': csrf })
  assertRobloxError(stale, 403, 0, 'Token Validation Failed')
})

test('rate limit per caller: 429 with Retry-After, per user and per address', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 0))
  const { app, tokens } = await startApp(t, {
    clock,
    config: { rateLimitMax: 3, rateLimitWindowSeconds: 60 },
  })
  const me = await bearer(tokens, '8')
  for (let i = 0; i < 3; i++) {
    assert.equal((await post(app, REGISTER, { location: 'Home' }, me)).statusCode, 200)
  }
  const limited = await post(app, USERS, { userIds: [8] }, me)
  assertRobloxError(limited, 429, 0, 'Too many requests')
  const retryAfter = Number(limited.headers['retry-after'])
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, String(retryAfter))

  // another user and an anonymous caller have their own budgets
  assert.equal(
    (await post(app, USERS, { userIds: [8] }, await bearer(tokens, '9'))).statusCode,
    200,
  )
  const fromA = { remoteAddress: '10.0.0.1' }
  const fromB = { remoteAddress: '10.0.0.2' }
  const anon = (from: { remoteAddress: string }) =>
    app.inject({ method: 'POST', url: USERS, payload: { userIds: [8] }, ...from })
  for (let i = 0; i < 3; i++) assert.equal((await anon(fromA)).statusCode, 200)
  assertRobloxError(await anon(fromA), 429, 0)
  assert.equal((await anon(fromB)).statusCode, 200)
  // an IPv6 client holds its /64 whole: a new address per request still spends one budget
  for (let i = 1; i <= 3; i++) {
    assert.equal((await anon({ remoteAddress: `2001:db8:5:5::${i}` })).statusCode, 200)
  }
  assertRobloxError(await anon({ remoteAddress: '2001:db8:5:5:ffff::9' }), 429, 0)
  assert.equal((await anon({ remoteAddress: '2001:db8:5:6::1' })).statusCode, 200, 'another /64')

  // the window ends: allowed again
  clock.advance(retryAfter * 1000)
  assert.equal((await post(app, USERS, { userIds: [8] }, me)).statusCode, 200)
})

test('an anonymous register is 401 whatever its body', async (t) => {
  const { app } = await startApp(t, { config: { bodyLimit: 1024 } })
  for (const [body, type] of [
    ['{', 'application/json'],
    ['x', 'text/plain'],
    ['y'.repeat(5000), 'application/json'],
  ]) {
    const response = await post(app, REGISTER, body, { 'content-type': type! })
    assert.deepEqual([response.statusCode, JSON.parse(response.body)], [401, DENIED])
  }
})
