import { parseId } from '../memory/user-table.js'

/**
 * Rows of a near cache (NearCache) found by user id without a string-keyed Map: an
 * open-addressed table (linear probing, at most half full) over the id's int64 as two uint32
 * halves, each slot `[hi, lo, row + 1, 0]` in one Uint32Array (a probe reads one cache line), the
 * row an index into the caller's own arrays of what it keeps. A Map of 100,000 string keys cost a
 * read of 50 random ids ~15-21 % of the node's samples (its bucket, entry and key string each a
 * cache miss; docs/performance.md, "The near cache, profiled again").
 *
 * Ids are the canonical decimal text of a positive int64 (UserId): split exactly into their
 * halves (never through a double above 2^53). Text that is not such digits (none is cached)
 * finds nothing and takes no row.
 *
 * Bounded: at `max` rows, a new id takes the row of the clock hand, which moves over the rows in
 * the order they were first given out (the oldest first, as the Map's insertion order was).
 */
import { touchRows } from '../memory/touch-rows.js'

export class NearRows {
  readonly max: number
  /** `[hi, lo, row + 1, 0]` per slot; row + 1 = 0: empty. */
  readonly #slots: Uint32Array
  /** The same slots as int32s (touchRows reads those). */
  readonly #slotWords: Int32Array
  readonly #mask: number
  /** findMany's halves of each id, reused. */
  #keys = new Uint32Array(2 * 64)
  /** What findMany's touches read; kept so that the reads are not dropped. */
  // eslint-disable-next-line no-unused-private-class-members -- written, never read: see above
  #touched = 0
  /** Each row's id halves (to find its slot when it is evicted), and whether it is taken. */
  readonly #rowHi: Uint32Array
  readonly #rowLo: Uint32Array
  readonly #taken: Uint8Array
  /** Rows freed by delete, to be given out again first. */
  readonly #free: Int32Array
  #freeCount = 0
  /** Rows never given out yet start here. */
  #fresh = 0
  /** The next row to evict when every row is taken. */
  #hand = 0
  size = 0
  /** The row evicted by the last insert (its id's values are the caller's to drop), or -1. */
  evicted = -1

  constructor(max: number) {
    this.max = Math.max(1, Math.floor(max))
    let capacity = 8
    while (capacity < this.max * 2) capacity *= 2
    this.#slots = new Uint32Array(capacity * 4)
    this.#slotWords = new Int32Array(this.#slots.buffer)
    this.#mask = capacity - 1
    this.#rowHi = new Uint32Array(this.max)
    this.#rowLo = new Uint32Array(this.max)
    this.#taken = new Uint8Array(this.max)
    this.#free = new Int32Array(this.max)
  }

  /** The row of `id`, or -1. */
  find(id: string): number {
    if (!splitId(id)) return -1
    const slot = this.#slotOf(HALVES[0]!, HALVES[1]!)
    return slot < 0 ? -1 : this.#slots[slot * 4 + 2]! - 1
  }

  /**
   * find() of each of `ids` into `out`, in passes, as the memory store's UserTable.findMany: the
   * ids split and hashed, their home slots read ahead (touchRows: the misses of a read's random
   * ids overlap), then probed.
   */
  findMany(ids: readonly string[], out: Int32Array): void {
    const n = ids.length
    if (this.#keys.length < 2 * n) this.#keys = new Uint32Array(2 * n)
    const keys = this.#keys
    const mask = this.#mask
    for (let i = 0; i < n; i++) {
      out[i] = parseId(ids[i]!, keys, 2 * i) ? hashOf(keys[2 * i]!, keys[2 * i + 1]!) & mask : -1
    }
    this.#touched = touchRows(this.#slotWords, out, n, 4, 2)
    const slots = this.#slots
    for (let i = 0; i < n; i++) {
      let slot = out[i]!
      if (slot < 0) continue
      const hi = keys[2 * i]!
      const lo = keys[2 * i + 1]!
      for (;;) {
        const at = slot * 4
        const row = slots[at + 2]!
        if (row === 0 || (slots[at + 1] === lo && slots[at] === hi)) {
          out[i] = row - 1
          break
        }
        slot = (slot + 1) & mask
      }
    }
  }

  /**
   * The row of `id`, taken for it when it had none (evicting the clock hand's row when every row
   * is taken: `evicted`); -1 when `id` is not an int64's canonical digits.
   */
  insert(id: string): number {
    this.evicted = -1
    if (!splitId(id)) return -1
    const hi = HALVES[0]!
    const lo = HALVES[1]!
    const found = this.#slotOf(hi, lo)
    if (found >= 0) return this.#slots[found * 4 + 2]! - 1
    let row: number
    if (this.#freeCount > 0) row = this.#free[--this.#freeCount]!
    else if (this.#fresh < this.max) row = this.#fresh++
    else {
      row = this.#hand
      this.#hand = row + 1 === this.max ? 0 : row + 1
      this.#remove(this.#slotOf(this.#rowHi[row]!, this.#rowLo[row]!))
      this.evicted = row
    }
    this.#rowHi[row] = hi
    this.#rowLo[row] = lo
    this.#taken[row] = 1
    this.size++
    const slots = this.#slots
    const mask = this.#mask
    let slot = hashOf(hi, lo) & mask
    while (slots[slot * 4 + 2] !== 0) slot = (slot + 1) & mask
    slots[slot * 4] = hi
    slots[slot * 4 + 1] = lo
    slots[slot * 4 + 2] = row + 1
    return row
  }

  /** Frees the row of `id`: returns it, or -1 when `id` had none. */
  delete(id: string): number {
    if (!splitId(id)) return -1
    const slot = this.#slotOf(HALVES[0]!, HALVES[1]!)
    if (slot < 0) return -1
    const row = this.#slots[slot * 4 + 2]! - 1
    this.#remove(slot)
    this.#free[this.#freeCount++] = row
    return row
  }

  /** Every row freed. */
  clear(): void {
    this.#slots.fill(0)
    this.#taken.fill(0)
    this.#freeCount = 0
    this.#fresh = 0
    this.#hand = 0
    this.size = 0
  }

  /** Whether `row` holds an id now. */
  taken(row: number): boolean {
    return this.#taken[row] === 1
  }

  #slotOf(hi: number, lo: number): number {
    const slots = this.#slots
    const mask = this.#mask
    let slot = hashOf(hi, lo) & mask
    for (;;) {
      const at = slot * 4
      const row = slots[at + 2]!
      if (row === 0) return -1
      if (slots[at + 1] === lo && slots[at] === hi) return slot
      slot = (slot + 1) & mask
    }
  }

  /** Empties `slot`, moving back the entries after it that probed past it (no tombstones). */
  #remove(slot: number): void {
    const slots = this.#slots
    const mask = this.#mask
    this.#taken[slots[slot * 4 + 2]! - 1] = 0
    this.size--
    let hole = slot
    let next = (hole + 1) & mask
    while (slots[next * 4 + 2] !== 0) {
      const home = hashOf(slots[next * 4]!, slots[next * 4 + 1]!) & mask
      // the entry at `next` may fill the hole when its home is not within (hole, next]
      const stays = hole <= next ? home > hole && home <= next : home > hole || home <= next
      if (!stays) {
        slots[hole * 4] = slots[next * 4]!
        slots[hole * 4 + 1] = slots[next * 4 + 1]!
        slots[hole * 4 + 2] = slots[next * 4 + 2]!
        hole = next
      }
      next = (next + 1) & mask
    }
    slots[hole * 4 + 2] = 0
  }
}

/** The halves splitId found last: [hi, lo]. */
const HALVES = new Uint32Array(2)

/**
 * Splits `id`, an int64's canonical decimal digits (no sign, no leading zero; "0" too), into
 * its halves exactly (the memory store's parseId, the one reading of an id's halves); false for
 * anything else.
 */
export function splitId(id: string): boolean {
  return parseId(id, HALVES, 0)
}

/** The halves of the id splitId split last (tests). */
export function splitHalves(): [hi: number, lo: number] {
  return [HALVES[0]!, HALVES[1]!]
}

/** A mix of both halves (murmur3's finalizer), so that consecutive ids spread. */
function hashOf(hi: number, lo: number): number {
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}
