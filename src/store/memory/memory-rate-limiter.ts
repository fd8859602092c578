import {
  UNLIMITED,
  verdictOf,
  windowOf,
  type RateLimitRule,
  type RateLimitVerdict,
  type RateLimiter,
} from '../rate-limiter.js'

export interface MemoryRateLimiterOptions {
  /**
   * How many windows (one per rule and caller) are kept at most, ~260 B of heap each (26 MB at
   * the default, measured with IPv4 caller keys). Past it the least recently hit window is
   * forgotten: a flood of new callers (an attacker rotating addresses) cannot grow memory, and a
   * caller hitting often enough to reach a limit stays counted, since forgetting it would take
   * this many other callers between two of its hits.
   * @default 100_000
   */
  maxWindows?: number
  /** How often, in the clock's ms, windows that ended are dropped. @default 30_000 */
  sweepIntervalMs?: number
}

const NONE = -1
const FIRST_CAPACITY = 1024

/**
 * Fixed windows, each with its own end, in slots of typed arrays linked in least-recently-hit
 * order, with a Map from `rule\0key` to the slot. The list is ours, not the Map's insertion
 * order: finding a Map's oldest entry walks over every entry deleted before it, which made each
 * hit of a flood of new callers cost ~100 µs once the limiter was full.
 */
export class MemoryRateLimiter implements RateLimiter {
  readonly #maxWindows: number
  readonly #sweepIntervalMs: number
  #nextSweepAt = -Infinity
  /**
   * Rule name → caller key → slot. Two lookups, not one by `${rule}\0${key}`: building and
   * hashing that string per rule per request was most of a hit; a key's hash is computed once.
   */
  readonly #slots = new Map<string, Map<string, number>>()
  #size = 0
  /** Each slot's rule name and key, to forget it. */
  readonly #ruleOf: Array<string | undefined> = []
  readonly #keyOf: Array<string | undefined> = []
  #endsAt = new Float64Array(FIRST_CAPACITY)
  #counts = new Uint32Array(FIRST_CAPACITY)
  #older = new Int32Array(FIRST_CAPACITY)
  #newer = new Int32Array(FIRST_CAPACITY)
  /** The least recently hit window, evicted first. */
  #oldest = NONE
  #newest = NONE
  /** Slots the sweep emptied, reused before new ones. */
  readonly #free: number[] = []
  #allocated = 0

  constructor(options: MemoryRateLimiterOptions = {}) {
    const { maxWindows = 100_000, sweepIntervalMs = 30_000 } = options
    if (!Number.isInteger(maxWindows) || maxWindows < 1) {
      throw new RangeError(`maxWindows must be a positive integer, got ${maxWindows}`)
    }
    this.#maxWindows = maxWindows
    this.#sweepIntervalMs = sweepIntervalMs
  }

  /** Windows held now (ended ones included until they are swept). */
  get size(): number {
    return this.#size
  }

  hit(key: string, rules: readonly RateLimitRule[], now: number): Promise<RateLimitVerdict> {
    return Promise.resolve(this.hitNow(key, rules, now))
  }

  /**
   * hit(), counted and answered in the same tick: a memory store counts a write's hits with it,
   * atomically (MemoryPresenceStore.limitedEndTitles).
   */
  hitNow(key: string, rules: readonly RateLimitRule[], now: number): RateLimitVerdict {
    if (rules.length === 0) return UNLIMITED
    if (now >= this.#nextSweepAt) this.#sweep(now)
    const counts = new Array<number>(rules.length)
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!
      let byKey = this.#slots.get(rule.name)
      if (byKey === undefined) {
        byKey = new Map()
        this.#slots.set(rule.name, byKey)
      }
      let slot = byKey.get(key)
      if (slot === undefined) {
        slot = this.#allocate(rule.name, key, byKey)
        this.#counts[slot] = 0
        this.#endsAt[slot] = windowOf(rule, now).endsAt
      } else {
        this.#unlink(slot)
        if (this.#endsAt[slot]! <= now) {
          this.#counts[slot] = 0
          this.#endsAt[slot] = windowOf(rule, now).endsAt
        }
      }
      this.#append(slot)
      counts[i] = ++this.#counts[slot]!
    }
    return verdictOf(rules, counts, now)
  }

  /** A slot for a new window: a free one, a new one, or the least recently hit one's. */
  #allocate(rule: string, key: string, byKey: Map<string, number>): number {
    let slot = this.#free.pop()
    if (slot === undefined && this.#allocated < this.#maxWindows) {
      slot = this.#allocated++
      if (slot === this.#endsAt.length) this.#grow()
    }
    if (slot === undefined) {
      slot = this.#oldest
      this.#unlink(slot)
      this.#forget(slot)
    }
    this.#ruleOf[slot] = rule
    this.#keyOf[slot] = key
    byKey.set(key, slot)
    this.#size++
    return slot
  }

  #forget(slot: number): void {
    this.#slots.get(this.#ruleOf[slot]!)?.delete(this.#keyOf[slot]!)
    this.#ruleOf[slot] = undefined
    this.#keyOf[slot] = undefined
    this.#size--
  }

  #grow(): void {
    const capacity = Math.min(this.#endsAt.length * 2, this.#maxWindows)
    const grown = <T extends Float64Array | Uint32Array | Int32Array>(from: T, to: T): T => {
      to.set(from)
      return to
    }
    this.#endsAt = grown(this.#endsAt, new Float64Array(capacity))
    this.#counts = grown(this.#counts, new Uint32Array(capacity))
    this.#older = grown(this.#older, new Int32Array(capacity))
    this.#newer = grown(this.#newer, new Int32Array(capacity))
  }

  #unlink(slot: number): void {
    const older = this.#older[slot]!
    const newer = this.#newer[slot]!
    if (older === NONE) this.#oldest = newer
    else this.#newer[older] = newer
    if (newer === NONE) this.#newest = older
    else this.#older[newer] = older
  }

  #append(slot: number): void {
    this.#older[slot] = this.#newest
    this.#newer[slot] = NONE
    if (this.#newest === NONE) this.#oldest = slot
    else this.#newer[this.#newest] = slot
    this.#newest = slot
  }

  #sweep(now: number): void {
    this.#nextSweepAt = now + this.#sweepIntervalMs
    for (let slot = this.#oldest; slot !== NONE;) {
      const next = this.#newer[slot]!
      if (this.#endsAt[slot]! <= now) {
        this.#unlink(slot)
        this.#forget(slot)
        this.#free.push(slot)
      }
      slot = next
    }
  }
}
