import { randomBytes } from 'node:crypto'
import type { OfflineReason } from '../core/presence.js'
import type { Relation, Viewer } from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import { ReplayBuffer, tailText, type Tail } from './replay-buffer.js'
import type { WatchEntry } from './watchers.js'

/** Where a stream's frames go: one WebSocket or SSE response. The transport bounds its queue. */
export interface Sink {
  /**
   * Delivers one frame. `seq` and `token` name it for resume (SSE puts them in the event id);
   * they are undefined for frames outside the sequence (reset, error).
   */
  send(frame: string, seq?: number, token?: string): void
  /** Another connection resumed the stream: this one must close. */
  replaced(): void
}

/**
 * The relations most watches have, shared: a watch keeps the index of its own. Only a block that
 * keeps a lastOnline needs an object of its own (kept aside, see `Watch.relation`).
 */
export const RELATIONS: readonly Relation[] = [
  Object.freeze({ friends: false, blocked: false }),
  Object.freeze({ friends: true, blocked: false }),
  Object.freeze({ friends: false, blocked: true }),
  Object.freeze({ friends: true, blocked: true }),
]

const ONLINE = 1
const HELD = 2
/** Two bits: the index of a shared relation. */
const RELATION_SHIFT = 4
const RELATION_MASK = 3 * RELATION_SHIFT
/** The relation is one of its own, in `ownRelations`. */
const OWN_RELATION = 16
/** The slot is kept in the same number as the flags, above them. */
const FLAGS = 32

/** Relations that are not shared constants (a block with a lastOnline): few, kept aside. */
const ownRelations = new WeakMap<Watch, Relation>()

/**
 * What a stream knows of one watched user: one object in both lists of the fanout's Watchers
 * (the stream's and the target's), with nothing else per watch. Five fields: the slot, two
 * flags and the relation share one small integer.
 */
export class Watch implements WatchEntry<Stream> {
  #bits = 0

  constructor(
    readonly connection: Stream,
    readonly target: UserId,
    relation: Relation,
    /** The presence JSON last sent for the target (what the subscriber believes). */
    public sent: string,
    online: boolean,
    /**
     * The offset of the target's latest change applied to this watch, in the epoch the fanout
     * holds for the target: a change at or before it is not applied again.
     */
    public offset: number,
  ) {
    this.online = online
    this.relation = relation
  }

  /** The viewer's relation to the target. */
  get relation(): Relation {
    if (this.#bits & OWN_RELATION) return ownRelations.get(this)!
    return RELATIONS[(this.#bits & RELATION_MASK) / RELATION_SHIFT]!
  }

  set relation(relation: Relation) {
    const shared = RELATIONS.indexOf(relation)
    let bits = this.#bits & ~(RELATION_MASK | OWN_RELATION)
    if (shared >= 0) {
      bits |= shared * RELATION_SHIFT
      ownRelations.delete(this)
    } else {
      bits |= OWN_RELATION
      ownRelations.set(this, relation)
    }
    this.#bits = bits
  }

  /** The watch's place in its target's list (Watchers keeps it). */
  get slot(): number {
    return Math.floor(this.#bits / FLAGS)
  }

  set slot(slot: number) {
    this.#bits = slot * FLAGS + (this.#bits % FLAGS)
  }

  /** Whether `sent` shows the target online. */
  get online(): boolean {
    return (this.#bits & ONLINE) !== 0
  }

  set online(online: boolean) {
    this.#bits = online ? this.#bits | ONLINE : this.#bits & ~ONLINE
  }

  /**
   * Whether an offline of the target is held back for this stream (the flap grace): what is
   * held, and since when, the fanout keeps aside (few watches ever have one).
   */
  get held(): boolean {
    return (this.#bits & HELD) !== 0
  }

  set held(held: boolean) {
    this.#bits = held ? this.#bits | HELD : this.#bits & ~HELD
  }
}

/** An offline held back: since when (monotonic ms, `performance.now()`) and why. */
export interface HeldOffline {
  since: number
  reason: OfflineReason
}

/**
 * One subscriber's ordered, numbered event stream. It outlives its connection for a while so
 * that a reconnecting client can resume it by its token.
 */
export class Stream {
  #id: string | undefined
  /** Resume token: names the stream to a reconnecting client of the same user. */
  readonly token = randomBytes(16).toString('base64url')
  readonly viewer: UserId
  /** The viewer as privacy sees it. */
  readonly principal: Viewer
  readonly replay: ReplayBuffer
  /** The users this stream watches (the fanout's Watchers keeps the list). */
  watches: Watch[] = []
  seq = 0
  /** Whether frames carry the watched user's history position (`pos`), for resume anywhere. */
  positions = false
  sink: Sink | undefined
  /** Pending disposal while detached. */
  expiry: NodeJS.Timeout | undefined
  disposed = false

  constructor(viewer: UserId, replayFrames: number) {
    this.viewer = viewer
    this.principal = Object.freeze({ kind: 'user', userId: viewer })
    this.replay = new ReplayBuffer(replayFrames)
  }

  /** Public id (logs); not a credential. Made when first asked for. */
  get id(): string {
    return (this.#id ??= randomBytes(9).toString('base64url'))
  }

  /** Numbers, records and delivers a frame made of `head + seq + tail`. */
  push(head: string, tail: Tail): void {
    const seq = ++this.seq
    this.replay.push(seq, head, tail)
    this.sink?.send(head + seq + tailText(tail), seq, this.token)
  }
}
