import { backoffDelay } from './backoff.js'
import { Emitter } from './emitter.js'
import { PresencedError, tokenRefusedOf, type TokenRefusedReason } from './errors.js'
import {
  checkNumber,
  checkTimeout,
  isObject,
  networkReason,
  parseRetryAfter,
  redactUrls,
  seconds,
  type Transport,
} from './http.js'
import { parseJsonLossless } from './lossless-json.js'
import { stringifyJson, toIdString, toIdStrings, type Ids } from './ids.js'
import { PresenceType, dateOf, genericLocation, placeOf, type Presence } from './presence.js'
import { setTimer } from './set-timer.js'
import type { NativePresence, NativeSession, NativeSseRequest } from './wire.js'

export type OfflineReason = 'explicit' | 'timeout' | 'server_lost' | 'node_lost' | (string & {})

/** What a subscription delivers, in order. Every event is the subscriber's own view. */
export type PresenceEvent =
  | {
      type: 'snapshot'
      seq: number
      presences: Presence[]
      /** The same users with every session, as the native API sends them. */
      raw: NativePresence[]
      /** True when this snapshot replaces state after a gap that could not be resumed. */
      reset: boolean
    }
  | { type: 'online'; seq: number; presence: Presence; raw: NativePresence }
  | { type: 'update'; seq: number; presence: Presence; raw: NativePresence }
  | {
      type: 'offline'
      seq: number
      presence: Presence
      raw: NativePresence
      reason: OfflineReason
    }

export type PresenceEventType = PresenceEvent['type']

export interface SubscriptionEvents {
  snapshot: Extract<PresenceEvent, { type: 'snapshot' }>
  online: Extract<PresenceEvent, { type: 'online' }>
  update: Extract<PresenceEvent, { type: 'update' }>
  offline: Extract<PresenceEvent, { type: 'offline' }>
  /** Every presence event above. */
  event: PresenceEvent
  /** A connection is up (again). */
  open: { transport: 'websocket' | 'sse' }
  /**
   * The connection dropped, or was refused (`error` has the server's `code`, `status` and
   * `retryAfterMs`: a 429 `STREAM_LIMIT` or `RATE_LIMITED`, a 503), or was closed for
   * subscribing too fast (`RATE_LIMITED`, with the server's wait); the next attempt starts after
   * `delayMs`.
   */
  reconnecting: { attempt: number; delayMs: number; error: unknown }
  /** The server refused one frame (say, a bad id given to add()); the stream goes on. */
  warning: PresencedError
  /**
   * A fatal error (refused credentials, a revoked token, stream taken over, a close for too many
   * malformed frames): the subscription is closed.
   */
  error: PresencedError
  close: undefined
  [key: string]: unknown
}

/** The parts of the WebSocket API the client uses: the browser's, Node 22's or `ws`'s. */
export interface WebSocketLike {
  new (
    url: string,
    protocols?: string | string[],
    // `ws` takes headers here; browsers ignore a third argument
    options?: { headers?: Record<string, string> },
  ): WebSocketInstance
}

/**
 * Handlers take `never` so that any implementation's richer event types fit (the client casts
 * each event to the few fields it reads).
 */
export interface WebSocketInstance {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  onopen: ((event: never) => void) | null
  onmessage: ((event: never) => void) | null
  onclose: ((event: never) => void) | null
  onerror: ((event: never) => void) | null
}

export interface SubscribeOptions {
  /** A WebSocket constructor; default the global one; without any, SSE over fetch. */
  WebSocket?: WebSocketLike | undefined
  /**
   * Send the token as an Authorization header on the WebSocket upgrade (only `ws` can) rather
   * than as `?access_token=`. @default true for an injected constructor, false for the global
   */
  webSocketHeaders?: boolean
  /** Force a transport. @default 'auto' */
  transport?: 'auto' | 'websocket' | 'sse'
  /**
   * Reconnect backoff: the first wait, doubled on each failed attempt up to the cap (jitter
   * included: no backoff is longer than `maxDelayMs`); `false` makes a dropped connection fatal.
   * A refusal that says when to come back (`retryAfterMs` of a `RATE_LIMITED` frame, the
   * `Retry-After` of an SSE request or a WebSocket upgrade refused 429) is never tried sooner, even past `maxDelayMs`: the wait is the server's rule,
   * and a subscription has no caller waiting on it (a call's retry fails instead). Such a wait is
   * told: `reconnecting`'s `delayMs` is it, and its error's message ends `(reconnecting in 200 s
   * as the server asks, more than reconnect.maxDelayMs, 15 s)`, `retryAfterMs` set.
   * @default { minDelayMs: 500, maxDelayMs: 15000 }
   */
  reconnect?: { minDelayMs?: number; maxDelayMs?: number } | false
  /**
   * A connection that has carried nothing for this long, not even a keepalive (presenced sends
   * one at least every 25 s: an SSE comment, a WebSocket ping), is taken for dead and replaced
   * (`reconnecting`, then a resume): a server or network gone without closing the connection
   * (a host powered off, a NAT or proxy that forgot it) otherwise leaves a stream that looks
   * open and never delivers again. WebSocket: only where pings are visible (`ws`); the browser's
   * and Node's built-in WebSocket do not show them. `false` never gives up on a quiet
   * connection. @default 60000
   */
  idleTimeoutMs?: number | false
  /**
   * Aborting closes the subscription as `close()` does: the connection, any reconnect waiting
   * to happen, and the iterators (which finish); `ready` rejects with the signal's reason if the
   * first snapshot had not arrived.
   */
  signal?: AbortSignal
}

/** What the connection itself reports as the caller's presence (WebSocket only). */
export interface ConnectionPresence {
  activity?: {
    kind?: 'online' | 'inGame' | 'inStudio'
    placeId?: string | number | bigint
    rootPlaceId?: string | number | bigint
    universeId?: string | number | bigint
    gameId?: string
    location?: string
  }
  /** Xbox device type name. @default 'Web' */
  deviceType?: string
}

/**
 * How much of a reconnect wait is random: wider than a call's retry (0.2), since after a node
 * goes away every subscriber it held reconnects at the same moment.
 */
const RECONNECT_JITTER = 0.5

/** The activity members that are int64 ids (sent as exact decimal strings). */
const ACTIVITY_IDS = new Set(['placeId', 'rootPlaceId', 'universeId'])

/**
 * The users one stream may watch when the server does not say (docs/reference/native.md): more
 * is `TOO_MANY_IDS`. presenced tells its limit in MAX_IDS_HEADER.
 */
export const MAX_STREAM_IDS = 1000
/**
 * SSE: how long a remove() waits for others to share the reopen it needs. SSE has no unsubscribe:
 * a request watches the ids it names, so freeing the server's watches of removed ids takes a new
 * request, and each counts against the user's request budget (`PRESENCED_RATE_LIMIT`, 600 a
 * minute by default, shared with every call). An app taking users out one at a time (each in
 * its own turn) would pay a request apiece; within this window they pay one. Nothing of a removed
 * user is delivered meanwhile (events are filtered here); the server only watches it a little
 * longer. An add() does not wait: its reopen goes at the end of the turn, carrying the removes.
 */
const SSE_REMOVE_WINDOW_MS = 1000
/** The response header (SSE response, WebSocket upgrade) that tells the server's limit. */
const MAX_IDS_HEADER = 'x-presenced-max-ids'

/** The native API's paths (docs/reference/native.md). */
export const NATIVE_WS_PATH = '/api/v1/realtime'
export const NATIVE_SSE_PATH = '/api/v1/realtime/sse'

interface Connection {
  readonly kind: 'websocket' | 'sse'
  send(frame: Record<string, unknown>): void
  close(): void
}

interface ConnectionHandlers {
  /** `maxIds`: the ids one stream may watch, as the server told (MAX_IDS_HEADER), if it did. */
  onOpen(maxIds: number | undefined): void
  onFrame(frame: Record<string, unknown>): void
  /** `maxIds`: the limit a refusal's MAX_IDS_HEADER told (SSE), if it did. */
  onClose(error: unknown, fatal: boolean, maxIds?: number): void
}

/** What a stream of a sharded Subscription is told by it, and tells it (subscription.ts). */
export interface ShardOptions {
  /** The most ids one stream may watch, as another stream learned it; else 1000. */
  maxIds?: number
  /**
   * Takes ids off this stream, which learned (the server's MAX_IDS_HEADER, a refusal's `maxIds`)
   * that it holds more than a stream may watch: they are watched by other streams, which continue
   * them from `from` (`from` of ShardOptions).
   */
  shed?: (ids: string[], from: Handover) => void
  /**
   * Where another stream left the ids it shed: this one continues them from their positions
   * (a stream of their own, as any node continues one from positions), so that the changes
   * made since reach the subscriber once, and `presences` keeps what was known of them.
   */
  from?: Handover
}

/** What a stream knew of ids it handed to another stream: their last `pos` and presence. */
export interface Handover {
  readonly positions: ReadonlyMap<string, string>
  readonly presences: ReadonlyMap<string, Presence>
}

interface ResumePoint {
  /** undefined: a stream not opened yet, to be continued from the positions held alone. */
  token: string | undefined
  since: number
}

/** An `add()` not answered yet: a snapshot of its ids resolves it, a refusal rejects it. */
interface PendingAdd {
  /**
   * The ids it added and still asks for: remove() takes ids out, so that its refusal does not
   * take back an id a later add() asked for again (a watched id is wanted by one add at most).
   */
  readonly wanted: Set<string>
  /** The number of the subscribe frame (or SSE request) that carries it; undefined: not sent. */
  frame: number | undefined
  /** What add() returned: a later add() of the same ids settles with it. */
  promise: Promise<void>
  /** Its subscribes refused for a limit that passes (RATE_LIMITED, UNAVAILABLE) so far. */
  tries: number
  /** Sends it again once the wait after such a refusal has passed (see #addRefused). */
  retry: ReturnType<typeof setTimeout> | undefined
  resolve(): void
  reject(error: unknown): void
}

/**
 * A subscribe sent on the open WebSocket and not answered yet. The server answers a connection's
 * subscribes in the order sent, each by a snapshot of exactly its ids or by an error frame.
 */
interface SentSubscribe {
  /** The add() frame it carries; undefined: every watched id (the first, or after a reset). */
  readonly frame: number | undefined
  readonly ids: readonly string[]
  /** Its number among the frames of the connection (#frameCount): what its answer confirms. */
  readonly at: number
  /**
   * Sent for a reset (every watched id, after the reset came): only its snapshot replaces the
   * view. A subscribe of every id sent before the reset came (the ids without a position, after
   * a resume from the others' positions) is answered by a snapshot of those ids alone.
   */
  readonly forReset: boolean
}

/**
 * One real-time stream: a live view of at most `maxIds` users' presence (the public
 * `Subscription` spreads more over several of these, see subscription.ts). Iterate it
 * (`for await`) or listen (`on('update', …)`); both see the same ordered events. It reconnects
 * by itself and resumes from the last sequence number it saw; when the server cannot resume, a
 * fresh snapshot arrives with `reset: true`.
 */
export class StreamSubscription
  extends Emitter<SubscriptionEvents>
  implements AsyncIterable<PresenceEvent>
{
  readonly #transport: Transport
  readonly #options: SubscribeOptions
  readonly #ids: Set<string>
  readonly #iterators = new Set<Queue>()
  /**
   * Ids added while no WebSocket was open: subscribed on the next connection, after its resume
   * or its first subscribe, in a subscribe of their own (refused, it refuses only their adds).
   */
  readonly #unsent = new Set<string>()
  /** add() calls in order; the server answers a connection's subscribes in the order sent. */
  readonly #adds: PendingAdd[] = []
  /** Subscribe frames (SSE: requests) that carried added ids so far. */
  #frames = 0
  #connection: Connection | undefined
  /** The WebSocket of #connection is open: its opening frames went out. */
  #opened = false
  #resume: ResumePoint | undefined
  /**
   * Per watched user, the opaque history position (`pos`) of the last frame about it: lets any
   * node of a fleet continue the stream when the one that held it is gone.
   */
  readonly #positions = new Map<string, string>()
  /** Each watched user's latest presence, from the events delivered so far. */
  readonly #current = new Map<string, Presence>()
  #heartbeat: Record<string, unknown> | undefined
  /**
   * A reset came: the snapshot of every watched id that follows it (over a WebSocket, the one
   * answering the subscribe sent for the reset, not an add()'s) replaces all state.
   */
  #resetPending = false
  /** WebSocket: the subscribes of this connection not answered yet, oldest first. */
  #sent: SentSubscribe[] = []
  /**
   * WebSocket: ids removed that the server's stream may still watch, each with the number of the
   * unsubscribe frame of this connection that last carried it (#frameCount); 0: to be sent (not
   * sent on this connection yet, or refused). The server does not answer an unsubscribe it
   * takes: one is known taken once a subscribe sent after it is answered (a connection's frames
   * are handled in order, a refusal at once). A refused one is sent again after the server's
   * wait; a connection that ends leaves them all to send again after its resume (the resumed
   * stream watches what the old one did); a fresh stream (no resume, a reset) watches only the
   * ids subscribed, and clears them.
   */
  readonly #unwatched = new Map<string, number>()
  /** Subscribe and unsubscribe frames sent on this connection: numbers them. */
  #frameCount = 0
  /** Sends the unsubscribes left to send (refused, or past a frame) once a wait has passed. */
  #unsubscribeTimer: ReturnType<typeof setTimeout> | undefined
  /** The wait between unsubscribe frames sent again: the last refusal's `retryAfterMs`. */
  #unsubscribeWaitMs = 1000
  #attempt = 0
  /**
   * Connections ended in a row for subscribing too fast: each waits a doubled backoff, however
   * many events came in between (see #reconnect).
   */
  #tooFast = 0
  /** When the current connection opened (undefined: it has not). */
  #openedAt: number | undefined
  /** The most ids a stream may watch: the server's word (MAX_IDS_HEADER, `maxIds`), else 1000. */
  #maxIds = MAX_STREAM_IDS
  /** The token the current connection was opened with (what a refresh replaces). */
  #connectionToken: string | undefined
  /**
   * The server refused the token a connection was opened with (a stream ended `token expired`,
   * a 401): the next connection asks the provider for a fresh one.
   */
  #refreshFrom: { refused: string | undefined; reason: TokenRefusedReason | undefined } | undefined
  #closed = false
  /**
   * SSE: the reopen that add()s and remove()s asked for, not made yet: one request carries them
   * all (see #queueReopen); `#reopenDue` is when it goes.
   */
  #reopenTimer: ReturnType<typeof setTimeout> | undefined
  #reopenDue = 0
  /** Hands the ids past the server's limit to other streams (a sharded Subscription's). */
  readonly #shed: ((ids: string[], from: Handover) => void) | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  /** Takes the listener off `options.signal` (on close). */
  #unlisten: (() => void) | undefined
  #resolveReady!: () => void
  #rejectReady!: (error: unknown) => void
  /** Resolves once the first snapshot has arrived; rejects if the subscription fails first. */
  readonly ready: Promise<void>

  constructor(
    transport: Transport,
    ids: readonly string[],
    options: SubscribeOptions,
    shard: ShardOptions = {},
  ) {
    super()
    this.#transport = transport
    this.#options = options
    this.#ids = new Set(ids)
    this.#maxIds = shard.maxIds ?? MAX_STREAM_IDS
    this.#shed = shard.shed
    if (shard.from !== undefined) {
      for (const id of this.#ids) {
        const pos = shard.from.positions.get(id)
        const presence = shard.from.presences.get(id)
        if (pos !== undefined) this.#positions.set(id, pos)
        if (presence !== undefined) this.#current.set(id, presence)
      }
      // no stream of ours yet: the first connection continues the users from their positions
      if (this.#positions.size > 0) this.#resume = { token: undefined, since: 0 }
    }
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve
      this.#rejectReady = reject
    })
    this.ready.catch(() => {})
    const { signal } = options
    if (signal?.aborted) {
      this.#close(signal.reason)
      return
    }
    if (signal) {
      const onAbort = () => this.#close(signal.reason)
      signal.addEventListener('abort', onAbort, { once: true })
      // a long-lived signal shared by many subscriptions must not keep the closed ones
      this.#unlisten = () => signal.removeEventListener('abort', onAbort)
    }
    this.#connect()
  }

  /** The ids watched now. */
  get ids(): ReadonlySet<string> {
    return this.#ids
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
    return this.#current
  }

  /**
   * The most users one stream may watch: what the server told when the last connection opened
   * (presenced says it in the `x-presenced-max-ids` header of the SSE response and the
   * WebSocket upgrade; a browser's WebSocket cannot read it, and learns it from a refusal's
   * `maxIds`), else 1000.
   */
  get maxIds(): number {
    return this.#maxIds
  }

  /** Closed: by close(), its signal, or a fatal error (perhaps already in the constructor). */
  get closed(): boolean {
    return this.#closed
  }

  /** The last sequence number received (what a resume starts after). */
  get seq(): number | undefined {
    return this.#resume?.token === undefined ? undefined : this.#resume.since
  }

  /**
   * Watches more users; their current presence arrives as a snapshot. Ids are taken as
   * `subscribe` takes them (a number past 2^53, already rounded, or a non-id throws
   * InvalidIdError, and nothing of the call is taken).
   *
   * The promise resolves once the snapshot of the added users has arrived, and rejects with the
   * server's refusal as a PresencedError (`WATCH_LIMIT`: 429, `IDS_INVALID` or `TOO_MANY_IDS`:
   * 400), the refused ids then taken out of `ids` again; or with the reason the subscription
   * closed first. A refusal that passes with time (`RATE_LIMITED` with its `retryAfterMs`,
   * `UNAVAILABLE`) is tried again by the client's `retry` options, as a call's 429 is, and
   * rejects only once they give up (the last attempt, or a wait past `retry.maxDelayMs`). Ids
   * an earlier add() is still waiting for are answered with it (a refusal of theirs rejects this
   * call too). Ignoring it is safe: it never rejects unhandled.
   *
   * @example
   * await sub.add([456]).catch((e) => console.warn('not watching 456:', e.code))
   */
  add(ids: Ids): Promise<void> {
    const asked = new Set(toIdStrings(ids))
    const added = [...asked].filter((id) => !this.#ids.has(id))
    // ids an earlier add() is still waiting for are answered by its answer
    const earlier = this.#adds
      .filter((a) => [...asked].some((id) => a.wanted.has(id)))
      .map((a) => a.promise)
    if (added.length === 0) return earlier.length === 0 ? Promise.resolve() : allOf(earlier)
    if (this.#closed) {
      const closed = Promise.reject(
        new PresencedError('Subscription closed', { status: 0, protocol: 'native' }),
      )
      closed.catch(() => {})
      return closed
    }
    for (const id of added) {
      this.#ids.add(id)
      // its subscribe follows any unsubscribe sent: one sent again would undo this add
      this.#unwatched.delete(id)
    }
    let resolve!: () => void
    let reject!: (error: unknown) => void
    const answered = new Promise<void>((res, rej) => {
      resolve = res
      reject = rej
    })
    answered.catch(() => {})
    const pending: PendingAdd = {
      wanted: new Set(added),
      frame: undefined,
      promise: answered,
      tries: 0,
      retry: undefined,
      resolve,
      reject,
    }
    this.#adds.push(pending)
    if (this.#kind() === 'sse') {
      pending.frame = ++this.#frames
      // at the end of the turn: the add()s and remove()s made with it share the request
      this.#queueReopen(0)
    } else if (this.#connection !== undefined && this.#opened) {
      pending.frame = ++this.#frames
      // removes still to reach the server go first, as they were made: the limits judge the
      // subscribe after them
      this.#unsubscribe(this.#connection)
      this.#subscribe(this.#connection, added, pending.frame)
    } else for (const id of added) this.#unsent.add(id)
    return earlier.length === 0 ? answered : allOf([answered, ...earlier])
  }

  /**
   * Stops watching users; no event about them is delivered from now on. Ids as in `add`. An
   * add() of only these ids, not answered yet, resolves (over a WebSocket, once the server has
   * answered the subscribe already sent). Over a WebSocket the server stops watching them too
   * (they no longer count against the user's watch limit): an unsubscribe it refuses
   * (`RATE_LIMITED`) is sent again after its wait, and one the connection may not have delivered
   * again after the next connection's resume. Over SSE, which has no unsubscribe, the request is
   * reopened on the ids left (once for the remove()s of one turn), resuming the stream: the
   * server then watches only those.
   */
  remove(ids: Ids): void {
    const removed = toIdStrings(ids).filter((id) => this.#ids.delete(id))
    if (removed.length === 0) return
    for (const id of removed) {
      this.#unsent.delete(id)
      this.#positions.delete(id)
      this.#current.delete(id)
    }
    // an add() with nothing left to watch is answered, unless its subscribe is on a WebSocket
    // (the server answers those in order: it takes its answer, refusal or not, and resolves)
    for (const add of this.#adds) for (const id of removed) add.wanted.delete(id)
    for (const add of this.#adds.filter((a) => a.wanted.size === 0)) {
      if (add.frame !== undefined && this.#kind() === 'websocket') continue
      this.#settle(add, undefined)
    }
    if (this.#kind() === 'websocket') {
      // until the server has taken the unsubscribe (sent now on an open connection; else after
      // the next one's resume), the ids are sent again whenever it may not have
      for (const id of removed) this.#unwatched.set(id, 0)
      // (while refused ones wait, these join them: sent now they would be refused too)
      if (this.#connection !== undefined && this.#opened && this.#unsubscribeTimer === undefined) {
        this.#unsubscribe(this.#connection)
      }
    } else if (this.#ids.size === 0) {
      // SSE: a request left watching nobody is closed (it holds one of the user's places)
      this.#cancelReopen()
      this.#connection?.close()
      this.#connection = undefined
    } else if (this.#connection !== undefined) {
      // SSE has no unsubscribe: the stream is reopened on the ids left, resuming where it was;
      // the server drops the watches the request no longer names (they stop counting against
      // the watch limit, and their changes stop coming). The remove()s within a window share it
      this.#queueReopen(SSE_REMOVE_WINDOW_MS)
    }
  }

  /**
   * Makes this connection carry the caller's own presence (WebSocket only): the user stays
   * online while it is open, and goes offline when it closes. Re-sent after a reconnect.
   */
  setPresence(presence: ConnectionPresence = {}): void {
    const activity = presence.activity ?? { kind: 'online' }
    this.#heartbeat = {
      type: 'heartbeat',
      deviceType: presence.deviceType ?? 'Web',
      // ids as decimal strings, exact: a number past 2^53 (already rounded) throws InvalidIdError
      activity: Object.fromEntries(
        Object.entries(activity).map(([k, v]) => [
          k,
          ACTIVITY_IDS.has(k) && v !== undefined ? toIdString(v, k) : v,
        ]),
      ),
    }
    this.#connection?.send(this.#heartbeat)
  }

  /** Ends the subscription; iterators finish. */
  close(): void {
    this.#close(new PresencedError('Subscription closed', { status: 0, protocol: 'native' }))
  }

  /** Closes with `reason` as what a still pending `ready` rejects with. */
  #close(reason: unknown): void {
    if (this.#closed) return
    this.#closed = true
    this.#unlisten?.()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    clearTimeout(this.#unsubscribeTimer)
    this.#cancelReopen()
    this.#connection?.close()
    this.#connection = undefined
    this.#rejectReady(reason)
    for (const add of this.#adds.splice(0)) {
      clearTimeout(add.retry)
      add.reject(reason)
    }
    for (const queue of this.#iterators) queue.end()
    this.#iterators.clear()
    this.emit('close', undefined)
  }

  [Symbol.asyncIterator](): AsyncIterator<PresenceEvent> {
    const queue = new Queue(() => this.#iterators.delete(queue))
    if (this.#closed) queue.end()
    else this.#iterators.add(queue)
    return queue
  }

  #idleTimeoutMs(): number | undefined {
    return idleTimeoutOf(this.#options)
  }

  #kind(): 'websocket' | 'sse' {
    const forced = this.#options.transport
    if (forced === 'websocket' || forced === 'sse') return forced
    return this.#webSocket() ? 'websocket' : 'sse'
  }

  #webSocket(): WebSocketLike | undefined {
    return this.#options.WebSocket ?? (globalThis as { WebSocket?: WebSocketLike }).WebSocket
  }

  /**
   * Hands the ids past `maxIds` to other streams (#shed), when this stream watches more than the
   * server lets one: the first ones stay, and so do those an add() waits for (its answer is this
   * stream's to give). Over a resumed WebSocket stream the shed ids are unsubscribed after the
   * resume, as removed ones are. True when any was shed.
   */
  #fitLimit(): boolean {
    if (this.#shed === undefined || this.#ids.size <= this.#maxIds) return false
    const wanted = new Set(this.#adds.flatMap((add) => [...add.wanted]))
    let kept = 0
    const shed: string[] = []
    for (const id of this.#ids) {
      if (wanted.has(id)) continue
      if (kept < this.#maxIds - wanted.size) kept++
      else shed.push(id)
    }
    if (shed.length === 0) return false
    const positions = new Map<string, string>()
    const presences = new Map<string, Presence>()
    for (const id of shed) {
      const pos = this.#positions.get(id)
      const presence = this.#current.get(id)
      if (pos !== undefined) positions.set(id, pos)
      if (presence !== undefined) presences.set(id, presence)
      this.#ids.delete(id)
      this.#unsent.delete(id)
      this.#positions.delete(id)
      this.#current.delete(id)
      if (this.#resume?.token !== undefined && this.#kind() === 'websocket') {
        this.#unwatched.set(id, 0)
      }
    }
    // the streams they go to continue them from their positions: nothing missed, nothing twice
    this.#shed(shed, { positions, presences })
    return true
  }

  /**
   * A TOO_MANY_IDS refusal told the server's limit (`maxIds`: the SSE refusal's MAX_IDS_HEADER,
   * the WebSocket error frame's `maxIds`): it is this stream's from now on, and the ids past it
   * go to other streams (#fitLimit). True when any went: the refused request or frame, sent
   * again with this stream's share, can pass.
   */
  #learnedLimit(maxIds: number | undefined): boolean {
    if (maxIds === undefined) return false
    this.#maxIds = maxIds
    return this.#fitLimit()
  }

  /**
   * SSE: reopens the stream within `delayMs`, unless a reopen already pending goes sooner (it
   * carries this change too, as each request names every id watched then). A connection made
   * meanwhile for any reason (a reconnect) carries it instead (#connect cancels it).
   */
  #queueReopen(delayMs: number): void {
    const due = Date.now() + delayMs
    if (this.#reopenTimer !== undefined) {
      if (this.#reopenDue <= due) return
      clearTimeout(this.#reopenTimer)
    }
    this.#reopenDue = due
    this.#reopenTimer = setTimer(() => {
      this.#reopenTimer = undefined
      this.#reopen()
    }, delayMs)
  }

  #cancelReopen(): void {
    clearTimeout(this.#reopenTimer)
    this.#reopenTimer = undefined
  }

  /** SSE fixes its ids per request: reopen on the new set, resuming the same stream. */
  #reopen(): void {
    this.#cancelReopen()
    if (this.#closed || this.#timer !== undefined) return
    this.#connection?.close()
    this.#connection = undefined
    this.#connect()
  }

  #connect(): void {
    if (this.#closed) return
    // the request about to open names every id watched now: no other reopen is needed for them
    this.#cancelReopen()
    const kind = this.#kind()
    if (kind === 'sse' && this.#ids.size === 0) {
      // an SSE request watches the ids it was opened with, and none is a bad request: a
      // subscription watching nobody holds no request; add() opens one
      this.#resolveReady()
      return
    }
    // a connection after a refused token asks the provider for a fresh one; only once: one
    // refused again fails the subscription
    const refresh = this.#refreshFrom
    this.#refreshFrom = undefined
    const tokens = this.#transport.tokens
    let token: string | undefined | Promise<string | undefined> = tokens.last
    if (tokens.refreshable) {
      token = this.#transport.currentToken(refresh).then((value) => {
        if (this.#connection === connection) this.#connectionToken = value
        return value
      })
      // the connection reads its failure (a reconnect); this one only keeps it from being
      // unhandled should no connection be made (no WebSocket constructor)
      token.catch(() => {})
    } else this.#connectionToken = token
    const handlers: ConnectionHandlers = {
      onOpen: (maxIds) => {
        this.#openedAt = Date.now()
        if (maxIds !== undefined) this.#maxIds = maxIds
        if (kind === 'websocket') {
          this.#opened = true
          // more ids than the upgrade says a stream may watch: the rest go to other streams
          // before anything is sent (a subscribe of them all would be refused TOO_MANY_IDS)
          this.#fitLimit()
          // resume the stream where it was, else start one; then re-carry our own presence
          const positions = [...this.#positions].filter(([id]) => this.#ids.has(id))
          // ids handed over by another stream, none of them with a position left: started anew
          if (this.#resume?.token === undefined && positions.length === 0) this.#resume = undefined
          if (this.#resume?.token !== undefined) {
            // the node that held the stream resumes it by token; any other node, from the
            // positions (a node that died, a load balancer that sent us elsewhere)
            connection.send({
              type: 'resume',
              resume: this.#resume.token,
              since: this.#resume.since,
              ...(positions.length > 0 && { positions: Object.fromEntries(positions) }),
            })
            // the resumed stream watches what the old one did: the ids removed since it may
            // have last taken an unsubscribe are unsubscribed again (the positions leave them
            // out: a stream continued from them never watches them)
            this.#unsubscribe(connection)
          } else if (this.#resume !== undefined) {
            // ids another stream handed over: continued from their positions alone (answered
            // `recovered`, a stream of their own); those without one are subscribed after it
            connection.send({ type: 'resume', positions: Object.fromEntries(positions) })
            const rest = [...this.#ids].filter(
              (id) => !this.#positions.has(id) && !this.#unsent.has(id),
            )
            if (rest.length > 0) this.#subscribe(connection, rest, undefined)
          } else {
            // a fresh stream watches only what is subscribed now
            this.#unwatched.clear()
            // the ids of add()s not answered yet go in a subscribe of their own, after this one:
            // a refusal of theirs (a limit they take the stream past) refuses only them; those of
            // an add() waiting to be sent again go when its wait is over
            const waiting = new Set(
              this.#adds.filter((a) => a.retry !== undefined).flatMap((a) => [...a.wanted]),
            )
            const first = [...this.#ids].filter((id) => !this.#unsent.has(id) && !waiting.has(id))
            if (first.length > 0) this.#subscribe(connection, first, undefined)
            else this.#resolveReady()
          }
          // a subscribe per add(), as when it was made on an open connection: one frame of all
          // of them would be judged whole (a limit the first alone fits refused both, more than
          // 1000 ids together refused TOO_MANY_IDS however few each one asked for)
          for (const add of this.#adds) {
            if (add.frame !== undefined) continue
            const ids = [...add.wanted].filter((id) => this.#unsent.delete(id))
            if (ids.length === 0) continue
            add.frame = ++this.#frames
            this.#subscribe(connection, ids, add.frame)
          }
          if (this.#unsent.size > 0) this.#subscribe(connection, [...this.#unsent], ++this.#frames)
          this.#unsent.clear()
          if (this.#heartbeat) connection.send(this.#heartbeat)
        }
        this.emit('open', { transport: kind })
      },
      onFrame: (frame) => {
        if (this.#connection === connection) this.#onFrame(frame)
      },
      onClose: (error, refusedForGood, maxIds) => {
        if (this.#connection !== connection) return
        this.#connection = undefined
        if (
          error instanceof PresencedError &&
          error.code === 'TOO_MANY_IDS' &&
          this.#learnedLimit(maxIds)
        ) {
          // an SSE request of more ids than the server's limit (below 1000), which the refusal
          // tells: the rest go to other streams, and this one opens again at once with its share
          return this.#connect()
        }
        let fatal = refusedForGood
        const ended = tokenEnd(error)
        if (ended === 'token revoked') {
          // a logout: a new token would be the same user's choice undone; not tried again
          fatal = true
        } else if (tokens.refreshable && (ended === 'token expired' || isRefusedToken(error))) {
          // a stream whose token expired (4001) reconnects with a fresh one and resumes; a
          // connection refused 401 is tried once more with a fresh one (the token expired while
          // disconnected), and fails if the fresh one is refused too
          if (ended !== undefined || refresh === undefined) {
            this.#refreshFrom = {
              refused: this.#connectionToken,
              reason: ended !== undefined ? 'expired' : (error as PresencedError).reason,
            }
            fatal = false
          }
        }
        // an SSE request refused for the ids an add() put in it: that add is refused, and the
        // stream opens again at once without its ids
        if (kind === 'sse' && this.#refusedRequest(error)) return this.#connect()
        this.#unanswered()
        if (fatal) return this.#fail(error)
        this.#reconnect(error)
      },
    }
    let connection: Connection
    this.#opened = false
    this.#openedAt = undefined
    this.#sent = []
    this.#frameCount = 0
    this.#unsubscribeWaitMs = 1000
    try {
      connection =
        kind === 'websocket'
          ? openWebSocket(this.#transport, token, this.#webSocket(), this.#options, handlers)
          : openSse(this.#transport, token, this.#sseRequest(), handlers, this.#idleTimeoutMs())
    } catch (error) {
      return this.#fail(error)
    }
    this.#connection = connection
  }

  /**
   * What an SSE request asks for: positions in frames, and on reconnect the stream's resume
   * point with the positions held, so that any node of a fleet continues it.
   */
  #sseRequest(): NativeSseRequest {
    const ids = [...this.#ids]
    if (this.#resume === undefined) return { ids, positions: true }
    const positions = [...this.#positions].filter(([id]) => this.#ids.has(id))
    const held = positions.length > 0 ? Object.fromEntries(positions) : true
    // ids another stream handed over: continued from their positions, a stream of their own
    if (this.#resume.token === undefined) return { ids, positions: held }
    return { ids, resume: this.#resume.token, since: this.#resume.since, positions: held }
  }

  /** Sends a subscribe of `ids` (of add() frame `frame`; undefined: every id), to be answered. */
  #subscribe(connection: Connection, ids: readonly string[], frame: number | undefined): void {
    connection.send({ type: 'subscribe', ids, positions: true })
    const forReset = frame === undefined && this.#resetPending
    this.#sent.push({ frame, ids, at: ++this.#frameCount, forReset })
  }

  /**
   * Sends the unsubscribe of the removed ids not sent on this connection yet (or refused): at
   * most `maxIds` now (a bigger frame would be refused whole), the rest a frame per wait (the
   * last refusal's, else a second), so that frames sent again are not refused again together.
   */
  #unsubscribe(connection: Connection): void {
    const ids = [...this.#unwatched].filter(([, at]) => at === 0).map(([id]) => id)
    if (ids.length === 0) return
    const chunk = ids.length > this.#maxIds ? ids.slice(0, this.#maxIds) : ids
    const at = ++this.#frameCount
    connection.send({ type: 'unsubscribe', ids: chunk })
    for (const id of chunk) this.#unwatched.set(id, at)
    if (ids.length > chunk.length) this.#unsubscribeLater()
  }

  /** Sends the unsubscribes left to send after `#unsubscribeWaitMs` (once: one timer). */
  #unsubscribeLater(): void {
    if (this.#unsubscribeTimer !== undefined) return
    this.#unsubscribeTimer = setTimer(() => {
      this.#unsubscribeTimer = undefined
      if (this.#connection?.kind === 'websocket' && this.#opened) {
        this.#unsubscribe(this.#connection)
      }
    }, this.#unsubscribeWaitMs)
  }

  /** A subscribe sent as frame `at` was answered: every unsubscribe sent before it was taken. */
  #unsubscribedBefore(at: number): void {
    for (const [id, sent] of this.#unwatched) if (sent > 0 && sent < at) this.#unwatched.delete(id)
  }

  /**
   * The server refused an unsubscribe (RATE_LIMITED): which one is not said, so every one not
   * known taken is sent again once the server's wait has passed, a frame per wait.
   */
  #unsubscribeRefused(error: PresencedError): void {
    for (const [id, sent] of this.#unwatched) if (sent > 0) this.#unwatched.set(id, 0)
    this.#unsubscribeWaitMs = error.retryAfterMs ?? 1000
    this.#unsubscribeLater()
  }

  /** Ends the open connection for `error`: fails the subscription, or reconnects. */
  #drop(error: PresencedError, fatal: boolean): void {
    this.#connection?.close()
    this.#connection = undefined
    this.#unanswered()
    if (fatal) this.#fail(error)
    else this.#reconnect(error)
  }

  #reconnect(error: unknown): void {
    if (this.#closed) return
    const options = this.#options.reconnect
    if (options === false) return this.#fail(error)
    this.#attempt++
    const maxDelayMs = options?.maxDelayMs ?? 15_000
    if (isTooFast(error)) {
      // the resume's events reset #attempt: closes for subscribing too fast are counted on their
      // own, so that an app that keeps at it reconnects less and less often (a connection that
      // lasted the longest wait before its close starts the count again)
      const lived = this.#openedAt === undefined ? 0 : Date.now() - this.#openedAt
      this.#tooFast = lived >= maxDelayMs ? 1 : this.#tooFast + 1
    } else this.#tooFast = 0
    const backoff = backoffDelay(
      Math.max(this.#attempt, this.#tooFast),
      {
        baseDelayMs: options?.minDelayMs ?? 500,
        maxDelayMs,
        jitter: RECONNECT_JITTER,
      },
      this.#transport.random,
    )
    // a refusal that says when to come back (RATE_LIMITED) is not tried sooner, even past the
    // cap (the server's rule: sooner is refused again); a wait past the cap says so
    const retryAfterMs = error instanceof PresencedError ? error.retryAfterMs : undefined
    const delayMs = Math.max(backoff, retryAfterMs ?? 0)
    let told = error
    if (
      error instanceof PresencedError &&
      retryAfterMs !== undefined &&
      retryAfterMs > maxDelayMs
    ) {
      told = withNote(
        error,
        `reconnecting in ${seconds(delayMs)} as the server asks, more than reconnect.maxDelayMs, ${seconds(maxDelayMs)}`,
      )
    }
    this.#timer = setTimer(() => {
      this.#timer = undefined
      this.#connect()
    }, delayMs)
    // after the timer: a listener's add() (SSE) then waits for it rather than opening a
    // connection the timer's would replace without closing
    this.emit('reconnecting', { attempt: this.#attempt, delayMs, error: told })
  }

  #fail(error: unknown): void {
    if (this.#closed) return
    let failure = asPresencedError(error)
    const { tokens, cookie } = this.#transport
    if (failure.status === 401 && !tokens.present && cookie !== undefined) {
      // a cookie signs in on the Roblox API only: say so rather than a bare "denied"
      failure = withNote(
        failure,
        'the real-time API takes a token, not a cookie: createClient({ token })',
      )
    }
    this.#rejectReady(failure)
    for (const add of this.#adds.splice(0)) {
      clearTimeout(add.retry)
      add.reject(failure)
    }
    if (this.listenerCount('error') > 0) this.emit('error', failure)
    for (const queue of this.#iterators) queue.fail(failure)
    this.#iterators.clear()
    this.close()
  }

  /**
   * A WebSocket went away with added ids unanswered: whether its server took them is unknown,
   * so they are subscribed again on the next connection (a subscribe of watched ids is answered
   * by their snapshot too). An SSE request carries every id each time anyway.
   */
  #unanswered(): void {
    if (this.#kind() !== 'websocket') return
    // a subscribe of every id unanswered (the first, or after a reset): the stream may not watch
    // them, so the next connection starts a fresh one rather than resuming it
    if (this.#sent.some((s) => s.frame === undefined)) this.#resume = undefined
    this.#sent = []
    // whether the server took the unsubscribes sent is unknown: sent again after the resume
    clearTimeout(this.#unsubscribeTimer)
    this.#unsubscribeTimer = undefined
    for (const id of this.#unwatched.keys()) this.#unwatched.set(id, 0)
    for (const add of [...this.#adds]) {
      if (add.frame === undefined) continue
      add.frame = undefined
      // nothing left to ask for (its ids were removed): nothing to wait for
      if (add.wanted.size === 0) this.#settle(add, undefined)
      else for (const id of add.wanted) this.#unsent.add(id)
    }
  }

  /**
   * Takes `add` out of the waiting ones: resolved, or rejected for `refusal`, its ids then no
   * longer watched (nothing of a refused subscribe is applied). An add whose ids were all
   * removed meanwhile resolves either way: nothing of it is wanted.
   */
  #settle(add: PendingAdd, refusal: PresencedError | undefined): void {
    this.#adds.splice(this.#adds.indexOf(add), 1)
    clearTimeout(add.retry)
    if (refusal === undefined || add.wanted.size === 0) return add.resolve()
    for (const id of add.wanted) {
      this.#ids.delete(id)
      this.#unsent.delete(id)
      this.#positions.delete(id)
      this.#current.delete(id)
    }
    add.reject(refusal)
  }

  /**
   * The server refused `add`'s subscribe (WebSocket). A refusal that passes with time
   * (`RATE_LIMITED` with its `retryAfterMs`, `UNAVAILABLE`) is tried again as a call's 429 is
   * (the client's `retry` options: up to `maxAttempts` subscribes, each after the doubled,
   * jittered backoff and never before the server's wait); the add then settles with the answer
   * to the last one. Rejected at once: a refusal the same subscribe would meet again
   * (`WATCH_LIMIT`, `TOO_MANY_IDS`, bad ids), the last attempt refused, or a wait past
   * `retry.maxDelayMs` (its message then says so).
   */
  #addRefused(add: PendingAdd, error: PresencedError): void {
    let refusal = error
    if (RETRIED_ADD_REFUSALS.has(String(error.code)) && add.wanted.size > 0) {
      const wait = this.#transport.retryWait(++add.tries, error.retryAfterMs, 'retryAfterMs')
      if ('delayMs' in wait) {
        add.frame = undefined
        add.retry = setTimer(() => this.#resend(add), wait.delayMs)
        return
      }
      if (wait.notRetried !== undefined) refusal = withNote(error, wait.notRetried)
    }
    this.#settle(add, refusal)
  }

  /**
   * Sends again an add() refused for a limit that passes (#addRefused) once its wait is over: on
   * the open WebSocket now, else on the next connection (after its resume, as any add() made
   * while disconnected).
   */
  #resend(add: PendingAdd): void {
    add.retry = undefined
    if (this.#closed || !this.#adds.includes(add)) return
    const ids = [...add.wanted]
    if (ids.length === 0) return this.#settle(add, undefined)
    const connection = this.#connection
    if (connection?.kind === 'websocket' && this.#opened) {
      add.frame = ++this.#frames
      this.#unsubscribe(connection)
      this.#subscribe(connection, ids, add.frame)
    } else for (const id of ids) this.#unsent.add(id)
  }

  /** A snapshot arrived: the adds whose every id it tells are answered. */
  #answerAdds(presences: readonly Presence[]): void {
    if (this.#adds.length === 0) return
    const told = new Set(presences.map((p) => p.userId))
    for (const add of [...this.#adds]) {
      // one with nothing left to ask for waits for its own answer (WebSocket; SSE resolved it)
      if (add.wanted.size > 0 && [...add.wanted].every((id) => told.has(id))) {
        this.#settle(add, undefined)
      }
    }
  }

  /**
   * The server refused a subscribe. WebSocket: the oldest one sent and unanswered, since a
   * connection's subscribes are answered in order. SSE: each request carries every add() made
   * so far, so the newest, as a WebSocket would have taken the older ones before it (the next
   * request tries the others again). Its adds reject, and their ids are no longer watched
   * (nothing of a refused subscribe is applied). False when no add was waiting for an answer.
   */
  #refuseAdds(error: PresencedError): boolean {
    const newest = this.#kind() === 'sse'
    let picked: number | undefined
    for (const { frame } of this.#adds) {
      if (frame === undefined) continue
      if (picked === undefined || (newest ? frame > picked : frame < picked)) picked = frame
    }
    if (picked === undefined) return false
    for (const add of this.#adds.filter((a) => a.frame === picked)) this.#settle(add, error)
    return true
  }

  /**
   * An SSE request was refused for its ids (the watch limit, too many ids) while it carried an
   * add(): the add is refused (as its own subscribe would be over a WebSocket) and told as a
   * warning. False when the refusal is the stream's own (no add carried).
   */
  #refusedRequest(error: unknown): boolean {
    if (!(error instanceof PresencedError) || !SSE_ADD_REFUSALS.has(String(error.code))) {
      return false
    }
    if (!this.#refuseAdds(error)) return false
    if (this.listenerCount('warning') > 0) this.emit('warning', error)
    return true
  }

  #keepPositions(frame: Record<string, unknown>, event: PresenceEvent): void {
    for (const [id, pos] of positionsOf(frame, event)) this.#positions.set(id, pos)
  }

  #onFrame(frame: Record<string, unknown>): void {
    if (frame.type === 'reset') {
      // the stream is gone: the next snapshot replaces everything the subscriber knew
      this.#resume = undefined
      this.#positions.clear()
      this.#resetPending = true
      // the stream that was not resumed is gone: the one here watches only what is subscribed
      this.#unwatched.clear()
      if (this.#connection?.kind === 'websocket') {
        if (this.#ids.size > this.#maxIds && this.#sent.some((s) => s.frame !== undefined)) {
          // the add()s sent after the resume are judged first, on the fresh stream, and a
          // subscribe of every id after them would take it past the limit: refused, fatally.
          // Start over on a new connection, every watched id first and the adds after them,
          // judged on their own (one past the limit refused, as without the reset)
          this.#connection.close()
          this.#connection = undefined
          this.#unanswered()
          return this.#connect()
        }
        // subscribes sent before this one (add()s after the resume) are answered first: their
        // snapshots tell only their ids, and only this one's replaces everything
        if (this.#ids.size > 0) this.#subscribe(this.#connection, [...this.#ids], undefined)
        else {
          this.#resetPending = false
          this.#current.clear()
        }
      }
      return
    }
    if (frame.type === 'recovered') {
      // another node took the stream over from our positions: what we missed follows
      if (typeof frame.resume === 'string' && typeof frame.seq === 'number') {
        this.#resume = { token: frame.resume, since: frame.seq }
      }
      this.#attempt = 0
      // a stream opened on positions handed over has no snapshot of its own to wait for: its
      // users' state is what the stream that shed them knew, and the changes since follow
      this.#resolveReady()
      return
    }
    if (frame.type === 'error') {
      const error = nativeError(frame)
      if (isTooFast(error)) {
        // the server closes the connection next (1008) for subscribing too fast, and says when to
        // come back: a limit, not a bad request. Reconnected after that wait (and a backoff that
        // grows while it goes on), resumed; the subscribe it left unanswered is sent again
        return this.#drop(error, false)
      }
      if (typeof frame.close === 'number' && this.#connection?.kind === 'websocket') {
        // the server says it closes the connection next, and why: a limit (STREAM_LIMIT, 1008:
        // another connection of the user took the last place) or its own defect (INTERNAL,
        // 1011). Neither is the client's doing: reconnected after a backoff and resumed, the
        // subscribes it left unanswered sent again, and the app told this error, not the close
        return this.#drop(error, false)
      }
      if (
        error.code === 'TOO_MANY_IDS' &&
        this.#connection?.kind === 'websocket' &&
        this.#learnedLimit(maxIdsOf(frame.maxIds as number | undefined))
      ) {
        // a subscribe or resume of more ids than the server lets a stream watch, which the
        // refusal tells (a browser's WebSocket cannot read the upgrade's MAX_IDS_HEADER): the
        // rest went to other streams, and this one starts again at once with its share, as an
        // SSE request refused for them does (nothing of a refused frame was applied; the adds
        // it left unanswered are sent again)
        this.#connection.close()
        this.#connection = undefined
        this.#unanswered()
        return this.#connect()
      }
      // a refused heartbeat or unsubscribe says so (`for`); it answers no subscribe. An
      // unsubscribe refused for the rate is sent again after the server's wait: the server
      // would go on watching (and counting against the watch limit) the ids removed
      if (frame.for === 'unsubscribe' && error.code === 'RATE_LIMITED') {
        this.#unsubscribeRefused(error)
      }
      if (frame.for === 'heartbeat' || frame.for === 'unsubscribe') {
        if (this.listenerCount('warning') > 0) this.emit('warning', error)
        return
      }
      if (frame.for === 'resume') {
        // the stream was not continued (from positions: the watch limit, the subscribe budget):
        // nothing more comes on this connection, and no add() was refused. Tried again after a
        // backoff, from the same point (over SSE the server has ended the request anyway)
        return this.#drop(error, FATAL_REFUSALS.has(String(error.code)))
      }
      const ended = tokenEnd(error)
      if (ended === 'token revoked') return this.#drop(error, true)
      if (ended === 'token expired' && this.#transport.tokens.refreshable) {
        // (SSE) the stream ends: it goes on with a fresh token from the provider, resuming
        this.#refreshFrom = { refused: this.#connectionToken, reason: 'expired' }
        return this.#drop(error, false)
      }
      const code = String(error.code)
      if (code === 'STREAM_LIMIT') {
        // the user's last place went to another connection after this one was let in: the
        // server ends this one (a 1008 close over a WebSocket, which alone would be fatal).
        // A limit, not a bad request: tried again after a backoff, as a refused upgrade is
        return this.#drop(error, false)
      }
      const head = this.#sent[0]
      if (
        head !== undefined &&
        this.#connection?.kind === 'websocket' &&
        (frame.for === 'subscribe' ||
          (frame.for === undefined && (SUBSCRIBE_REFUSALS.has(code) || RETRIED_REFUSALS.has(code))))
      ) {
        // the oldest subscribe not answered is refused (a connection's are answered in order)
        this.#unsubscribedBefore(head.at)
        if (head.frame === undefined) {
          // the subscribe of every watched id: no snapshot will come, and `ready` would wait for
          // ever. As over SSE, where the same refusals are HTTP statuses: a bad request is
          // fatal; a limit or an outage is tried again after a backoff
          if (FATAL_REFUSALS.has(code)) return this.#drop(error, true)
          if (RETRIED_REFUSALS.has(code)) return this.#drop(error, false)
          this.#sent.shift()
        } else {
          // an add()'s: its promise rejects, or it is sent again later; listeners hear of it
          this.#sent.shift()
          for (const add of this.#adds.filter((a) => a.frame === head.frame)) {
            this.#addRefused(add, error)
          }
        }
        if (this.listenerCount('warning') > 0) this.emit('warning', error)
        return
      }
      // a later subscribe refused (an add): its promise rejects; listeners still hear of it
      const refused = SUBSCRIBE_REFUSALS.has(code) && this.#refuseAdds(error)
      if (this.listenerCount('warning') > 0) this.emit('warning', error)
      // the server ends an SSE request whose subscribe it refused: open the rest at once
      if (refused && this.#connection?.kind === 'sse') this.#reopen()
      return
    }
    const event = decodeEvent(frame)
    if (event === undefined) return
    this.#attempt = 0
    const token = typeof frame.resume === 'string' ? frame.resume : this.#resume?.token
    if (token !== undefined) this.#resume = { token, since: event.seq }
    this.#keepPositions(frame, event)
    let delivered: PresenceEvent = event
    if (event.type === 'snapshot') {
      let reset = this.#resetPending
      if (this.#connection?.kind === 'websocket') {
        // the subscribe it answers: the oldest sent, when it tells exactly its ids (a snapshot
        // replayed after a resume answers a subscribe of an earlier connection, not this one's)
        const head = this.#sent[0]
        const answered = head !== undefined && sameIds(head.ids, event.presences)
        if (answered) {
          this.#sent.shift()
          this.#unsubscribedBefore(head.at)
        }
        // a reset's state is the snapshot of every id sent for it, not an add()'s before it, nor
        // that of the ids a moved stream had no position for, subscribed before the reset came
        reset &&= answered && head.forReset
        if (answered && head.frame !== undefined) {
          for (const add of this.#adds.filter((a) => a.frame === head.frame)) {
            this.#settle(add, undefined)
          }
        }
      }
      this.#answerAdds(event.presences)
      const presences: Presence[] = []
      const raw: NativePresence[] = []
      event.presences.forEach((p, i) => {
        if (!this.#ids.has(p.userId)) return
        presences.push(p)
        raw.push(event.raw[i]!)
      })
      delivered = { ...event, presences, raw, reset }
      // a reset's snapshot replaces everything known before the gap
      if (reset) {
        this.#current.clear()
        this.#resetPending = false
      }
      for (const presence of presences) this.#current.set(presence.userId, presence)
      this.#resolveReady()
    } else if (!this.#ids.has(event.presence.userId)) {
      return
    } else {
      this.#current.set(event.presence.userId, event.presence)
    }
    this.emit(delivered.type, delivered as never)
    this.emit('event', delivered)
    for (const queue of this.#iterators) queue.push(delivered)
  }
}

/** Whether `presences` are of exactly `ids` (as a snapshot answering their subscribe is). */
function sameIds(ids: readonly string[], presences: readonly Presence[]): boolean {
  if (ids.length !== presences.length) return false
  const told = new Set(presences.map((p) => p.userId))
  return ids.every((id) => told.has(id))
}

/** Settles once every one of `promises` has resolved, or with the first rejection; handled. */
function allOf(promises: Promise<void>[]): Promise<void> {
  const all = Promise.all(promises).then(() => {})
  all.catch(() => {})
  return all
}

/** Positions arrive as `pos`: one per presence of a snapshot, one per event. */
function positionsOf(
  frame: Record<string, unknown>,
  event: PresenceEvent,
): Array<[string, string]> {
  if (event.type === 'snapshot') {
    const pos = Array.isArray(frame.pos) ? frame.pos : []
    return event.raw.flatMap((p, i): Array<[string, string]> =>
      typeof pos[i] === 'string' ? [[p.userId, pos[i] as string]] : [],
    )
  }
  return typeof frame.pos === 'string' ? [[event.presence.userId, frame.pos]] : []
}

/** Throws a TypeError naming an option that must be a number and is not (NaN, say). */
export function checkSubscribeOptions(options: SubscribeOptions): void {
  if (options.reconnect !== undefined && options.reconnect !== false) {
    checkNumber('reconnect.minDelayMs', options.reconnect.minDelayMs, 0)
    checkNumber('reconnect.maxDelayMs', options.reconnect.maxDelayMs, 0)
  }
  checkTimeout('idleTimeoutMs', options.idleTimeoutMs)
}

// --- the wire codec: native frames -> typed events ------------------------------------------

const STATE_TYPES: Record<string, PresenceType> = {
  offline: PresenceType.Offline,
  online: PresenceType.Online,
  inGame: PresenceType.InGame,
  inStudio: PresenceType.InStudio,
  invisible: PresenceType.Invisible,
}
/** A session's kind as the state it shows: the higher, the more it says (the primary session). */
const KIND_TYPES: Record<string, PresenceType> = {
  online: PresenceType.Online,
  inGame: PresenceType.InGame,
  inStudio: PresenceType.InStudio,
}

export function decodeEvent(frame: Record<string, unknown>): PresenceEvent | undefined {
  const seq = typeof frame.seq === 'number' ? frame.seq : Number(frame.seq ?? 0)
  switch (frame.type) {
    case 'snapshot': {
      const raw = (Array.isArray(frame.presences) ? frame.presences : []).map(nativePresenceOf)
      return { type: 'snapshot', seq, presences: raw.map(presenceOfNative), raw, reset: false }
    }
    case 'online':
    case 'update': {
      const raw = nativePresenceOf(frame.presence, frame.userId)
      return { type: frame.type, seq, presence: presenceOfNative(raw), raw }
    }
    case 'offline': {
      const raw = nativePresenceOf(frame.presence, frame.userId)
      const reason = typeof frame.reason === 'string' ? frame.reason : 'explicit'
      return { type: 'offline', seq, presence: presenceOfNative(raw), raw, reason }
    }
    default:
      return undefined
  }
}

function nativePresenceOf(value: unknown, userId?: unknown): NativePresence {
  const r = isObject(value) ? value : {}
  const id = r.userId ?? userId
  return {
    userId: typeof id === 'string' || typeof id === 'number' ? String(id) : '',
    state: (typeof r.state === 'string' && r.state in STATE_TYPES
      ? r.state
      : 'offline') as NativePresence['state'],
    lastOnline: typeof r.lastOnline === 'string' ? r.lastOnline : null,
    locationHidden: r.locationHidden === true,
    sessions: (Array.isArray(r.sessions) ? r.sessions.filter(isObject) : []).map((s) => ({
      source: String(s.source ?? '') as NativeSession['source'],
      deviceType: String(s.deviceType ?? ''),
      activity: (isObject(s.activity)
        ? s.activity
        : { kind: 'online' }) as unknown as NativeSession['activity'],
    })),
  }
}

/**
 * The same Presence the Roblox lookups give for the same user and viewer (presenced's Roblox
 * view): the state, and the place of the session that defines it (highest kind first).
 * `lastLocation` is the session's location, else the generic text the lookup shows: `Offline`,
 * `Website`, `Playing` or `Studio`; an offline user, or one whose location the viewer may not
 * see, has no place and the generic text of the state. An online user's lastOnline is now (the
 * stream does not carry it while online).
 */
export function presenceOfNative(raw: NativePresence): Presence {
  const type = STATE_TYPES[raw.state] ?? PresenceType.Offline
  let primary: NativeSession | undefined
  if (type !== PresenceType.Offline) {
    for (const session of raw.sessions) {
      if (primary === undefined || rankOf(session) > rankOf(primary)) primary = session
    }
  }
  const online = type !== PresenceType.Offline && type !== PresenceType.Invisible
  const lastOnline =
    raw.lastOnline !== null ? dateOf(raw.lastOnline) : online ? new Date() : new Date(0)
  if (primary === undefined || raw.locationHidden) {
    return {
      userId: raw.userId,
      type,
      lastLocation: genericLocation(type),
      place: null,
      rootPlace: null,
      universe: null,
      job: null,
      lastOnline,
    }
  }
  const a = primary.activity
  return {
    userId: raw.userId,
    type,
    lastLocation: a.location || genericLocation(KIND_TYPES[a.kind] ?? PresenceType.Online),
    place: placeOf(a.placeId),
    rootPlace: placeOf(a.rootPlaceId),
    universe: placeOf(a.universeId),
    job: typeof a.gameId === 'string' && a.gameId !== '' ? { id: a.gameId } : null,
    lastOnline,
  }
}

function rankOf(session: NativeSession): number {
  return KIND_TYPES[session.activity.kind] ?? 0
}

/**
 * Refusals of a WebSocket subscribe, as error frames: the same request can never succeed (SSE
 * answers them 400), or may after a wait (SSE: 429, 503).
 */
const FATAL_REFUSALS = new Set(['TOO_MANY_IDS', 'IDS_INVALID', 'FRAME_INVALID'])
const RETRIED_REFUSALS = new Set(['WATCH_LIMIT', 'STREAM_LIMIT', 'RATE_LIMITED', 'UNAVAILABLE'])
/** The error frames that answer a subscribe (of add()) in its snapshot's stead. */
const SUBSCRIBE_REFUSALS = new Set([
  'TOO_MANY_IDS',
  'IDS_INVALID',
  'FRAME_INVALID',
  'WATCH_LIMIT',
  'RATE_LIMITED',
  'UNAVAILABLE',
])

/**
 * The refusals of an add()'s subscribe that a later one may pass (the budget refills, the store
 * comes back): tried again after a backoff (StreamSubscription#addRefused).
 */
const RETRIED_ADD_REFUSALS = new Set(['RATE_LIMITED', 'UNAVAILABLE'])

/** The HTTP refusals of an SSE request that the ids an add() put in it can cause. */
const SSE_ADD_REFUSALS = new Set(['WATCH_LIMIT', 'TOO_MANY_IDS'])

/** The HTTP status the SSE form answers an error frame's code with (a frame carries none). */
const FRAME_STATUS: Record<string, number> = {
  TOO_MANY_IDS: 400,
  IDS_INVALID: 400,
  FRAME_INVALID: 400,
  HEARTBEAT_INVALID: 400,
  TYPE_UNKNOWN: 400,
  RESUME_LATE: 400,
  UNAUTHENTICATED: 401,
  WATCH_LIMIT: 429,
  STREAM_LIMIT: 429,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
}

function nativeError(frame: Record<string, unknown>): PresencedError {
  const inner = isObject(frame.error) ? frame.error : frame
  const code =
    typeof inner.code === 'string' || typeof inner.code === 'number' ? inner.code : undefined
  const message = typeof inner.message === 'string' ? inner.message : 'Subscription error'
  const status = typeof frame.status === 'number' ? frame.status : (FRAME_STATUS[String(code)] ?? 0)
  const retryAfterMs = typeof inner.retryAfterMs === 'number' ? inner.retryAfterMs : undefined
  return new PresencedError(message, {
    status,
    code,
    protocol: 'native',
    retryAfterMs,
    body: frame,
  })
}

/**
 * Whether the server ended a stream for its token: `token expired` or `token revoked`, the
 * reason of a WebSocket's 4001 close or the message of SSE's last `UNAUTHENTICATED` event.
 */
function tokenEnd(error: unknown): 'token expired' | 'token revoked' | undefined {
  if (!(error instanceof PresencedError)) return undefined
  if (error.code !== 4001 && error.code !== 'UNAUTHENTICATED') return undefined
  return error.message === 'token expired' || error.message === 'token revoked'
    ? error.message
    : undefined
}

/** The reason of the WebSocket close (1008) that ends a connection subscribing too fast. */
const TOO_FAST = 'subscribing too fast'

/**
 * Whether the server ended the connection for subscribing too fast: its `RATE_LIMITED` frame that
 * announces the close (`"close":1008`, with `retryAfterMs`), or the close itself.
 */
function isTooFast(error: unknown): boolean {
  if (!(error instanceof PresencedError)) return false
  if (error.code === 1008) return error.message === TOO_FAST
  const body = error.body
  return error.code === 'RATE_LIMITED' && isObject(body) && body.close !== undefined
}

/** A connection refused 401 (an upgrade, an SSE request): the token was not taken. */
function isRefusedToken(error: unknown): boolean {
  return error instanceof PresencedError && error.status === 401
}

/** `error` with `(note)` after its message, every detail kept. */
function withNote(error: PresencedError, note: string): PresencedError {
  return new PresencedError(`${error.message} (${note})`, {
    status: error.status,
    code: error.code,
    protocol: error.protocol,
    retryAfterMs: error.retryAfterMs,
    body: error.body,
    reason: error.reason,
    cause: error,
  })
}

function asPresencedError(error: unknown): PresencedError {
  if (error instanceof PresencedError) return error
  const message = error instanceof Error ? error.message : String(error)
  return new PresencedError(message, { status: 0, protocol: 'native', cause: error })
}

function parseFrame(text: string): Record<string, unknown> | undefined {
  try {
    const value = parseJsonLossless(text)
    return isObject(value) ? value : undefined
  } catch {
    return undefined
  }
}

// --- transports ------------------------------------------------------------------------------

/** How long a connection may carry nothing before it is taken for dead (SubscribeOptions). */
const DEFAULT_IDLE_TIMEOUT_MS = 60_000

/**
 * Calls `onIdle` once `touch()` has not been called for `ms` (never without `ms`). One timer,
 * re-armed only when it fires: a busy stream costs a timestamp per frame.
 */
function watchdog(ms: number | undefined, onIdle: () => void): { touch(): void; stop(): void } {
  if (ms === undefined) return { touch() {}, stop() {} }
  let last = Date.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  const arm = (delay: number) => {
    timer = setTimer(() => {
      const quiet = Date.now() - last
      if (quiet >= ms) onIdle()
      else arm(ms - quiet)
    }, delay)
    // the connection, not this timer, is what keeps a process alive
    ;(timer as { unref?: () => void }).unref?.()
  }
  arm(ms)
  return {
    touch: () => (last = Date.now()),
    stop: () => clearTimeout(timer),
  }
}

function idleError(ms: number): PresencedError {
  return new PresencedError(
    `No data from presenced for ${ms} ms, not even a keepalive: the connection is taken for dead`,
    { status: 0, protocol: 'network' },
  )
}

/** A refused upgrade's response as `ws` hands it over (an IncomingMessage). */
interface RefusedUpgrade extends AsyncIterable<unknown> {
  readonly statusCode?: number
  readonly headers: Record<string, string | string[] | undefined>
  destroy(): void
}

/**
 * How long the body of a refusal (a refused upgrade, an SSE request's error) may take to
 * arrive: it comes with the headers from presenced, and a peer that sends headers and never the
 * rest (a proxy, a server gone mid-response) must not hold the reconnect up.
 */
const REFUSAL_READ_MS = 2_000
/** The most of a refusal's body read: presenced's error bodies are well under 1 KiB. */
const REFUSAL_MAX_BYTES = 16 * 1024

/** `read()`'s result, or `undefined` once `ms` have passed (then `cancel` is called). */
async function within<T>(ms: number, read: Promise<T>, cancel: () => void): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<undefined>((resolve) => {
    timer = setTimer(() => {
      cancel()
      resolve(undefined)
    }, ms)
  })
  try {
    return await Promise.race([read.catch(() => undefined), late])
  } finally {
    clearTimeout(timer)
  }
}

/** The text of a refused upgrade's body: what arrived within REFUSAL_READ_MS, at most 16 KiB. */
async function bodyOf(response: RefusedUpgrade): Promise<string> {
  const chunks: Uint8Array[] = []
  let size = 0
  const read = (async () => {
    for await (const chunk of response) {
      const bytes =
        typeof chunk === 'string' ? new TextEncoder().encode(chunk) : (chunk as Uint8Array)
      chunks.push(bytes)
      size += bytes.length
      if (size >= REFUSAL_MAX_BYTES) break
    }
  })()
  await within(REFUSAL_READ_MS, read, () => response.destroy())
  const all = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    all.set(chunk, at)
    at += chunk.length
  }
  return new TextDecoder().decode(all.subarray(0, REFUSAL_MAX_BYTES))
}

/**
 * The error of a refused request (an upgrade, an SSE request): the native error body's code and
 * message, `retryAfterMs` from Retry-After (else the body's). Fatal: a 4xx other than 429, which
 * the same request would meet again; a 429 or a 5xx is tried again after its wait.
 */
function refusalError(
  status: number,
  text: string,
  retryAfter: string | null,
  challenge: string | string[] | null | undefined,
): { error: PresencedError; fatal: boolean } {
  const body = parseFrame(text)
  const inner = isObject(body?.error) ? body.error : body
  const code = typeof inner?.code === 'string' ? inner.code : undefined
  const message =
    typeof inner?.message === 'string'
      ? inner.message
      : status === 401
        ? 'Authorization has been denied for this request.'
        : `HTTP ${status}`
  const retryAfterMs =
    parseRetryAfter(retryAfter) ??
    (typeof inner?.retryAfterMs === 'number' ? inner.retryAfterMs : undefined)
  const error = new PresencedError(message, {
    status,
    code: code ?? (status === 401 ? 'UNAUTHENTICATED' : undefined),
    protocol: 'native',
    // a reconnect waits for it, as for a refusal frame's retryAfterMs
    retryAfterMs,
    body,
    reason: status === 401 ? tokenRefusedOf(challenge) : undefined,
  })
  return { error, fatal: status >= 400 && status < 500 && status !== 429 }
}

async function refusalOf(
  response: RefusedUpgrade,
): Promise<{ error: PresencedError; fatal: boolean }> {
  const header = response.headers['retry-after']
  const retryAfter = (Array.isArray(header) ? header[0] : header) ?? null
  return refusalError(
    response.statusCode ?? 0,
    await bodyOf(response),
    retryAfter,
    response.headers['www-authenticate'],
  )
}

/**
 * Close codes after which reconnecting would be wrong: policy (the client's own frames were
 * malformed: a new connection would carry the same ones), too big, taken over.
 */
const FATAL_CLOSE = new Set([1008, 1009, 4009])
/**
 * The policy closes (1008) that are limits, not the client's fault to repeat: tried again after a
 * backoff. presenced says so first in an error frame (STREAM_LIMIT, or RATE_LIMITED with its
 * wait), read before the close; these reasons alone are what a server without that frame sends.
 */
const RETRIED_POLICY_CLOSE = new Set([TOO_FAST, 'too many streams'])

function idleTimeoutOf(options: SubscribeOptions): number | undefined {
  const idle = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
  return idle === false || !(idle > 0) ? undefined : idle
}

/**
 * A WebSocket opened with `token` (a provider's: once it has answered). Frames sent before the
 * socket opens go out right after the opening frames.
 */
function openWebSocket(
  transport: Transport,
  token: string | undefined | Promise<string | undefined>,
  WebSocketCtor: WebSocketLike | undefined,
  options: SubscribeOptions,
  handlers: ConnectionHandlers,
): Connection {
  if (!WebSocketCtor) {
    throw new PresencedError('No WebSocket available: pass createClient({ WebSocket })', {
      status: 0,
      protocol: 'native',
    })
  }
  const queued: string[] = []
  let socket: WebSocketInstance | undefined
  /** Ends the socket's watchdog. */
  let stop = () => {}
  let done = false
  const finish = (error: unknown, fatal: boolean) => {
    if (done) return
    done = true
    stop()
    handlers.onClose(error, fatal)
  }
  const open = (value: string | undefined) => {
    if (done) return
    ;({ socket, stop } = connectWebSocket(transport, value, WebSocketCtor, options, handlers, {
      queued,
      finish,
    }))
  }
  if (token instanceof Promise) {
    // the provider's failure: tried again after a backoff, as an unreachable server is
    token.then(open, (error: unknown) => finish(error, false))
  } else open(token)
  return {
    kind: 'websocket',
    send: (frame) => {
      if (socket === undefined || socket.readyState === 0) queued.push(stringifyJson(frame))
      else if (socket.readyState === 1) socket.send(stringifyJson(frame))
    },
    close: () => {
      done = true
      stop()
      socket?.close(1000)
    },
  }
}

function connectWebSocket(
  transport: Transport,
  token: string | undefined,
  WebSocketCtor: WebSocketLike,
  options: SubscribeOptions,
  handlers: ConnectionHandlers,
  connection: {
    /** Frames sent before the socket opened: they go out right after the opening frames. */
    queued: string[]
    /** Ends the connection for `error` (once: later calls do nothing). */
    finish(error: unknown, fatal: boolean): void
  },
): { socket: WebSocketInstance; stop(): void } {
  const { queued, finish } = connection
  const useHeaders = options.webSocketHeaders ?? options.WebSocket !== undefined
  let url = transport.baseUrl.replace(/^http/i, 'ws') + NATIVE_WS_PATH
  if (!useHeaders && token !== undefined) {
    url += `?access_token=${encodeURIComponent(token)}`
  }
  const socket = new WebSocketCtor(
    url,
    undefined,
    useHeaders ? { headers: transport.authHeaders('default', token) } : undefined,
  )
  let refused: PresencedError | undefined
  let opened = false
  let lastError = ''
  let maxIds: number | undefined
  // pings keep a quiet stream alive: the watchdog runs only where they can be seen (`ws`)
  const emitter = socket as unknown as {
    on?: (event: string, listener: () => void) => void
    terminate?: () => void
  }
  const idleMs = typeof emitter.on === 'function' ? idleTimeoutOf(options) : undefined
  const idle = watchdog(idleMs, () => {
    finish(idleError(idleMs!), false)
    if (typeof emitter.terminate === 'function') emitter.terminate()
    else socket.close()
  })
  if (idleMs !== undefined) emitter.on!('ping', idle.touch)
  if (typeof emitter.on === 'function') {
    // `ws` shows the upgrade's response: its headers tell the server's limits
    emitter.on('upgrade', ((response: RefusedUpgrade) => {
      maxIds = maxIdsOf(response.headers[MAX_IDS_HEADER])
    }) as () => void)
    // `ws` hands over a refused upgrade's response: its status, Retry-After and error body say
    // what the refusal was (a 429's code and wait); a listener here also keeps `ws` from
    // aborting on its own, so the socket is ended once the response is read
    emitter.on('unexpected-response', ((_request: unknown, response: RefusedUpgrade) => {
      void refusalOf(response).then(({ error, fatal }) => {
        finish(error, fatal)
        if (typeof emitter.terminate === 'function') emitter.terminate()
        else socket.close()
      })
    }) as () => void)
  }
  socket.onopen = () => {
    idle.touch()
    opened = true
    handlers.onOpen(maxIds)
    for (const text of queued.splice(0)) socket.send(text)
  }
  socket.onmessage = (event: { data: unknown }) => {
    idle.touch()
    const frame = parseFrame(typeof event.data === 'string' ? event.data : String(event.data))
    if (frame !== undefined) handlers.onFrame(frame)
  }
  socket.onerror = (event: never) => {
    // `ws` reports a refused upgrade as "Unexpected server response: 401"; browsers say nothing
    const message = String((event as { message?: unknown })?.message ?? '')
    lastError = message
    const status = Number(/Unexpected server response: (\d+)/.exec(message)?.[1] ?? 0)
    if (status >= 400 && status < 500 && status !== 429) {
      refused = new PresencedError(
        status === 401 ? 'Authorization has been denied for this request.' : message,
        { status, code: status === 401 ? 'UNAUTHENTICATED' : undefined, protocol: 'native' },
      )
    }
  }
  socket.onclose = (event: { code: number; reason: string }) => {
    if (refused) return finish(refused, true)
    const fatal =
      FATAL_CLOSE.has(event.code) &&
      !(event.code === 1008 && RETRIED_POLICY_CLOSE.has(event.reason))
    const message = opened
      ? event.reason || `WebSocket closed (${event.code})`
      : redactUrls(
          `Cannot reach presenced at ${transport.baseUrl}${lastError ? ': ' + lastError : ''}`,
        )
    finish(
      new PresencedError(message, {
        status: 0,
        code: event.code,
        protocol: opened ? 'native' : 'network',
      }),
      fatal,
    )
  }
  return { socket, stop: idle.stop }
}

/**
 * The limit a header (MAX_IDS_HEADER) or a refusal's `maxIds` tells, if it is a positive integer.
 */
function maxIdsOf(header: string | number | string[] | null | undefined): number | undefined {
  const value = Number(Array.isArray(header) ? header[0] : (header ?? undefined))
  return Number.isSafeInteger(value) && value > 0 ? value : undefined
}

/** The GET form's query of `request`: ids, and resume/since; positions have no place in it. */
function legacyQuery(request: NativeSseRequest): URLSearchParams {
  const query = new URLSearchParams({ ids: request.ids.join(',') })
  if (request.resume !== undefined && request.since !== undefined) {
    query.set('resume', request.resume)
    query.set('since', String(request.since))
  }
  return query
}

/**
 * SSE over fetch, as `POST`: 1000 ids and their positions do not fit a URL, and only a
 * body can carry the positions that let any node continue the stream. A server without the
 * POST form (404, 405) is asked with GET instead.
 */
function openSse(
  transport: Transport,
  token: string | undefined | Promise<string | undefined>,
  request: NativeSseRequest,
  connectionHandlers: ConnectionHandlers,
  idleMs: number | undefined,
): Connection {
  const controller = new AbortController()
  const url = `${transport.baseUrl}${NATIVE_SSE_PATH}`
  const idle = watchdog(idleMs, () => {
    if (controller.signal.aborted) return
    controller.abort()
    connectionHandlers.onClose(idleError(idleMs!), false)
  })
  const handlers: ConnectionHandlers = {
    ...connectionHandlers,
    onClose: (error, fatal, maxIds) => {
      idle.stop()
      connectionHandlers.onClose(error, fatal, maxIds)
    },
  }
  void (async () => {
    let auth: Record<string, string>
    try {
      auth = transport.authHeaders('default', await token)
    } catch (error) {
      // the provider's failure: tried again after a backoff, as an unreachable server is
      if (!controller.signal.aborted) handlers.onClose(error, false)
      return
    }
    if (controller.signal.aborted) return
    let response: Response
    try {
      response = await transport.fetch(url, {
        method: 'POST',
        headers: {
          accept: 'text/event-stream',
          'content-type': 'application/json',
          ...auth,
        },
        body: stringifyJson(request),
        signal: controller.signal,
      })
      if (response.status === 404 || response.status === 405) {
        // a presenced from before POST streams: its GET, which resumes on its own node only
        await response.body?.cancel()
        response = await transport.fetch(`${url}?${legacyQuery(request)}`, {
          headers: { accept: 'text/event-stream', ...auth },
          signal: controller.signal,
        })
      }
    } catch (error) {
      if (controller.signal.aborted) return
      const message = redactUrls(
        `Cannot reach presenced at ${transport.baseUrl}: ${networkReason(error)}`,
      )
      const failure = new PresencedError(message, { status: 0, protocol: 'network', cause: error })
      return handlers.onClose(failure, false)
    }
    if (!response.ok || response.body === null) {
      const refused = response
      const text = await within(REFUSAL_READ_MS, refused.text(), () => {
        void refused.body?.cancel().catch(() => {})
      })
      if (controller.signal.aborted) return
      const { error, fatal } = refusalError(
        refused.status,
        (text ?? '').slice(0, REFUSAL_MAX_BYTES),
        refused.headers.get('retry-after'),
        refused.headers.get('www-authenticate'),
      )
      return handlers.onClose(error, fatal, maxIdsOf(refused.headers.get(MAX_IDS_HEADER)))
    }
    idle.touch()
    handlers.onOpen(maxIdsOf(response.headers.get(MAX_IDS_HEADER)))
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      // any bytes, a `: keepalive` comment included, say the connection lives
      idle.touch()
      buffer += value
      let end: number
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '')
        const data = block
          .split(/\r?\n/)
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(line.startsWith('data: ') ? 6 : 5))
          .join('\n')
        const frame = data === '' ? undefined : parseFrame(data)
        if (frame !== undefined) handlers.onFrame(frame)
      }
    }
    handlers.onClose(
      new PresencedError('Event stream ended', { status: 0, protocol: 'native' }),
      false,
    )
  })().catch((error: unknown) => {
    if (!controller.signal.aborted) {
      handlers.onClose(
        new PresencedError(`Lost the event stream: ${(error as Error)?.message ?? error}`, {
          status: 0,
          protocol: 'network',
          cause: error,
        }),
        false,
      )
    }
  })
  return {
    kind: 'sse',
    send: () => {},
    close: () => {
      idle.stop()
      controller.abort()
    },
  }
}

/** A pull queue behind one async iterator. */
export class Queue implements AsyncIterator<PresenceEvent> {
  readonly #items: PresenceEvent[] = []
  readonly #waiting: {
    resolve: (r: IteratorResult<PresenceEvent>) => void
    reject: (e: unknown) => void
  }[] = []
  readonly #detach: () => void
  #ended = false
  #error: unknown

  constructor(detach: () => void) {
    this.#detach = detach
  }

  push(event: PresenceEvent): void {
    const waiter = this.#waiting.shift()
    if (waiter) waiter.resolve({ value: event, done: false })
    else this.#items.push(event)
  }

  end(): void {
    this.#ended = true
    for (const waiter of this.#waiting.splice(0)) waiter.resolve({ value: undefined, done: true })
  }

  fail(error: unknown): void {
    this.#error = error
    this.#ended = true
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error)
  }

  next(): Promise<IteratorResult<PresenceEvent>> {
    const item = this.#items.shift()
    if (item !== undefined) return Promise.resolve({ value: item, done: false })
    if (this.#error !== undefined) return Promise.reject(this.#error)
    if (this.#ended) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }))
  }

  return(): Promise<IteratorResult<PresenceEvent>> {
    this.end()
    this.#detach()
    return Promise.resolve({ value: undefined, done: true })
  }
}
