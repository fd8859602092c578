import { PresenceType, type OfflineReason, type UserPresence } from '../core/presence.js'
import {
  accessOf,
  defaultSettings,
  visiblePresence,
  type Relation,
  type UserSettings,
  type VisiblePresence,
} from '../core/privacy.js'
import type { UserId } from '../core/user-id.js'
import { performance } from 'node:perf_hooks'
import type { BusEvent, ChangeBus } from './change-bus.js'
import { Stream, type Sink, type Watch } from './stream.js'
import { Watchers } from './watchers.js'

/** Where the fanout reads current state: the service's stores, behind four calls. */
export interface FanoutSource {
  now(): number
  presences(ids: readonly UserId[]): Promise<UserPresence[]>
  settings(ids: readonly UserId[]): Promise<UserSettings[]>
  relations(viewer: UserId, ids: readonly UserId[]): Promise<Relation[]>
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

export type SubscribeResult = 'ok' | 'watch_limit'

export type ResumeResult =
  { ok: true; stream: Stream } | { ok: false; reason: 'unknown' | 'too_old' }

type EventType = 'online' | 'update' | 'offline'

/** Frame heads; a frame is `head + seq + tail`, so the tail can be shared by many streams. */
const HEADS = {
  snapshot: '{"type":"snapshot","seq":',
  online: '{"type":"online","seq":',
  update: '{"type":"update","seq":',
  offline: '{"type":"offline","seq":',
} as const

/**
 * Relations are kept as shared constants: a watch costs a reference, not an object. Only a
 * block that keeps a lastOnline needs its own.
 */
const RELATIONS: readonly Relation[] = [
  Object.freeze({ friends: false, blocked: false }),
  Object.freeze({ friends: true, blocked: false }),
  Object.freeze({ friends: false, blocked: true }),
  Object.freeze({ friends: true, blocked: true }),
]
function relationOf(relation: Relation | undefined): Relation {
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
  /** By event type, and by reason for offlines. */
  tails: Record<string, string>
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
  readonly #source: FanoutSource
  readonly #options: FanoutOptions
  readonly #watchers = new Watchers<Stream, Watch>()
  readonly #byViewer = new Map<UserId, Set<Stream>>()
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
   * Targets with an offline held for some watcher (`Watch.held`), and when the earliest is due
   * (monotonic ms): one timer per target, however many watchers wait.
   */
  readonly #held = new Map<UserId, { due: number; timer: NodeJS.Timeout }>()
  readonly #unsubscribe: () => void
  #queue: Task[] = []
  #draining = false
  #stopped = false

  constructor(bus: ChangeBus, source: FanoutSource, options: FanoutOptions) {
    this.#source = source
    this.#options = options
    this.#unsubscribe = bus.subscribe((event) => {
      if (this.#stopped) return
      this.#queue.push({ bus: event })
      this.#kick()
    })
  }

  /** Whether `viewer` may open another stream (fewer open than `streamsPerUser`). */
  admits(viewer: UserId): boolean {
    const limit = this.#options.limits?.streamsPerUser
    if (limit === undefined) return true
    let open = 0
    for (const stream of this.#byViewer.get(viewer) ?? []) if (stream.sink) open++
    return open < limit
  }

  /**
   * Opens a new, empty stream for `viewer`, delivering to `sink`; undefined when the user has
   * as many open streams as allowed.
   */
  open(viewer: UserId, sink: Sink): Stream | undefined {
    if (!this.admits(viewer)) return undefined
    const stream = new Stream(viewer, this.#options.replayFrames)
    stream.sink = sink
    this.#byToken.set(stream.token, stream)
    let streams = this.#byViewer.get(viewer)
    if (!streams) this.#byViewer.set(viewer, (streams = new Set()))
    streams.add(stream)
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
    let seq = since
    for (const frame of stream.replay.after(since)) sink.send(frame, ++seq, stream.token)
    return { ok: true, stream }
  }

  /** The connection of `stream` ended: keep the stream resumable for a while, then drop it. */
  detach(stream: Stream, sink: Sink): void {
    if (stream.sink !== sink || stream.disposed) return
    stream.sink = undefined
    if (this.#options.resumeWindowMs <= 0 || stream.seq === 0) return this.close(stream)
    stream.expiry = setTimeout(() => this.close(stream), this.#options.resumeWindowMs)
    // a detached stream alone must not keep the process alive
    stream.expiry.unref()
    const watches = this.watchCount(stream)
    this.#detached.set(stream, watches)
    this.#detachedWatches += watches
    this.#bound(stream.viewer)
  }

  /** Drops a stream and its watches now. */
  close(stream: Stream): void {
    if (stream.disposed) return
    stream.disposed = true
    clearTimeout(stream.expiry)
    stream.sink = undefined
    this.#undetach(stream)
    this.#byToken.delete(stream.token)
    const streams = this.#byViewer.get(stream.viewer)
    streams?.delete(stream)
    if (streams?.size === 0) this.#byViewer.delete(stream.viewer)
    for (const orphan of this.#watchers.removeAll(stream)) this.#forget(orphan)
  }

  /**
   * Watches `ids` (deduplicated); sends one snapshot of exactly those ids, in order. Refused
   * whole ('watch_limit', nothing sent) when the user's streams would watch more users than
   * allowed, once the user's own dropped streams have given way.
   */
  subscribe(stream: Stream, ids: readonly UserId[]): Promise<SubscribeResult> {
    let result: SubscribeResult = 'ok'
    return this.#run(async () => {
      result = await this.#subscribe(stream, ids)
    }).then(() => result)
  }

  /**
   * Whether `viewer` may watch `count` more users now (dropping the user's own dropped streams
   * if that makes room): a check before work starts; `subscribe` checks again.
   */
  hasRoom(viewer: UserId, count: number): boolean {
    return this.#makeRoom(viewer, count)
  }

  unsubscribe(stream: Stream, ids: readonly UserId[]): Promise<void> {
    return this.#run(async () => {
      for (const id of ids) if (this.#watchers.remove(stream, id)) this.#forget(id)
    })
  }

  isWatching(stream: Stream, target: UserId): boolean {
    return this.#watchers.get(stream, target) !== undefined
  }

  watchCount(stream: Stream): number {
    return this.#watchers.targetsOf(stream).size
  }

  stats(): {
    streams: number
    attached: number
    detached: number
    detachedWatches: number
    subscriptions: number
    targets: number
    held: number
  } {
    let attached = 0
    let subscriptions = 0
    for (const stream of this.#byToken.values()) {
      if (stream.sink) attached++
      subscriptions += this.#watchers.targetsOf(stream).size
    }
    return {
      streams: this.#byToken.size,
      attached,
      detached: this.#detached.size,
      detachedWatches: this.#detachedWatches,
      subscriptions,
      targets: this.#watchers.size.targets,
      held: this.#held.size,
    }
  }

  /** Settles once everything queued so far has been applied (tests, shutdown). */
  idle(): Promise<void> {
    return this.#run(async () => {})
  }

  stop(): void {
    this.#stopped = true
    this.#unsubscribe()
    for (const { timer } of this.#held.values()) clearTimeout(timer)
    this.#held.clear()
    for (const stream of [...this.#byToken.values()]) this.close(stream)
    this.#queue = []
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

  async #applySafely(events: BusEvent[]): Promise<void> {
    try {
      await this.#apply(events)
    } catch (error) {
      this.#options.onError?.(error)
    }
  }

  async #subscribe(stream: Stream, ids: readonly UserId[]): Promise<SubscribeResult> {
    if (stream.disposed) return 'ok'
    const unique = [...new Set(ids)]
    const fresh = unique.filter((id) => !this.#watchers.get(stream, id))
    if (fresh.length > 0 && !this.#makeRoom(stream.viewer, fresh.length)) return 'watch_limit'
    const unknownSettings = fresh.filter((id) => !this.#settings.has(id))
    const [presences, settings, relations] = await Promise.all([
      this.#source.presences(fresh),
      unknownSettings.length > 0 ? this.#source.settings(unknownSettings) : [],
      fresh.length > 0 ? this.#source.relations(stream.viewer, fresh) : [],
    ])
    if (stream.disposed) return 'ok'
    unknownSettings.forEach((id, i) => this.#settings.set(id, settings[i] ?? defaultSettings))
    const now = this.#source.now()
    fresh.forEach((id, i) => {
      const watch: Watch = {
        relation: relationOf(relations[i]),
        sent: '',
        online: false,
        held: undefined,
      }
      const projected = this.#project(stream, id, watch, presences[i]!, now)
      watch.sent = this.#intern(id, projected.json)
      watch.online = projected.online
      this.#watchers.add(stream, id, watch)
    })
    // parts, not one string: the replay buffer then holds references to the shared renders
    const parts = [`,"resume":"${stream.token}","presences":[`]
    unique.forEach((id, i) => {
      if (i > 0) parts.push(',')
      parts.push(this.#watchers.get(stream, id)!.sent)
    })
    parts.push(']}')
    stream.push(HEADS.snapshot, parts)
    return 'ok'
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
    const resettled = new Set<UserId>()
    const pairs = new Map<Stream, Set<UserId>>()
    for (const event of events) {
      if (event.type === 'presence') {
        const { userId, before, after, reason } = event.change
        if (!this.#watchers.isWatched(userId)) continue
        // a refresh heartbeat moves expiry only: nothing any watcher sees can differ
        if (!changed.has(userId) && sameSessions(before, after)) continue
        changed.set(userId, reason ?? changed.get(userId))
      } else if (event.type === 'settings') {
        if (this.#watchers.isWatched(event.userId)) resettled.add(event.userId)
      } else if (event.type === 'relation') {
        const [a, b] = event.users
        this.#pairsOf(a, b, pairs)
        this.#pairsOf(b, a, pairs)
      }
    }
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
        const watch = this.#watchers.get(job.stream, target)
        if (watch) watch.relation = relationOf(relations[i]?.[j])
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
        const watch = this.#watchers.get(stream, target)
        if (!watch) continue
        const rendered = this.#project(stream, target, watch, presenceOf.get(target)!, now)
        this.#emit(stream, target, watch, rendered, 'explicit', at)
        touched.add(target)
      }
    }
    for (const target of touched) this.#settle(target, at)
  }

  #pairsOf(viewer: UserId, target: UserId, out: Map<Stream, Set<UserId>>): void {
    for (const stream of this.#byViewer.get(viewer) ?? []) {
      if (!this.#watchers.get(stream, target)) continue
      let targets = out.get(stream)
      if (!targets) out.set(stream, (targets = new Set()))
      targets.add(target)
    }
  }

  /** Sends every watcher of `target` its own view of `presence`. */
  #fanOut(
    target: UserId,
    presence: UserPresence,
    reason: OfflineReason,
    now: number,
    at: number,
  ): void {
    const watchers = this.#watchers.watchersOf(target)
    if (watchers.size === 0) return
    const renders = new Map<string, Rendered>()
    for (const [stream, watch] of watchers) {
      const rendered = this.#project(stream, target, watch, presence, now, renders)
      this.#emit(stream, target, watch, rendered, reason, at)
    }
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
    watch: Watch,
    presence: UserPresence,
    now: number,
    renders?: Map<string, Rendered>,
  ): Rendered {
    const settings = this.#settings.get(target) ?? defaultSettings
    const access = accessOf(stream.principal, target, settings, watch.relation)
    const key = access.kind === 'hidden' ? `hidden:${access.lastOnline ?? ''}` : access.kind
    let rendered = renders?.get(key)
    if (!rendered) {
      const visible = visiblePresence(presence, access, settings, now)
      rendered = {
        json: this.#options.render(visible),
        online: visible.state !== PresenceType.Offline,
        tails: {},
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
    watch: Watch,
    rendered: Rendered,
    reason: OfflineReason,
    at: number,
  ): void {
    if (rendered.json === watch.sent) {
      watch.held = undefined
      return
    }
    let type: EventType
    if (watch.online && !rendered.online) {
      if (this.#options.flapGraceMs > 0) {
        const held = (watch.held ??= { since: at, reason })
        if (at - held.since < this.#options.flapGraceMs) return
        reason = held.reason
      }
      type = 'offline'
    } else {
      type = !watch.online && rendered.online ? 'online' : 'update'
    }
    const tail = (rendered.tails[type === 'offline' ? reason : type] ??=
      `,"userId":"${target}","presence":${rendered.json}` +
      (type === 'offline' ? `,"reason":"${reason}"}` : '}'))
    watch.held = undefined
    watch.sent = rendered.json
    watch.online = rendered.online
    stream.push(HEADS[type], tail)
  }

  /** Arms the timer of `target` for its earliest held offline, or drops it when none is left. */
  #settle(target: UserId, at: number): void {
    let earliest = Infinity
    for (const watch of this.#watchers.watchersOf(target).values()) {
      if (watch.held && watch.held.since < earliest) earliest = watch.held.since
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
    this.#settings.delete(target)
    this.#renders.delete(target)
    this.#release(target)
  }
}

/** True when two presences have the same sessions apart from their expiry and refresh times. */
function sameSessions(a: UserPresence, b: UserPresence): boolean {
  if (a.sessions.length !== b.sessions.length) return false
  for (let i = 0; i < a.sessions.length; i++) {
    const x = a.sessions[i]!
    const y = b.sessions[i]!
    if (
      x.key !== y.key ||
      x.source !== y.source ||
      x.deviceType !== y.deviceType ||
      x.startedAt !== y.startedAt ||
      JSON.stringify(x.activity) !== JSON.stringify(y.activity)
    ) {
      return false
    }
  }
  return true
}
