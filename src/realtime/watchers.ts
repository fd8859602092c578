import type { UserId } from '../core/user-id.js'

/**
 * The two-way index of who watches whom: target → connections, and connection → targets with
 * the per-watch state `W` (what was last sent, the viewer's relation to the target). Both sides
 * change together, so a closed connection leaves nothing behind.
 *
 * @example
 * const watchers = new Watchers<Conn, { sent: string }>()
 * watchers.add(conn, '42' as UserId, { sent: '' })
 * for (const [conn, watch] of watchers.watchersOf('42' as UserId)) conn.send(watch.sent)
 */
export class Watchers<C, W> {
  readonly #byTarget = new Map<UserId, Map<C, W>>()
  readonly #byConnection = new Map<C, Map<UserId, W>>()

  /** Adds or replaces the watch of `target` by `connection`. */
  add(connection: C, target: UserId, state: W): void {
    let targets = this.#byConnection.get(connection)
    if (!targets) this.#byConnection.set(connection, (targets = new Map()))
    targets.set(target, state)
    let connections = this.#byTarget.get(target)
    if (!connections) this.#byTarget.set(target, (connections = new Map()))
    connections.set(connection, state)
  }

  get(connection: C, target: UserId): W | undefined {
    return this.#byConnection.get(connection)?.get(target)
  }

  /** Removes one watch; returns true when `target` has no watcher left. */
  remove(connection: C, target: UserId): boolean {
    const targets = this.#byConnection.get(connection)
    if (!targets?.delete(target)) return false
    if (targets.size === 0) this.#byConnection.delete(connection)
    const connections = this.#byTarget.get(target)
    connections?.delete(connection)
    if (connections && connections.size > 0) return false
    this.#byTarget.delete(target)
    return true
  }

  /** Removes every watch of `connection`; returns the targets nobody watches any more. */
  removeAll(connection: C): UserId[] {
    const targets = this.#byConnection.get(connection)
    if (!targets) return []
    const orphans: UserId[] = []
    for (const target of [...targets.keys()])
      if (this.remove(connection, target)) orphans.push(target)
    return orphans
  }

  /** The watchers of `target` with their watch state (one lookup for both). */
  watchersOf(target: UserId): ReadonlyMap<C, W> {
    return this.#byTarget.get(target) ?? new Map<C, W>()
  }

  targetsOf(connection: C): ReadonlyMap<UserId, W> {
    return this.#byConnection.get(connection) ?? new Map<UserId, W>()
  }

  isWatched(target: UserId): boolean {
    return this.#byTarget.has(target)
  }

  /** Watched targets and connections that watch anything. */
  get size(): { targets: number; connections: number } {
    return { targets: this.#byTarget.size, connections: this.#byConnection.size }
  }
}
