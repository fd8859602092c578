import { Emitter } from './emitter.js'
import { PresencedError } from './errors.js'
import type { Transport } from './http.js'
import { toIdStrings, type Ids } from './ids.js'
import type { Presence } from './presence.js'
import {
  MAX_STREAM_IDS,
  Queue,
  StreamSubscription,
  checkSubscribeOptions,
  type ConnectionPresence,
  type Handover,
  type PresenceEvent,
  type SubscribeOptions,
  type SubscriptionEvents,
} from './watch.js'

/**
 * A live view of some users' presence. Iterate it (`for await`) or listen (`on('update', …)`);
 * both see the same ordered events. It reconnects by itself and resumes from the last sequence
 * number it saw; when the server cannot resume, a fresh snapshot arrives with `reset: true`.
 *
 * One stream of presenced watches at most `maxIds` users (1000). A subscription of more is
 * spread over as many streams as that takes, each a shard of the ids with its own connection,
 * resume and reconnects; their events come out here as one stream, each user's in order (a user
 * is watched by one shard). Each shard tells its own `snapshot`, `open` and `reconnecting`, and
 * numbers its own events (`seq`). Up to `maxIds` ids it is one stream, as if unsharded. Past
 * 1000 ids, the first stream connects alone, then the rest is split by the limit it learned.
 *
 * @example
 * const sub = client.subscribe(friendIds) // 3000 friends: three streams
 * sub.on('online', (e) => console.log(e.presence.userId, 'came online'))
 * await sub.ready // every shard's first snapshot has arrived
 */
export class Subscription
  extends Emitter<SubscriptionEvents>
  implements AsyncIterable<PresenceEvent>
{
  readonly #transport: Transport
  readonly #options: SubscribeOptions
  /** The shards in the order they were opened; the first is never retired. */
  readonly #shards: StreamSubscription[] = []
  /** add() promises of each shard not settled yet: a shard is retired only without any. */
  readonly #pending = new Map<StreamSubscription, number>()
  readonly #iterators = new Set<Queue>()
  /** Closes every shard, with the reason a pending `ready` or add() rejects with. */
  readonly #controller = new AbortController()
  /** The shards `ready` waits for (the first subscribe's), until ready or retired. */
  readonly #waiting = new Set<StreamSubscription>()
  /**
   * Ids of the first subscribe past the first stream's share, until that stream has connected:
   * then split by the server's limit (#release). Watched already as far as `ids` tells.
   */
  readonly #held = new Set<string>()
  #unlisten: (() => void) | undefined
  #closed = false
  /**
   * The most ids one stream may watch, as a shard learned it: a server that lets fewer than 1000
   * says so (the SSE response or refusal, the WebSocket upgrade or refusal), and new shards are
   * that size.
   */
  #limit = MAX_STREAM_IDS
  #resolveReady!: () => void
  #rejectReady!: (error: unknown) => void
  /** Resolves once every shard of the first subscribe has its first snapshot. */
  readonly ready: Promise<void>

  constructor(transport: Transport, ids: readonly string[], options: SubscribeOptions) {
    super()
    this.#transport = transport
    this.#options = options
    const { signal } = options
    if (signal?.aborted) {
      this.#closed = true
      this.#controller.abort(signal.reason)
    } else if (signal) {
      const onAbort = () => this.#end(signal.reason, undefined)
      signal.addEventListener('abort', onAbort, { once: true })
      // a long-lived signal shared by many subscriptions must not keep the closed ones
      this.#unlisten = () => signal.removeEventListener('abort', onAbort)
    }
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve
      this.#rejectReady = reject
    })
    this.ready.catch(() => {})
    const unique = [...new Set(ids)]
    if (unique.length <= MAX_STREAM_IDS) {
      // one stream, exactly as a subscription has always been
      this.#awaitReady(this.#open(ids))
      return
    }
    // the first stream alone: once it has connected it knows the server's limit (below 1000 it
    // sheds its excess, #reshard), and the rest is split by that, not re-split stream by stream
    const first = this.#open(unique.slice(0, MAX_STREAM_IDS))
    for (const id of unique.slice(MAX_STREAM_IDS)) this.#held.add(id)
    this.#awaitReady(first)
    first.once('open', () => this.#release([]))
  }

  /**
   * Opens streams of the learned limit for `ids` (continued `from` where the stream that shed
   * them left them) then the ids held back for the first stream's connection, which `ready`
   * waits for.
   */
  #release(ids: readonly string[], from?: Handover): void {
    const rest = [...ids, ...this.#held]
    this.#held.clear()
    if (this.#closed) return
    for (let i = 0; i < rest.length; i += this.#limit) {
      this.#awaitReady(this.#open(rest.slice(i, i + this.#limit), from))
    }
  }

  /** `ready` waits for `shard`'s first snapshot too (unless it is retired meanwhile). */
  #awaitReady(shard: StreamSubscription): void {
    this.#waiting.add(shard)
    shard.ready.then(
      () => {
        this.#waiting.delete(shard)
        if (this.#waiting.size === 0) this.#resolveReady()
      },
      (error: unknown) => {
        // a shard retired (all its ids removed) is no longer waited for
        if (this.#shards.includes(shard)) this.#rejectReady(error)
        else if (this.#waiting.size === 0) this.#resolveReady()
      },
    )
  }

  /** The ids watched now (over several streams: stream by stream, each in the order added). */
  get ids(): ReadonlySet<string> {
    if (this.#shards.length === 1 && this.#held.size === 0) return this.#shards[0]!.ids
    return new IdsView(() => [...this.#shards.map((shard) => shard.ids), this.#held])
  }

  /**
   * Each watched user's latest presence, as the snapshots and events delivered so far tell it
   * (a user is here from its first snapshot on). An iterator sees the events after its
   * creation: one started after `await sub.ready` has missed the first snapshot, and reads the
   * state it told from here.
   *
   * @example
   * const sub = client.subscribe([123])
   * await sub.ready
   * console.log(sub.presences.get('123')?.type) // PresenceType.Offline, say
   * for await (const event of sub) console.log(event.type, sub.presences.get('123')?.type)
   */
  get presences(): ReadonlyMap<string, Presence> {
    if (this.#shards.length === 1) return this.#shards[0]!.presences
    return new PresencesView(() => this.#shards.map((shard) => shard.presences))
  }

  /**
   * The most users one stream may watch: what the server told when a stream's last connection
   * opened (presenced says it in the `x-presenced-max-ids` header of the SSE response and the
   * WebSocket upgrade; a browser's WebSocket cannot read it, and learns it from a refusal's
   * `maxIds`), else 1000. More are spread over further streams.
   */
  get maxIds(): number {
    return Math.min(...this.#shards.map((shard) => shard.maxIds))
  }

  /**
   * The last sequence number received on the first stream (what its resume starts after); each
   * stream numbers its own events.
   */
  get seq(): number | undefined {
    return this.#shards[0]?.seq
  }

  /**
   * Watches more users; their current presence arrives as a snapshot. Ids are taken as
   * `subscribe` takes them (a number past 2^53, already rounded, or a non-id throws
   * InvalidIdError, and nothing of the call is taken). New ids go to the streams with room
   * first, the rest to new streams of `maxIds` each.
   *
   * The promise resolves once the snapshot of the added users has arrived, and rejects with the
   * server's refusal as a PresencedError (`WATCH_LIMIT`: 429, `IDS_INVALID`: 400), the refused
   * ids then taken out of `ids` again (over several streams: each stream's part on its own, so
   * a part another stream took stays); or with the reason the subscription closed first. A
   * refusal that passes with time (`RATE_LIMITED` with its `retryAfterMs`, `UNAVAILABLE`) is
   * tried again by the client's `retry` options, as a call's 429 is, and rejects only once they
   * give up (the last attempt, or a wait past `retry.maxDelayMs`). Ids an earlier add() is still
   * waiting for are answered with it (a refusal of theirs rejects this call too). Ignoring it is
   * safe: it never rejects unhandled.
   *
   * @example
   * await sub.add([456]).catch((e) => console.warn('not watching 456:', e.code))
   */
  add(ids: Ids): Promise<void> {
    const asked = [...new Set(toIdStrings(ids))]
    // ids held back for the first stream's connection get their streams now: an add() of one of
    // them waits for its snapshot there
    if (this.#held.size > 0) this.#release([])
    const parts = new Map<StreamSubscription, string[]>()
    const put = (shard: StreamSubscription, part: string[]) =>
      parts.set(shard, [...(parts.get(shard) ?? []), ...part])
    let fresh: string[] = []
    for (const id of asked) {
      const owner = this.#shards.find((shard) => shard.ids.has(id))
      if (owner !== undefined) put(owner, [id])
      else fresh.push(id)
    }
    if (this.#closed && fresh.length > 0) {
      // the first stream answers it: rejected, the subscription is closed
      put(this.#shards[0]!, fresh)
      fresh = []
    }
    // the streams with room first, in order; then new streams
    for (const shard of this.#shards) {
      if (fresh.length === 0) break
      const room = shard.maxIds - shard.ids.size
      if (room <= 0) continue
      put(shard, fresh.slice(0, room))
      fresh = fresh.slice(room)
    }
    const size = this.maxIds
    while (fresh.length > 0) {
      // opened empty, then added to: a refusal of its ids (the watch limit) is this add()'s,
      // not a first subscribe retried for ever
      put(this.#open([]), fresh.slice(0, size))
      fresh = fresh.slice(size)
    }
    const answers = [...parts].map(([shard, part]) => this.#track(shard, shard.add(part)))
    if (answers.length === 0) return Promise.resolve()
    if (answers.length === 1) return answers[0]!
    const all = Promise.all(answers).then(() => {})
    all.catch(() => {})
    return all
  }

  /**
   * Stops watching users; no event about them is delivered from now on. Ids as in `add`. An
   * add() of only these ids, not answered yet, resolves (over a WebSocket, once the server has
   * answered the subscribe already sent). Over a WebSocket the server stops watching them too
   * (they no longer count against the user's watch limit): an unsubscribe it refuses
   * (`RATE_LIMITED`) is sent again after its wait, and one the connection may not have delivered
   * again after the next connection's resume; over SSE the stream's request is reopened on the
   * ids left, resuming it, and the server watches only those. A stream left watching nobody is
   * closed, but the first one (it holds its place for later adds).
   */
  remove(ids: Ids): void {
    const removed = toIdStrings(ids)
    for (const id of removed) this.#held.delete(id)
    if (this.#shards.length === 1) return this.#shards[0]!.remove(removed)
    for (const shard of [...this.#shards]) {
      const mine = removed.filter((id) => shard.ids.has(id))
      if (mine.length === 0) continue
      shard.remove(mine)
      this.#retireIfEmpty(shard)
    }
  }

  /**
   * Makes the first stream's connection carry the caller's own presence (WebSocket only): the
   * user stays online while it is open, and goes offline when it closes. Re-sent after a
   * reconnect.
   */
  setPresence(presence: ConnectionPresence = {}): void {
    this.#shards[0]?.setPresence(presence)
  }

  /** Ends the subscription, every stream of it; iterators finish. */
  close(): void {
    this.#end(
      new PresencedError('Subscription closed', { status: 0, protocol: 'native' }),
      undefined,
    )
  }

  [Symbol.asyncIterator](): AsyncIterator<PresenceEvent> {
    const queue = new Queue(() => this.#iterators.delete(queue))
    if (this.#closed) queue.end()
    else this.#iterators.add(queue)
    return queue
  }

  /**
   * A new shard watching `ids` (continued `from` where another shard left them), its events
   * told as this subscription's.
   */
  #open(ids: readonly string[], from?: Handover): StreamSubscription {
    const shard: StreamSubscription = new StreamSubscription(
      this.#transport,
      ids,
      { ...this.#options, signal: this.#controller.signal },
      { maxIds: this.#limit, shed: (shed, left) => this.#reshard(shard, shed, left), from },
    )
    this.#shards.push(shard)
    shard.on('event', (event) => {
      if (!this.#shards.includes(shard)) return
      this.emit(event.type, event as never)
      this.emit('event', event)
      for (const queue of this.#iterators) queue.push(event)
    })
    shard.on('open', (open) => this.emit('open', open))
    shard.on('reconnecting', (reconnecting) => this.emit('reconnecting', reconnecting))
    shard.on('warning', (warning) => this.emit('warning', warning))
    // a fatal error of one stream (a revoked token, a refused credential) ends them all
    shard.on('error', (error) => this.#end(error, error))
    shard.on('close', () => {
      if (this.#shards.includes(shard)) this.close()
    })
    // failed before it could be listened to (no WebSocket to open): told by its `ready`
    if (shard.closed) this.close()
    return shard
  }

  /**
   * `shard` learned that a stream may watch fewer ids than it was given (a server's limit below
   * 1000: a first connection, or a server restarted with a lower limit) and shed the rest: they
   * go to new shards of that size, which continue them from the positions `shard` held (none
   * lost, none told twice) and which `ready` waits for too when it waits for `shard`.
   */
  #reshard(shard: StreamSubscription, shed: string[], from: Handover): void {
    if (this.#closed) return
    this.#limit = Math.min(this.#limit, shard.maxIds)
    // the first stream's excess joins the ids held back for it: split together
    if (this.#held.size > 0 || shard === this.#shards[0]) return this.#release(shed, from)
    const waited = this.#waiting.has(shard)
    for (let i = 0; i < shed.length; i += this.#limit) {
      const fresh = this.#open(shed.slice(i, i + this.#limit), from)
      if (waited) this.#awaitReady(fresh)
    }
  }

  /** Counts `answer` among `shard`'s pending adds until it settles; returns it. */
  #track(shard: StreamSubscription, answer: Promise<void>): Promise<void> {
    if (this.#shards.length === 1) return answer
    this.#pending.set(shard, (this.#pending.get(shard) ?? 0) + 1)
    const settled = () => {
      this.#pending.set(shard, this.#pending.get(shard)! - 1)
      // a refused add may leave its new stream watching nobody
      this.#retireIfEmpty(shard)
    }
    answer.then(settled, settled)
    return answer
  }

  /**
   * Closes `shard` once it watches nobody and waits for no add(): it would hold one of the
   * user's streams for nothing. The first shard stays (later adds fill it first).
   */
  #retireIfEmpty(shard: StreamSubscription): void {
    if (this.#closed || shard === this.#shards[0] || shard.ids.size > 0) return
    if ((this.#pending.get(shard) ?? 0) > 0) return
    this.#shards.splice(this.#shards.indexOf(shard), 1)
    this.#pending.delete(shard)
    this.#waiting.delete(shard)
    shard.close()
  }

  /** Closes every shard: iterators end, or fail with `failure` (told as `error` first). */
  #end(reason: unknown, failure: PresencedError | undefined): void {
    if (this.#closed) return
    this.#closed = true
    this.#unlisten?.()
    if (failure !== undefined && this.listenerCount('error') > 0) this.emit('error', failure)
    for (const queue of this.#iterators) {
      if (failure !== undefined) queue.fail(failure)
      else queue.end()
    }
    this.#iterators.clear()
    this.#controller.abort(reason)
    this.emit('close', undefined)
  }
}

/**
 * The shards' sets read as one, live (the shards as they are at each read), without copying (a
 * user is in one shard at most): an app that reads `sub.ids.has(id)` on every event must not pay
 * for thousands of ids each time.
 */
class IdsView implements ReadonlySet<string> {
  readonly #parts: () => ReadonlyArray<ReadonlySet<string>>

  constructor(parts: () => ReadonlyArray<ReadonlySet<string>>) {
    this.#parts = parts
  }

  get size(): number {
    return this.#parts().reduce((sum, part) => sum + part.size, 0)
  }

  has(id: string): boolean {
    return this.#parts().some((part) => part.has(id))
  }

  forEach(fn: (value: string, key: string, set: ReadonlySet<string>) => void, self?: unknown) {
    for (const id of this) fn.call(self, id, id, this)
  }

  *keys(): SetIterator<string> {
    for (const part of this.#parts()) yield* part
  }

  values(): SetIterator<string> {
    return this.keys()
  }

  *entries(): SetIterator<[string, string]> {
    for (const id of this) yield [id, id]
  }

  [Symbol.iterator](): SetIterator<string> {
    return this.keys()
  }
}

/** The shards' presences read as one, live, without copying (see IdsView). */
class PresencesView implements ReadonlyMap<string, Presence> {
  readonly #parts: () => ReadonlyArray<ReadonlyMap<string, Presence>>

  constructor(parts: () => ReadonlyArray<ReadonlyMap<string, Presence>>) {
    this.#parts = parts
  }

  get size(): number {
    return this.#parts().reduce((sum, part) => sum + part.size, 0)
  }

  get(id: string): Presence | undefined {
    for (const part of this.#parts()) {
      const presence = part.get(id)
      if (presence !== undefined) return presence
    }
    return undefined
  }

  has(id: string): boolean {
    return this.#parts().some((part) => part.has(id))
  }

  forEach(
    fn: (value: Presence, key: string, map: ReadonlyMap<string, Presence>) => void,
    self?: unknown,
  ) {
    for (const [id, presence] of this) fn.call(self, presence, id, this)
  }

  *entries(): MapIterator<[string, Presence]> {
    for (const part of this.#parts()) yield* part
  }

  *keys(): MapIterator<string> {
    for (const part of this.#parts()) yield* part.keys()
  }

  *values(): MapIterator<Presence> {
    for (const part of this.#parts()) yield* part.values()
  }

  [Symbol.iterator](): MapIterator<[string, Presence]> {
    return this.entries()
  }
}

/**
 * A subscription to `ids` (spread over as many streams as the server's per-stream limit needs).
 * Throws a TypeError for an option that must be a number and is not.
 */
export function subscribe(
  transport: Transport,
  ids: readonly string[],
  options: SubscribeOptions,
): Subscription {
  checkSubscribeOptions(options)
  return new Subscription(transport, ids, options)
}
