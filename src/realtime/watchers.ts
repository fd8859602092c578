import type { OfflineReason } from '../core/presence.js'
import type { Relation } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'

/** An offline held back: since when (monotonic ms, `performance.now()`) and why. */
export interface HeldOffline {
  since: number
  reason: OfflineReason
  /**
   * The watch's offset before the change that went offline: where the subscriber still is (a
   * checkpoint names it, so the offline is sent on the node that resumes the stream).
   */
  offset: number
}

/**
 * The relations most watches have, shared: a watch keeps the index of its own in two bits. Only
 * a block that keeps a lastOnline needs an object of its own (kept aside, by target).
 */
export const RELATIONS: readonly Relation[] = [
  Object.freeze({ friends: false, blocked: false }),
  Object.freeze({ friends: true, blocked: false }),
  Object.freeze({ friends: false, blocked: true }),
  Object.freeze({ friends: true, blocked: true }),
]

// a watch's entries in WatchList's one array
const TARGET = 0
const SENT = 1
const OFFSET = 2
const STATE = 3
const STRIDE = 4

// its state: flag bits, and above them its slot in the target's list
const ONLINE = 1
/** Bits 1-2 hold the index of a shared relation: the index times RELATION_UNIT. */
const RELATION_UNIT = 2
const RELATION_MASK = 3 * RELATION_UNIT
/** The relation is one of its own, in `#ownRelations`. */
const OWN_RELATION = 8
const FLAGS = 16

/**
 * What one connection knows of the users it watches, with no object per watch: a watch is a
 * number `i` (its place here, which moves when another watch is removed) naming STRIDE entries
 * of one array: its target, the presence JSON last sent for it (what the subscriber believes),
 * the offset of the target's latest change applied to it (in the epoch the fanout follows), and
 * a small integer holding its flags and its slot in the target's list. An object per watch cost
 * 64 bytes besides the two references to it; this costs the four entries.
 */
export class WatchList {
  /** @internal The connection's number in its Watchers while it watches anything. */
  member = -1
  #items: Array<string | number> = []
  /** Relations that are not shared constants (a block with a lastOnline): few, by target. */
  #ownRelations: Map<UserId, Relation> | undefined
  /** Offlines held back for the flap grace (few watches ever have one), by target. */
  #held: Map<UserId, HeldOffline> | undefined

  get size(): number {
    return this.#items.length / STRIDE
  }

  /** The watch of `target`, or -1 (a scan: a connection watches at most a thousand users). */
  indexOf(target: UserId): number {
    const items = this.#items
    for (let k = 0; k < items.length; k += STRIDE) if (items[k] === target) return k / STRIDE
    return -1
  }

  target(i: number): UserId {
    return this.#items[i * STRIDE + TARGET] as UserId
  }

  sent(i: number): string {
    return this.#items[i * STRIDE + SENT] as string
  }

  /** What the subscriber was last sent of the target, and whether it shows the target online. */
  setSent(i: number, sent: string, online: boolean): void {
    const k = i * STRIDE
    this.#items[k + SENT] = sent
    const state = this.#items[k + STATE] as number
    this.#items[k + STATE] = online ? state | ONLINE : state & ~ONLINE
  }

  online(i: number): boolean {
    return ((this.#items[i * STRIDE + STATE] as number) & ONLINE) !== 0
  }

  offset(i: number): number {
    return this.#items[i * STRIDE + OFFSET] as number
  }

  setOffset(i: number, offset: number): void {
    this.#items[i * STRIDE + OFFSET] = offset
  }

  /** The viewer's relation to the target. */
  relation(i: number): Relation {
    const state = this.#items[i * STRIDE + STATE] as number
    if (state & OWN_RELATION) return this.#ownRelations!.get(this.target(i))!
    return RELATIONS[(state & RELATION_MASK) / RELATION_UNIT]!
  }

  setRelation(i: number, relation: Relation): void {
    const k = i * STRIDE
    const target = this.#items[k + TARGET] as UserId
    const shared = RELATIONS.indexOf(relation)
    let state = (this.#items[k + STATE] as number) & ~(RELATION_MASK | OWN_RELATION)
    if (shared >= 0) {
      state |= shared * RELATION_UNIT
      this.#ownRelations?.delete(target)
    } else {
      state |= OWN_RELATION
      ;(this.#ownRelations ??= new Map()).set(target, relation)
    }
    this.#items[k + STATE] = state
  }

  /** The offline held back for the watch, if any. */
  held(i: number): HeldOffline | undefined {
    return this.#held?.get(this.target(i))
  }

  hold(i: number, held: HeldOffline): void {
    ;(this.#held ??= new Map()).set(this.target(i), held)
  }

  /** Drops the watch's held offline; false when it had none. */
  unhold(i: number): boolean {
    const held = this.#held
    if (held === undefined || !held.delete(this.target(i))) return false
    if (held.size === 0) this.#held = undefined
    return true
  }

  /** Whether some watch has an offline held. */
  get holding(): boolean {
    return this.#held !== undefined
  }

  // ------------------------------------------------------------------ for Watchers

  /** @internal The watch's slot in its target's list. */
  slot(i: number): number {
    return Math.floor((this.#items[i * STRIDE + STATE] as number) / FLAGS)
  }

  /** @internal */
  setSlot(i: number, slot: number): void {
    const k = i * STRIDE + STATE
    this.#items[k] = slot * FLAGS + ((this.#items[k] as number) % FLAGS)
  }

  /** @internal Appends a watch (offline, no relation) at `slot`; returns its number. */
  push(target: UserId, offset: number, slot: number): number {
    const i = this.size
    this.#items.push(target, '', offset, slot * FLAGS)
    return i
  }

  /**
   * @internal Removes watch `i` by moving the last watch into its place; returns the number the
   * moved watch had (the old last), or -1 when nothing moved.
   */
  removeAt(i: number): number {
    const items = this.#items
    this.unhold(i)
    this.#ownRelations?.delete(this.target(i))
    const last = items.length - STRIDE
    const k = i * STRIDE
    if (k !== last) for (let j = 0; j < STRIDE; j++) items[k + j] = items[last + j]!
    items.length = last
    return k === last ? -1 : last / STRIDE
  }

  /** @internal */
  clear(): void {
    this.#items = []
    this.#ownRelations = undefined
    this.#held = undefined
  }

  /** @internal Drops the spare room of the array (after adding many at once). */
  trim(): void {
    this.#items = this.#items.slice()
  }
}

/** What a watcher list needs of a connection: its watches. */
export interface Watching {
  readonly watches: WatchList
}

/** Lists shorter than this grow by a copy of exactly one more entry (Watchers.add). */
const EXACT_LIST = 128

/** Watches one connection may have: an entry of a target's list is member × PER_MEMBER + watch. */
const PER_MEMBER = 2 ** 21

/**
 * The two-way index of who watches whom, as plain lists: each connection has its WatchList,
 * each target one array of numbers, one per watch, naming the connection (by its member number
 * here) and the watch in it. A number is 8 bytes where a (connection, watch) pair was 16. A
 * watch is removed from both lists in O(1) by moving the last entry into its place. Both sides
 * change together, so a closed connection leaves nothing behind.
 *
 * The target id a watch keeps is the one the target's list already holds, so ten thousand
 * watchers of a user share one string, not ten thousand parsed copies.
 */
export class Watchers<C extends Watching> {
  readonly #byTarget = new Map<UserId, number[]>()
  /** Connections that watch anything, by member number; free numbers are reused. */
  readonly #members: Array<C | undefined> = []
  readonly #free: number[] = []

  /** The id the index holds for `target` (share it in new watches), or `target` itself. */
  canonical(target: UserId): UserId {
    const first = this.#byTarget.get(target)?.[0]
    return first === undefined ? target : this.connectionOf(first).watches.target(watchOf(first))
  }

  /**
   * Adds a watch of `target` at `offset` (the caller has made sure its connection does not
   * watch it yet); returns its number in the connection's list.
   */
  add(connection: C, target: UserId, offset: number): number {
    const own = connection.watches
    if (own.size >= PER_MEMBER) throw new Error(`a connection watches at most ${PER_MEMBER} users`)
    if (own.size === 0) own.member = this.#join(connection)
    const list = this.#byTarget.get(target)
    const i = own.push(target, offset, list?.length ?? 0)
    const entry = own.member * PER_MEMBER + i
    if (list === undefined) this.#byTarget.set(target, [entry])
    // a short list is copied one longer: pushed into, V8 gives it room for half as many again
    // plus 16 (77 entries for 50 watchers, 216 bytes unused); a long one is pushed into, so that
    // adding a watcher to a crowd costs no copy of the crowd
    else if (list.length < EXACT_LIST) this.#byTarget.set(target, oneLonger(list, entry))
    else list.push(entry)
    return i
  }

  /** Drops the spare room of the connection's list (after adding many at once). */
  trim(connection: C): void {
    connection.watches.trim()
  }

  /** The watch number of `target` in the connection's list, or -1. */
  get(connection: C, target: UserId): number {
    return connection.watches.indexOf(target)
  }

  /** The connection's watches by target, for many look-ups at once (valid until a removal). */
  index(connection: C): Map<UserId, number> {
    const own = connection.watches
    const index = new Map<UserId, number>()
    for (let i = 0; i < own.size; i++) index.set(own.target(i), i)
    return index
  }

  /**
   * Removes watch `i` of `connection`; returns true when its target has no watcher left. The
   * connection's last watch takes number `i`.
   */
  remove(connection: C, i: number): boolean {
    const own = connection.watches
    const target = own.target(i)
    const orphan = this.#unlist(target, own.slot(i))
    const moved = own.removeAt(i)
    // the moved watch's entry in its target's list follows it to its new number
    if (moved >= 0) this.#byTarget.get(own.target(i))![own.slot(i)] = own.member * PER_MEMBER + i
    if (own.size === 0) this.#leave(own)
    return orphan
  }

  /** Removes every watch of `connection`; returns the targets nobody watches any more. */
  removeAll(connection: C): UserId[] {
    const own = connection.watches
    if (own.size === 0) return []
    const orphans: UserId[] = []
    for (let i = 0; i < own.size; i++) {
      if (this.#unlist(own.target(i), own.slot(i))) orphans.push(own.target(i))
    }
    this.#leave(own)
    own.clear()
    return orphans
  }

  /** The connection an entry of a target's list names. */
  connectionOf(entry: number): C {
    return this.#members[Math.floor(entry / PER_MEMBER)]!
  }

  #join(connection: C): number {
    const member = this.#free.pop() ?? this.#members.length
    this.#members[member] = connection
    return member
  }

  #leave(own: WatchList): void {
    this.#members[own.member] = undefined
    this.#free.push(own.member)
    own.member = -1
  }

  /** Takes the entry at `slot` out of the list of `target`; true when the list is then empty. */
  #unlist(target: UserId, slot: number): boolean {
    const list = this.#byTarget.get(target)!
    const last = list.pop()!
    if (slot < list.length) {
      list[slot] = last
      this.connectionOf(last).watches.setSlot(watchOf(last), slot)
    }
    if (list.length > 0) return false
    this.#byTarget.delete(target)
    return true
  }

  /**
   * The watchers of `target`, an entry per watch: `connectionOf(entry)` and `watchOf(entry)`
   * name it. The array is live: a watch removed while it is walked (a connection cut off mid
   * fan-out) moves the last entry into its place, so walk it from the end.
   */
  watchersOf(target: UserId): readonly number[] {
    return this.#byTarget.get(target) ?? NONE
  }

  isWatched(target: UserId): boolean {
    return this.#byTarget.has(target)
  }

  /** Watched targets and connections that watch anything. */
  get size(): { targets: number; connections: number } {
    return { targets: this.#byTarget.size, connections: this.#members.length - this.#free.length }
  }
}

/**
 * `list` and then `entry`, in an array of exactly their number. Filled by index, not made by
 * `concat` or a spread: those box entries above 2^31 (members from 1024 on) as heap numbers,
 * 24 bytes each, where an array of numbers holds them unboxed in 8.
 */
function oneLonger(list: readonly number[], entry: number): number[] {
  const longer = new Array<number>(list.length + 1)
  for (let k = 0; k < list.length; k++) longer[k] = list[k]!
  longer[list.length] = entry
  return longer
}

/** The watch number (in its connection's list) an entry of a target's list names. */
export function watchOf(entry: number): number {
  // not `entry % PER_MEMBER`: entries above 2^31 are doubles, and a double's % is a call
  return entry - Math.floor(entry / PER_MEMBER) * PER_MEMBER
}

const NONE: readonly never[] = Object.freeze([])
