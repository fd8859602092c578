import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserCaller } from '../core/caller.js'
import type { UserId } from '../core/user-id.js'
import { MemoryRateLimiter } from '../store/memory/memory-rate-limiter.js'
import { ManualClock } from './clock.js'
import { RateLimits } from './rate-limits.js'

const settings = {
  requestMax: 3,
  requestWindowMs: 60_000,
  titleBurstMax: 1,
  titleSustainMax: 1,
  xboxReadBurstMax: 1,
  xboxReadSustainMax: 1,
}

const userCaller = (id: string): UserCaller => ({
  kind: 'user',
  userId: id as UserId,
  via: 'bearer',
  viewer: { kind: 'user', userId: id as UserId },
  tokenId: undefined,
  expiresAt: Number.MAX_SAFE_INTEGER,
  name: undefined,
})

test("a user's request hit is made once and kept (bounded), and still spends the user's budget", async () => {
  const limits = new RateLimits(new MemoryRateLimiter(), new ManualClock(0), settings)
  const alice = userCaller('1')
  const hit = limits.requestHit(alice, '10.0.0.1')
  assert.deepEqual(hit, { key: 'roblox:user:1', rules: hit.rules, near: '1' })
  assert.equal(limits.requestHit(alice, '10.0.0.2'), hit, 'the same object, whatever the address')
  assert.ok(Object.isFrozen(hit))
  // the budget is the user's: three requests, then 429
  for (let i = 0; i < 3; i++) await limits.request(alice, `10.0.0.${i}`)
  await assert.rejects(limits.request(alice, '10.0.0.9'), { code: 'RATE_LIMITED' })
  // more users than are kept: each still gets its own key
  for (let i = 2; i < 10_050; i++) {
    assert.equal(limits.requestHit(userCaller(String(i)), 'a').key, `roblox:user:${i}`)
  }
  assert.deepEqual(limits.requestHit(alice, 'a'), hit)
  await assert.rejects(limits.request(alice, '10.0.0.9'), { code: 'RATE_LIMITED' })
  // callers that are no user: by key, else by address
  assert.equal(
    limits.requestHit({ kind: 'anonymous', viewer: { kind: 'anonymous' } } as never, '10.0.0.1')
      .key,
    'roblox:ip:10.0.0.1',
  )
})

test("an anonymous caller's request hit is kept per address (bounded), and still spends the address's budget", async () => {
  const limits = new RateLimits(new MemoryRateLimiter(), new ManualClock(0), settings)
  const anonymous = { kind: 'anonymous', viewer: { kind: 'anonymous' } } as const
  const hit = limits.requestHit(anonymous, '10.0.0.1')
  assert.deepEqual(hit, { key: 'roblox:ip:10.0.0.1', rules: hit.rules })
  assert.equal(limits.requestHit(anonymous, '10.0.0.1'), hit, 'the same object for the address')
  assert.ok(Object.isFrozen(hit))
  assert.equal(limits.requestHit(anonymous, '10.0.0.2').key, 'roblox:ip:10.0.0.2')
  // an IPv6 client by its /64, kept per address: two addresses of one /64 share the budget
  const v6 = limits.requestHit(anonymous, '2001:db8:1:2::a')
  assert.equal(v6.key, limits.requestHit(anonymous, '2001:db8:1:2::b').key)
  assert.equal(limits.requestHit(anonymous, '2001:db8:1:2::a'), v6)
  // the budget is the address's: three requests, then 429; another address is not refused
  for (let i = 0; i < 3; i++) await limits.request(anonymous, '10.0.0.1')
  await assert.rejects(limits.request(anonymous, '10.0.0.1'), { code: 'RATE_LIMITED' })
  await limits.request(anonymous, '10.0.0.2')
  // more addresses than are kept: each still gets its own key, and the first its budget
  for (let i = 0; i < 10_050; i++) {
    const address = `10.1.${i >> 8}.${i & 255}`
    assert.equal(limits.requestHit(anonymous, address).key, `roblox:ip:${address}`)
  }
  assert.deepEqual(limits.requestHit(anonymous, '10.0.0.1'), hit)
  await assert.rejects(limits.request(anonymous, '10.0.0.1'), { code: 'RATE_LIMITED' })
})
