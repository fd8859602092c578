/**
 * Values that many sessions share (session keys, device types, activities), stored once and
 * reference-counted: a session holds a small id, and a value is dropped with its last holder.
 * At a million sessions, this is what keeps repeated strings from costing a copy each.
 */
export class InternPool<V> {
  readonly #idOf = new Map<string, number>()
  readonly #keys: string[] = []
  readonly #values: Array<V | undefined> = []
  readonly #refs: number[] = []
  readonly #free: number[] = []
  readonly #make: (key: string) => V

  /** `make` builds the value of a key seen for the first time. */
  constructor(make: (key: string) => V) {
    this.#make = make
  }

  /** Distinct values held. */
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
    }
    this.#refs[id]!++
    return id
  }

  /** The id of `key`, without taking a reference; undefined when nobody holds it. */
  find(key: string): number | undefined {
    return this.#idOf.get(key)
  }

  value(id: number): V {
    return this.#values[id] as V
  }

  release(id: number): void {
    if (--this.#refs[id]! > 0) return
    this.#idOf.delete(this.#keys[id]!)
    this.#keys[id] = ''
    this.#values[id] = undefined
    this.#free.push(id)
  }
}
