/**
 * A token bucket: `ratePerSecond` tokens a second, holding at most `capacity`. Bounds the work
 * one real-time connection can ask for (ids subscribed and unsubscribed), however fast it sends
 * valid frames.
 *
 * @example
 * const bucket = new TokenBucket(1000, 2000)
 * bucket.take(500) // true while there are 500 tokens; false (and nothing taken) otherwise
 */
const monotonicNow = (): number => performance.now()

export class TokenBucket {
  readonly #rate: number
  readonly #capacity: number
  readonly #now: () => number
  #tokens: number
  #at: number

  constructor(ratePerSecond: number, capacity: number, now: () => number = monotonicNow) {
    this.#rate = ratePerSecond / 1000
    this.#capacity = capacity
    this.#now = now
    this.#tokens = capacity
    this.#at = now()
  }

  /** Takes `count` tokens if there are that many; else takes nothing. */
  take(count: number): boolean {
    this.#refill()
    if (count > this.#tokens) return false
    this.#tokens -= count
    return true
  }

  /** Milliseconds until `count` tokens are there (0 if they are now); past capacity: until full. */
  waitMs(count: number): number {
    this.#refill()
    const missing = Math.min(count, this.#capacity) - this.#tokens
    return missing <= 0 ? 0 : Math.ceil(missing / this.#rate)
  }

  /** Whether the bucket is full again: then it is no different from a new one. */
  get full(): boolean {
    this.#refill()
    return this.#tokens >= this.#capacity
  }

  #refill(): void {
    const now = this.#now()
    this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#at) * this.#rate)
    this.#at = now
  }
}
