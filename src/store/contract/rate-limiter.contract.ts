/**
 * The RateLimiter contract: every adapter must pass it against its real backend.
 *
 * @example
 * rateLimiterContract('memory', async () => ({
 *   limiter: new MemoryRateLimiter(),
 *   cleanup: async () => {},
 * }))
 *
 * The factory must return a fresh limiter with no counts for every test; `cleanup` deletes what
 * it wrote (e.g. its Redis keys). Every hit passes an explicit `now`, so no test waits.
 */
import assert from 'node:assert/strict'
import { describe, test, type TestContext } from 'node:test'
import type { RateLimitRule, RateLimiter } from '../rate-limiter.js'

export type RateLimiterFactory = () => Promise<{
  limiter: RateLimiter
  cleanup(): Promise<void>
}>

/** A multiple of every window below, so windows start at T0. */
const T0 = Date.UTC(2026, 0, 1)
const SECOND = 1000

/** The rules presenced runs with: the Roblox budget per caller, Xbox's per (user, title). */
const roblox: RateLimitRule[] = [{ name: 'roblox', max: 600, windowMs: 60 * SECOND }]
const xboxWrites: RateLimitRule[] = [
  { name: 'burst', max: 3, windowMs: 15 * SECOND },
  { name: 'sustain', max: 30, windowMs: 300 * SECOND },
]

export function rateLimiterContract(name: string, factory: RateLimiterFactory): void {
  async function open(t: TestContext): Promise<RateLimiter> {
    const { limiter, cleanup } = await factory()
    t.after(cleanup)
    return limiter
  }

  describe(`RateLimiter contract: ${name}`, () => {
    test('counts a caller’s hits in a window aligned on the clock; refuses past max until it ends', async (t) => {
      const limiter = await open(t)
      const rule: RateLimitRule = { name: 'r', max: 3, windowMs: 60 * SECOND }
      const verdicts = []
      for (let i = 0; i < 4; i++) verdicts.push(await limiter.hit('a', [rule], T0 + 10 * SECOND))
      assert.deepEqual(
        verdicts.map((v) => [v.allowed, v.count]),
        [
          [true, 1],
          [true, 2],
          [true, 3],
          [false, 4],
        ],
      )
      assert.deepEqual(verdicts[3], {
        allowed: false,
        rule: 'r',
        count: 4,
        max: 3,
        windowMs: 60 * SECOND,
        retryAfterMs: 50 * SECOND,
      })
      const last = await limiter.hit('a', [rule], T0 + 60 * SECOND - 1)
      assert.deepEqual([last.allowed, last.count, last.retryAfterMs], [false, 5, 1])
      // the window ends at the same instant whenever its first hit came
      const next = await limiter.hit('a', [rule], T0 + 60 * SECOND)
      assert.deepEqual([next.allowed, next.count, next.retryAfterMs], [true, 1, 60 * SECOND])
    })

    test('each caller and each rule name has its own count, whatever characters the key has', async (t) => {
      const limiter = await open(t)
      const rule: RateLimitRule = { name: 'r', max: 1, windowMs: 60 * SECOND }
      // keys an escaping or hash-tagging scheme could map onto one another
      const keys = ['x', '{x}', '_x_', '%7Bx%7D', '%x%', '{', '}', '', 'x:r', 'é', 'a\u0000b']
      for (const key of keys) {
        const verdict = await limiter.hit(key, [rule], T0)
        assert.deepEqual([verdict.allowed, verdict.count], [true, 1], `key ${JSON.stringify(key)}`)
      }
      const other = await limiter.hit('x', [{ ...rule, name: 'other' }], T0)
      assert.deepEqual([other.allowed, other.count], [true, 1])
      assert.equal((await limiter.hit('x', [rule], T0)).count, 2)
    })

    test('every hit counts against every rule, refused or not', async (t) => {
      const limiter = await open(t)
      const rules = [xboxWrites[0]!, { ...xboxWrites[1]!, max: 5 }]
      for (let i = 0; i < 3; i++) assert.ok((await limiter.hit('u', rules, T0)).allowed)
      const burst = await limiter.hit('u', rules, T0 + 1)
      assert.deepEqual(
        [burst.allowed, burst.rule, burst.count, burst.retryAfterMs],
        [false, 'burst', 4, 15 * SECOND - 1],
      )
      // the refused hit spent sustained budget too: 4 so far, one more, then refused
      assert.ok((await limiter.hit('u', rules, T0 + 15 * SECOND)).allowed)
      const sustain = await limiter.hit('u', rules, T0 + 15 * SECOND)
      assert.deepEqual(
        [sustain.allowed, sustain.rule, sustain.count, sustain.max, sustain.windowMs],
        [false, 'sustain', 6, 5, 300 * SECOND],
      )
      assert.equal(sustain.retryAfterMs, 285 * SECOND)
    })

    test('when several rules refuse, the verdict is the one whose window ends last', async (t) => {
      const limiter = await open(t)
      const rules = [
        { name: 'burst', max: 1, windowMs: 15 * SECOND },
        { name: 'sustain', max: 1, windowMs: 300 * SECOND },
      ]
      assert.ok((await limiter.hit('u', rules, T0)).allowed)
      const refused = await limiter.hit('u', rules, T0 + SECOND)
      assert.deepEqual(
        [refused.allowed, refused.rule, refused.retryAfterMs],
        [false, 'sustain', 299 * SECOND],
      )
      // allowed: the first rule speaks
      const allowed = await limiter.hit('v', rules, T0)
      assert.deepEqual([allowed.allowed, allowed.rule, allowed.count], [true, 'burst', 1])
    })

    test('a hit with no rules is allowed', async (t) => {
      const limiter = await open(t)
      assert.equal((await limiter.hit('u', [], T0)).allowed, true)
    })

    test('concurrent hits are each counted once', async (t) => {
      const limiter = await open(t)
      const rule: RateLimitRule = { name: 'r', max: 20, windowMs: 60 * SECOND }
      const verdicts = await Promise.all(
        Array.from({ length: 50 }, () => limiter.hit('u', [rule], T0)),
      )
      const counts = verdicts.map((v) => v.count).sort((a, b) => a - b)
      assert.deepEqual(
        counts,
        Array.from({ length: 50 }, (_, i) => i + 1),
      )
      assert.equal(verdicts.filter((v) => v.allowed).length, 20)
    })

    // Issue 15, item 10: a Roblox caller hitting once a second made the memory limiter drop the
    // Xbox title's 300 s window after 120 s, and the title got 60 of 60 writes (limit 30).
    test('each window keeps its own end while rules of other lengths are hit around it', async (t) => {
      const limiter = await open(t)
      const title = 'xbox:2533274790395904:1717113201'
      const outcomes: boolean[] = []
      for (let s = 0; s < 300; s++) {
        const now = T0 + s * SECOND
        assert.ok((await limiter.hit('roblox:ip:10.0.0.1', roblox, now)).allowed)
        // a new caller every second too, so any pruning of ended windows has work to do
        await limiter.hit(`roblox:ip:10.1.${s >> 8}.${s & 255}`, roblox, now)
        if (s % 5 === 0) outcomes.push((await limiter.hit(title, xboxWrites, now)).allowed)
      }
      assert.equal(outcomes.length, 60)
      assert.equal(outcomes.filter(Boolean).length, 30, 'title writes allowed in one 300 s window')
      assert.deepEqual(outcomes.slice(0, 30), Array(30).fill(true))
      const last = await limiter.hit(title, xboxWrites, T0 + 285 * SECOND - 1)
      // burst refuses too, for 1 ms: the verdict names the limit that holds for 15 s more
      assert.deepEqual(
        [last.allowed, last.rule, last.count, last.retryAfterMs],
        [false, 'sustain', 61, 15 * SECOND + 1],
      )
      // the next window starts from nothing
      const next = await limiter.hit(title, xboxWrites, T0 + 300 * SECOND)
      assert.deepEqual([next.allowed, next.count], [true, 1])
    })

    test('a short window ends on time beside a long one of the same caller', async (t) => {
      const limiter = await open(t)
      const rules = [
        { name: 'long', max: 1000, windowMs: 3600 * SECOND },
        { name: 'short', max: 2, windowMs: 10 * SECOND },
      ]
      for (let s = 0; s < 120; s += 10) {
        const now = T0 + s * SECOND
        const verdicts = [
          await limiter.hit('u', rules, now),
          await limiter.hit('u', rules, now + 1),
          await limiter.hit('u', rules, now + 2),
        ]
        assert.deepEqual(
          verdicts.map((v) => v.allowed),
          [true, true, false],
          `short window starting at ${s} s`,
        )
        assert.equal(verdicts[2]!.rule, 'short')
      }
      // and the long window counted every hit, refused ones included
      const after = await limiter.hit('u', rules, T0 + 120 * SECOND)
      assert.deepEqual([after.allowed, after.rule, after.count], [true, 'long', 37])
    })
  })
}
