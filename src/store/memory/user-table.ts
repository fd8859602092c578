import type { UserId } from '../../core/user-id.js'
import { grownBuffer, nextCapacity } from './grown.js'
import { touchRows } from './touch-rows.js'

const NONE = -1
const TWO_32 = 2 ** 32

/*
 * A user row is 24 bytes in one buffer, so everything a read needs of a user comes with one
 * cache line (at most two), and what a read of presence needs, its first 16 bytes, spans two
 * in one row of eight only:
 *   float64 word 0       lastOnline, NaN = never
 *   int32 words 2, 3     the id's high 32 bits, the first of the user's sessions (-1 = none)
 *   int32 word 4         the id's low 32 bits
 *   int32 word 5         unused (alignment)
 */
const ROW_BYTES = 24
const ROW_F64 = ROW_BYTES / 8
const ROW_I32 = ROW_BYTES / 4
const HI = 2
const HEAD = 3
const LO = 4

/**
 * One row per user ever seen, keyed by the int64 id without keeping its string: the id is held
 * as two uint32 halves and found through an open-addressing hash whose buckets hold the id's
 * low half beside the row, so a probe compares ids without touching other users' rows; the row
 * confirms the high half. Finding an id allocates nothing: its digits are read in place.
 * Rows are never freed or moved: a user's lastOnline is durable, and callers keep row numbers.
 */
export class UserTable {
  #rows = new ArrayBuffer(16 * ROW_BYTES)
  #f64 = new Float64Array(this.#rows)
  #u32 = new Uint32Array(this.#rows)
  #i32 = new Int32Array(this.#rows)
  #capacity = 16
  /** Per bucket two int32: the id's low half and row + 1 (0 = empty); a power of two of them. */
  #buckets = new Int32Array(2 * 32)
  #count = 0
  /** The halves of the id located last: read in place, not returned as a pair. */
  readonly #key = new Uint32Array(2)
  /** findMany's halves of each id, reused. */
  #keys = new Uint32Array(2 * 64)
  /** What findMany's touches and headsOf read; kept so that the reads are not dropped. */
  // eslint-disable-next-line no-unused-private-class-members -- written, never read: see above
  #touched = 0

  get size(): number {
    return this.#count
  }

  /** The user's row, or -1 if unknown (including ids that are not canonical decimals). */
  find(id: string): number {
    const bucket = this.#locate(id)
    return bucket === NONE ? NONE : this.#buckets[bucket + 1]! - 1
  }

  /** The user's row, created if new; -1 if `id` is not a canonical decimal below 2^64. */
  findOrAdd(id: string): number {
    let bucket = this.#locate(id)
    if (bucket === NONE) return NONE
    const found = this.#buckets[bucket + 1]! - 1
    if (found !== NONE) return found
    // keep the load under 0.6 so probes stay short, for misses too
    const bucketCount = this.#buckets.length >> 1
    if ((this.#count + 1) * 5 > bucketCount * 3) {
      this.#rehash(bucketCount * 2)
      bucket = this.#locate(id)
    }
    const row = this.#count++
    if (row >= this.#capacity) this.#grow(row + 1)
    const hi = this.#key[0]!
    const lo = this.#key[1]!
    this.#f64[row * ROW_F64] = Number.NaN
    this.#u32[row * ROW_I32 + HI] = hi
    this.#u32[row * ROW_I32 + LO] = lo
    this.#i32[row * ROW_I32 + HEAD] = NONE
    this.#buckets[bucket] = lo | 0
    this.#buckets[bucket + 1] = row + 1
    return row
  }

  idOf(row: number): UserId {
    const hi = this.#u32[row * ROW_I32 + HI]!
    const lo = this.#u32[row * ROW_I32 + LO]!
    if (hi < 0x200000) return String(hi * TWO_32 + lo) as UserId
    return ((BigInt(hi) << 32n) | BigInt(lo)).toString() as UserId
  }

  lastOnline(row: number): number | undefined {
    const at = this.#f64[row * ROW_F64]!
    return at === at ? at : undefined
  }

  setLastOnline(row: number, at: number): void {
    this.#f64[row * ROW_F64] = at
  }

  /** The user's first session slot, -1 if none. */
  head(row: number): number {
    return this.#i32[row * ROW_I32 + HEAD]!
  }

  setHead(row: number, session: number): void {
    this.#i32[row * ROW_I32 + HEAD] = session
  }

  /**
   * find() of many ids at once, their rows into `out` (-1: unknown). Done in passes, so that
   * the cache misses of different ids overlap instead of each waiting for the one before:
   * parse and hash every id, bring every id's bucket into cache (touchRows), probe them, bring
   * every row into cache, then confirm every row by the high half. At a million users the
   * touches take the misses; the probe and the check then run on lines in cache.
   * `values`, when given, holds `Number(ids[i])` for each id, all below 2^53: the halves are
   * taken from it, the digits not read again (callgrind: 470 instructions an id down to 240).
   */
  findMany(ids: readonly string[], out: Int32Array, values?: readonly number[]): void {
    const n = ids.length
    if (this.#keys.length < 2 * n) this.#keys = new Uint32Array(2 * n)
    const keys = this.#keys
    const buckets = this.#buckets
    const mask = (buckets.length >> 1) - 1
    if (values === undefined) {
      for (let i = 0; i < n; i++) {
        out[i] = parseId(ids[i]!, keys, 2 * i) ? hash(keys[2 * i]!, keys[2 * i + 1]!) & mask : NONE
      }
    } else {
      for (let i = 0; i < n; i++) {
        const value = values[i]!
        const hi = Math.floor(value / TWO_32)
        const lo = value - hi * TWO_32
        keys[2 * i] = hi
        keys[2 * i + 1] = lo
        out[i] = hash(hi, lo) & mask
      }
    }
    this.#touched = touchRows(buckets, out, n, 2, 1)
    for (let i = 0; i < n; i++) {
      let bucket = out[i]!
      if (bucket === NONE) continue
      const low = keys[2 * i + 1]! | 0
      for (;;) {
        const at = bucket << 1
        const row = buckets[at + 1]! - 1
        if (row === NONE || buckets[at] === low) {
          out[i] = row
          break
        }
        bucket = (bucket + 1) & mask
      }
    }
    this.#touched = touchRows(this.#i32, out, n, ROW_I32, HI)
    const u32 = this.#u32
    for (let i = 0; i < n; i++) {
      const row = out[i]!
      // rare: another id with the same low half; the full probe decides
      if (row !== NONE && u32[row * ROW_I32 + HI] !== keys[2 * i]) out[i] = this.find(ids[i]!)
    }
  }

  /**
   * The first session of each of the first `n` rows in `rows` into `heads` (-1: an unknown row,
   * or no session), reading each row's first word too: a row may span two cache lines, and a
   * read of the user then finds both in cache.
   */
  headsOf(rows: Int32Array, n: number, heads: Int32Array): void {
    const i32 = this.#i32
    let firsts = 0
    for (let i = 0; i < n; i++) {
      const row = rows[i]!
      if (row === NONE) {
        heads[i] = NONE
        continue
      }
      firsts |= i32[row * ROW_I32]!
      heads[i] = i32[row * ROW_I32 + HEAD]!
    }
    this.#touched = firsts
  }

  /**
   * The bucket (index of its first int32) holding `id`, or the empty one where it would go;
   * -1 if `id` is not a canonical decimal below 2^64. Leaves the id's halves in #key.
   */
  #locate(id: string): number {
    if (!parseId(id, this.#key, 0)) return NONE
    const hi = this.#key[0]!
    const lo = this.#key[1]!
    const buckets = this.#buckets
    const mask = (buckets.length >> 1) - 1
    const low = lo | 0
    let bucket = hash(hi, lo) & mask
    for (;;) {
      const at = bucket << 1
      const row = buckets[at + 1]! - 1
      if (row === NONE) return at
      if (buckets[at] === low && this.#u32[row * ROW_I32 + HI] === hi) return at
      bucket = (bucket + 1) & mask
    }
  }

  #grow(needed: number): void {
    this.#capacity = nextCapacity(this.#capacity, needed)
    this.#rows = grownBuffer(this.#rows, this.#capacity * ROW_BYTES)
    this.#f64 = new Float64Array(this.#rows)
    this.#u32 = new Uint32Array(this.#rows)
    this.#i32 = new Int32Array(this.#rows)
  }

  /** Reinserts every row into `bucketCount` (a power of two) new buckets. */
  #rehash(bucketCount: number): void {
    const buckets = new Int32Array(bucketCount * 2)
    const mask = bucketCount - 1
    for (let row = 0; row < this.#count; row++) {
      const hi = this.#u32[row * ROW_I32 + HI]!
      const lo = this.#u32[row * ROW_I32 + LO]!
      let bucket = hash(hi, lo) & mask
      while (buckets[(bucket << 1) + 1] !== 0) bucket = (bucket + 1) & mask
      buckets[bucket << 1] = lo | 0
      buckets[(bucket << 1) + 1] = row + 1
    }
    this.#buckets = buckets
  }
}

/**
 * Parses a canonical decimal below 2^64 ('0' or no leading zero, digits only, at most 20) into
 * its high and low 32 bits at `halves[at]` and `halves[at + 1]`; false for anything else.
 */
export function parseId(id: string, halves: Uint32Array, at: number): boolean {
  const length = id.length
  if (length === 0 || length > 20) return false
  const first = id.charCodeAt(0) - 48
  if (first < 0 || first > 9 || (first === 0 && length > 1)) return false
  let hi = 0
  let lo = first
  if (length <= 15) {
    // below 10^15 < 2^53, a double holds the id exactly
    for (let i = 1; i < length; i++) {
      const digit = id.charCodeAt(i) - 48
      if (digit < 0 || digit > 9) return false
      lo = lo * 10 + digit
    }
    hi = Math.floor(lo / TWO_32)
    lo -= hi * TWO_32
  } else {
    // longer ids in two halves: each step stays below 2^37, exact
    for (let i = 1; i < length; i++) {
      const digit = id.charCodeAt(i) - 48
      if (digit < 0 || digit > 9) return false
      const low = lo * 10 + digit
      const carry = Math.floor(low / TWO_32)
      lo = low - carry * TWO_32
      hi = hi * 10 + carry
    }
    if (hi >= TWO_32) return false
  }
  halves[at] = hi
  halves[at + 1] = lo
  return true
}

function hash(hi: number, lo: number): number {
  let h = Math.imul(lo, 0x9e3779b1) ^ Math.imul(hi + 0x7f4a7c15, 0x85ebca77)
  h ^= h >>> 15
  h = Math.imul(h, 0x2c1b3c6d)
  return h ^ (h >>> 12)
}
