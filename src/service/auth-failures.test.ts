import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { PresenceError } from '../core/errors.js'
import { MemoryRateLimiter } from '../store/memory/memory-rate-limiter.js'
import { AuthFailures } from './auth-failures.js'
import { clientOf } from './client-address.js'
import { ManualClock } from './clock.js'

/** A RATE_LIMITED refusal asking to wait `seconds`. */
const waits = (seconds: number) => (error: unknown) => {
  const refusal = error as PresenceError
  return refusal.code === 'RATE_LIMITED' && refusal.details.retryAfter === seconds
}

function failures(clock: ManualClock) {
  const crossed: string[] = []
  const announced: Array<[string, number]> = []
  let refused = 0
  const limit = new AuthFailures({
    limiter: new MemoryRateLimiter(),
    clock,
    settings: { max: 2, windowMs: 10_000 },
    announce: async (address, until) => void announced.push([address, until]),
    refused: () => refused++,
    crossed: (address) => crossed.push(address),
  })
  return { limit, crossed, announced, refused: () => refused }
}

test('the max-th guess refuses the address until its window ends, told once', async () => {
  const clock = new ManualClock(40_000)
  const { limit, crossed, announced, refused } = failures(clock)
  await limit.count('a')
  limit.check('a')
  await limit.count('a')
  assert.throws(() => limit.check('a'), waits(10))
  assert.deepEqual(crossed, ['a'])
  assert.deepEqual(announced, [['a', 50_000]])
  limit.check('b')
  clock.advance(9_999)
  assert.throws(() => limit.check('a'), waits(1))
  clock.advance(1)
  limit.check('a')
  assert.equal(limit.blocked, 0)
  assert.equal(refused(), 2)
})

test('a guess past the limit (a node that had not heard) is refused, and not told again', async () => {
  const clock = new ManualClock(0)
  const crossed: string[] = []
  // two nodes on one shared counter: here, a MemoryRateLimiter both count on
  const shared = new MemoryRateLimiter()
  const a = new AuthFailures({ limiter: shared, clock, settings: { max: 2, windowMs: 1000 } })
  const b = new AuthFailures({
    limiter: shared,
    clock,
    settings: { max: 2, windowMs: 1000 },
    crossed: (address) => crossed.push(address),
  })
  await a.count('x')
  await b.count('x')
  await assert.rejects(a.count('x'), { code: 'RATE_LIMITED' })
  assert.deepEqual(crossed, ['x'])
})

test('heard refusals end on time', () => {
  const clock = new ManualClock(0)
  const { limit } = failures(clock)
  limit.remember('c', 500)
  limit.remember('d', 0)
  assert.equal(limit.blocked, 1)
  assert.throws(() => limit.check('c'), waits(1))
  clock.advance(500)
  limit.check('c')
})

test('an IPv6 /64 is one guesser; an IPv4-mapped address is its IPv4 one', async () => {
  assert.equal(clientOf('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  assert.equal(clientOf('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64')
  assert.equal(clientOf('2001:db8:1:2::/64'), '2001:db8:1:2::/64', 'a result counts as itself')
  assert.equal(clientOf('::ffff:203.0.113.7'), '203.0.113.7')
  assert.equal(clientOf('203.0.113.7'), '203.0.113.7')
  assert.equal(clientOf('not an address'), 'not an address')
  // grouped again from memory, and past the memory's bound (it is cleared), still the same
  assert.equal(clientOf('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  for (let i = 0; i < 10_050; i++) {
    assert.equal(
      clientOf(`2001:db8:${(i % 65536).toString(16)}:7::${i.toString(16)}`),
      `2001:db8:${(i % 65536).toString(16)}:7::/64`,
    )
  }
  assert.equal(clientOf('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64')

  const clock = new ManualClock(0)
  const { limit } = failures(clock)
  // a host walking its /64: each guess from a new address, all counted together
  await limit.count('2001:db8:1:2::1')
  await limit.count('2001:db8:1:2::2')
  assert.throws(() => limit.check('2001:db8:1:2:ffff::3'), waits(10))
  limit.check('2001:db8:1:3::1')
  await limit.count('::ffff:198.51.100.1')
  await limit.count('198.51.100.1')
  assert.throws(() => limit.check('::ffff:198.51.100.1'), waits(10))
})
