import type { RateLimitRule, RateLimitVerdict, RateLimiter } from '../rate-limiter.js'

interface Window {
  start: number
  count: number
}

/** Fixed windows in a Map; windows that ended are dropped as they are met and on a periodic prune. */
export class MemoryRateLimiter implements RateLimiter {
  readonly #windows = new Map<string, Window>()
  #lastPrune = 0

  hit(key: string, rules: readonly RateLimitRule[], now: number): Promise<RateLimitVerdict> {
    this.#prune(now, rules)
    let verdict: RateLimitVerdict | undefined
    for (const rule of rules) {
      const id = `${rule.name}\u0000${key}`
      let window = this.#windows.get(id)
      if (!window || now - window.start >= rule.windowMs) {
        window = { start: now - (now % rule.windowMs), count: 0 }
        this.#windows.set(id, window)
      }
      window.count++
      const current: RateLimitVerdict = {
        allowed: window.count <= rule.max,
        rule: rule.name,
        count: window.count,
        max: rule.max,
        windowMs: rule.windowMs,
        retryAfterMs: window.start + rule.windowMs - now,
      }
      if (!current.allowed && (verdict === undefined || verdict.allowed)) verdict = current
      else if (verdict === undefined) verdict = current
    }
    return Promise.resolve(
      verdict ?? { allowed: true, rule: '', count: 0, max: 0, windowMs: 0, retryAfterMs: 0 },
    )
  }

  #prune(now: number, rules: readonly RateLimitRule[]): void {
    const longest = Math.max(0, ...rules.map((r) => r.windowMs))
    if (now - this.#lastPrune < 60_000) return
    this.#lastPrune = now
    for (const [id, window] of this.#windows) {
      if (now - window.start >= Math.max(longest, 60_000) * 2) this.#windows.delete(id)
    }
  }
}
