import { fail, type PresenceError } from '../core/errors.js'
import type { RateLimiter, RateLimitRule } from '../store/rate-limiter.js'
import { clientOf } from './client-address.js'
import type { Clock } from './clock.js'

export interface AuthFailureSettings {
  /** Guessed credentials a client address may send per window before it is refused. */
  max: number
  windowMs: number
}

export interface AuthFailuresDeps {
  limiter: RateLimiter
  clock: Clock
  settings: AuthFailureSettings
  /** Tells the other nodes that `address` is refused until `until` (the change bus). */
  announce?: (address: string, until: number) => Promise<void>
  /** A request refused by this limit (metrics). */
  refused?: () => void
  /** `address` has just crossed the limit (a warning in the log): once per window, fleet-wide. */
  crossed?: (address: string, settings: AuthFailureSettings) => void
  onError?: (error: unknown) => void
}

/** Blocked addresses kept in memory at most; the ones ending first go beyond it. */
const MAX_BLOCKED = 100_000

const RULE = 'auth-failures'

/**
 * The limit on guessed credentials: each client address may present at most `max` credentials
 * that are no issued one (an unknown key, a bad signature, a malformed token) per window. Once
 * it has, every credential that address presents is refused with RATE_LIMITED until the window
 * ends, the right ones too: otherwise a guesser would still tell a right guess from a wrong one.
 *
 * Addresses are counted as `clientOf` groups them (an IPv6 /64 as one).
 * Failures are counted by the shared RateLimiter (in Redis in fleet mode: one round trip per
 * failure, the budget shared by the fleet). An address past the limit is kept in memory and
 * announced to the other nodes, so a credential that verifies costs no round trip: `check` is a
 * Map lookup, and nothing when no address is refused.
 */
export class AuthFailures {
  readonly #deps: AuthFailuresDeps
  readonly #rules: readonly RateLimitRule[]
  /** client address → when its refusal ends (epoch ms) */
  readonly #blocked = new Map<string, number>()

  constructor(deps: AuthFailuresDeps) {
    this.#deps = deps
    this.#rules = [{ name: RULE, max: deps.settings.max, windowMs: deps.settings.windowMs }]
  }

  /** Throws RATE_LIMITED while `address` is refused; no I/O. */
  check(address: string): void {
    if (this.#blocked.size === 0) return
    address = clientOf(address)
    const until = this.#blocked.get(address)
    if (until === undefined) return
    const wait = until - this.#deps.clock.now()
    if (wait <= 0) return void this.#blocked.delete(address)
    throw this.#refusal(wait)
  }

  /**
   * Counts one guessed credential from `address`. Returns while the address is within the limit
   * (the caller refuses the credential as it would anyway); the `max`-th guess of a window
   * refuses the address from then on, and a guess past it (counted by a node that had not heard
   * yet) throws RATE_LIMITED.
   */
  async count(address: string): Promise<void> {
    address = clientOf(address)
    const now = this.#deps.clock.now()
    const verdict = await this.#deps.limiter.hit(`${RULE}:${address}`, this.#rules, now)
    if (verdict.count < verdict.max) return
    const until = now + verdict.retryAfterMs
    this.remember(address, until)
    // the one hit that reached the limit, on whichever node counted it
    if (verdict.count === verdict.max) {
      this.#deps.crossed?.(address, this.#deps.settings)
      this.#deps.announce?.(address, until).catch((error) => this.#deps.onError?.(error))
    }
    if (!verdict.allowed) throw this.#refusal(verdict.retryAfterMs)
  }

  /** `address` is refused until `until` (epoch ms): counted here, or heard from another node. */
  remember(address: string, until: number): void {
    address = clientOf(address)
    const now = this.#deps.clock.now()
    if (until <= now) return
    if (this.#blocked.size >= MAX_BLOCKED && !this.#blocked.has(address)) this.#prune(now)
    this.#blocked.set(address, until)
  }

  /** Addresses refused now (for tests and metrics). */
  get blocked(): number {
    return this.#blocked.size
  }

  #prune(now: number): void {
    for (const [address, until] of this.#blocked) {
      if (until <= now) this.#blocked.delete(address)
    }
    // still full (a flood of addresses in one window): the oldest entries go first
    const excess = this.#blocked.size - MAX_BLOCKED + 1
    if (excess <= 0) return
    let dropped = 0
    for (const address of this.#blocked.keys()) {
      if (dropped++ >= excess) break
      this.#blocked.delete(address)
    }
  }

  #refusal(waitMs: number): PresenceError {
    this.#deps.refused?.()
    const { max, windowMs } = this.#deps.settings
    return fail(
      'RATE_LIMITED',
      'Too many failed authentication attempts from this address; try again later.',
      {
        retryAfter: Math.max(1, Math.ceil(waitMs / 1000)),
        rateLimit: { rule: RULE, count: max + 1, max, windowMs },
      },
    )
  }
}
