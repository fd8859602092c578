import { grownBuffer, nextCapacity } from './grown.js'
import { touchRows } from './touch-rows.js'

const NONE = -1

/*
 * A session row is 48 bytes in one buffer: a read of a session touches one cache line (at most
 * two), not one per column. What a read of presence needs is its first 32 bytes, so that three
 * rows in four hold it within one line (a row starting 48 bytes into a line spans two).
 *   float64 words 0, 1      expiresAt (NaN on free slots), updatedAt
 *   int32 words 4..7        next slot, deviceType, activity, source
 *   float64 word 4          startedAt
 *   int32 words 10, 11      user row, key
 */
const ROW_BYTES = 48
const ROW_F64 = ROW_BYTES / 8
const ROW_I32 = ROW_BYTES / 4
const EXPIRES_AT = 0
const UPDATED_AT = 1
const STARTED_AT = 4
const NEXT = 4
const DEVICE_TYPE = 5
const ACTIVITY = 6
const SOURCE = 7
const USER = 10
const KEY = 11

/**
 * The sessions of the memory store, one row per session slot. Strings and activities are ids
 * into intern pools; `next` chains a user's sessions (and, for free slots, the free list).
 */
export class SessionSlab {
  #rows = new ArrayBuffer(16 * ROW_BYTES)
  #f64 = new Float64Array(this.#rows)
  #i32 = new Int32Array(this.#rows)
  #capacity = 16
  #used = 0
  #freeHead = NONE
  /** What readAhead read; kept so that the reads are not dropped. */
  // eslint-disable-next-line no-unused-private-class-members -- written, never read: see above
  #touched = 0

  /** A slot for a new session; its fields are the caller's to fill. */
  alloc(): number {
    if (this.#freeHead !== NONE) {
      const slot = this.#freeHead
      this.#freeHead = this.next(slot)
      return slot
    }
    const slot = this.#used++
    if (slot >= this.#capacity) this.#grow(slot + 1)
    return slot
  }

  free(slot: number): void {
    // NaN: nothing ever finds a free slot live or due
    this.#f64[slot * ROW_F64 + EXPIRES_AT] = Number.NaN
    this.setNext(slot, this.#freeHead)
    this.#freeHead = slot
  }

  expiresAt(slot: number): number {
    return this.#f64[slot * ROW_F64 + EXPIRES_AT]!
  }
  setExpiresAt(slot: number, at: number): void {
    this.#f64[slot * ROW_F64 + EXPIRES_AT] = at
  }
  updatedAt(slot: number): number {
    return this.#f64[slot * ROW_F64 + UPDATED_AT]!
  }
  setUpdatedAt(slot: number, at: number): void {
    this.#f64[slot * ROW_F64 + UPDATED_AT] = at
  }
  startedAt(slot: number): number {
    return this.#f64[slot * ROW_F64 + STARTED_AT]!
  }
  setStartedAt(slot: number, at: number): void {
    this.#f64[slot * ROW_F64 + STARTED_AT] = at
  }
  user(slot: number): number {
    return this.#i32[slot * ROW_I32 + USER]!
  }
  setUser(slot: number, user: number): void {
    this.#i32[slot * ROW_I32 + USER] = user
  }
  /** The user's next session slot, -1 after the last. */
  next(slot: number): number {
    return this.#i32[slot * ROW_I32 + NEXT]!
  }
  setNext(slot: number, next: number): void {
    this.#i32[slot * ROW_I32 + NEXT] = next
  }
  key(slot: number): number {
    return this.#i32[slot * ROW_I32 + KEY]!
  }
  setKey(slot: number, key: number): void {
    this.#i32[slot * ROW_I32 + KEY] = key
  }
  deviceType(slot: number): number {
    return this.#i32[slot * ROW_I32 + DEVICE_TYPE]!
  }
  setDeviceType(slot: number, deviceType: number): void {
    this.#i32[slot * ROW_I32 + DEVICE_TYPE] = deviceType
  }
  activity(slot: number): number {
    return this.#i32[slot * ROW_I32 + ACTIVITY]!
  }
  setActivity(slot: number, activity: number): void {
    this.#i32[slot * ROW_I32 + ACTIVITY] = activity
  }
  source(slot: number): number {
    return this.#i32[slot * ROW_I32 + SOURCE]!
  }
  setSource(slot: number, source: number): void {
    this.#i32[slot * ROW_I32 + SOURCE] = source
  }

  /**
   * Brings what a read needs of the rows of the first `n` slots in `slots` (-1: none) into
   * cache, both ends of it: it may span two cache lines.
   */
  readAhead(slots: Int32Array, n: number): void {
    this.#touched =
      touchRows(this.#i32, slots, n, ROW_I32, 0) | touchRows(this.#i32, slots, n, ROW_I32, SOURCE)
  }

  #grow(needed: number): void {
    this.#capacity = nextCapacity(this.#capacity, needed)
    this.#rows = grownBuffer(this.#rows, this.#capacity * ROW_BYTES)
    this.#f64 = new Float64Array(this.#rows)
    this.#i32 = new Int32Array(this.#rows)
  }
}
