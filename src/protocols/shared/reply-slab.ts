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

  #advance(n: number): void {
    // the next reply starts 8-aligned, as the pool's buffers do
    this.#at = (this.#at + n + 7) & ~7
  }

  #renew(): void {
    this.#slab = Buffer.allocUnsafeSlow(this.#size)
    this.#at = 0
  }
}
