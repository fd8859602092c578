import { PresenceError, fail } from '../../core/errors.js'
import type { FastifyBaseLogger } from 'fastify'
import type { Duplex } from 'node:stream'
import type { ServerResponse } from 'node:http'
import type { RawData, WebSocket } from 'ws'
import type { UserCaller } from '../../core/caller.js'
import type { UserId } from '../../core/user-id.js'
import type { Admission, Fanout, ResumeResult } from '../../service/realtime.js'
import type { Sink, Stream } from '../../service/realtime.js'
import type { PresenceService } from '../../service/presence-service.js'
import type { StreamAccess, StreamEnd, StreamHolder } from '../../service/stream-access.js'
import { ConnectionPresence } from './connection-presence.js'
import { errorFrame, failureFrame, recoveryFrame, type AnsweredFrame } from './errors.js'
import { isFrameError, parseClientFrame, type FrameError } from './frames.js'
import { limitMessages, tooManyIds, type RealtimeLimits } from './limits.js'
import type { KeepaliveWheel, Kept } from './keepalive.js'
import { TokenBucket } from './token-bucket.js'
import { tailBytes, textFrameHead } from './text-frame.js'
import { warnFailure } from '../shared/warn-failure.js'

/** What both transports share. */
export interface RealtimeDeps {
  fanout: Fanout
  service: PresenceService
  log: FastifyBaseLogger
  /** Bytes a connection may have buffered and not yet taken before it is cut off. */
  queueBytes: number
  /** Ids per stream (and per frame). */
  maxIds: number
  /** PRESENCED_REALTIME_RESUME: how long a stream ended by a shutdown stays resumable elsewhere. */
  resumeWindowMs: number
  limits: RealtimeLimits
  /**
   * Pings (WebSocket) and comments (SSE) every `periodMs`, which is also how often connection
   * presence is refreshed: one timer for all connections.
   */
  wheel: KeepaliveWheel
  /**
   * The app is closing (the plugin's preClose ran): no connection opens any more, since the
   * shutdown that ends them is past. A request authenticated meanwhile is refused 503 (`shuttingDown`).
   */
  closing?: boolean
}

export const CLOSE = {
  goingAway: 1001,
  policy: 1008,
  /** Handling a frame failed unexpectedly (a defect): reconnect and resume. */
  internal: 1011,
  slowConsumer: 4008,
  /** The token that opened the connection expired, or was revoked. */
  tokenExpired: 4001,
  replaced: 4009,
} as const

/**
 * Malformed frames, or frames refused for coming too fast, tolerated per window before the
 * connection counts as abusive.
 */
const STRIKES = 20
const STRIKE_WINDOW_MS = 10_000
/** The subscribe budget holds this many seconds of its rate (at least one full frame). */
const BURST_SECONDS = 2
/** How long a cut-off peer gets to take its close frame before the socket is destroyed. */
const CLOSE_GRACE_MS = 5_000

/** The socket's connection, found by the listeners shared by every socket. */
const kConnection = Symbol('presenced.connection')
type Owned = WebSocket & {
  [kConnection]?: Connection
  _socket?: Duplex & { _httpMessage?: ServerResponse | null }
  /** EventEmitter's listeners, by event (see compactListeners). */
  _events?: Record<string | symbol, unknown>
  /** ws's frame parser: the chunks read and not parsed yet (see onMessage). */
  _receiver?: { _buffers?: Buffer[] }
}

/** The prototype of a connection's listener table: an object with none (compactListeners). */
const LISTENERS: object = Object.create(null)

/**
 * EventEmitter keeps a socket's listeners in an object without a prototype, which V8 holds as a
 * dictionary: 280 bytes of every connection's heap for its four listeners. The same listeners in
 * an object whose prototype is an empty object without one read the same (no key is inherited),
 * and are a fast object of 56 bytes: the table is swapped once the connection's listeners are
 * all on (a listener added or removed later works on the new table as on the old).
 */
function compactListeners(socket: Owned): void {
  const events = socket._events
  if (events === undefined || Object.getPrototypeOf(events) !== null) return
  const table = Object.create(LISTENERS) as Record<string | symbol, unknown>
  for (const key of Reflect.ownKeys(events)) table[key] = events[key]
  socket._events = table
}

const noop = (): void => {}
/** WebSocket.OPEN (the type import brings no value). */
const OPEN = 1

/*
 * ws calls every listener below from its socket's own handlers (data, close, error): a throw in
 * one would be an uncaught exception, the end of the process and of every connection on it. So
 * each catches everything: logged (the error only, never a frame or a token); an open
 * connection is told INTERNAL and closed with 1011 (`failed`), one already closed has nothing
 * left to tell.
 */
function onMessage(this: Owned, data: RawData, isBinary: boolean): void {
  const connection = this[kConnection]
  if (connection === undefined) return
  try {
    connection.message(data, isBinary)
  } catch (error) {
    connection.failed(error)
  }
  // ws's parser keeps the chunks it reads in an array, shifted as parsed: once a frame has come,
  // an empty one with room for 17 (152 bytes) for the life of the connection, which most
  // connections spend without sending another; a new empty one has none (ws reads it by property).
  // Private to ws: a version without it is left as it is
  const receiver = this._receiver
  if (Array.isArray(receiver?._buffers) && receiver._buffers.length === 0) receiver._buffers = []
}
function onPong(this: Owned): void {
  const connection = this[kConnection]
  if (connection === undefined) return
  try {
    connection.ponged()
  } catch (error) {
    connection.failed(error, 'real-time pong handling failed')
  }
}
function onClose(this: Owned): void {
  const connection = this[kConnection]
  if (connection === undefined) return
  try {
    connection.closed()
  } catch (error) {
    logged(connection.deps.log, error, 'real-time close handling failed')
  }
}
function onError(this: Owned, error: Error): void {
  const connection = this[kConnection]
  try {
    connection?.deps.log.warn({ err: error }, 'real-time socket error')
  } catch (failure) {
    if (connection) logged(connection.deps.log, failure, 'real-time socket error handling failed')
  }
  this.terminate()
}

/** Logs a listener's failure as an error; a logger that throws too is given up on. */
function logged(log: FastifyBaseLogger, error: unknown, message: string, stream?: string): void {
  try {
    log.error(stream === undefined ? { err: error } : { err: error, stream }, message)
  } catch {
    // nothing left to tell it to
  }
}

/**
 * Frames emitted together (one batch of changes) leave each socket in one write: a socket is
 * corked on its first frame, and every corked socket is uncorked once, after the batch. ws
 * exposes no cork of its own.
 */
let corked: Connection[] = []
function uncorkAll(): void {
  const batch = corked
  corked = []
  for (const connection of batch) connection.uncork()
}

/**
 * Serves one authenticated WebSocket connection (docs/reference/native.md). The connection's
 * state is one object; its socket's listeners and its keepalive are shared by all connections.
 */
export function serveWebSocket(
  socket: WebSocket,
  caller: UserCaller,
  deps: RealtimeDeps,
  address: string,
  /** The place the upgrade was admitted to (Fanout.admit), for the stream to open in. */
  admission?: Admission,
): void {
  const owned = socket as Owned
  // what the upgrade left on the socket (the upgrade's request, reply and logger, through
  // @fastify/websocket's error listener and the response it assigned) is let go: a
  // connection holds only its own state
  owned.removeAllListeners('error')
  owned.on('error', onError)
  const tcp = owned._socket
  tcp?._httpMessage?.detachSocket(tcp as unknown as import('node:net').Socket)
  if (tcp) forgetIdleTimer(tcp)
  if (deps.closing) {
    // upgraded after the shutdown that closes every connection (its checks were let through just
    // before): nothing would close it, and the app's close would wait on it
    if (admission) deps.fanout.release(admission)
    owned.close(CLOSE.goingAway, 'server shutting down')
    setTimeout(() => owned.terminate(), CLOSE_GRACE_MS).unref()
    return
  }
  new Connection(owned, caller, deps, address).start(admission)
}

/**
 * A handshake `ws` cannot complete (no or a malformed Sec-WebSocket-Key, an unknown
 * Sec-WebSocket-Version or Upgrade, an unparsable Sec-WebSocket-Protocol or -Extensions), after
 * the request passed authentication: a 400 in the native error shape. Without this listener `ws`
 * answers a text/html body of its own.
 */
export function refuseHandshake(error: Error, socket: Duplex): void {
  if (!socket.writable) return void socket.destroy()
  // ws refuses a method other than GET with 405 (its own page, without Allow): the same answer
  // as the route gives a HEAD asking for the upgrade (headUpgrade)
  const method = error.message === 'Invalid HTTP method'
  const refusal = method
    ? headUpgrade()
    : { code: 'INVALID_REQUEST', message: `WebSocket handshake refused: ${error.message}.` }
  const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } })
  const extra = method
    ? 'Allow: GET\r\n'
    : /Sec-WebSocket-Version/.test(error.message)
      ? 'Sec-WebSocket-Version: 13, 8\r\n'
      : ''
  socket.once('finish', () => socket.destroy())
  socket.end(
    `HTTP/1.1 ${method ? '405 Method Not Allowed' : '400 Bad Request'}\r\nConnection: close\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`,
  )
}

/**
 * The refusal of a connection (WebSocket upgrade or SSE stream) whose checks ended after the app
 * began to close: the shutdown that ends every connection is past, so it would be held open.
 */
export function shuttingDown(): PresenceError {
  return fail('UNAVAILABLE', 'The server is shutting down: reconnect shortly.', { retryAfter: 1 })
}

/** The refusal of an upgrade asked of a route that is not the WebSocket route (an SSE stream). */
export function notUpgradable(): PresenceError {
  return fail(
    'INVALID_REQUEST',
    'Only GET /api/v1/realtime upgrades to a WebSocket: send this request without an Upgrade header.',
  )
}

/** The refusal of an upgrade asked for by a method other than GET (a HEAD): 405, Allow: GET. */
export function headUpgrade(): PresenceError {
  return fail(
    'METHOD_NOT_ALLOWED',
    'A WebSocket upgrade is a GET request: this method cannot open one.',
    { allow: 'GET' },
  )
}

/**
 * ws turns the socket's idle timeout (the HTTP server's) off, but net keeps the cleared timer,
 * with a bound callback, and refreshes it on every read and write: dropped here.
 */
function forgetIdleTimer(tcp: Duplex): void {
  const socket = tcp as Duplex & { timeout?: number } & Record<symbol, unknown>
  if (socket.timeout !== undefined && socket.timeout !== 0) return
  for (const key of Object.getOwnPropertySymbols(socket)) {
    if (key.description === 'timeout') socket[key] = null
  }
}

class Connection implements Sink, Kept, StreamHolder {
  readonly socket: Owned
  readonly caller: UserCaller
  /** The client's address at the upgrade (whose budget a caller without a user would spend). */
  readonly address: string
  readonly userId: UserId
  readonly deps: RealtimeDeps
  wheelSlot = -1
  /** Whether the peer answered the last ping. */
  alive = true
  #open = true
  /** No frame yet: a resume may still come. */
  #fresh = true
  #corked = false
  #stream: Stream | undefined
  // made when first needed: most connections never strike, throttle or send a heartbeat
  #strikes: number[] | undefined
  #throttled: number[] | undefined
  #budget: TokenBucket | undefined
  #presence: ConnectionPresence | undefined
  /** Whether the token that opened the connection still lets it deliver. */
  #access: StreamAccess | undefined

  constructor(socket: Owned, caller: UserCaller, deps: RealtimeDeps, address: string) {
    this.socket = socket
    this.caller = caller
    this.address = address
    this.userId = caller.userId
    this.deps = deps
  }

  start(admission: Admission | undefined): void {
    const { socket, deps } = this
    socket[kConnection] = this
    deps.service.census.opened('websocket')
    socket.on('close', onClose)
    const opened = deps.fanout.open(this.userId, this, admission)
    if (!opened) {
      // another connection of the user got the last place after this one's upgrade was admitted
      this.#open = false
      // `close` says the close that follows (as the too-fast frame does): a limit to come back to
      socket.send(
        errorFrame('STREAM_LIMIT', limitMessages.streams(deps.limits.streamsPerUser), {
          close: CLOSE.policy,
        }),
      )
      socket.close(CLOSE.policy, 'too many streams')
      setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref()
      return
    }
    this.#stream = opened
    socket.on('message', onMessage)
    socket.on('pong', onPong)
    compactListeners(socket)
    deps.wheel.add(this)
    // a connection lives no longer than the token that opened it (one revoked already ends it
    // here, through accessEnded)
    this.#access = deps.service.streamAccess(this.caller, this)
    this.#access.watchExpiry(2 * deps.wheel.periodMs)
  }

  /** The token that opened the connection expired, or was revoked (a logout, on any node). */
  accessEnded(reason: StreamEnd): void {
    this.#close(CLOSE.tokenExpired, reason)
  }

  // ------------------------------------------------------------------ Sink

  send(frame: string): void {
    if (!this.#open) return
    // past the token's expiry or revocation no frame goes out, even before its timer fires (a
    // loaded loop runs it late): closed with 4001 (accessEnded)
    if (this.#access?.stillAllowed() === false) return
    if (!this.#fits(frame.length)) return
    this.#cork()
    this.socket.send(frame)
  }

  /**
   * A change's frame, written to the socket as its bytes (text-frame.ts): the tail encoded once
   * for every socket sent it. ws's sender is bypassed, which it allows: with no permessage-deflate
   * (plugin.ts) it queues nothing and writes each frame whole, so frames never interleave.
   */
  sendParts(head: string, seq: number, tail: string): void {
    if (!this.#open) return
    if (this.#access?.stillAllowed() === false) return
    const socket = this.socket
    const tcp = socket._socket
    // closing: ws sends nothing after its close frame, nor does this
    if (socket.readyState !== OPEN) return
    // no socket to write to yet: the whole frame through send, with its queue check
    if (tcp === undefined) return this.send(head + seq + tail)
    const bytes = tailBytes(tail)
    const start = textFrameHead(head, seq, bytes.length)
    if (!this.#fits(start.length + bytes.length)) return
    this.#cork()
    tcp.write(start)
    tcp.write(bytes)
  }

  /** Whether `bytes` more fit the socket's queue; if not, the slow consumer is cut off. */
  #fits(bytes: number): boolean {
    const buffered = this.socket.bufferedAmount
    if (buffered + bytes <= this.deps.queueBytes) return true
    this.deps.log.info({ stream: this.#stream?.id, buffered }, 'slow consumer cut off')
    this.#close(CLOSE.slowConsumer, 'slow consumer')
    return false
  }

  /** Frames of this batch leave in one write (see uncorkAll). */
  #cork(): void {
    if (this.#corked) return
    const tcp = this.socket._socket
    if (!tcp) return
    this.#corked = true
    tcp.cork()
    if (corked.push(this) === 1) process.nextTick(uncorkAll)
  }

  shutdown(): void {
    this.socket.close(CLOSE.goingAway, 'server shutting down')
  }

  replaced(): void {
    this.#close(CLOSE.replaced, 'resumed elsewhere')
  }

  uncork(): void {
    this.#corked = false
    this.socket._socket?.uncork()
  }

  // ------------------------------------------------------------------ lifecycle

  keepalive(): void {
    if (!this.alive) {
      this.deps.log.info({ stream: this.#stream?.id }, 'real-time peer stopped answering pings')
      void this.#presence?.end('timeout').catch(noop)
      this.socket.terminate()
      return
    }
    // a timer only once the token has less than two keepalive periods left; a token past its
    // expiry closes the connection here, before its ping
    this.#access?.watchExpiry(2 * this.deps.wheel.periodMs)
    if (!this.#open) return
    this.alive = false
    // a full budget is a new one: most connections subscribe once, and need none after
    if (this.#budget?.full) this.#budget = undefined
    this.socket.ping()
    this.#presence?.refresh().catch(noop)
  }

  /**
   * Ends the connection from this side: nothing is sent or taken from now on, and the presence
   * its heartbeat frames set ends now (a frame still waiting to be written is dropped, and the
   * keepalive refreshes it no more), not at the socket's close event, which a peer that does not
   * complete the closing handshake holds off for CLOSE_GRACE_MS: a revoked or expired token's
   * session must not outlive it.
   */
  #close(code: number, reason: string): void {
    if (!this.#open) return
    this.#open = false
    this.#access?.release()
    const { deps } = this
    if (this.#stream) deps.fanout.detach(this.#stream, this)
    deps.wheel.remove(this)
    this.#endPresence()
    const socket = this.socket
    socket.close(code, reason)
    // a peer that does not read never completes the closing handshake
    setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref()
  }

  /** Ends the connection's presence (once: ConnectionPresence.end is idempotent). */
  #endPresence(): void {
    this.#presence?.end('explicit').catch((error: unknown) => {
      warnFailure(this.deps.log, error, 'ending a real-time session failed')
    })
  }

  keepaliveFailed(error: unknown): void {
    this.failed(error, 'real-time keepalive failed')
  }

  /** The peer answered a ping. */
  ponged(): void {
    this.alive = true
  }

  /** The socket closed (whoever closed it). */
  closed(): void {
    this.#open = false
    this.socket[kConnection] = undefined
    this.#access?.release()
    const { deps } = this
    deps.service.census.closed('websocket')
    deps.wheel.remove(this)
    if (this.#stream) deps.fanout.detach(this.#stream, this)
    this.#endPresence()
  }

  // ------------------------------------------------------------------ client frames

  #reply(frame: string): void {
    if (this.#open) this.send(frame)
  }

  /** Answers a frame refused for what it is (`refusal`): more than STRIKES in a window close. */
  #strike(refusal: FrameError['error'], answered?: AnsweredFrame): void {
    const now = Date.now()
    const strikes = (this.#strikes = (this.#strikes ?? []).filter(
      (at) => now - at < STRIKE_WINDOW_MS,
    ))
    strikes.push(now)
    if (strikes.length > STRIKES) return this.#close(CLOSE.policy, 'too many malformed frames')
    const { code, message, maxIds } = refusal
    this.#reply(
      errorFrame(code, message, { ...(answered && { for: answered }), ...(maxIds && { maxIds }) }),
    )
  }

  #budgetOf(): TokenBucket {
    const { subscribeRate } = this.deps.limits
    return (this.#budget ??= new TokenBucket(
      subscribeRate,
      Math.max(subscribeRate * BURST_SECONDS, this.deps.maxIds),
    ))
  }

  /** Subscribe work beyond the connection's budget: refused whole, with when to try again. */
  #throttle(ids: number, answered: AnsweredFrame): void {
    const now = Date.now()
    const throttled = (this.#throttled = (this.#throttled ?? []).filter(
      (at) => now - at < STRIKE_WINDOW_MS,
    ))
    throttled.push(now)
    if (throttled.length > STRIKES) {
      // said first in the native error format, with when to come back: when this connection's
      // budget would be full again, as a new connection's is (reconnecting sooner would gain
      // the client what waiting would not). The frame it refuses is left unanswered
      this.#reply(
        errorFrame('RATE_LIMITED', limitMessages.tooFast(STRIKES, STRIKE_WINDOW_MS / 1000), {
          retryAfterMs: this.#budgetOf().waitMs(Number.POSITIVE_INFINITY),
          close: CLOSE.policy,
        }),
      )
      return this.#close(CLOSE.policy, 'subscribing too fast')
    }
    this.#reply(
      errorFrame('RATE_LIMITED', limitMessages.rate(this.deps.limits.subscribeRate), {
        retryAfterMs: this.#budgetOf().waitMs(ids),
        for: answered,
      }),
    )
  }

  /**
   * Handling a frame threw (a defect: every expected failure is answered in band): logged with
   * the error only (never the frame, which may carry a token), told to the client as INTERNAL,
   * and the connection closed with 1011, since the throw may have left its state half changed.
   * The client reconnects and resumes.
   */
  failed(error: unknown, message = 'real-time frame handling failed'): void {
    logged(this.deps.log, error, message, this.#stream?.id)
    const socket = this.socket
    try {
      this.#reply(
        errorFrame('INTERNAL', 'An unexpected error occurred; reconnect and resume.', {
          close: CLOSE.internal,
        }),
      )
      this.#close(CLOSE.internal, 'internal error')
    } catch (again) {
      logged(this.deps.log, again, 'real-time connection could not be closed cleanly')
    }
    // a close that threw (this one, or the one that failed) left the socket open: it goes, and
    // its close listener frees what it can
    if (!this.#open && socket.readyState === socket.OPEN) socket.terminate()
  }

  /**
   * A heartbeat frame's write failed: refused by the heartbeat budget, the store's error
   * (UNAVAILABLE), or another failure the service met, told as itself (failureFrame).
   */
  #heartbeatFailed(error: unknown): void {
    // the token expired before the write was made (the expiry timer not yet run): the
    // connection ends as it would at the timer, nothing written
    if (error instanceof PresenceError && error.details.tokenRefused === 'expired') {
      return this.accessEnded('token expired')
    }
    if (error instanceof PresenceError && error.code === 'RATE_LIMITED') {
      return this.#reply(
        errorFrame('RATE_LIMITED', limitMessages.heartbeats(), {
          retryAfterMs: (error.retryAfter ?? 1) * 1000,
          for: 'heartbeat',
        }),
      )
    }
    warnFailure(this.deps.log, error, 'real-time heartbeat failed')
    this.#reply(failureFrame(error, 'heartbeat'))
  }

  message(data: RawData, isBinary: boolean): void {
    const stream = this.#stream
    if (!this.#open || !stream) return
    // past the token's expiry (or its revocation) no frame is taken either, even before the
    // expiry timer runs (a loaded loop reads frames that came meanwhile before its timers): a
    // heartbeat would write the user's presence with a token that no longer holds
    if (this.#access?.stillAllowed() === false) return
    const { fanout, log, maxIds, limits } = this.deps
    if (isBinary) {
      return this.#strike({ code: 'FRAME_INVALID', message: 'Frames are JSON text, not binary.' })
    }
    const frame = parseClientFrame(data.toString(), maxIds)
    if (isFrameError(frame)) {
      return this.#strike(frame.error, frame.answered)
    }
    switch (frame.type) {
      case 'subscribe': {
        if (!this.#budgetOf().take(frame.ids.length)) {
          return this.#throttle(frame.ids.length, 'subscribe')
        }
        this.#fresh = false
        // frames carry each user's history position from now on (resume on any node)
        if (frame.positions) stream.positions = true
        // the stream's bound is counted when the subscribe runs, after those queued before it
        fanout.subscribe(stream, frame.ids, maxIds).then(
          (result) => {
            if (result === 'too_many_ids') {
              this.#strike(tooManyIds(maxIds, 'stream'), 'subscribe')
            } else if (result === 'watch_limit') {
              this.#reply(
                errorFrame('WATCH_LIMIT', limitMessages.watches(limits.watchesPerUser), {
                  for: 'subscribe',
                }),
              )
            }
          },
          (error: unknown) => {
            warnFailure(log, error, 'real-time subscribe failed')
            this.#reply(failureFrame(error, 'subscribe'))
          },
        )
        return
      }
      case 'unsubscribe':
        if (!this.#budgetOf().take(frame.ids.length)) {
          return this.#throttle(frame.ids.length, 'unsubscribe')
        }
        void fanout.unsubscribe(stream, frame.ids)
        return
      case 'heartbeat':
        ;(this.#presence ??= new ConnectionPresence(
          this.deps.service,
          this.caller,
          this.address,
          (error) => this.#heartbeatFailed(error),
        )).set(frame.deviceType, frame.activity)
        return
      case 'resume': {
        if (!this.#fresh || stream.seq > 0) {
          return this.#strike(
            { code: 'RESUME_LATE', message: 'resume must be the first frame of a connection.' },
            'resume',
          )
        }
        this.#fresh = false
        const result: ResumeResult =
          frame.token === undefined
            ? { ok: false, reason: 'unknown' }
            : fanout.resume(this.userId, frame.token, frame.since, this)
        if (result.ok) {
          fanout.close(stream)
          this.#stream = result.stream
          return
        }
        if (!frame.positions) {
          return this.#reply(JSON.stringify({ type: 'reset', reason: result.reason }))
        }
        // not held here (another node's, or too old): from the users' histories, on any node
        const positions = frame.positions
        if (!fanout.fitsIds(stream, positions.length, maxIds)) {
          return this.#strike(tooManyIds(maxIds, 'stream'), 'resume')
        }
        if (!this.#budgetOf().take(positions.length)) {
          return this.#throttle(positions.length, 'resume')
        }
        // a client that holds positions keeps receiving them
        stream.positions = true
        fanout.recover(stream, positions).then(
          (recovered) => {
            const frame = recoveryFrame(recovered, limits.watchesPerUser)
            if (frame !== undefined) this.#reply(frame)
          },
          (error: unknown) => {
            warnFailure(log, error, 'real-time recover failed')
            this.#reply(recoveryFrame('unavailable', limits.watchesPerUser)!)
          },
        )
        return
      }
    }
  }
}
