import type { UserId } from '../core/user-id.js'
/**
 * A fixed-window limit: at most `max` hits per `windowMs`. Windows are aligned on the clock
 * (`[k·windowMs, (k+1)·windowMs)`), so every node of a fleet agrees where one ends.
 */
export interface RateLimitRule {
  /** Reported back when this rule refuses, e.g. `burst` or `sustain`. */
  name: string
  max: number
  windowMs: number
}

/** One hit to count: whose budget (`key`) against which rules (RateLimits builds them). */
export interface RateLimitHit {
  key: string
  rules: readonly RateLimitRule[]
  /**
   * The user this budget belongs to, when it is one user's: a store may keep its counters beside
   * that user's presence (on a Redis Cluster, in the same slot), so that a write of the user's
   * own presence counts the hit in the same step. A key always comes with the same `near`.
   */
  near?: UserId
  /**
   * Another budget the same hit spends, counted with it in the same step, its rules after this
   * hit's (and with the same `near`, so in the same slot on a cluster): a user's budget over all
   * titles beside each title's own (RateLimits.titleWriteHit). Every rule of both counts, refused
   * or not; the verdict is as one hit's over both lists of rules (rulesOf).
   */
  also?: { key: string; rules: readonly RateLimitRule[] }
}

/** Every rule `hit` counts: its own, then its `also` budget's. */
export function rulesOf(hit: RateLimitHit): readonly RateLimitRule[] {
  return hit.also === undefined ? hit.rules : [...hit.rules, ...hit.also.rules]
}

/**
 * `hit` counted at once by a limiter that counts in the same tick (hitNow), its `also` budget
 * too: the verdict verdictOf gives over both lists of rules.
 */
export function hitAllNow(
  limiter: Required<Pick<RateLimiter, 'hitNow'>>,
  hit: RateLimitHit,
  now: number,
): RateLimitVerdict {
  const own = limiter.hitNow(hit.key, hit.rules, now)
  const also = hit.also
  return also === undefined ? own : worseOf(own, limiter.hitNow(also.key, also.rules, now))
}

/**
 * Of two verdicts of one hit (`first`'s rules before `second`'s), the one verdictOf would give
 * over both lists: the refusal that waits longest (the first on a tie), else `first`.
 */
export function worseOf(first: RateLimitVerdict, second: RateLimitVerdict): RateLimitVerdict {
  return !second.allowed && (first.allowed || second.retryAfterMs > first.retryAfterMs)
    ? second
    : first
}

/**
 * One hit per title for a write that learns its titles as it runs (an Xbox DELETE ending whatever
 * a device runs): the hit of title `t` is `{ key: key + t, rules, near }` (`titleHit`), and
 * `idleTitleId`'s is counted when the write finds no title, so a write that does nothing still
 * spends a budget. A store that counts it in its own step builds the same window keys.
 */
export interface TitleBudget {
  /** The hit key before the title id. */
  key: string
  rules: readonly RateLimitRule[]
  near?: UserId
  /** The title whose hit is counted when no title is found. */
  idleTitleId: string
}

/** The hit `budget` counts for `titleId`. */
export function titleHit(budget: TitleBudget, titleId: string): RateLimitHit {
  const hit: RateLimitHit = { key: budget.key + titleId, rules: budget.rules }
  if (budget.near !== undefined) hit.near = budget.near
  return hit
}

export interface RateLimitVerdict {
  allowed: boolean
  /**
   * When refused: the refusing rule whose window ends last (the first of them on a tie), so that
   * `retryAfterMs` is the wait after which every rule allows again. When allowed: the first rule.
   */
  rule: string
  /** Hits in that rule's current window, this one included. */
  count: number
  max: number
  windowMs: number
  /** How long until that rule's window ends. */
  retryAfterMs: number
}

/**
 * Counts hits per key against one or more rules. Every hit counts against every rule, refused
 * or not (a client hammering through a burst limit also spends its sustained budget). Shared by
 * every node in fleet mode (RedisRateLimiter); MemoryRateLimiter is the single-process default.
 * `src/store/contract/rate-limiter.contract.ts` is the behaviour both must have.
 *
 * @example
 * const verdict = await limiter.hit(`xbox:${userId}:${titleId}`, [
 *   { name: 'burst', max: 3, windowMs: 15_000 },
 *   { name: 'sustain', max: 30, windowMs: 300_000 },
 * ], clock.now())
 * if (!verdict.allowed) reply.header('retry-after', Math.ceil(verdict.retryAfterMs / 1000))
 */
export interface RateLimiter {
  hit(
    key: string,
    rules: readonly RateLimitRule[],
    now: number,
    /** RateLimitHit's `near`: where the counters may be kept. */
    near?: UserId,
  ): Promise<RateLimitVerdict>
  /**
   * Optional: hit(), counted and answered in the same tick (MemoryRateLimiter), for a request
   * whose other steps are done at once too (RateLimits.spendNow).
   */
  hitNow?(key: string, rules: readonly RateLimitRule[], now: number): RateLimitVerdict
}

/** The verdict of a hit with no rules: nothing limits it. */
export const UNLIMITED: RateLimitVerdict = Object.freeze({
  allowed: true,
  rule: '',
  count: 0,
  max: 0,
  windowMs: 0,
  retryAfterMs: 0,
})

/** Where `now` falls for `rule`: the window's index on the clock and when it ends. */
export function windowOf(rule: RateLimitRule, now: number): { index: number; endsAt: number } {
  const index = windowIndexOf(rule, now)
  return { index, endsAt: (index + 1) * rule.windowMs }
}

/** The index of `rule`'s window at `now` (windowOf without its end). */
export function windowIndexOf(rule: RateLimitRule, now: number): number {
  return Math.floor(now / rule.windowMs)
}

/**
 * One verdict from the counts of each rule's current window (`counts[i]` for `rules[i]`, this
 * hit included): the adapters differ in where they count, never in what they answer.
 */
export function verdictOf(
  rules: readonly RateLimitRule[],
  counts: ArrayLike<number>,
  now: number,
): RateLimitVerdict {
  let verdict: RateLimitVerdict = UNLIMITED
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!
    const count = counts[i]!
    const allowed = count <= rule.max
    const retryAfterMs = windowOf(rule, now).endsAt - now
    const better =
      i === 0 ||
      (!allowed && verdict.allowed) ||
      (!allowed && !verdict.allowed && retryAfterMs > verdict.retryAfterMs)
    if (better) {
      verdict = {
        allowed,
        rule: rule.name,
        count,
        max: rule.max,
        windowMs: rule.windowMs,
        retryAfterMs,
      }
    }
  }
  return verdict
}
