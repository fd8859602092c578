import { grown, nextCapacity } from './grown.js'

const NONE = -1

/**
 * The sessions of the memory store as columns of typed arrays, one row per session slot, so a
 * session costs ~45 bytes instead of two objects. Strings and activities are ids into intern
 * pools; `next` chains a user's sessions (and, for free slots, the free list).
 * The arrays are replaced when they grow: read them through the slab, never keep one across
 * an `alloc()`.
 */
export class SessionSlab {
  user = new Int32Array(16)
  next = new Int32Array(16)
  startedAt = new Float64Array(16)
  updatedAt = new Float64Array(16)
  /** NaN on free slots, so nothing ever finds them due. */
  expiresAt = new Float64Array(16)
  key = new Int32Array(16)
  deviceType = new Int32Array(16)
  activity = new Int32Array(16)
  source = new Uint8Array(16)
  #used = 0
  #freeHead = NONE

  /** A slot for a new session; its columns are the caller's to fill. */
  alloc(): number {
    if (this.#freeHead !== NONE) {
      const slot = this.#freeHead
      this.#freeHead = this.next[slot]!
      return slot
    }
    const slot = this.#used++
    if (slot >= this.user.length) this.#grow(slot + 1)
    return slot
  }

  free(slot: number): void {
    this.expiresAt[slot] = Number.NaN
    this.next[slot] = this.#freeHead
    this.#freeHead = slot
  }

  /** Slots ever handed out (free ones included): the bound of every slot index. */
  get capacity(): number {
    return this.user.length
  }

  #grow(needed: number): void {
    const capacity = nextCapacity(this.user.length, needed)
    this.user = grown(this.user, capacity)
    this.next = grown(this.next, capacity)
    this.startedAt = grown(this.startedAt, capacity)
    this.updatedAt = grown(this.updatedAt, capacity)
    this.expiresAt = grown(this.expiresAt, capacity)
    this.key = grown(this.key, capacity)
    this.deviceType = grown(this.deviceType, capacity)
    this.activity = grown(this.activity, capacity)
    this.source = grown(this.source, capacity)
  }
}
