import assert from 'node:assert/strict'
import { test } from 'node:test'
import { errors, type PresenceError } from '../core/errors.js'
import { MemoryRateLimiter } from '../store/memory/memory-rate-limiter.js'
import type { RateLimiter } from '../store/rate-limiter.js'
import { AuthFailures } from './auth-failures.js'
import { ManualClock } from './clock.js'
import { FallbackRateLimiter } from './fallback-rate-limiter.js'
import { RateLimits } from './rate-limits.js'

const RULES = [{ name: 'roblox', max: 2, windowMs: 60_000 }]

const codeOf = (error: unknown) => (error as PresenceError).code

/** A shared store that answers as `state` says: counting, full (refusing writes), or away. */
function sharedStore(): { limiter: RateLimiter; state: 'up' | 'full' | 'away'; hits: number } {
  const counting = new MemoryRateLimiter()
  const store = {
    state: 'up' as 'up' | 'full' | 'away',
    hits: 0,
    limiter: {
      hit: (key: string, rules: typeof RULES, now: number) => {
        if (store.state !== 'up') {
          return Promise.reject(errors.storeUnavailable(store.state === 'full'))
        }
        store.hits++
        return counting.hit(key, rules, now)
      },
    },
  }
  return store
}

test('a store that refuses writes: hits are counted in memory by the same rules; an unreachable store is its error', async () => {
  const shared = sharedStore()
  const limiter = new FallbackRateLimiter(shared.limiter, new MemoryRateLimiter())
  const hit = () => limiter.hit('ip:203.0.113.9', RULES, 1_000)

  assert.equal((await hit()).count, 1)
  assert.equal(shared.hits, 1, 'counted by the shared store while it takes writes')

  shared.state = 'full'
  assert.deepEqual(
    [(await hit()).allowed, (await hit()).allowed, (await hit()).allowed],
    [true, true, false],
    'the local budget of 2 holds, counted apart from the shared one',
  )
  assert.equal(shared.hits, 1)

  shared.state = 'away'
  await assert.rejects(hit(), (error) => codeOf(error) === 'STORE_UNAVAILABLE')

  shared.state = 'up'
  assert.equal((await hit()).count, 2, 'the shared count again, once the store takes writes')
})

test('while the store is full, request budgets and guessed credentials are both counted (not a 503)', async () => {
  const shared = sharedStore()
  shared.state = 'full'
  const clock = new ManualClock(1_000)
  const limiter = new FallbackRateLimiter(shared.limiter, new MemoryRateLimiter())
  const limits = new RateLimits(limiter, clock, {
    requestMax: 2,
    requestWindowMs: 60_000,
    titleBurstMax: 3,
    titleSustainMax: 30,
    xboxReadBurstMax: 30,
    xboxReadSustainMax: 300,
  })
  const anonymous = { kind: 'anonymous', viewer: { kind: 'anonymous' } } as const
  await limits.request(anonymous, '203.0.113.9')
  await limits.request(anonymous, '203.0.113.9')
  await assert.rejects(
    limits.request(anonymous, '203.0.113.9'),
    (error) => codeOf(error) === 'RATE_LIMITED',
  )

  const failures = new AuthFailures({ limiter, clock, settings: { max: 2, windowMs: 10_000 } })
  await failures.count('198.51.100.7')
  failures.check('198.51.100.7')
  await failures.count('198.51.100.7')
  assert.throws(
    () => failures.check('198.51.100.7'),
    (error) => codeOf(error) === 'RATE_LIMITED',
    'the second guess refuses the address',
  )
})
