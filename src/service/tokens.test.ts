import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SignJWT } from 'jose'
import type { UserId } from '../core/user-id.js'
import { Tokens } from './tokens.js'

const SECRET = 'unit-test-secret-of-enough-length-0123456789'
const user = (id: string) => id as UserId

/** A clock the test moves by hand; jose's checks read the same one. */
function manualClock(start = Date.UTC(2026, 10, 23, 12)) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

test('a remembered token answers with the very claims a fresh verification gives', async () => {
  const clock = manualClock()
  const tokens = new Tokens(SECRET, { now: clock.now })
  const token = await tokens.issue(user('9223372036854775807'), {
    name: 'Builderman',
    ttlSeconds: 60,
  })
  const first = await tokens.verify(token)
  const again = await tokens.verify(token)
  assert.equal(again, first, 'the same object, from memory')
  assert.ok(Object.isFrozen(first), 'callers cannot change what later callers get')
  const fresh = await new Tokens(SECRET, { now: clock.now }).verify(token)
  assert.deepEqual(again, fresh)
  assert.equal(fresh?.userId, '9223372036854775807')
  assert.equal(fresh.name, 'Builderman')
})

test('a remembered token is dropped when it expires', async () => {
  // issue() stamps exp from the real clock; verify with a clock that starts there
  const tokens = new Tokens(SECRET)
  const token = await tokens.issue(user('5'), { ttlSeconds: 30 })
  const exp = (await tokens.verify(token))!.exp!
  const clock = manualClock(exp * 1000 - 1000)
  const verifying = new Tokens(SECRET, { now: clock.now })
  assert.equal((await verifying.verify(token))?.userId, '5')
  assert.equal(verifying.rememberedTokens, 1)
  clock.advance(999)
  assert.equal((await verifying.verify(token))?.userId, '5', 'valid to the last millisecond')
  clock.advance(1)
  assert.equal(await verifying.verify(token), undefined, 'expired: not answered from memory')
  assert.equal(verifying.rememberedTokens, 0)
})

test('memory is bounded: the least recently used token goes first', async () => {
  const tokens = new Tokens(SECRET, { cacheSize: 2 })
  const [a, b, c] = await Promise.all(['1', '2', '3'].map((id) => tokens.issue(user(id))))
  await tokens.verify(a!)
  await tokens.verify(b!)
  await tokens.verify(a!) // a is now the most recently used
  await tokens.verify(c!)
  assert.equal(tokens.rememberedTokens, 2)
  // b was dropped: verifying it again is a signature check that still succeeds
  assert.equal((await tokens.verify(b!))?.userId, '2')
  assert.equal((await tokens.verify(a!))?.userId, '1')
  assert.equal(tokens.rememberedTokens, 2)
})

test('refusals are never remembered and never throw', async () => {
  const tokens = new Tokens(SECRET)
  const other = await new Tokens(`${SECRET}x`).issue(user('1'))
  const numericSub = await new SignJWT({ sub: 12 as unknown as string })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(SECRET))
  const rs = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln'
  for (const token of ['', 'x', 'a.b.c', other, numericSub, rs, 'e'.repeat(5000)]) {
    assert.equal(await tokens.verify(token), undefined, token.slice(0, 40))
  }
  assert.equal(tokens.rememberedTokens, 0)
})

test('memory answers only for the very token it verified, not one that differs anywhere', async () => {
  const tokens = new Tokens(SECRET)
  const token = await tokens.issue(user('7'))
  assert.equal((await tokens.verify(token))?.userId, '7')
  const at = token.length - 10
  const forged = token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1)
  assert.equal(await tokens.verify(forged), undefined, 'another signature')
  assert.equal((await tokens.verify(`Bearer ${token}`.slice(7)))?.userId, '7', 'a slice of it')
  assert.equal(tokens.rememberedTokens, 1)
})

test("a token that ends with a remembered token's signature is verified, not remembered", async () => {
  const tokens = new Tokens(SECRET)
  const token = await tokens.issue(user('7'))
  assert.equal((await tokens.verify(token))?.userId, '7')
  // the signature of user 7's token under another payload (user 8's): memory finds the entry
  // by that last segment, but its token is another text
  const [header, , signature] = token.split('.')
  const payload = Buffer.from(JSON.stringify({ sub: '8', exp: 4102444800 })).toString('base64url')
  assert.equal(await tokens.verify(`${header}.${payload}.${signature}`), undefined)
  assert.equal((await tokens.verify(token))?.userId, '7', 'the remembered token still answers')
  assert.equal(tokens.rememberedTokens, 1)
})

test('a refusal says expired only for a genuine token past its exp: a fresh one would do', async () => {
  const clock = manualClock()
  const tokens = new Tokens(SECRET, { now: clock.now })
  const key = new TextEncoder().encode(SECRET)
  const nowSeconds = Math.floor(clock.now() / 1000)
  const signed = (claims: Record<string, unknown>) =>
    new SignJWT({ sub: '7', ...claims }).setProtectedHeader({ alg: 'HS256' }).sign(key)
  assert.equal(await tokens.check(await signed({ exp: nowSeconds - 1 })), 'expired')
  // not yet valid, or a date out of range: genuine, but a fresh token of the kind fares no better
  assert.equal(
    await tokens.check(await signed({ exp: nowSeconds + 60, nbf: nowSeconds + 30 })),
    'stale',
  )
  assert.equal(
    await tokens.check(await signed({ exp: nowSeconds + 60, iat: nowSeconds + 3600 })),
    'stale',
  )
  assert.equal(await tokens.check(`${await signed({ exp: nowSeconds + 60 })}x`), 'forged')
  assert.equal(
    ((await tokens.check(await signed({ exp: nowSeconds + 60 }))) as { userId: string }).userId,
    '7',
  )
})
