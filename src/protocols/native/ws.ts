import type { ErrorCode } from '../../core/errors.js'
import type { FastifyBaseLogger } from 'fastify'
import type { Duplex } from 'node:stream'
import type { RawData, WebSocket } from 'ws'
import type { UserId } from '../../core/user-id.js'
import type { Fanout, ResumeResult } from '../../service/realtime.js'
import type { Sink, Stream } from '../../service/realtime.js'
import type { PresenceService } from '../../service/presence-service.js'
import { ConnectionPresence } from './connection-presence.js'
import { errorFrame } from './errors.js'
import { isFrameError, parseClientFrame } from './frames.js'
import { limitMessages, type RealtimeLimits } from './limits.js'
import { TokenBucket } from './token-bucket.js'

/** What both transports share. */
export interface RealtimeDeps {
  fanout: Fanout
  service: PresenceService
  log: FastifyBaseLogger
  /** Bytes a connection may have buffered and not yet taken before it is cut off. */
  queueBytes: number
  /** Ids per stream (and per frame). */
  maxIds: number
  limits: RealtimeLimits
  /** Ping (WebSocket) / comment (SSE) interval; also how often connection presence is refreshed. */
  keepaliveMs: number
}

export const CLOSE = {
  goingAway: 1001,
  policy: 1008,
  slowConsumer: 4008,
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

/** Serves one authenticated WebSocket connection (docs/reference/native.md). */
export function serveWebSocket(
  socket: WebSocket,
  userId: UserId,
  tokenExpiresAt: number | undefined,
  deps: RealtimeDeps,
): void {
  const { fanout, log } = deps
  socket.once('close', deps.service.census.connectionOpened('websocket'))
  const presence = new ConnectionPresence(deps.service, userId)
  let open = true
  let alive = true
  let fresh = true
  let strikes: number[] = []
  let throttled: number[] = []
  const { subscribeRate } = deps.limits
  const budget = new TokenBucket(
    subscribeRate,
    Math.max(subscribeRate * BURST_SECONDS, deps.maxIds),
  )

  const close = (code: number, reason: string): void => {
    if (!open) return
    open = false
    fanout.detach(stream, sink)
    socket.close(code, reason)
    // a peer that does not read never completes the closing handshake
    setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref()
  }

  // Frames emitted together (one batch of changes) leave in one write: the TCP socket is corked
  // on the first and uncorked once the batch is done. ws exposes no cork of its own.
  const tcp = (socket as unknown as { _socket?: Duplex })._socket
  let corked = false
  const uncork = (): void => {
    corked = false
    tcp?.uncork()
  }
  const sink: Sink = {
    send(frame) {
      if (!open) return
      if (socket.bufferedAmount + frame.length > deps.queueBytes) {
        log.info({ stream: stream.id, buffered: socket.bufferedAmount }, 'slow consumer cut off')
        return close(CLOSE.slowConsumer, 'slow consumer')
      }
      if (tcp && !corked) {
        corked = true
        tcp.cork()
        process.nextTick(uncork)
      }
      socket.send(frame)
    },
    replaced() {
      close(CLOSE.replaced, 'resumed elsewhere')
    },
  }
  const opened = fanout.open(userId, sink)
  if (!opened) {
    // another connection of the user got the last place after this one's upgrade was admitted
    socket.send(errorFrame('STREAM_LIMIT', limitMessages.streams(deps.limits.streamsPerUser)))
    socket.close(CLOSE.policy, 'too many streams')
    setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref()
    return
  }
  let stream: Stream = opened

  const reply = (frame: string): void => {
    if (open) sink.send(frame)
  }

  const strike = (code: ErrorCode, message: string): void => {
    const now = Date.now()
    strikes = strikes.filter((at) => now - at < STRIKE_WINDOW_MS)
    strikes.push(now)
    if (strikes.length > STRIKES) return close(CLOSE.policy, 'too many malformed frames')
    reply(errorFrame(code, message))
  }

  /** Subscribe work beyond the connection's budget: refused whole, with when to try again. */
  const throttle = (ids: number): void => {
    const now = Date.now()
    throttled = throttled.filter((at) => now - at < STRIKE_WINDOW_MS)
    throttled.push(now)
    if (throttled.length > STRIKES) return close(CLOSE.policy, 'subscribing too fast')
    reply(
      errorFrame('RATE_LIMITED', limitMessages.rate(subscribeRate), {
        retryAfterMs: budget.waitMs(ids),
      }),
    )
  }

  const onMessage = (data: RawData, isBinary: boolean): void => {
    if (!open) return
    if (isBinary) return strike('FRAME_INVALID', 'Frames are JSON text, not binary.')
    const frame = parseClientFrame(data.toString(), deps.maxIds)
    if (isFrameError(frame)) return strike(frame.error.code, frame.error.message)
    switch (frame.type) {
      case 'subscribe': {
        if (fanout.watchCount(stream) + frame.ids.length > deps.maxIds) {
          return strike('TOO_MANY_IDS', `A stream watches at most ${deps.maxIds} users.`)
        }
        if (!budget.take(frame.ids.length)) return throttle(frame.ids.length)
        fresh = false
        // frames carry each user's history position from now on (resume on any node)
        if (frame.positions) stream.positions = true
        fanout.subscribe(stream, frame.ids).then(
          (result) => {
            if (result === 'watch_limit') {
              reply(errorFrame('WATCH_LIMIT', limitMessages.watches(deps.limits.watchesPerUser)))
            }
          },
          (error: unknown) => {
            log.warn({ err: error }, 'real-time subscribe failed')
            reply(
              errorFrame('UNAVAILABLE', 'The presence store is unavailable. Try again shortly.'),
            )
          },
        )
        return
      }
      case 'unsubscribe':
        if (!budget.take(frame.ids.length)) return throttle(frame.ids.length)
        void fanout.unsubscribe(stream, frame.ids)
        return
      case 'heartbeat':
        presence.set(frame.deviceType, frame.activity).catch((error: unknown) => {
          log.warn({ err: error }, 'real-time heartbeat failed')
          reply(errorFrame('UNAVAILABLE', 'The presence store is unavailable. Try again shortly.'))
        })
        return
      case 'resume': {
        if (!fresh || stream.seq > 0) {
          return strike('RESUME_LATE', 'resume must be the first frame of a connection.')
        }
        fresh = false
        const result: ResumeResult =
          frame.token === undefined
            ? { ok: false, reason: 'unknown' }
            : fanout.resume(userId, frame.token, frame.since, sink)
        if (result.ok) {
          fanout.close(stream)
          stream = result.stream
          return
        }
        if (!frame.positions) return reply(JSON.stringify({ type: 'reset', reason: result.reason }))
        // not held here (another node's, or too old): from the users' histories, on any node
        const positions = frame.positions
        if (fanout.watchCount(stream) + positions.length > deps.maxIds) {
          return strike('TOO_MANY_IDS', `A stream watches at most ${deps.maxIds} users.`)
        }
        if (!budget.take(positions.length)) return throttle(positions.length)
        fanout.recover(stream, positions).then(
          (recovered) => {
            if (recovered === 'reset') reply(JSON.stringify({ type: 'reset', reason: 'too_old' }))
            if (recovered === 'watch_limit') {
              reply(errorFrame('WATCH_LIMIT', limitMessages.watches(deps.limits.watchesPerUser)))
            }
          },
          (error: unknown) => {
            log.warn({ err: error }, 'real-time recover failed')
            reply(JSON.stringify({ type: 'reset', reason: 'unavailable' }))
          },
        )
        return
      }
    }
  }

  socket.on('message', onMessage)
  socket.on('pong', () => {
    alive = true
  })
  const keepalive = setInterval(() => {
    if (!alive) {
      log.info({ stream: stream.id }, 'real-time peer stopped answering pings')
      void presence.end('timeout').catch(() => {})
      socket.terminate()
      return
    }
    alive = false
    socket.ping()
    presence.refresh().catch(() => {})
  }, deps.keepaliveMs)
  keepalive.unref()

  // a connection lives no longer than the token that opened it
  let expiry: NodeJS.Timeout | undefined
  const armExpiry = (): void => {
    if (tokenExpiresAt === undefined) return
    const left = tokenExpiresAt - Date.now()
    if (left <= 0) return close(CLOSE.tokenExpired, 'token expired')
    // timers hold at most 2^31-1 ms (~24.8 days); longer tokens re-arm
    expiry = setTimeout(armExpiry, Math.min(left, 2 ** 31 - 1))
    expiry.unref()
  }
  armExpiry()

  socket.on('close', () => {
    open = false
    clearTimeout(expiry)
    clearInterval(keepalive)
    fanout.detach(stream, sink)
    presence.end('explicit').catch((error: unknown) => {
      log.warn({ err: error }, 'ending a real-time session failed')
    })
  })
}
