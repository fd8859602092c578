import type { UserId } from '../core/user-id.js'

/** What a watcher list needs of a watch: whose it is, of whom, and where it sits. */
export interface WatchEntry<C> {
  readonly connection: C
  readonly target: UserId
  /** The watch's place in its target's list (kept by Watchers). */
  slot: number
}

/** What a watcher list needs of a connection: its watches, in no particular order. */
export interface Watching<W> {
  watches: W[]
}

/**
 * The two-way index of who watches whom, as plain lists: each target has an array of its
 * watches, each connection an array of its own. A watch is one object in both lists (no Map
 * entry, no Set per connection), removed from its target's list in O(1) by swapping the last
 * one into its slot. Both sides change together, so a closed connection leaves nothing behind.
 *
 * A connection's watches are found by a scan (a connection watches at most a thousand users);
 * callers that look up many at once build `index(connection)` once.
 *
 * The target id a watch keeps is the one the target's list already holds, so ten thousand
 * watchers of a user share one string, not ten thousand parsed copies.
 */
export class Watchers<C extends Watching<W>, W extends WatchEntry<C>> {
  readonly #byTarget = new Map<UserId, W[]>()
  #connections = 0

  /** The id the index holds for `target` (share it in new watches), or `target` itself. */
  canonical(target: UserId): UserId {
    return this.#byTarget.get(target)?.[0]?.target ?? target
  }

  /** Adds a watch (the caller has made sure its connection does not watch its target yet). */
  add(watch: W): void {
    const connection = watch.connection
    if (connection.watches.length === 0) this.#connections++
    connection.watches.push(watch)
    let list = this.#byTarget.get(watch.target)
    if (!list) this.#byTarget.set(watch.target, (list = []))
    watch.slot = list.length
    list.push(watch)
  }

  /** Drops the spare room of the connection's list (after adding many at once). */
  trim(connection: C): void {
    connection.watches = connection.watches.slice()
  }

  get(connection: C, target: UserId): W | undefined {
    for (const watch of connection.watches) if (watch.target === target) return watch
    return undefined
  }

  /** The connection's watches by target, for many look-ups at once. */
  index(connection: C): Map<UserId, W> {
    const index = new Map<UserId, W>()
    for (const watch of connection.watches) index.set(watch.target, watch)
    return index
  }

  /** Removes one watch; returns true when its target has no watcher left. */
  remove(watch: W): boolean {
    const own = watch.connection.watches
    const at = own.indexOf(watch)
    if (at < 0) return false
    const lastOwn = own.pop()!
    if (at < own.length) own[at] = lastOwn
    if (own.length === 0) this.#connections--
    return this.#unlist(watch)
  }

  /** Removes every watch of `connection`; returns the targets nobody watches any more. */
  removeAll(connection: C): UserId[] {
    const own = connection.watches
    if (own.length === 0) return []
    this.#connections--
    const orphans: UserId[] = []
    for (const watch of own) if (this.#unlist(watch)) orphans.push(watch.target)
    own.length = 0
    return orphans
  }

  #unlist(watch: W): boolean {
    const list = this.#byTarget.get(watch.target)
    if (!list || list[watch.slot] !== watch) return false
    const last = list.pop()!
    if (watch.slot < list.length) {
      list[watch.slot] = last
      last.slot = watch.slot
    }
    if (list.length > 0) return false
    this.#byTarget.delete(watch.target)
    return true
  }

  /**
   * The watches of `target`. The array is live: a watch removed while it is walked (a
   * connection cut off mid fan-out) moves the last one into its slot, so walk it from the end.
   */
  watchersOf(target: UserId): readonly W[] {
    return this.#byTarget.get(target) ?? NONE
  }

  isWatched(target: UserId): boolean {
    return this.#byTarget.has(target)
  }

  /** Watched targets and connections that watch anything. */
  get size(): { targets: number; connections: number } {
    return { targets: this.#byTarget.size, connections: this.#connections }
  }
}

const NONE: readonly never[] = Object.freeze([])
