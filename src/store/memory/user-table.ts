import type { UserId } from '../../core/user-id.js'
import { grown, nextCapacity } from './grown.js'

const NONE = -1
const TWO_32 = 2 ** 32
const DECIMAL = /^(?:0|[1-9][0-9]{0,19})$/
const MAX_UINT64 = 2n ** 64n - 1n

/**
 * One slot per user ever seen, keyed by the int64 id without keeping its string: the id is held
 * as two uint32 halves and found through an open-addressing hash over typed arrays. A Map of
 * id strings would cost ~100 bytes per user; this costs ~30. Per-user columns ride along:
 * lastOnline (NaN = never) and the first of the user's sessions (-1 = none).
 * Slots are never freed: a user's lastOnline is durable.
 */
export class UserTable {
  #hi = new Uint32Array(16)
  #lo = new Uint32Array(16)
  #lastOnline = new Float64Array(16)
  #head = new Int32Array(16)
  /** slot + 1 per bucket, 0 = empty; the length is a power of two. */
  #buckets = new Int32Array(32)
  #count = 0
  // the halves of the id parsed last, to avoid allocating a pair per lookup
  #idHi = 0
  #idLo = 0

  get size(): number {
    return this.#count
  }

  /** The user's slot, or -1 if unknown (including ids that are not canonical decimals). */
  find(id: string): number {
    if (!this.#split(id)) return NONE
    return this.#buckets[this.#bucketOf(this.#idHi, this.#idLo)]! - 1
  }

  /** The user's slot, created if new; -1 if `id` is not a canonical non-negative decimal. */
  findOrAdd(id: string): number {
    if (!this.#split(id)) return NONE
    const hi = this.#idHi
    const lo = this.#idLo
    let bucket = this.#bucketOf(hi, lo)
    const found = this.#buckets[bucket]! - 1
    if (found !== NONE) return found
    // keep the load under 0.6 so probes stay short, for misses too
    if ((this.#count + 1) * 5 > this.#buckets.length * 3) {
      this.#rehash(this.#buckets.length * 2)
      bucket = this.#bucketOf(hi, lo)
    }
    const slot = this.#count++
    if (slot >= this.#hi.length) this.#growSlots(slot + 1)
    this.#hi[slot] = hi
    this.#lo[slot] = lo
    this.#lastOnline[slot] = Number.NaN
    this.#head[slot] = NONE
    this.#buckets[bucket] = slot + 1
    return slot
  }

  idOf(slot: number): UserId {
    const hi = this.#hi[slot]!
    const lo = this.#lo[slot]!
    if (hi < 0x200000) return String(hi * TWO_32 + lo) as UserId
    return ((BigInt(hi) << 32n) | BigInt(lo)).toString() as UserId
  }

  lastOnline(slot: number): number | undefined {
    const at = this.#lastOnline[slot]!
    return Number.isNaN(at) ? undefined : at
  }

  setLastOnline(slot: number, at: number): void {
    this.#lastOnline[slot] = at
  }

  /** The user's first session slot, -1 if none. */
  head(slot: number): number {
    return this.#head[slot]!
  }

  setHead(slot: number, session: number): void {
    this.#head[slot] = session
  }

  #split(id: string): boolean {
    if (id.length <= 15) {
      // up to 15 digits the number is exact
      if (!DECIMAL.test(id)) return false
      const n = Number(id)
      this.#idHi = Math.floor(n / TWO_32)
      this.#idLo = n >>> 0
      return true
    }
    if (!DECIMAL.test(id)) return false
    const n = BigInt(id)
    if (n > MAX_UINT64) return false
    this.#idHi = Number(n >> 32n)
    this.#idLo = Number(n & 0xffffffffn)
    return true
  }

  /** The bucket holding (hi, lo), or the empty bucket where it would go. */
  #bucketOf(hi: number, lo: number): number {
    const buckets = this.#buckets
    const mask = buckets.length - 1
    let bucket = hash(hi, lo) & mask
    for (;;) {
      const slot = buckets[bucket]! - 1
      if (slot === NONE || (this.#lo[slot] === lo && this.#hi[slot] === hi)) return bucket
      bucket = (bucket + 1) & mask
    }
  }

  #growSlots(needed: number): void {
    const capacity = nextCapacity(this.#hi.length, needed)
    this.#hi = grown(this.#hi, capacity)
    this.#lo = grown(this.#lo, capacity)
    this.#lastOnline = grown(this.#lastOnline, capacity)
    this.#head = grown(this.#head, capacity)
  }

  #rehash(size: number): void {
    this.#buckets = new Int32Array(size)
    const mask = size - 1
    for (let slot = 0; slot < this.#count; slot++) {
      let bucket = hash(this.#hi[slot]!, this.#lo[slot]!) & mask
      while (this.#buckets[bucket] !== 0) bucket = (bucket + 1) & mask
      this.#buckets[bucket] = slot + 1
    }
  }
}

function hash(hi: number, lo: number): number {
  let h = Math.imul(lo, 0x9e3779b1) ^ Math.imul(hi + 0x7f4a7c15, 0x85ebca77)
  h ^= h >>> 15
  h = Math.imul(h, 0x2c1b3c6d)
  return h ^ (h >>> 12)
}
