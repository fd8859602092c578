import { Emitter } from './emitter.js'
import { PresencedError } from './errors.js'
import { isObject, type Transport } from './http.js'
import { parseJsonLossless } from './lossless-json.js'
import { presenceFromWire, type Presence } from './presence.js'
import type { RobloxUserPresence } from './wire.js'

export type OfflineReason = 'explicit' | 'timeout' | 'node_lost' | 'privacy' | (string & {})

/** What a subscription delivers, in order. Every event is the subscriber's own view. */
export type PresenceEvent =
  | {
      type: 'snapshot'
      seq: number
      presences: Presence[]
      /** True when this snapshot replaces state after a gap that could not be resumed. */
      reset: boolean
    }
  | { type: 'online'; seq: number; presence: Presence }
  | { type: 'update'; seq: number; presence: Presence }
  | { type: 'offline'; seq: number; presence: Presence; reason: OfflineReason }

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
  /** The connection dropped; the next attempt starts after `delayMs`. */
  reconnecting: { attempt: number; delayMs: number; error: unknown }
  /** A fatal error (bad credentials, refused ids): the subscription is closed. */
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

export interface WebSocketInstance {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number; reason: string }) => void) | null
  onerror: ((event: unknown) => void) | null
}

export interface SubscribeOptions {
  /** A WebSocket constructor; default the global one; without any, SSE over fetch. */
  WebSocket?: WebSocketLike | undefined
  /** Force a transport. @default 'auto' */
  transport?: 'auto' | 'websocket' | 'sse'
  /** Reconnect backoff: first wait and cap. @default { minDelayMs: 500, maxDelayMs: 15000 } */
  reconnect?: { minDelayMs?: number; maxDelayMs?: number } | false
}

/** The native API's paths (docs/reference/native.md). */
export const NATIVE_WS_PATH = '/native/v1/ws'
export const NATIVE_SSE_PATH = '/native/v1/sse'

interface Connection {
  send(frame: Record<string, unknown>): void
  close(): void
}

interface ConnectionHandlers {
  onOpen(): void
  onFrame(frame: Record<string, unknown>): void
  onClose(error: unknown, fatal: boolean): void
}

/**
 * A live view of some users' presence. Iterate it (`for await`) or listen (`on('update', …)`);
 * both see the same ordered events. It reconnects by itself and resumes from the last sequence
 * number it saw; when the server cannot resume, a fresh snapshot arrives with `reset: true`.
 */
export class Subscription
  extends Emitter<SubscriptionEvents>
  implements AsyncIterable<PresenceEvent>
{
  readonly #transport: Transport
  readonly #options: SubscribeOptions
  readonly #ids: Set<string>
  readonly #iterators = new Set<Queue>()
  #connection: Connection | undefined
  #seq: number | undefined
  #attempt = 0
  #closed = false
  #timer: ReturnType<typeof setTimeout> | undefined
  #resolveReady!: () => void
  #rejectReady!: (error: unknown) => void
  /** Resolves once the first snapshot has arrived. */
  readonly ready: Promise<void>

  constructor(transport: Transport, ids: readonly string[], options: SubscribeOptions) {
    super()
    this.#transport = transport
    this.#options = options
    this.#ids = new Set(ids)
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve
      this.#rejectReady = reject
    })
    this.ready.catch(() => {})
    this.#connect()
  }

  /** The ids watched now. */
  get ids(): ReadonlySet<string> {
    return this.#ids
  }

  /** The last sequence number received (what a resume starts after). */
  get seq(): number | undefined {
    return this.#seq
  }

  /** Watches more users; their current presence arrives as a snapshot. */
  add(ids: Iterable<string>): void {
    const added = [...ids].filter((id) => !this.#ids.has(id))
    for (const id of added) this.#ids.add(id)
    if (added.length > 0) this.#control('subscribe', added)
  }

  /** Stops watching users. */
  remove(ids: Iterable<string>): void {
    const removed = [...ids].filter((id) => this.#ids.delete(id))
    if (removed.length > 0) this.#control('unsubscribe', removed)
  }

  /** Ends the subscription; iterators finish. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#connection?.close()
    this.#connection = undefined
    this.#rejectReady(new PresencedError('Subscription closed', { status: 0, protocol: 'native' }))
    for (const queue of this.#iterators) queue.end()
    this.emit('close', undefined)
  }

  [Symbol.asyncIterator](): AsyncIterator<PresenceEvent> {
    const queue = new Queue(() => this.#iterators.delete(queue))
    if (this.#closed) queue.end()
    else this.#iterators.add(queue)
    return queue
  }

  #control(type: 'subscribe' | 'unsubscribe', ids: string[]): void {
    if (this.#kind() === 'websocket') {
      this.#connection?.send({ type, userIds: ids.map((id) => BigInt(id)) })
    } else {
      // SSE is one-way: reopen the stream on the new set, resuming where it was
      this.#connection?.close()
      this.#connection = undefined
      this.#connect()
    }
  }

  #kind(): 'websocket' | 'sse' {
    const forced = this.#options.transport
    if (forced === 'websocket' || forced === 'sse') return forced
    return this.#webSocket() ? 'websocket' : 'sse'
  }

  #webSocket(): WebSocketLike | undefined {
    return (
      this.#options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketLike }).WebSocket ??
      undefined
    )
  }

  #connect(): void {
    if (this.#closed) return
    const handlers: ConnectionHandlers = {
      onOpen: () => {
        this.emit('open', { transport: this.#kind() })
      },
      onFrame: (frame) => this.#onFrame(frame),
      onClose: (error, fatal) => {
        if (this.#connection !== connection) return
        this.#connection = undefined
        if (fatal) return this.#fail(error)
        this.#reconnect(error)
      },
    }
    const ids = [...this.#ids]
    const connection =
      this.#kind() === 'websocket'
        ? openWebSocket(this.#transport, this.#webSocket(), ids, this.#seq, handlers)
        : openSse(this.#transport, ids, this.#seq, handlers)
    this.#connection = connection
  }

  #reconnect(error: unknown): void {
    if (this.#closed) return
    const options = this.#options.reconnect
    if (options === false) return this.#fail(error)
    const min = options?.minDelayMs ?? 500
    const max = options?.maxDelayMs ?? 15_000
    this.#attempt++
    const base = Math.min(max, min * 2 ** (this.#attempt - 1))
    const delayMs = Math.round(base * (0.8 + 0.4 * Math.random()))
    this.emit('reconnecting', { attempt: this.#attempt, delayMs, error })
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#connect()
    }, delayMs)
  }

  #fail(error: unknown): void {
    const failure =
      error instanceof PresencedError
        ? error
        : new PresencedError(String((error as Error)?.message ?? error), {
            status: 0,
            protocol: 'native',
            cause: error,
          })
    this.#rejectReady(failure)
    if (this.listenerCount('error') > 0) this.emit('error', failure)
    for (const queue of this.#iterators) queue.fail(failure)
    this.#iterators.clear()
    this.close()
  }

  #onFrame(frame: Record<string, unknown>): void {
    const event = decodeEvent(frame)
    if (event === undefined) {
      if (frame.type === 'error') {
        const error = nativeError(frame)
        // an error about one frame (say a bad id in add()) is reported; the stream goes on
        if (this.listenerCount('error') > 0) this.emit('error', error)
      }
      return
    }
    this.#attempt = 0
    if (event.seq > (this.#seq ?? -1) || event.type === 'snapshot') this.#seq = event.seq
    if (event.type === 'snapshot') this.#resolveReady()
    this.emit(event.type, event as never)
    this.emit('event', event)
    for (const queue of this.#iterators) queue.push(event)
  }
}

export function subscribe(
  transport: Transport,
  ids: readonly string[],
  options: SubscribeOptions,
): Subscription {
  return new Subscription(transport, ids, options)
}

// --- the wire codec: native frames -> typed events ------------------------------------------

export function decodeEvent(frame: Record<string, unknown>): PresenceEvent | undefined {
  const seq = typeof frame.seq === 'number' ? frame.seq : Number(frame.seq ?? 0)
  switch (frame.type) {
    case 'snapshot': {
      const list = Array.isArray(frame.presences) ? frame.presences : []
      return {
        type: 'snapshot',
        seq,
        presences: list.map((p) => presenceOf(p)),
        reset: frame.reset === true,
      }
    }
    case 'online':
    case 'update':
      return { type: frame.type, seq, presence: presenceOf(frame.presence) }
    case 'offline':
      return {
        type: 'offline',
        seq,
        presence: presenceOf(frame.presence),
        reason: typeof frame.reason === 'string' ? frame.reason : 'explicit',
      }
    default:
      return undefined
  }
}

function presenceOf(value: unknown): Presence {
  return presenceFromWire((isObject(value) ? value : {}) as unknown as RobloxUserPresence)
}

function nativeError(frame: Record<string, unknown>): PresencedError {
  const code =
    typeof frame.code === 'string' || typeof frame.code === 'number' ? frame.code : undefined
  const message = typeof frame.message === 'string' ? frame.message : 'Subscription error'
  const status = typeof frame.status === 'number' ? frame.status : 0
  return new PresencedError(message, { status, code, protocol: 'native', body: frame })
}

function parseFrame(text: string): Record<string, unknown> | undefined {
  try {
    const value = parseJsonLossless(text)
    return isObject(value) ? value : undefined
  } catch {
    return undefined
  }
}

function toWsUrl(baseUrl: string): string {
  return baseUrl.replace(/^http/i, 'ws')
}

// --- transports ------------------------------------------------------------------------------

function openWebSocket(
  transport: Transport,
  WebSocketCtor: WebSocketLike | undefined,
  ids: string[],
  since: number | undefined,
  handlers: ConnectionHandlers,
): Connection {
  if (!WebSocketCtor)
    throw new TypeError('No WebSocket available: pass createClient({ WebSocket })')
  const socket = new WebSocketCtor(toWsUrl(transport.baseUrl) + NATIVE_WS_PATH, undefined, {
    headers: transport.authHeaders(),
  })
  let done = false
  const finish = (error: unknown, fatal: boolean) => {
    if (done) return
    done = true
    handlers.onClose(error, fatal)
  }
  socket.onopen = () => {
    handlers.onOpen()
    const hello: Record<string, unknown> = {
      type: 'subscribe',
      userIds: ids.map((id) => BigInt(id)),
    }
    if (since !== undefined) hello.since = since
    socket.send(stringify(hello))
  }
  socket.onmessage = (event) => {
    const frame =
      typeof event.data === 'string' ? parseFrame(event.data) : parseFrame(String(event.data))
    if (frame !== undefined) handlers.onFrame(frame)
  }
  socket.onerror = (event) => finish((event as { error?: unknown })?.error ?? event, false)
  socket.onclose = (event) => {
    // 4401/4403: credentials refused; 1008 policy violation: do not hammer the server
    const fatal = event.code === 4401 || event.code === 4403 || event.code === 1008
    finish(
      new PresencedError(event.reason || `WebSocket closed (${event.code})`, {
        status: fatal ? (event.code === 4403 ? 403 : 401) : 0,
        code: event.code,
        protocol: 'native',
      }),
      fatal,
    )
  }
  return {
    send: (frame) => {
      if (socket.readyState === 1) socket.send(stringify(frame))
    },
    close: () => {
      done = true
      socket.close(1000)
    },
  }
}

function openSse(
  transport: Transport,
  ids: string[],
  since: number | undefined,
  handlers: ConnectionHandlers,
): Connection {
  const controller = new AbortController()
  const query = new URLSearchParams({ userIds: ids.join(',') })
  if (since !== undefined) query.set('since', String(since))
  const url = `${transport.baseUrl}${NATIVE_SSE_PATH}?${query}`
  void (async () => {
    const response = await transport.fetch(url, {
      headers: { accept: 'text/event-stream', ...transport.authHeaders() },
      signal: controller.signal,
    })
    if (!response.ok || response.body === null) {
      const text = await response.text().catch(() => '')
      const body = parseFrame(text)
      const inner = isObject(body?.error) ? body.error : body
      const error = new PresencedError(
        typeof inner?.message === 'string' ? inner.message : `HTTP ${response.status}`,
        {
          status: response.status,
          code: typeof inner?.code === 'string' ? inner.code : undefined,
          protocol: 'native',
          body,
        },
      )
      const fatal = response.status >= 400 && response.status < 500 && response.status !== 429
      return handlers.onClose(error, fatal)
    }
    handlers.onOpen()
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += value
      let end: number
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + (buffer[end] === '\r' ? 4 : 2))
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
    if (!controller.signal.aborted) handlers.onClose(error, false)
  })
  return { send: () => {}, close: () => controller.abort() }
}

function stringify(frame: Record<string, unknown>): string {
  return JSON.stringify(frame, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
}

/** A pull queue behind one async iterator. */
class Queue implements AsyncIterator<PresenceEvent> {
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
