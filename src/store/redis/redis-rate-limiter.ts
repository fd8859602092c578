import type { RateLimitRule, RateLimitVerdict, RateLimiter } from '../rate-limiter.js'
import type { RedisKeys } from './keys.js'
import type { RedisConnection } from './redis-connection.js'

/**
 * Fixed windows counted in Redis, so every node of a fleet shares one count per caller. The
 * window index comes from `now` (like MemoryRateLimiter), so windows line up across nodes and
 * tests can drive them with a manual clock; one Lua call counts every rule of a hit at once.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys

  constructor(connection: RedisConnection, keys: RedisKeys) {
    this.#connection = connection
    this.#keys = keys
  }

  hit(key: string, rules: readonly RateLimitRule[], now: number): Promise<RateLimitVerdict> {
    if (rules.length === 0) {
      return Promise.resolve({
        allowed: true,
        rule: '',
        count: 0,
        max: 0,
        windowMs: 0,
        retryAfterMs: 0,
      })
    }
    const windowKeys = rules.map((r) =>
      this.#keys.rateWindow(key, r.name, Math.floor(now / r.windowMs)),
    )
    return this.#connection.run(async () => {
      const counts = await this.#connection.client.presencedRateLimit(
        String(rules.length),
        ...windowKeys,
        ...rules.map((r) => String(r.windowMs)),
      )
      let verdict: RateLimitVerdict | undefined
      rules.forEach((rule, i) => {
        const count = counts[i]!
        const current: RateLimitVerdict = {
          allowed: count <= rule.max,
          rule: rule.name,
          count,
          max: rule.max,
          windowMs: rule.windowMs,
          retryAfterMs: rule.windowMs - (now % rule.windowMs),
        }
        // the first rule that refuses, else the first rule
        if (verdict === undefined || (!current.allowed && verdict.allowed)) verdict = current
      })
      return verdict!
    })
  }
}
