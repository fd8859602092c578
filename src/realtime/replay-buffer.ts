/**
 * The end of a frame after its sequence number: a string, or parts kept apart so that a large
 * frame (a snapshot) holds references to shared strings rather than a copy of them.
 */
export type Tail = string | readonly string[] | SnapshotTail

/**
 * A frame without its sequence number (`head + seq + tail`). One frame object is shared by every
 * stream sent the same view of the same change, so a replay buffer holds one reference per
 * frame, not a head and a tail.
 */
export interface Frame {
  readonly head: string
  readonly tail: Tail
}

export const SNAPSHOT_HEAD = '{"type":"snapshot","seq":'

/**
 * A snapshot's tail, `,"resume":…,"presences":[p1,p2…]` and, for streams that carry positions,
 * `,"pos":["q1","q2"…]`, then `]}`: the presences are the shared renders, held by reference in
 * an array of exactly their number (no separators kept beside them).
 */
export class SnapshotTail implements Frame {
  /** The stream's resume token (the stream holds the same string). */
  readonly token: string
  readonly presences: readonly string[]
  readonly positions: readonly string[] | undefined

  constructor(token: string, presences: readonly string[], positions?: readonly string[]) {
    this.token = token
    this.presences = presences
    this.positions = positions
  }

  /** A snapshot is a frame of its own (no object besides it). */
  get head(): string {
    return SNAPSHOT_HEAD
  }

  get tail(): Tail {
    return this
  }

  text(): string {
    const presences = `,"resume":"${this.token}","presences":[${this.presences.join(',')}`
    if (!this.positions) return presences + ']}'
    const pos = this.positions.length > 0 ? `"${this.positions.join('","')}"` : ''
    return `${presences}],"pos":[${pos}]}`
  }
}

export function tailText(tail: Tail): string {
  if (typeof tail === 'string') return tail
  return tail instanceof SnapshotTail ? tail.text() : (tail as readonly string[]).join('')
}

/**
 * The last `capacity` frames of one stream, for resume. Frames are numbered without gaps, so the
 * buffer covers `since` exactly when every frame after it is still held. A frame is kept without
 * its sequence number, as the Frame shared by every watcher of the same change, so a full buffer
 * costs one reference per frame.
 */
export class ReplayBuffer {
  readonly #capacity: number
  /**
   * Frame `seq` at slot `(seq - 1) % capacity`. Grown by doubling from one slot (`#grow`): an
   * array written past its end gets room for 17 from V8, 152 bytes for a stream that has been
   * sent only its snapshot.
   */
  #frames: Frame[] = []
  /** Sequence number of the newest frame; 0 before any. */
  #last = 0

  constructor(capacity: number) {
    this.#capacity = Math.max(0, capacity)
  }

  get last(): number {
    return this.#last
  }

  /** Records frame `seq` (which must be last + 1). */
  push(seq: number, frame: Frame): void {
    this.#last = seq
    if (this.#capacity === 0) return
    const slot = (seq - 1) % this.#capacity
    if (slot >= this.#frames.length) this.#grow(slot + 1)
    this.#frames[slot] = frame
  }

  /** Room for `slots` frames at least: twice as many as now, up to the capacity. */
  #grow(slots: number): void {
    const frames = this.#frames
    const grown = new Array<Frame>(Math.min(this.#capacity, Math.max(slots, 2 * frames.length)))
    for (let i = 0; i < frames.length; i++) grown[i] = frames[i]!
    this.#frames = grown
  }

  /** True when every frame after `since` can be replayed. */
  covers(since: number): boolean {
    if (!Number.isSafeInteger(since) || since < 0 || since > this.#last) return false
    return this.#last - since <= Math.min(this.#capacity, this.#last)
  }

  /** The frames after `since`, oldest first; call only when `covers(since)`. */
  after(since: number): string[] {
    const frames: string[] = []
    for (let seq = since + 1; seq <= this.#last; seq++) {
      const frame = this.#frames[(seq - 1) % this.#capacity]!
      frames.push(frame.head + seq + tailText(frame.tail))
    }
    return frames
  }
}
