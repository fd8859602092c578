import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { PresenceError } from '../core/errors.js'
import { MemoryRateLimiter } from '../store/memory/memory-rate-limiter.js'
import { AuthFailures } from './auth-failures.js'
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
