/**
 * Values that many sessions share (session keys, device types, activities), stored once and
 * reference-counted: a session holds a small id, and a value is dropped with its last holder.
 * At a million sessions, this is what keeps repeated strings from costing a copy each.
 *
 * With `idle`, up to that many values nobody holds are kept a while (the least recently released
 * dropped first), so that one taken again soon is not made again: a place one or two players
 * come and go from would otherwise be dropped and parsed again on every other heartbeat.
 */
export class InternPool<V> {
  readonly #idOf = new Map<string, number>()
  readonly #keys: string[] = []
  readonly #values: Array<V | undefined> = []
  /** References held per id; -1 for a free id. */
  readonly #refs: number[] = []
  readonly #free: number[] = []
  readonly #make: (key: string) => V
  readonly #idleMax: number
  /**
   * Values nobody holds, least recently released first from #idleHead, as pairs of id and the
   * stamp of that release; a pair whose stamp is no longer its id's (released again since, or
   * dropped) is stale and skipped.
   */
  #idleQueue: number[] = []
  #idleHead = 0
  /** Each id's last release's stamp (see #idleQueue). */
  readonly #releasedAt: number[] = []
  #releases = 0
  /** Values held by nobody (refs 0) and kept. */
  #idle = 0

  /** `make` builds the value of a key seen for the first time. */
  constructor(make: (key: string) => V, options: { idle?: number } = {}) {
    this.#make = make
    this.#idleMax = options.idle ?? 0
  }

  /** Distinct values kept (idle ones included). */
  get size(): number {
    return this.#idOf.size
  }

  /** The id of `key`'s value, created if new; the caller now holds one reference. */
  acquire(key: string): number {
    let id = this.#idOf.get(key)
    if (id === undefined) {
      id = this.#free.pop() ?? this.#keys.length
      this.#keys[id] = key
      this.#values[id] = this.#make(key)
      this.#refs[id] = 0
      this.#idOf.set(key, id)
    } else if (this.#refs[id] === 0) {
      this.#idle--
    }
    this.#refs[id]!++
    return id
  }

  /** A reference to the value of `id`, which is in the pool (held or kept idle). */
  take(id: number): number {
    if (this.#refs[id] === 0) this.#idle--
    this.#refs[id]!++
    return id
  }

  /** The id of `key`, without taking a reference; undefined when nobody holds it or keeps it. */
  find(key: string): number | undefined {
    return this.#idOf.get(key)
  }

  /** The value of `id`; undefined for an id dropped (and not given to another value yet). */
  value(id: number): V {
    return this.#values[id] as V
  }

  release(id: number): void {
    if (--this.#refs[id]! > 0) return
    if (this.#idleMax === 0) return this.#drop(id)
    this.#idle++
    const stamp = ++this.#releases
    this.#releasedAt[id] = stamp
    this.#idleQueue.push(id, stamp)
    while (this.#idle > this.#idleMax) this.#dropOldestIdle()
    // stale pairs pile up as values are taken and released again: dropped now and then
    const queue = this.#idleQueue
    if (queue.length - this.#idleHead > 4 * (this.#idleMax + 1024)) {
      const live: number[] = []
      for (let i = this.#idleHead; i < queue.length; i += 2) {
        if (this.#releasedAt[queue[i]!] === queue[i + 1] && this.#refs[queue[i]!] === 0) {
          live.push(queue[i]!, queue[i + 1]!)
        }
      }
      this.#idleQueue = live
      this.#idleHead = 0
    }
  }

  /** Drops the value nobody holds that was released the longest ago. */
  #dropOldestIdle(): void {
    const queue = this.#idleQueue
    for (;;) {
      const id = queue[this.#idleHead]!
      const stamp = queue[this.#idleHead + 1]!
      this.#idleHead += 2
      if (this.#releasedAt[id] === stamp && this.#refs[id] === 0) {
        this.#idle--
        this.#drop(id)
        break
      }
    }
    if (this.#idleHead > 2048 && this.#idleHead * 2 > queue.length) {
      this.#idleQueue = queue.slice(this.#idleHead)
      this.#idleHead = 0
    }
  }

  #drop(id: number): void {
    this.#idOf.delete(this.#keys[id]!)
    this.#keys[id] = ''
    this.#values[id] = undefined
    this.#refs[id] = -1
    this.#releasedAt[id] = 0
    this.#free.push(id)
  }
}
