import { grown, nextCapacity } from './grown.js'

const NONE = -1

/**
 * A binary min-heap of (expiresAt, session slot) in parallel typed arrays, indexed by slot: a
 * refresh moves the session's one entry, an end removes it, each in O(log n). So an expiry costs
 * O(log n), never a scan, and the heap holds exactly one entry per stored session (no stale
 * entries to skip or to pay memory for).
 */
export class ExpiryHeap {
  #at = new Float64Array(16)
  #slot = new Int32Array(16)
  /** Heap index of each session slot, -1 when it has no entry. */
  #position = new Int32Array(16).fill(NONE)
  #size = 0

  get size(): number {
    return this.#size
  }

  /** Inserts `slot` due at `at`, or moves its entry there. */
  set(slot: number, at: number): void {
    if (slot >= this.#position.length) {
      const old = this.#position.length
      this.#position = grown(this.#position, nextCapacity(old, slot + 1))
      this.#position.fill(NONE, old)
    }
    let i = this.#position[slot]!
    if (i === NONE) {
      i = this.#size++
      if (i >= this.#at.length) {
        const capacity = nextCapacity(this.#at.length, i + 1)
        this.#at = grown(this.#at, capacity)
        this.#slot = grown(this.#slot, capacity)
      }
      this.#place(i, slot, at)
      this.#up(i)
      return
    }
    const was = this.#at[i]!
    this.#at[i] = at
    if (at < was) this.#up(i)
    else this.#down(i)
  }

  remove(slot: number): void {
    const i = slot < this.#position.length ? this.#position[slot]! : NONE
    if (i === NONE) return
    this.#position[slot] = NONE
    const last = --this.#size
    if (i === last) return
    // the last entry fills the hole, then moves whichever way its time says
    const moved = this.#slot[last]!
    this.#place(i, moved, this.#at[last]!)
    this.#up(i)
    this.#down(this.#position[moved]!)
  }

  /** When the earliest entry is due; Infinity when empty. */
  peekAt(): number {
    return this.#size === 0 ? Number.POSITIVE_INFINITY : this.#at[0]!
  }

  /** Removes the earliest entry and returns its slot; -1 when empty. */
  pop(): number {
    if (this.#size === 0) return NONE
    const slot = this.#slot[0]!
    this.remove(slot)
    return slot
  }

  #place(i: number, slot: number, at: number): void {
    this.#at[i] = at
    this.#slot[i] = slot
    this.#position[slot] = i
  }

  #up(i: number): void {
    const slot = this.#slot[i]!
    const at = this.#at[i]!
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.#at[parent]! <= at) break
      this.#place(i, this.#slot[parent]!, this.#at[parent]!)
      i = parent
    }
    this.#place(i, slot, at)
  }

  #down(i: number): void {
    const n = this.#size
    const slot = this.#slot[i]!
    const at = this.#at[i]!
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && this.#at[right]! < this.#at[left]! ? right : left
      if (this.#at[child]! >= at) break
      this.#place(i, this.#slot[child]!, this.#at[child]!)
      i = child
    }
    this.#place(i, slot, at)
  }
}
