import {
  UNLIMITED,
  verdictOf,
  windowOf,
  type RateLimitRule,
  type RateLimitVerdict,
  type RateLimiter,
} from '../rate-limiter.js'
import type { RedisKeys } from './keys.js'
import type { RedisConnection } from './redis-connection.js'

/**
 * Fixed windows counted in Redis, so every node of a fleet shares one count per caller. The
 * window index comes from `now` (like MemoryRateLimiter), so windows line up across nodes and
 * tests can drive them with a manual clock; one Lua call counts every rule of a hit at once.
 * Each window is its own key with its own expiry, so memory follows the callers of the last
 * two windows of each rule.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys

  constructor(connection: RedisConnection, keys: RedisKeys) {
    this.#connection = connection
    this.#keys = keys
  }

  hit(key: string, rules: readonly RateLimitRule[], now: number): Promise<RateLimitVerdict> {
    if (rules.length === 0) return Promise.resolve(UNLIMITED)
    const windowKeys = rules.map((r) => this.#keys.rateWindow(key, r.name, windowOf(r, now).index))
    const args = [String(rules.length), ...windowKeys, ...rules.map((r) => String(r.windowMs))]
    return this.#connection.run(async () => {
      // in the write of this tick's MGET: a read's rate limit adds no round trip
      const counts = await this.#connection.beside<number[]>(
        (pipeline) => pipeline.presencedRateLimit(...args),
        (client) => client.presencedRateLimit(...args),
      )
      return verdictOf(rules, counts, now)
    })
  }
}
