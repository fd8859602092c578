/** A fixed-window limit: at most `max` hits per `windowMs`. */
export interface RateLimitRule {
  /** Reported back when this rule refuses, e.g. `burst` or `sustain`. */
  name: string
  max: number
  windowMs: number
}

export interface RateLimitVerdict {
  allowed: boolean
  /** The rule that refused, else the most constrained one. */
  rule: string
  /** Hits in that rule's current window, this one included. */
  count: number
  max: number
  windowMs: number
  /** When refused: how long until the window resets. */
  retryAfterMs: number
}

/**
 * Counts hits per key against one or more rules. Shared by every node in fleet mode
 * (RedisRateLimiter); MemoryRateLimiter is the single-process default.
 */
export interface RateLimiter {
  hit(key: string, rules: readonly RateLimitRule[], now: number): Promise<RateLimitVerdict>
}
