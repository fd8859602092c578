/**
 * Reply bodies carved from one large buffer, the next reply starting where the last ended, as
 * Node's own Buffer pool does for small buffers (4 KiB and below; a 50-id Roblox reply is 10 KB,
 * an 1100-id Xbox batch 100-250 KB, each of which was an allocation of its own). A reply is
 * written once, straight into its part of the slab, and goes to the socket as it is; a part is
 * never handed out twice, so a reply still being sent is never overwritten. When the slab is
 * used up a new one is taken; the old one lives as long as a reply in it does.
 *
 * @example
 * const slab = new ReplySlab()
 * const out = slab.take(size) // exactly `size` bytes, to fill completely
 *
 * const start = slab.open(estimate) // a writer that learns its size as it writes
 * const buffer = slab.buffer // write from `start` on, at most `estimate` bytes…
 * const reply = slab.close(end) // …the bytes from `start` to `end`
 *
 * slab.reclaim(reply) // the socket took it all: the next reply may be written over it
 *
 * A reply the socket took whole in the write that sent it (the common case: a reply of a few
 * kilobytes on a socket with room) is given back with reclaim(), and the next reply is written
 * over it: replies then cycle through the same few kilobytes, which stay in the CPU's caches,
 * instead of walking through a megabyte of memory that no cache holds (callgrind's cache
 * simulation, issue 19: about 156 last-level write misses per 10 KB reply, and a new 1 MiB slab
 * every ~100 replies, which the instruction count does not show).
 */
export class ReplySlab {
  readonly #size: number
  #slab: Buffer
  #at = 0

  constructor(size = 1 << 20) {
    this.#size = size
    this.#slab = Buffer.allocUnsafeSlow(size)
  }

  /** The slab writes go to after open(): valid until the next take() or open(). */
  get buffer(): Buffer {
    return this.#slab
  }

  /** `n` bytes for one reply, which the caller fills completely and gives away. */
  take(n: number): Buffer {
    if (n > this.#size >> 2) return Buffer.allocUnsafe(n)
    if (this.#at + n > this.#size) this.#renew()
    const out = this.#slab.subarray(this.#at, this.#at + n)
    this.#advance(n)
    return out
  }

  /**
   * Room for a reply of at most `n` bytes in `buffer`, from the index returned; the reply is
   * taken by close(). Undefined when `n` is too large for a slab: the writer allocates its own.
   */
  open(n: number): number | undefined {
    if (n > this.#size >> 2) return undefined
    if (this.#at + n > this.#size) this.#renew()
    return this.#at
  }

  /** The reply opened last, written from its start up to `end` (exclusive). */
  close(end: number): Buffer {
    const out = this.#slab.subarray(this.#at, end)
    this.#advance(end - this.#at)
    return out
  }

  /**
   * Gives back `reply`, the part taken last, once nothing holds its bytes any more (the socket
   * wrote them all): the next part starts where it started. Any other buffer is left alone.
   */
  reclaim(reply: Buffer): void {
    const start = reply.byteOffset
    if (reply.buffer === this.#slab.buffer && ((start + reply.length + 7) & ~7) === this.#at) {
      this.#at = start
    }
  }

  #advance(n: number): void {
    // the next reply starts 8-aligned, as the pool's buffers do
    this.#at = (this.#at + n + 7) & ~7
  }

  #renew(): void {
    this.#slab = Buffer.allocUnsafeSlow(this.#size)
    this.#at = 0
  }
}
