import type { UserId } from '../../core/user-id.js'
import {
  UNLIMITED,
  verdictOf,
  windowOf,
  type RateLimitHit,
  type RateLimitRule,
  type RateLimitVerdict,
  type RateLimiter,
} from '../rate-limiter.js'
import type { RedisKeys } from './keys.js'
import type { RedisConnection } from './redis-connection.js'

/**
 * Fixed windows counted in Redis, so every node of a fleet shares one count per caller. The
 * window index comes from `now` (like MemoryRateLimiter), so windows line up across nodes and
 * tests can drive them with a manual clock. A hit is counted in the write of the tick's MGET
 * (RedisConnection.besideHits): on a single Redis as `SET <window> 0 PX <2 windows> NX` and
 * `INCRBY <window> <n>` per rule window, once for the n hits of the write that fall in it (a
 * busy caller's, the read of every request from one address), each hit answered the count it
 * would have had alone; on a cluster by limit.lua (which RedisPresenceStore's limited heartbeat
 * shares: see `countsIn`), both giving a window's counter the expiry of two windows from its
 * first hit. Each window is its own key with its own expiry, so memory follows the
 * callers of the last two windows of each rule.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #connection: RedisConnection
  readonly #keys: RedisKeys

  constructor(connection: RedisConnection, keys: RedisKeys) {
    this.#connection = connection
    this.#keys = keys
  }

  hit(
    key: string,
    rules: readonly RateLimitRule[],
    now: number,
    near?: UserId,
  ): Promise<RateLimitVerdict> {
    if (rules.length === 0) return Promise.resolve(UNLIMITED)
    const { windows, lengths } = windowArgs(this.#keys, { key, rules, near }, now)
    const connection = this.#connection
    // in the write of this tick's MGET: a read's rate limit adds no round trip
    return connection.runThen(connection.besideHits(windows, lengths), verdictOfCounts, rules, now)
  }

  /**
   * Whether this limiter counts on `connection` under `keys`: then a script there may count its
   * hits itself (limit.lua, with `windowArgs`), in the same budget.
   */
  countsIn(connection: RedisConnection, keys: RedisKeys): boolean {
    return connection === this.#connection && keys.prefix === this.#keys.prefix
  }
}

/** verdictOf with the counts first, as RedisConnection.runThen hands them. */
function verdictOfCounts(
  counts: number[],
  rules: readonly RateLimitRule[],
  now: number,
): RateLimitVerdict {
  return verdictOf(rules, counts, now)
}

/**
 * A hit's window counters and their lengths in ms, as limit.lua takes them, at `now`: its `also`
 * budget's after its own (rulesOf's order).
 */
export function windowArgs(
  keys: RedisKeys,
  hit: RateLimitHit,
  now: number,
): { windows: string[]; lengths: string[] } {
  const windows: string[] = []
  const lengths: string[] = []
  for (const rule of hit.rules) {
    windows.push(keys.rateWindow(hit.key, rule.name, windowOf(rule, now).index, hit.near))
    lengths.push(String(rule.windowMs))
  }
  // a second budget of the same hit (RateLimitHit.also): its windows after, in the same slot
  for (const rule of hit.also?.rules ?? []) {
    windows.push(keys.rateWindow(hit.also!.key, rule.name, windowOf(rule, now).index, hit.near))
    lengths.push(String(rule.windowMs))
  }
  return { windows, lengths }
}
