/** A connection the keepalive wheel visits once per period. */
export interface Kept {
  /** Called about every period: ping (WebSocket) or comment (SSE), refresh presence. */
  keepalive(now: number): void
  /** The wheel's slot holding this connection; -1 when not on the wheel. */
  wheelSlot: number
  /** The server is shutting down (connections that end themselves then). */
  shutdown?(): void
  /** `keepalive` threw (a defect): log it and end the connection; must not throw itself. */
  keepaliveFailed(error: unknown): void
}

const SLOTS = 32

/**
 * One timer for the keepalives of every real-time connection, instead of an interval per
 * socket: connections sit in one of SLOTS sets, and each tick (period / SLOTS) visits the next
 * set. A connection is visited every period (give or take a tick), the first time a period
 * after it joined; the work of a tick is a SLOTS-th of the connections, never all at once.
 *
 * @example
 * const wheel = new KeepaliveWheel(25_000)
 * wheel.add(connection)    // connection.keepalive() about every 25 s
 * wheel.remove(connection) // on close
 */
export class KeepaliveWheel {
  readonly periodMs: number
  readonly #slots: Set<Kept>[] = Array.from({ length: SLOTS }, () => new Set<Kept>())
  /** The slot the next tick visits. */
  #next = 0
  #size = 0
  #timer: NodeJS.Timeout | undefined
  readonly #tickMs: number

  constructor(periodMs: number) {
    this.periodMs = periodMs
    this.#tickMs = Math.max(1, Math.round(periodMs / SLOTS))
  }

  add(kept: Kept): void {
    if (kept.wheelSlot >= 0) return
    // the slot visited last: its next visit is a whole period away
    const slot = (this.#next + SLOTS - 1) % SLOTS
    this.#slots[slot]!.add(kept)
    kept.wheelSlot = slot
    if (this.#size++ === 0) {
      this.#timer = setInterval(() => this.#tick(), this.#tickMs)
      // keepalives alone must not keep the process alive
      this.#timer.unref()
    }
  }

  remove(kept: Kept): void {
    if (kept.wheelSlot < 0) return
    this.#slots[kept.wheelSlot]!.delete(kept)
    kept.wheelSlot = -1
    if (--this.#size === 0) this.stop()
  }

  /** Every connection on the wheel. */
  *members(): Generator<Kept> {
    for (const slot of this.#slots) yield* [...slot]
  }

  get size(): number {
    return this.#size
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  #tick(): void {
    const slot = this.#slots[this.#next]!
    this.#next = (this.#next + 1) % SLOTS
    const now = Date.now()
    // a connection removed meanwhile is skipped by the Set's iteration
    for (const kept of slot) {
      // a throw in a timer would end the process, and skip the slot's other connections
      try {
        kept.keepalive(now)
      } catch (error) {
        kept.keepaliveFailed(error)
      }
    }
  }
}
