import { isStoreUnavailable, type PresenceError } from '../core/errors.js'
import type { UserId } from '../core/user-id.js'
import type { RateLimiter, RateLimitRule, RateLimitVerdict } from '../store/rate-limiter.js'

/**
 * The shared limiter, with this process's own count standing in while the shared store answers
 * but refuses writes (Redis full, or unable to persist): every hit is a write, so without it a
 * store that still serves reads would refuse every request, reads and guessed credentials alike.
 * The same rules hold meanwhile, each node counting its own budget. An unreachable store is
 * still its error (a 503): nothing then tells a node how much of the budget the others spent.
 */
export class FallbackRateLimiter implements RateLimiter {
  readonly #shared: RateLimiter
  readonly #local: RateLimiter

  constructor(shared: RateLimiter, local: RateLimiter) {
    this.#shared = shared
    this.#local = local
  }

  async hit(
    key: string,
    rules: readonly RateLimitRule[],
    now: number,
    near?: UserId,
  ): Promise<RateLimitVerdict> {
    try {
      return await this.#shared.hit(key, rules, now, near)
    } catch (error) {
      if (!refusesWrites(error)) throw error
      return this.#local.hit(key, rules, now, near)
    }
  }
}

function refusesWrites(error: unknown): boolean {
  return isStoreUnavailable(error) && (error as PresenceError).details.refusesWrites === true
}
