import {
  PresenceType,
  expiryOf,
  instantBefore,
  type OfflineReason,
  type PresenceChange,
  type UserPresence,
} from '../core/presence.js'
import {
  accessKey,
  accessOf,
  audienceOf,
  defaultSettings,
  type Access,
  visiblePresence,
  type Relation,
  type UserSettings,
  type VisiblePresence,
} from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import { performance } from 'node:perf_hooks'
import type { BusEvent, ChangeBus } from './change-bus.js'
import {
  EVERYONE,
  NO_HISTORY,
  concerns,
  isPrivacyMark,
  isRefresh,
  keptInvisible,
  relationConcern,
  type MarkRecord,
  type HistoryPosition,
  type HistoryRead,
} from './history.js'
import type { IssuedPosition, PositionTokens } from './position-token.js'
import { SNAPSHOT_HEAD, SnapshotTail, type Frame } from './replay-buffer.js'
import { Stream, type Sink } from './stream.js'
import type { Holdings, StreamHoldings } from './stream-holdings.js'
import { RELATIONS, Watchers, watchOf } from './watchers.js'

/** Where the fanout reads current state: the service's stores and history, behind six calls. */
export interface FanoutSource {
  now(): number
  presences(ids: readonly UserId[]): Promise<UserPresence[]>
  settings(ids: readonly UserId[]): Promise<UserSettings[]>
  relations(viewer: UserId, ids: readonly UserId[]): Promise<readonly Relation[]>
  /** Where each user's change history stands (history.ts). */
  positions(ids: readonly UserId[]): Promise<HistoryPosition[]>
  /** A user's changes since a position (history.ts). */
  history(userId: UserId, from: HistoryPosition): Promise<HistoryRead>
  /** How long a user's position outlives its last change (history.ts `positionTtlMs`). */
  positionTtlMs: number
}

export interface FanoutOptions {
  /** The wire view: a visible presence as JSON text. Equal texts mean "nothing to send". */
  render(presence: VisiblePresence): string
  /**
   * Offline events are held this long (0 sends them at once), whatever made the user vanish
   * from a watcher's view: sessions ending, invisibility, a block. A hidden user must look like
   * one who went offline, in delay as in content.
   */
  flapGraceMs: number
  /** Frames each stream keeps for resume. */
  replayFrames: number
  /** How long a stream without a connection stays resumable; 0 disposes it at once. */
  resumeWindowMs: number
  /** Failures of the source while applying bus events (the events are then dropped). */
  onError?: (error: unknown) => void
  /** What one user, and this node, may hold; unlimited when absent. */
  limits?: FanoutLimits
  /** Positions as opaque tokens (`pos`); without it streams cannot carry positions. */
  positionTokens?: PositionTokens
  /**
   * Fleet mode: every node's share of each user's open streams and their watches, so that
   * `streamsPerUser` and `watchesPerUser` hold across the fleet; absent, they hold per node.
   */
  holdings?: StreamHoldings
  /**
   * Fleet mode: a look at the fleet's count that failed (its store out of reach), by what it
   * was: `claim` a check-and-set for a new stream or new watches, `read` what the other nodes
   * hold, `update` this node's share set after a change or on renewal. The node's own count
   * decides meanwhile, and the renewal sets the share again once the store answers.
   */
  onFleetCountError?: (operation: FleetCountOperation) => void
}

/** What a failed look at the fleet's real-time count was (FanoutOptions.onFleetCountError). */
export type FleetCountOperation = 'claim' | 'read' | 'update'

/** How long a stream admitted (`admit`) and not yet opened counts as open. */
const ADMITTED_MS = 10_000

/**
 * A place `admit` took for one stream about to open: `open` takes it; a request that ends
 * without opening its stream (a refused or abandoned handshake) gives it back with `release`.
 */
export interface Admission {
  readonly viewer: UserId
  /** When it stops counting unless opened (monotonic ms); 0 when nothing was counted. */
  readonly until: number
}

/**
 * Bounds on what streams hold, so that no user, and no churn of dropped connections, can grow
 * the node's memory without end (docs/reference/native.md, "Limits").
 */
export interface FanoutLimits {
  /** Open streams (connections) per user; also how many dropped streams a user keeps. */
  streamsPerUser: number
  /** Users watched across one user's streams, open and dropped; dropped ones give way first. */
  watchesPerUser: number
  /** Watches kept by dropped streams on this node; beyond, the oldest dropped streams go. */
  detachedWatches: number
}

export type SubscribeResult = 'ok' | 'watch_limit' | 'too_many_ids'

export type ResumeResult =
  { ok: true; stream: Stream } | { ok: false; reason: 'unknown' | 'too_old' }

/** How `recover` ended: `reset` when some user's history no longer reaches back. */
export type RecoverResult = 'ok' | 'reset' | 'watch_limit'

type EventType = 'online' | 'update' | 'offline'

/** Frame heads; a frame is `head + seq + tail`, so the tail can be shared by many streams. */
const HEADS = {
  snapshot: SNAPSHOT_HEAD,
  recovered: '{"type":"recovered","seq":',
  online: '{"type":"online","seq":',
  update: '{"type":"update","seq":',
  offline: '{"type":"offline","seq":',
} as const

/**
 * A watch's relation: a shared constant (RELATIONS) unless a block keeps a lastOnline, or an
 * ended block what the viewer saw through it (Relation.since).
 */
function relationOf(relation: Relation | undefined): Relation {
  if (relation?.since !== undefined && !relation.blocked) {
    return Object.freeze(
      relation.lastOnline === undefined
        ? { friends: relation.friends, blocked: false, since: relation.since }
        : {
            friends: relation.friends,
            blocked: false,
            lastOnline: relation.lastOnline,
            since: relation.since,
          },
    )
  }
  if (relation?.blocked && relation.lastOnline !== undefined) {
    return Object.freeze({
      friends: relation.friends,
      blocked: true,
      lastOnline: relation.lastOnline,
    })
  }
  return RELATIONS[(relation?.friends ? 1 : 0) + (relation?.blocked ? 2 : 0)]!
}

/** One projection of a target, shared by every watcher with the same access. */
interface Rendered {
  json: string
  online: boolean
  /** By event type, and by reason for offlines, and by position for streams that carry one. */
  frames: Record<string, Frame>
}

/** A positioned change's place; every change applied by `#sequence` has one. */
function positionOf(change: PresenceChange): { epoch: string; offset: number; at: number } {
  return change.position!
}

/**
 * Whether a history read passes a privacy mark, or cannot tell that it does not (trimmed past
 * its start, its marks not all known): its changes are then not replayed under the rules held.
 */
function crossesPrivacy(read: HistoryRead): boolean {
  return !read.complete || read.marks === undefined || read.marks.length > 0
}

/**
 * Whether a privacy mark `concerning` the subscriber was made since `from`, as the marks kept
 * beside the history tell (all known, in `from`'s epoch). A recovery then answers with the
 * user's current state whatever the history still holds: its changes were trimmed by all the
 * user did, unseen ones included, so answering `too_old` where it reaches back no longer would
 * tell a user busy while hidden from one who was offline (docs/reference/native.md, "Positions").
 */
function markedSince(
  from: HistoryPosition,
  read: HistoryRead,
  concerning: (concern: string | undefined) => boolean,
): boolean {
  if (from.epoch === '' || from.epoch !== read.position.epoch) return false
  if (from.offset > read.position.offset || read.marks === undefined) return false
  return read.marks.some((m) => m.offset > from.offset && concerning(m.concern))
}

type Task = { bus: BusEvent } | { run: () => Promise<void> }

/**
 * Turns bus changes into each subscriber's own numbered events. Per change it projects the
 * target through the core's privacy (accessOf + visiblePresence, as the HTTP APIs do), once per
 * distinct access, renders each projection once, and compares it with what every watcher was
 * last sent: offline → online is `online`, a visible change is `update`, online → offline is
 * `offline` (held for the flap grace period when sessions ended). Work is serialized through one
 * queue so that a snapshot and the events after it are always in order; consecutive bus events
 * are applied as one batch with one store read.
 */
export class Fanout {
  readonly #bus: ChangeBus
  readonly #source: FanoutSource
  readonly #options: FanoutOptions
  /** Catch-ups asked for by the bus coming back and not yet done (see #settingsToRead). */
  #catchingUp = 0
  readonly #watchers = new Watchers<Stream>()
  /** Each user's streams, oldest first (an array: most users have one). */
  readonly #byViewer = new Map<UserId, Stream[]>()
  readonly #byToken = new Map<string, Stream>()
  /** Streams without a connection, oldest first, with the watches each holds. */
  readonly #detached = new Map<Stream, number>()
  #detachedWatches = 0
  /** Settings of watched targets; refreshed by `settings` bus events. */
  readonly #settings = new Map<UserId, UserSettings>()
  /**
   * The distinct renders last sent for each watched target. A snapshot reuses an equal string
   * from here instead of keeping its own copy: thousands of watchers then share a few strings.
   */
  readonly #renders = new Map<UserId, string[]>()
  /**
   * Targets with an offline held for some watcher (`WatchList.held`), and when the earliest is
   * due (monotonic ms): one timer per target, however many watchers wait.
   */
  readonly #held = new Map<UserId, { due: number; timer: NodeJS.Timeout }>()
  /**
   * For each watched target, the history position this node has applied: a later change must
   * come next (offset + 1); a gap is filled from the history, a repeat is dropped.
   */
  readonly #positions = new Map<UserId, HistoryPosition>()
  /** Gaps filled from the history, and changes dropped as repeats (stats, tests). */
  #gaps = 0
  /** The changes #resync made: shown whatever they were before, never dropped as quiet. */
  readonly #resyncs = new WeakSet<PresenceChange>()
  /**
   * Fleet mode: per user, the streams admitted by `admit` and not opened (or released) yet, in
   * the order they stop counting.
   */
  readonly #admitted = new Map<UserId, Admission[]>()
  /** Users whose holdings changed here since their share was last set (fleet mode). */
  readonly #changed = new Set<UserId>()
  /**
   * Watches a subscribe or recover took in the fleet's count and has not added yet: counted in
   * every share set meanwhile, so that a set made while it reads does not give them back. One
   * at a time: subscribes and recovers run one after another (`#run`).
   */
  #claiming: { viewer: UserId; watches: number } | undefined
  readonly #renewal: NodeJS.Timeout | undefined
  readonly #unsubscribe: () => void
  readonly #unresubscribed: (() => void) | undefined
  #queue: Task[] = []
  #draining = false
  #stopped = false

  constructor(bus: ChangeBus, source: FanoutSource, options: FanoutOptions) {
    this.#bus = bus
    this.#source = source
    this.#options = options
    this.#unsubscribe = bus.subscribe((event) => {
      if (this.#stopped) return
      // A change of a user nobody here watches, with nothing queued before it: the drain it
      // would start looks at it at once (#apply's first check) and drops it, so it is dropped
      // here, without the task, the drain's promises and #apply's maps (most heartbeats' users
      // are watched by nobody on a node). Queued behind other work, it waits its turn, as a
      // subscription queued before it may watch the user by then.
      if (
        !this.#draining &&
        event.type === 'presence' &&
        !this.#watchers.isWatched(event.change.userId)
      ) {
        return
      }
      this.#queue.push({ bus: event })
      this.#kick()
    })
    this.#unresubscribed = bus.onResubscribed?.(() => {
      if (this.#stopped) return
      this.#catchingUp++
      // a short wait: the subscription is being renewed as the connection comes back
      setTimeout(() => {
        const done = () => void this.#catchingUp--
        if (this.#stopped) return done()
        this.#run(() => this.#catchUp())
          .catch((e) => options.onError?.(e))
          .finally(done)
      }, 100).unref()
    })
    const holdings = options.holdings
    if (holdings && options.limits) {
      // each share lapses unless set again: three renewals per lease ride out a late one
      this.#renewal = setInterval(() => this.#renew(), Math.max(1, holdings.leaseMs / 3))
      // the renewal alone must not keep the process alive
      this.#renewal.unref()
    }
  }

  /**
   * After the bus was lost for a while: every watched user whose history moved past what this
   * node applied gets the missed changes from the history, as if their messages had arrived.
   */
  async #catchUp(): Promise<void> {
    const targets = [...this.#positions.keys()]
    for (let i = 0; i < targets.length; i += 1000) {
      const chunk = targets.slice(i, i + 1000)
      const now = await this.#source.positions(chunk)
      const behind = new Map<UserId, PresenceChange[]>()
      const resynced: PresenceChange[] = []
      await Promise.all(
        chunk.map(async (id, j) => {
          const known = this.#positions.get(id)
          const current = now[j]
          if (!known || !current || current.offset === 0) return
          if (known.epoch === current.epoch && known.offset >= current.offset) return
          const from = known.epoch === current.epoch ? known : NO_HISTORY
          const read = await this.#source.history(id, from)
          if (crossesPrivacy(read)) {
            resynced.push(await this.#resync(id, read))
            return
          }
          const missed = read.changes.filter(
            (c) =>
              !isPrivacyMark(c) &&
              (positionOf(c).epoch !== known.epoch || positionOf(c).offset > known.offset),
          )
          if (missed.length > 0) behind.set(id, missed)
        }),
      )
      if (behind.size > 0) await this.#applyPositioned(behind)
      for (const change of resynced) {
        const { epoch, offset } = positionOf(change)
        if (this.#watchers.isWatched(change.userId))
          this.#positions.set(change.userId, { epoch, offset })
      }
      this.#fanOutInOrder(resynced.map((change) => [change]))
    }
  }

  /**
   * Which of `ids`' settings a new watch reads: those not held, or all of them while the bus is
   * away or its catch-up not done (a change of settings made meanwhile is not known here yet: a
   * watch must not be shown a user who hid as the settings held before show them).
   */
  #settingsToRead(ids: readonly UserId[]): readonly UserId[] {
    if (this.#bus.listening === false || this.#catchingUp > 0) return ids
    return ids.filter((id) => !this.#settings.has(id))
  }

  /**
   * `target`'s rules and state read again, after a history `read` of it that passed a privacy
   * mark this node may not have applied (its bus message lost, or the bus away) or that cannot
   * tell (crossesPrivacy): its settings and the relations of the streams a mark concerns, then
   * its presence now (after the history, so no later change is skipped), as one change at the
   * read's position. Replaying the missed changes instead would show them under the rules this
   * node held: a user who hid meanwhile would be seen moving, and one who showed again, what
   * they did hidden.
   */
  async #resync(target: UserId, read: HistoryRead): Promise<PresenceChange> {
    const marks = read.marks
    // a mark of unknown concern, or marks not all known: every rule may have changed
    const everyone =
      !read.complete || marks === undefined || marks.some((m) => m.concern === EVERYONE)
    const settingsChanged = everyone || marks.some((m) => m.concern[0] === 's')
    const related = new Set<UserId>()
    for (const m of marks ?? []) if (m.concern[0] === 'r') related.add(m.concern.slice(1) as UserId)
    const streams: Stream[] = []
    for (const entry of this.#watchers.watchersOf(target)) {
      const stream = this.#watchers.connectionOf(entry)
      if (everyone || related.has(stream.viewer)) streams.push(stream)
    }
    const [presences, settings, relations] = await Promise.all([
      this.#source.presences([target]),
      settingsChanged ? this.#source.settings([target]) : undefined,
      Promise.all(streams.map((stream) => this.#source.relations(stream.viewer, [target]))),
    ])
    if (settings && this.#watchers.isWatched(target)) {
      this.#settings.set(target, settings[0] ?? defaultSettings)
    }
    streams.forEach((stream, i) => {
      const w = this.#watchers.get(stream, target)
      if (w >= 0) stream.watches.setRelation(w, relationOf(relations[i]?.[0]))
    })
    const presence = presences[0]!
    const resynced: PresenceChange = {
      userId: target,
      before: presence,
      after: presence,
      reason: 'explicit',
      position: {
        epoch: read.position.epoch,
        offset: read.position.offset,
        at: this.#source.now(),
      },
    }
    this.#resyncs.add(resynced)
    return resynced
  }

  /**
   * Whether `viewer` may open another stream on this node (fewer open, and admitted, than
   * `streamsPerUser`); `admit` asks the fleet too.
   */
  admits(viewer: UserId): boolean {
    const limit = this.#options.limits?.streamsPerUser
    if (limit === undefined) return true
    return this.#holdings(viewer).streams < limit
  }

  /**
   * Admits one more stream of `viewer`, for `open` to open soon (a connection about to be
   * upgraded): false when the user holds `streamsPerUser` open streams, on this node or, in fleet
   * mode, across the fleet. In fleet mode the place is taken at once (one round trip), so two
   * nodes admitting the same user together cannot both take the last one; it counts until `open`
   * takes it, `release` gives it back, else it lapses after ADMITTED_MS. When the fleet's count
   * cannot be reached, this node's decides: an outage of Redis refuses nobody on its account.
   * Undefined when refused.
   */
  async admit(viewer: UserId): Promise<Admission | undefined> {
    if (!this.admits(viewer)) return undefined
    const holdings = this.#options.holdings
    const limit = this.#options.limits?.streamsPerUser
    if (!holdings || limit === undefined) return { viewer, until: 0 }
    const admission = { viewer, until: performance.now() + ADMITTED_MS }
    let admitted = this.#admitted.get(viewer)
    if (!admitted) this.#admitted.set(viewer, (admitted = []))
    admitted.push(admission)
    if (await this.#claim(viewer, { streams: limit })) return admission
    this.#unadmit(admission)
    return undefined
  }

  /**
   * Gives back the place of an admitted stream that will not open (its handshake was refused,
   * or its client left), at once and, in fleet mode, in the fleet's count: else it would keep
   * the place for ADMITTED_MS here, and until the next renewal in Redis. Does nothing once the
   * stream opened, was released or lapsed.
   */
  release(admission: Admission): void {
    if (this.#unadmit(admission)) this.#holdingsChanged(admission.viewer)
  }

  /** Removes `admission` from the admitted ones; false when it was not there (any more). */
  #unadmit(admission: Admission): boolean {
    const admitted = this.#admitted.get(admission.viewer)
    const at = admitted ? admitted.indexOf(admission) : -1
    if (at === -1) return false
    admitted!.splice(at, 1)
    if (admitted!.length === 0) this.#admitted.delete(admission.viewer)
    return true
  }

  /**
   * Opens a new, empty stream for `viewer`, delivering to `sink`: in the place `admit` took for
   * it (`admission`, else the oldest admitted one), else if the user has fewer open streams than
   * allowed here; undefined otherwise.
   */
  open(viewer: UserId, sink: Sink, admission?: Admission): Stream | undefined {
    const admitted = this.#admitted.get(viewer)
    const taken =
      admission === undefined
        ? admitted !== undefined && admitted.shift() !== undefined
        : admission.viewer === viewer && this.#unadmit(admission)
    if (taken) {
      if (admitted?.length === 0) this.#admitted.delete(viewer)
    } else {
      if (!this.admits(viewer)) return undefined
      this.#holdingsChanged(viewer)
    }
    const stream = new Stream(viewer, this.#options.replayFrames)
    stream.sink = sink
    this.#byToken.set(stream.token, stream)
    const streams = this.#byViewer.get(viewer)
    // a user's first stream: an array of exactly one (pushed into `[]`, V8 gives it room for 17)
    if (streams) streams.push(stream)
    else this.#byViewer.set(viewer, [stream])
    return stream
  }

  /**
   * Continues the stream named by `token` on `sink`, replaying every frame after `since`. Fails
   * (and the caller sends a reset) when the stream is unknown, expired, another user's, or its
   * buffer no longer reaches back to `since`.
   */
  resume(viewer: UserId, token: string, since: number, sink: Sink): ResumeResult {
    const stream = this.#byToken.get(token)
    if (!stream || stream.disposed || stream.viewer !== viewer)
      return { ok: false, reason: 'unknown' }
    if (!stream.replay.covers(since)) {
      this.close(stream)
      return { ok: false, reason: 'too_old' }
    }
    clearTimeout(stream.expiry)
    stream.expiry = undefined
    this.#undetach(stream)
    const previous = stream.sink
    stream.sink = sink
    previous?.replaced()
    // its watches count again; a resume is not refused (they were admitted before)
    this.#holdingsChanged(viewer)
    let seq = since
    for (const frame of stream.replay.after(since)) sink.send(frame, ++seq, stream.token)
    return { ok: true, stream }
  }

  /**
   * Continues, on `stream` (new, empty), a stream of `viewer` that lived elsewhere (another node,
   * or one forgotten here), from the history positions its client holds: each position is the
   * `pos` of the last frame it had about that user. Sends `recovered` with the new resume token,
   * then exactly the changes each user made since its position, in order, projected for the
   * viewer as they are now; every user is then watched as by `subscribe`. `reset` (nothing sent,
   * nothing watched) when a position is not one of ours or some user's history no longer reaches
   * back to it: the client starts over with a snapshot. Frames carry `pos` only when the stream
   * asks for positions (`stream.positions`, set by the caller): holding positions is not asking.
   */
  recover(stream: Stream, held: ReadonlyArray<readonly [UserId, string]>): Promise<RecoverResult> {
    let result: RecoverResult | undefined
    stream.reserved += held.length
    return this.#run(async () => {
      try {
        result = await this.#recover(stream, held)
      } finally {
        stream.reserved -= held.length
        this.#settleClaim(stream, result === 'ok')
      }
    }).then(() => result!)
  }

  async #recover(
    stream: Stream,
    held: ReadonlyArray<readonly [UserId, string]>,
  ): Promise<RecoverResult> {
    const codec = this.#options.positionTokens
    if (stream.disposed) return 'ok'
    if (!codec) return 'reset'
    const ids: UserId[] = []
    const from: IssuedPosition[] = []
    const watching = this.#watchers.index(stream)
    for (const [id, token] of held) {
      const position = codec.decode(token, this.#source.now())
      if (!position) return 'reset'
      if (watching.has(id)) continue
      ids.push(id)
      from.push(position)
    }
    if (ids.length > 0 && !this.#makeRoom(stream.viewer, ids.length)) return 'watch_limit'
    const unknownSettings = this.#settingsToRead(ids)
    // presences before histories: a user with nothing new since its position has exactly this
    // (the fleet's count is taken in the same round trip as the reads)
    const [room, presences, settings, relations] = await Promise.all([
      this.#claimWatches(stream, ids.length),
      this.#source.presences(ids),
      unknownSettings.length > 0 ? this.#source.settings(unknownSettings) : [],
      ids.length > 0 ? this.#source.relations(stream.viewer, ids) : [],
    ])
    if (!room) return 'watch_limit'
    const reads = await Promise.all(ids.map((id, i) => this.#source.history(id, from[i]!)))
    const now = this.#source.now()
    const settingsOf = new Map(unknownSettings.map((id, i) => [id, settings[i] ?? defaultSettings]))
    // whether a mark concerns the subscriber: one that does not left what it may see of the
    // user as it was, and counts as no mark for it (history.ts `concerns`)
    const viewer = stream.principal.kind === 'user' ? stream.principal.userId : undefined
    const concerning = ids.map((id, i) => {
      const audience = audienceOf(stream.principal, id, relationOf(relations[i]))
      return (concern: string | undefined) => concerns(concern, viewer, audience)
    })
    const hidden = ids.map((id, i) => {
      const targetSettings = settingsOf.get(id) ?? this.#settings.get(id) ?? defaultSettings
      const relation = relationOf(relations[i])
      const access = accessOf(stream.principal, id, targetSettings, relation)
      const throughout = (marks: readonly MarkRecord[]) =>
        (relation.blocked &&
          viewer !== undefined &&
          !marks.some((m) => m.concern === relationConcern(viewer))) ||
        (targetSettings.invisible && marks.every(keptInvisible))
      return this.#hiddenSince(access, from[i]!, reads[i]!, now, concerning[i]!, throughout)
    })
    if (hidden.includes('forgotten')) return 'reset'
    const marked = ids.map((_, i) => markedSince(from[i]!, reads[i]!, concerning[i]!))
    if (reads.some((read, i) => !read.complete && !hidden[i] && !marked[i])) return 'reset'
    // who may see what changed since some position: replaying that user's changes under today's
    // rules could show what was hidden then, so the client gets its current state instead,
    // read now (after the history, so no later change is skipped)
    const crossed = ids.flatMap((id, i) =>
      hidden[i] === 'marked' ||
      marked[i] ||
      reads[i]!.changes.some(
        (c) =>
          isPrivacyMark(c) && positionOf(c).offset > from[i]!.offset && concerning[i]!(c.concern),
      )
        ? [i]
        : [],
    )
    const current =
      crossed.length > 0 ? await this.#source.presences(crossed.map((i) => ids[i]!)) : []
    if (stream.disposed) return 'ok'
    for (const [id, value] of settingsOf) this.#settings.set(id, value)
    stream.push({ head: HEADS.recovered, tail: `,"resume":"${stream.token}"}` })
    const at = performance.now()
    ids.forEach((id, i) => {
      const read = reads[i]!
      const start = from[i]!
      const sameEpoch = start.epoch === read.position.epoch
      // hidden throughout: nothing to replay (the subscriber saw none of it), as for an idle user
      let changes = hidden[i] ? [] : read.changes
      // what the client holds: the change at its position, or the state before the next real
      // one (marks hold no presence), or, when nothing happened since, the state read first
      let base = presences[i]!
      let baseAt = now
      const held = changes[0]
      if (held && sameEpoch && positionOf(held).offset === start.offset) {
        changes = changes.slice(1)
        if (!isPrivacyMark(held)) {
          base = held.after
          baseAt = positionOf(held).at
        }
      }
      const next = changes.find((c) => !isPrivacyMark(c))
      if (next && !(held && !isPrivacyMark(held) && base === held.after)) {
        // with the expired sessions it told the end of first (expiryOf), as they were sent:
        // read just before they expired
        const expiry = expiryOf(next)
        base = expiry?.before ?? next.before
        baseAt = expiry ? instantBefore(expiry, positionOf(next).at) : positionOf(next).at
      }
      const collapsed = crossed.indexOf(i)
      if (collapsed >= 0) {
        // only the current state, shown under the current rules, as one change
        changes = [
          {
            userId: id,
            before: base,
            after: current[collapsed]!,
            position: { epoch: read.position.epoch, offset: read.position.offset, at: now },
          },
        ]
      }
      const known = this.#positions.get(id)
      if (!known || known.epoch === '') this.#positions.set(id, read.position)
      // offsets count in the epoch the node follows; another one (a lagging node) starts at 0
      const follows = this.#positions.get(id)!.epoch === read.position.epoch
      const watches = stream.watches
      const relation = relationOf(relations[i])
      const w = this.#watchers.add(
        stream,
        this.#watchers.canonical(id),
        follows && sameEpoch ? start.offset : 0,
      )
      watches.setRelation(w, relation)
      if (collapsed >= 0) {
        // what the client shows was projected under earlier rules, from sessions those rules
        // may have hidden from it: whatever it is, the current state is sent, as `online` when
        // the subscriber may see the user online now, else as `offline`. Nothing of the
        // sessions at the position decides it (a hidden user's would tell what it hid).
        const shown = this.#project(stream, id, relation, current[collapsed]!, now)
        watches.setSent(w, '', !shown.online)
      } else {
        const projected = this.#project(stream, id, relation, base, baseAt)
        watches.setSent(w, this.#intern(id, projected.json), projected.online)
      }
      for (const change of changes) {
        const position = positionOf(change)
        const prior = watches.offset(w)
        if (follows) watches.setOffset(w, position.offset)
        if (isPrivacyMark(change)) continue
        if (collapsed < 0 && isRefresh(change)) continue
        // an expiry the write told first (expiryOf): its state before the write, first
        const expiry = expiryOf(change)
        if (expiry) {
          const ended = this.#project(stream, id, relation, change.before, position.at)
          this.#emit(stream, id, w, ended, expiry.reason ?? 'timeout', at, prior)
        }
        const rendered = this.#project(stream, id, relation, change.after, position.at)
        this.#emit(stream, id, w, rendered, change.reason ?? 'explicit', at, prior)
      }
      if (follows) watches.setOffset(w, Math.max(watches.offset(w), read.position.offset))
      this.#settle(id, at)
    })
    return 'ok'
  }

  /**
   * How a recovery from `from` answers for a user whose access by the subscriber is `access`
   * now, when the user was hidden from the subscriber all along since `from`: hidden now, and
   * `throughout` the privacy marks since `from` (all known): a block with the subscriber that
   * none of them changed, or invisibility that each settings mark kept. The subscriber could then
   * see no change of it, and recovers as from an offline user who made none: `quiet` (nothing to
   * replay, whatever the history kept, trimmed by the changes it did not see, or not) when no mark
   * since `from` is `concerning` it (one that does not, a relation with someone else or a
   * settings change that would not change what it sees of a visible user, is none for it), else
   * `marked`: the current state as one event, as for an offline user idle but for those marks.
   * And as such a user's position is forgotten `positionTtlMs` after its last change, a hidden
   * one's counts from the lastOnline the subscriber is shown: `forgotten` (a reset) once that is
   * past for a position issued before it; an offline user's position issued after it was one of
   * no history, which stays good (docs/reference/native.md, "Positions").
   * Undefined otherwise: the history decides.
   */
  #hiddenSince(
    access: Access,
    from: IssuedPosition,
    read: HistoryRead,
    now: number,
    concerning: (concern: string | undefined) => boolean,
    throughout: (marks: readonly MarkRecord[]) => boolean,
  ): 'quiet' | 'marked' | 'forgotten' | undefined {
    if (access.kind !== 'hidden' || from.issuedAt === undefined) return undefined
    if (from.epoch === '' || from.epoch !== read.position.epoch) return undefined
    if (from.offset > read.position.offset) return undefined
    if (read.lastMark === undefined) return undefined
    const marks = read.lastMark > from.offset ? read.marks : []
    if (marks === undefined || !throughout(marks)) return undefined
    if (access.lastOnline !== undefined) {
      const forgotten = access.lastOnline + this.#source.positionTtlMs
      if (from.issuedAt <= forgotten && now > forgotten) return 'forgotten'
    }
    return marks.some((m) => concerning(m.concern)) ? 'marked' : 'quiet'
  }

  /** The connection of `stream` ended: keep the stream resumable for a while, then drop it. */
  detach(stream: Stream, sink: Sink): void {
    if (stream.sink !== sink || stream.disposed) return
    stream.sink = undefined
    this.#holdingsChanged(stream.viewer)
    if (this.#options.resumeWindowMs <= 0 || stream.seq === 0) return this.close(stream)
    stream.expiry = setTimeout(() => this.close(stream), this.#options.resumeWindowMs)
    // a detached stream alone must not keep the process alive
    stream.expiry.unref()
    const watches = this.watchCount(stream)
    this.#detached.set(stream, watches)
    this.#detachedWatches += watches
    this.#bound(stream.viewer)
  }

  /**
   * Where `stream` stands for its subscriber, for it to continue on another node (`recover`):
   * the seq of the last frame and, per watched user, the `pos` of what the subscriber was last
   * sent of it (an offline still held back for the flap grace counts as not sent). Read at one
   * instant: call it once the stream's connection sends nothing more. Undefined without
   * position tokens.
   */
  checkpoint(stream: Stream): { seq: number; held: Array<[UserId, string]> } | undefined {
    if (!this.#options.positionTokens || stream.disposed) return undefined
    const watches = stream.watches
    const held: Array<[UserId, string]> = []
    for (let w = 0; w < watches.size; w++) {
      const target = watches.target(w)
      held.push([target, this.#pos(target, watches.held(w)?.offset ?? watches.offset(w))])
    }
    return { seq: stream.seq, held }
  }

  /** Drops a stream and its watches now. */
  close(stream: Stream): void {
    if (stream.disposed) return
    stream.disposed = true
    clearTimeout(stream.expiry)
    if (stream.sink) this.#holdingsChanged(stream.viewer)
    stream.sink = undefined
    this.#undetach(stream)
    this.#byToken.delete(stream.token)
    const streams = this.#byViewer.get(stream.viewer)
    const at = streams ? streams.indexOf(stream) : -1
    if (at >= 0) streams!.splice(at, 1)
    if (streams?.length === 0) this.#byViewer.delete(stream.viewer)
    for (const orphan of this.#watchers.removeAll(stream)) this.#forget(orphan)
  }

  /**
   * Watches `ids` (deduplicated); sends one snapshot of exactly those ids, in order. Refused
   * whole ('watch_limit', nothing sent) when the user's streams would watch more users than
   * allowed, once the user's own dropped streams have given way; refused whole too
   * ('too_many_ids') when the stream would watch more than `maxIds` users, counted when it runs,
   * after the subscribes and unsubscribes queued before it (a count taken when it is asked
   * cannot tell a churn of subscribe/unsubscribe from a stream growing past its bound).
   */
  subscribe(stream: Stream, ids: readonly UserId[], maxIds?: number): Promise<SubscribeResult> {
    let result: SubscribeResult | undefined
    return this.#run(async () => {
      try {
        result = await this.#subscribe(stream, ids, maxIds)
      } finally {
        this.#settleClaim(stream, result === 'ok')
      }
    }).then(() => result!)
  }

  /**
   * Whether `viewer` may watch `count` more users now (dropping the user's own dropped streams
   * if that makes room), here and, in fleet mode, across the fleet: a check before work starts;
   * `subscribe` checks again, and takes the room.
   */
  async hasRoom(viewer: UserId, count: number): Promise<boolean> {
    if (!this.#makeRoom(viewer, count)) return false
    const holdings = this.#options.holdings
    const limit = this.#options.limits?.watchesPerUser
    if (!holdings || limit === undefined) return true
    try {
      const others = await holdings.others(viewer)
      return others.watches + this.#holdings(viewer).watches + count <= limit
    } catch {
      // the fleet's count is out of reach: this node's decides (see `admit`)
      this.#options.onFleetCountError?.('read')
      return true
    }
  }

  unsubscribe(stream: Stream, ids: readonly UserId[]): Promise<void> {
    const dropped = new Set(ids)
    return this.#drop(stream, (target) => dropped.has(target))
  }

  /**
   * Stops watching every user of `stream` not among `ids`: a stream resumed by a request that
   * names its users (SSE, which has no unsubscribe) watches those, not what it watched before.
   */
  retain(stream: Stream, ids: readonly UserId[]): Promise<void> {
    const kept = new Set(ids)
    return this.#drop(stream, (target) => !kept.has(target))
  }

  #drop(stream: Stream, drops: (target: UserId) => boolean): Promise<void> {
    return this.#run(async () => {
      const watches = stream.watches
      // from the end: a removal moves the last watch, already looked at, into the freed place
      for (let w = watches.size - 1; w >= 0; w--) {
        const target = watches.target(w)
        if (!drops(target)) continue
        if (this.#watchers.remove(stream, w)) this.#forget(target)
      }
      if (stream.sink) this.#holdingsChanged(stream.viewer)
    })
  }

  /** Whether any stream of this fan-out (a detached one too) watches `target`. */
  watches(target: UserId): boolean {
    return this.#watchers.isWatched(target)
  }

  isWatching(stream: Stream, target: UserId): boolean {
    return this.#watchers.get(stream, target) >= 0
  }

  watchCount(stream: Stream): number {
    return stream.watches.size
  }

  /**
   * Whether `stream` may be asked to watch `count` more ids without holding more than `max`:
   * what it watches counts, and so do the ids of its recovers not applied yet (subscribes check
   * their bound when they run: `subscribe`'s `maxIds`). Ids it watches already count again: the
   * check is made before the work that would tell them.
   */
  fitsIds(stream: Stream, count: number, max: number): boolean {
    return stream.watches.size + stream.reserved + count <= max
  }

  stats(): {
    streams: number
    attached: number
    detached: number
    detachedWatches: number
    subscriptions: number
    targets: number
    held: number
    gaps: number
  } {
    let attached = 0
    let subscriptions = 0
    for (const stream of this.#byToken.values()) {
      if (stream.sink) attached++
      subscriptions += stream.watches.size
    }
    return {
      streams: this.#byToken.size,
      attached,
      detached: this.#detached.size,
      detachedWatches: this.#detachedWatches,
      subscriptions,
      targets: this.#watchers.size.targets,
      held: this.#held.size,
      gaps: this.#gaps,
    }
  }

  /** Settles once everything queued so far has been applied (tests, shutdown). */
  idle(): Promise<void> {
    return this.#run(async () => {})
  }

  /**
   * Closes every stream and stops. Resolves once, in fleet mode, this node's shares of its
   * users' holdings are gone (best effort: else they lapse with their lease), so that a node
   * shutting down frees its users' places at once; call it before the stores close.
   */
  stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#renewal)
    this.#unsubscribe()
    this.#unresubscribed?.()
    for (const { timer } of this.#held.values()) clearTimeout(timer)
    this.#held.clear()
    for (const stream of [...this.#byToken.values()]) this.close(stream)
    this.#queue = []
    this.#admitted.clear()
    return this.#setChanged()
  }

  #run(run: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ run: () => run().then(resolve, reject) })
      this.#kick()
    })
  }

  #kick(): void {
    if (!this.#draining) void this.#drain()
  }

  async #drain(): Promise<void> {
    this.#draining = true
    try {
      while (this.#queue.length > 0) {
        const tasks = this.#queue
        this.#queue = []
        let batch: BusEvent[] = []
        for (const task of tasks) {
          if ('bus' in task) {
            batch.push(task.bus)
            continue
          }
          if (batch.length > 0) await this.#applySafely(batch)
          batch = []
          await task.run()
        }
        if (batch.length > 0) await this.#applySafely(batch)
      }
    } finally {
      this.#draining = false
    }
  }

  /**
   * Applies a batch in segments of presence changes followed by other events: a change made
   * after a settings or relation change is projected under the new rules, never the old ones.
   */
  async #applySafely(events: BusEvent[]): Promise<void> {
    let start = 0
    for (let i = 1; i <= events.length; i++) {
      if (
        i < events.length &&
        !(events[i]!.type === 'presence' && events[i - 1]!.type !== 'presence')
      )
        continue
      try {
        await this.#apply(start === 0 && i === events.length ? events : events.slice(start, i))
      } catch (error) {
        this.#options.onError?.(error)
      }
      start = i
    }
  }

  async #subscribe(
    stream: Stream,
    ids: readonly UserId[],
    maxIds: number | undefined,
  ): Promise<SubscribeResult> {
    if (stream.disposed) return 'ok'
    const unique = [...new Set(ids)]
    const watching = this.#watchers.index(stream)
    const fresh = unique.filter((id) => !watching.has(id))
    if (maxIds !== undefined && stream.watches.size + fresh.length > maxIds) return 'too_many_ids'
    if (fresh.length > 0 && !this.#makeRoom(stream.viewer, fresh.length)) return 'watch_limit'
    const unknownSettings = this.#settingsToRead(fresh)
    // positions before presences (issued first, and a user's keys share a slot): a change
    // between the two reads shows in the snapshot and is later dropped as a repeat, never lost;
    // the fleet's count is taken in the same round trip as the reads
    const [room, positions, presences, settings, relations] = await Promise.all([
      this.#claimWatches(stream, fresh.length),
      fresh.length > 0 ? this.#source.positions(fresh) : [],
      this.#source.presences(fresh),
      unknownSettings.length > 0 ? this.#source.settings(unknownSettings) : [],
      fresh.length > 0 ? this.#source.relations(stream.viewer, fresh) : [],
    ])
    if (!room) return 'watch_limit'
    if (stream.disposed) return 'ok'
    unknownSettings.forEach((id, i) => this.#settings.set(id, settings[i] ?? defaultSettings))
    const now = this.#source.now()
    const watches = stream.watches
    fresh.forEach((id, i) => {
      const position = this.#track(id, positions[i] ?? NO_HISTORY)
      const w = this.#watchers.add(stream, this.#watchers.canonical(id), position)
      const relation = relationOf(relations[i])
      watches.setRelation(w, relation)
      const projected = this.#project(stream, id, relation, presences[i]!, now)
      watches.setSent(w, this.#intern(id, projected.json), projected.online)
      watching.set(id, w)
    })
    if (fresh.length > 0) this.#watchers.trim(stream)
    // references, not one string: the replay buffer then holds the shared renders
    const shown = unique.map((id) => watches.sent(watching.get(id)!))
    const tokens =
      stream.positions && this.#options.positionTokens
        ? unique.map((id) => this.#pos(id, watches.offset(watching.get(id)!)))
        : undefined
    stream.push(new SnapshotTail(stream.token, shown, tokens))
    return 'ok'
  }

  /**
   * The node starts following `target` at `position` unless it follows it already; returns the
   * offset a new watch of it starts at (in the epoch the node follows).
   */
  #track(target: UserId, position: HistoryPosition): number {
    const known = this.#positions.get(target)
    if (!known) {
      this.#positions.set(target, position)
      return position.offset
    }
    // the node is behind the read (changes on their way): they are not this watch's to get
    if (known.epoch === position.epoch) return Math.max(known.offset, position.offset)
    return known.offset
  }

  /** The opaque position of `target` at `offset` in the epoch this node follows. */
  #pos(target: UserId, offset: number): string {
    const epoch = this.#positions.get(target)?.epoch ?? ''
    const position = epoch === '' ? NO_HISTORY : { epoch, offset }
    return this.#options.positionTokens!.encode(position, this.#source.now())
  }

  /** Makes room for `count` more watches of `viewer`, dropping its dropped streams, oldest first. */
  #makeRoom(viewer: UserId, count: number): boolean {
    const limit = this.#options.limits?.watchesPerUser
    if (limit === undefined) return true
    const streams = this.#byViewer.get(viewer)
    let watches = 0
    for (const stream of streams ?? []) watches += this.watchCount(stream)
    if (watches + count <= limit) return true
    for (const stream of [...(streams ?? [])]) {
      if (stream.sink) continue
      watches -= this.watchCount(stream)
      this.close(stream)
      if (watches + count <= limit) return true
    }
    return false
  }

  /**
   * What `viewer` holds on this node, as its share of the fleet's count: open streams (and
   * streams admitted, not opened yet) and their watches. Dropped streams are not counted: they
   * are this node's to bound (`#bound`), and give way to the user's new ones anywhere.
   */
  #holdings(viewer: UserId): Holdings {
    let streams = 0
    const admitted = this.#admitted.get(viewer)
    if (admitted) {
      const now = performance.now()
      // an admitted connection that never opened (nor was released) stops counting
      while (admitted.length > 0 && admitted[0]!.until <= now) admitted.shift()
      if (admitted.length === 0) this.#admitted.delete(viewer)
      streams = admitted.length
    }
    let watches = this.#claiming?.viewer === viewer ? this.#claiming.watches : 0
    for (const stream of this.#byViewer.get(viewer) ?? []) {
      if (!stream.sink) continue
      streams++
      watches += stream.watches.size
    }
    return { streams, watches }
  }

  /**
   * Sets this node's share of `viewer`'s holdings, refused when the fleet's totals would pass
   * `max`. True when set, and when the fleet's count is out of reach (an outage): this node's
   * own count, checked before, then decides, as in embedded mode.
   */
  async #claim(viewer: UserId, max: Partial<Holdings>): Promise<boolean> {
    const share = this.#holdings(viewer)
    try {
      return (await this.#options.holdings!.set(viewer, share, max)).ok
    } catch {
      // set again by the renewal once Redis answers
      this.#options.onFleetCountError?.('claim')
      return true
    }
  }

  /**
   * Takes, across the fleet, the room for `count` more watches of `stream` (fleet mode), held in
   * `#claiming` until `#settleClaim`.
   */
  async #claimWatches(stream: Stream, count: number): Promise<boolean> {
    const limit = this.#options.limits?.watchesPerUser
    // a stream without a connection holds nothing of the fleet's count
    if (!this.#options.holdings || limit === undefined || count === 0 || !stream.sink) return true
    this.#claiming = { viewer: stream.viewer, watches: count }
    const taken = await this.#claim(stream.viewer, { watches: limit })
    if (!taken) this.#claiming = undefined
    return taken
  }

  /**
   * A subscribe or recover is over: its claimed watches are now the stream's own (`added`), or
   * were not added (refused, reset, failed, or the stream closed meanwhile), and the user's
   * share is set again without them.
   */
  #settleClaim(stream: Stream, added: boolean): void {
    if (this.#claiming === undefined) return
    this.#claiming = undefined
    if (!added || stream.disposed || !stream.sink) this.#holdingsChanged(stream.viewer)
  }

  /** `viewer`'s share changed here: set in the fleet's count, with every other change of this tick. */
  #holdingsChanged(viewer: UserId): void {
    if (!this.#options.holdings || !this.#options.limits) return
    if (this.#changed.size === 0) setImmediate(() => void this.#setChanged())
    this.#changed.add(viewer)
  }

  async #setChanged(): Promise<void> {
    const holdings = this.#options.holdings
    if (!holdings || this.#changed.size === 0) return
    const viewers = [...this.#changed]
    this.#changed.clear()
    // one script per user, issued together: one round trip (the client pipelines a tick);
    // a failed set is repaired by the next renewal
    const sets = await Promise.allSettled(
      viewers.map((viewer) => holdings.set(viewer, this.#holdings(viewer))),
    )
    for (const set of sets) {
      if (set.status === 'rejected') this.#options.onFleetCountError?.('update')
    }
  }

  /** Sets again the share of every user holding anything here, before their leases lapse. */
  #renew(): void {
    for (const viewer of this.#byViewer.keys()) this.#changed.add(viewer)
    for (const viewer of this.#admitted.keys()) this.#changed.add(viewer)
    void this.#setChanged()
  }

  /** Keeps dropped streams within the user's and the node's bounds, dropping the oldest. */
  #bound(viewer: UserId): void {
    const limits = this.#options.limits
    if (!limits) return
    let detached = 0
    for (const stream of this.#byViewer.get(viewer) ?? []) if (!stream.sink) detached++
    for (const stream of [...(this.#byViewer.get(viewer) ?? [])]) {
      if (detached <= limits.streamsPerUser) break
      if (stream.sink) continue
      this.close(stream)
      detached--
    }
    for (const stream of this.#detached.keys()) {
      if (this.#detachedWatches <= limits.detachedWatches) break
      this.close(stream)
    }
  }

  #undetach(stream: Stream): void {
    const watches = this.#detached.get(stream)
    if (watches === undefined) return
    this.#detached.delete(stream)
    this.#detachedWatches -= watches
  }

  async #apply(events: BusEvent[]): Promise<void> {
    /** Targets whose sessions changed, with the reason of the last change that ended some. */
    const changed = new Map<UserId, OfflineReason | undefined>()
    /** Changes with a history position, per target in arrival order: applied one by one. */
    const positioned = new Map<UserId, PresenceChange[]>()
    const resettled = new Set<UserId>()
    const pairs = new Map<Stream, Set<UserId>>()
    for (const event of events) {
      if (event.type === 'presence') {
        const { userId, reason } = event.change
        if (!this.#watchers.isWatched(userId)) continue
        if (event.change.position) {
          const list = positioned.get(userId)
          if (list) list.push(event.change)
          else positioned.set(userId, [event.change])
          continue
        }
        // a refresh heartbeat moves expiry only: nothing any watcher sees can differ
        if (!changed.has(userId) && isRefresh(event.change)) continue
        changed.set(userId, reason ?? changed.get(userId))
      } else if (event.type === 'settings') {
        if (this.#watchers.isWatched(event.userId)) resettled.add(event.userId)
      } else if (event.type === 'relation') {
        const [a, b] = event.users
        this.#pairsOf(a, b, pairs)
        this.#pairsOf(b, a, pairs)
      }
    }
    if (positioned.size > 0) await this.#applyPositioned(positioned)
    if (changed.size === 0 && resettled.size === 0 && pairs.size === 0) return

    const relationJobs = [...pairs].map(([stream, targets]) => ({ stream, targets: [...targets] }))
    const targets = new Set<UserId>([...changed.keys(), ...resettled])
    for (const job of relationJobs) for (const target of job.targets) targets.add(target)
    const ids = [...targets]
    const settingsIds = [...resettled]
    const [presences, settings, relations] = await Promise.all([
      this.#source.presences(ids),
      settingsIds.length > 0 ? this.#source.settings(settingsIds) : [],
      Promise.all(
        relationJobs.map((job) => this.#source.relations(job.stream.viewer, job.targets)),
      ),
    ])
    settingsIds.forEach((id, i) => {
      if (this.#watchers.isWatched(id)) this.#settings.set(id, settings[i] ?? defaultSettings)
    })
    relationJobs.forEach((job, i) => {
      job.targets.forEach((target, j) => {
        const w = this.#watchers.get(job.stream, target)
        if (w >= 0) job.stream.watches.setRelation(w, relationOf(relations[i]?.[j]))
      })
    })
    const presenceOf = new Map(ids.map((id, i) => [id, presences[i]!]))
    const now = this.#source.now()
    const at = performance.now()
    for (const [id, reason] of changed) {
      this.#fanOut(id, presenceOf.get(id)!, reason ?? 'explicit', now, at)
    }
    // a user hidden by settings or a block looks like one who signed out
    for (const id of resettled) this.#fanOut(id, presenceOf.get(id)!, 'explicit', now, at)
    const touched = new Set<UserId>()
    for (const { stream, targets: streamTargets } of relationJobs) {
      for (const target of streamTargets) {
        const w = this.#watchers.get(stream, target)
        if (w < 0) continue
        const relation = stream.watches.relation(w)
        const rendered = this.#project(stream, target, relation, presenceOf.get(target)!, now)
        this.#emit(stream, target, w, rendered, 'explicit', at)
        touched.add(target)
      }
    }
    for (const target of touched) this.#settle(target, at)
  }

  /**
   * Applies each target's changes in offset order, each once: a repeat (a change this node
   * applied already, e.g. its own heard back late) is dropped, and a gap (a bus message lost or
   * still on its way) is filled from the history first. Every watcher gets its own view of each
   * change, not only of the latest.
   */
  async #applyPositioned(positioned: Map<UserId, PresenceChange[]>): Promise<void> {
    const sequences = await Promise.all(
      [...positioned].map(([id, changes]) => this.#sequence(id, changes)),
    )
    this.#fanOutInOrder(sequences)
  }

  /** Each target's changes, in order, to its watchers that have not had them. */
  #fanOutInOrder(sequences: readonly (readonly PresenceChange[])[]): void {
    const at = performance.now()
    for (const changes of sequences) {
      for (const change of changes) {
        const position = positionOf(change)
        const target = change.userId
        if (!this.#watchers.isWatched(target)) break
        // a refresh heartbeat moves expiry only: nothing any watcher sees can differ (a resync
        // shows what the rules read again make of the state, whatever it was before)
        const quiet = !this.#resyncs.has(change) && isRefresh(change)
        const expiry = expiryOf(change)
        this.#fanOut(
          target,
          change.after,
          change.reason ?? 'explicit',
          position.at,
          at,
          position.offset,
          quiet,
          expiry && { presence: change.before, reason: expiry.reason ?? 'timeout' },
        )
      }
    }
  }

  /** The changes of `target` to apply, in order, from what arrived (see #applyPositioned). */
  async #sequence(target: UserId, arrived: PresenceChange[]): Promise<PresenceChange[]> {
    const out: PresenceChange[] = []
    for (const change of arrived) {
      let known = this.#positions.get(target) ?? NO_HISTORY
      const { epoch, offset } = positionOf(change)
      if (known.epoch !== '' && epoch !== known.epoch) {
        // the history was lost and started again: the offsets of the old epoch mean nothing
        // now, and the new epoch is followed from its start
        for (const entry of this.#watchers.watchersOf(target)) {
          const watches = this.#watchers.connectionOf(entry).watches
          watches.setOffset(watchOf(entry), 0)
          const held = watches.held(watchOf(entry))
          if (held) held.offset = 0
        }
        known = NO_HISTORY
        this.#positions.set(target, known)
      }
      const last = known.epoch === epoch ? known.offset : 0
      if (offset <= last) continue
      if (offset > last + 1) {
        this.#gaps++
        const read = await this.#source.history(target, known)
        if (crossesPrivacy(read)) {
          // the gap may hold a settings or relation change whose bus message never came: the
          // current state under the current rules, at the read's position (later ones follow)
          const resynced = await this.#resync(target, read)
          const at = positionOf(resynced)
          const ahead = at.epoch === epoch && at.offset >= offset
          this.#positions.set(target, ahead ? { epoch, offset: at.offset } : { epoch, offset })
          if (!ahead) resynced.position = { epoch, offset, at: at.at }
          out.push(resynced)
          continue
        }
        for (const missed of read.changes) {
          const p = positionOf(missed)
          if (isPrivacyMark(missed)) continue
          if (p.epoch === epoch && p.offset > last && p.offset < offset) out.push(missed)
        }
      }
      this.#positions.set(target, { epoch, offset })
      out.push(change)
    }
    return out
  }

  #pairsOf(viewer: UserId, target: UserId, out: Map<Stream, Set<UserId>>): void {
    for (const stream of this.#byViewer.get(viewer) ?? []) {
      if (this.#watchers.get(stream, target) < 0) continue
      let targets = out.get(stream)
      if (!targets) out.set(stream, (targets = new Set()))
      targets.add(target)
    }
  }

  /**
   * Sends every watcher of `target` its own view of `presence`; with `offset`, only to watches
   * that have not had that change yet, and none at all when the change is `quiet` (nothing any
   * watcher sees can differ). `expiry`: the state an expiry the change told first left (core
   * expiryOf), each watcher's view of it sent first, as the sweep's change would have been.
   */
  #fanOut(
    target: UserId,
    presence: UserPresence,
    reason: OfflineReason,
    now: number,
    at: number,
    offset?: number,
    quiet = false,
    expiry?: { presence: UserPresence; reason: OfflineReason },
  ): void {
    const watchers = this.#watchers.watchersOf(target)
    if (watchers.length === 0) return
    const renders = new Map<string, Rendered>()
    const expiryRenders = expiry && new Map<string, Rendered>()
    const settings = this.#settings.get(target) ?? defaultSettings
    // from the end: a watcher cut off meanwhile (a slow consumer) leaves the list
    for (let k = watchers.length - 1; k >= 0; k--) {
      const entry = watchers[k]
      if (entry === undefined) continue
      const stream = this.#watchers.connectionOf(entry)
      const w = watchOf(entry)
      const watches = stream.watches
      const prior = watches.offset(w)
      if (offset !== undefined) {
        if (prior >= offset) continue
        watches.setOffset(w, offset)
        if (quiet) continue
      }
      const relation = watches.relation(w)
      if (expiry) {
        const ended = this.#project(
          stream,
          target,
          relation,
          expiry.presence,
          now,
          expiryRenders,
          settings,
        )
        this.#emit(stream, target, w, ended, expiry.reason, at, prior)
      }
      const rendered = this.#project(stream, target, relation, presence, now, renders, settings)
      this.#emit(stream, target, w, rendered, reason, at, prior)
    }
    if (quiet) return
    // a watcher cut off during the loop may have been the last one
    if (!this.#watchers.isWatched(target)) return this.#forget(target)
    this.#settle(target, at)
    this.#renders.set(
      target,
      [...renders.values()].map((r) => r.json),
    )
  }

  #intern(target: UserId, json: string): string {
    const known = this.#renders.get(target)
    const same = known?.find((candidate) => candidate === json)
    if (same !== undefined) return same
    if (!known) this.#renders.set(target, [json])
    else if (known.length < 8) known.push(json)
    return json
  }

  /** The viewer's projection of `presence`, rendered once per distinct access. */
  #project(
    stream: Stream,
    target: UserId,
    relation: Relation,
    presence: UserPresence,
    now: number,
    renders?: Map<string, Rendered>,
    settings = this.#settings.get(target) ?? defaultSettings,
  ): Rendered {
    const access = accessOf(stream.principal, target, settings, relation)
    const key = accessKey(access)
    let rendered = renders?.get(key)
    if (!rendered) {
      const visible = visiblePresence(presence, access, settings, now)
      rendered = {
        json: this.#options.render(visible),
        online: visible.state !== PresenceType.Offline,
        frames: {},
      }
      renders?.set(key, rendered)
    }
    return rendered
  }

  /**
   * Sends the difference between what `stream` was told and `rendered`. An offline is held for
   * the flap grace period from the instant `at` it first showed: the same delay for every cause,
   * not restarted by later changes, dropped if the target shows online again meanwhile.
   */
  #emit(
    stream: Stream,
    target: UserId,
    w: number,
    rendered: Rendered,
    reason: OfflineReason,
    at: number,
    prior = stream.watches.offset(w),
  ): void {
    const watches = stream.watches
    if (rendered.json === watches.sent(w)) {
      watches.unhold(w)
      return
    }
    let type: EventType
    const online = watches.online(w)
    if (online && !rendered.online) {
      if (this.#options.flapGraceMs > 0) {
        let held = watches.held(w)
        if (!held) {
          held = { since: at, reason, offset: prior }
          watches.hold(w, held)
        }
        if (at - held.since < this.#options.flapGraceMs) return
        reason = held.reason
      }
      type = 'offline'
    } else {
      type = !online && rendered.online ? 'online' : 'update'
    }
    const kind = type === 'offline' ? reason : type
    // the frame is made once per view and kind (no closure per watcher: this runs for each)
    const positioned = stream.positions && this.#options.positionTokens !== undefined
    const offset = watches.offset(w)
    const key = positioned ? `${kind}@${offset}` : kind
    let frame = rendered.frames[key]
    if (frame === undefined) {
      const tail =
        `,"userId":"${target}","presence":${rendered.json}` +
        (type === 'offline' ? `,"reason":"${reason}"` : '') +
        (positioned ? `,"pos":"${this.#pos(target, offset)}"}` : '}')
      frame = { head: HEADS[type], tail }
      rendered.frames[key] = frame
    }
    watches.unhold(w)
    watches.setSent(w, rendered.json, rendered.online)
    stream.push(frame)
  }

  /** Arms the timer of `target` for its earliest held offline, or drops it when none is left. */
  #settle(target: UserId, at: number): void {
    let earliest = Infinity
    for (const entry of this.#watchers.watchersOf(target)) {
      const watches = this.#watchers.connectionOf(entry).watches
      if (!watches.holding) continue
      const since = watches.held(watchOf(entry))?.since ?? Infinity
      if (since < earliest) earliest = since
    }
    const entry = this.#held.get(target)
    if (earliest === Infinity) return this.#release(target)
    const due = earliest + this.#options.flapGraceMs
    if (entry?.due === due) return
    if (entry) clearTimeout(entry.timer)
    const timer = setTimeout(
      () => {
        void this.#run(() => this.#flush(target)).catch((e) => this.#options.onError?.(e))
      },
      Math.max(1, Math.ceil(due - at)),
    )
    // a held offline alone must not keep the process alive
    timer.unref()
    this.#held.set(target, { due, timer })
  }

  #release(target: UserId): void {
    const entry = this.#held.get(target)
    if (!entry) return
    clearTimeout(entry.timer)
    this.#held.delete(target)
  }

  /** The grace of some held offline of `target` is over: send what is due. */
  async #flush(target: UserId): Promise<void> {
    this.#held.delete(target)
    if (!this.#watchers.isWatched(target)) return
    const [presence] = await this.#source.presences([target])
    this.#fanOut(target, presence!, 'explicit', this.#source.now(), performance.now())
  }

  /** Nobody watches `target` any more. */
  #forget(target: UserId): void {
    this.#positions.delete(target)
    this.#settings.delete(target)
    this.#renders.delete(target)
    this.#release(target)
  }
}
