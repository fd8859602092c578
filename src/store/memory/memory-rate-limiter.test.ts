import assert from 'node:assert/strict'
import { test } from 'node:test'
import { rateLimiterContract } from '../contract/rate-limiter.contract.js'
import { MemoryRateLimiter } from './memory-rate-limiter.js'

rateLimiterContract('memory', async () => ({
  limiter: new MemoryRateLimiter(),
  cleanup: async () => {},
}))

const T0 = Date.UTC(2026, 0, 1)
const rule = { name: 'roblox', max: 5, windowMs: 60_000 }

test('a flood of new callers cannot grow the windows past maxWindows', async () => {
  const limiter = new MemoryRateLimiter({ maxWindows: 1000 })
  // an attacker rotating addresses, all inside one window: nothing has ended to sweep
  for (let i = 0; i < 50_000; i++)
    await limiter.hit(
      `roblox:ip:10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
      [rule],
      T0 + (i % 1000),
    )
  assert.equal(limiter.size, 1000)
})

test('a caller hitting often stays counted through a flood of new callers', async () => {
  const limiter = new MemoryRateLimiter({ maxWindows: 1000 })
  let refused = 0
  for (let i = 0; i < 20_000; i++) {
    await limiter.hit(`roblox:ip:flood-${i}`, [rule], T0 + 1)
    // one hit of the abuser for every 100 new callers: far fewer than maxWindows between two
    if (i % 100 === 0 && !(await limiter.hit('roblox:ip:abuser', [rule], T0 + 1)).allowed) {
      refused++
    }
  }
  assert.equal(refused, 200 - rule.max)
})

test('windows that ended are swept, so a quiet limiter gives its memory back', async () => {
  const limiter = new MemoryRateLimiter({ sweepIntervalMs: 10_000 })
  for (let i = 0; i < 5000; i++) await limiter.hit(`k${i}`, [rule], T0)
  assert.equal(limiter.size, 5000)
  await limiter.hit('late', [rule], T0 + 60_000)
  assert.equal(limiter.size, 1)
})

test('the least recently hit window is the one forgotten', async () => {
  const limiter = new MemoryRateLimiter({ maxWindows: 2 })
  await limiter.hit('a', [rule], T0)
  await limiter.hit('b', [rule], T0)
  await limiter.hit('a', [rule], T0)
  await limiter.hit('c', [rule], T0)
  assert.equal((await limiter.hit('a', [rule], T0)).count, 3, 'a was hit last: kept')
  assert.equal((await limiter.hit('b', [rule], T0)).count, 1, 'b was forgotten')
})

test('maxWindows must be a positive integer', () => {
  assert.throws(() => new MemoryRateLimiter({ maxWindows: 0 }), RangeError)
})
