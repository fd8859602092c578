import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ErrorCode } from '../../core/errors.js'
import { parseUserId, type UserId } from '../../core/user-id.js'
import type { Admission, Sink, Stream } from '../../service/realtime.js'
import type { StreamAccess, StreamEnd } from '../../service/stream-access.js'
import { userOf } from './auth.js'
import { errorFrame, failureFrame, recoveryFrame, sendNativeError } from './errors.js'
import { parsePositions } from './frames.js'
import type { Kept } from './keepalive.js'
import { limitMessages, tooManyIds } from './limits.js'
import { shuttingDown, type RealtimeDeps } from './ws.js'
import { warnFailure } from '../shared/warn-failure.js'

/**
 * How long a cut-off SSE peer gets before its socket is destroyed (the dashboard's feed streams
 * too): a peer that does not read would otherwise keep the connection, and the data it did not
 * take, until the idle timeout.
 */
export const END_GRACE_MS = 5_000

interface ResumePoint {
  token: string
  since: number
}

/** What one SSE request asks for: from its query (`GET`) or its JSON body (`POST`). */
export interface SseRequest {
  ids: UserId[]
  /** Continue the stream this node holds by token. */
  resume: ResumePoint | undefined
  /** Frames carry each user's history position (`pos`). */
  positions: boolean
  /** The `pos` held per user: continue on any node when `resume` is not held here. */
  held: Array<[UserId, string]> | undefined
}

/** Why a request is refused before its stream starts (400 in the native error shape). */
interface Refusal {
  code: ErrorCode
  message: string
  /** TOO_MANY_IDS: the limit (tooManyIds), told in the body as in the WebSocket error frame. */
  maxIds?: number
}

/** The body of `POST /api/v1/realtime/sse` as its schema (schemas.ts) lets it through. */
export interface SseBody {
  ids: Array<string | number>
  resume?: string
  since?: number
  positions?: boolean | Record<string, string>
}

/**
 * `Last-Event-ID: <token>.<seq>` (what EventSource sends back), else `?resume=&since=`. The
 * header is the browser's: one it cannot have had from us is a stream to reset, as an unknown
 * one is. The query is the caller's own: a malformed one is refused, as in the `POST` form.
 */
function resumePointOf(
  request: FastifyRequest,
  query: Record<string, unknown>,
): ResumePoint | undefined | Refusal {
  const header = request.headers['last-event-id']
  if (typeof header === 'string' && header !== '') {
    const match = /^([A-Za-z0-9_-]{0,64})\.(\d{1,15})$/.exec(header)
    return match ? { token: match[1]!, since: Number(match[2]) } : { token: '', since: -1 }
  }
  const { resume, since } = query
  if (resume === undefined && since === undefined) return undefined
  if (
    resume !== undefined &&
    (typeof resume !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(resume))
  ) {
    return { code: 'INVALID_REQUEST', message: '"resume" must be the resume token of a stream.' }
  }
  if (typeof since !== 'string' || !/^\d{1,15}$/.test(since)) {
    return {
      code: 'INVALID_REQUEST',
      message:
        '"since" (the last sequence number received) must be a non-negative integer, and is required with "resume".',
    }
  }
  // a `since` of no stream named: an unknown one, reset
  return { token: resume ?? '', since: Number(since) }
}

function idsOf(raw: unknown, maxIds: number): UserId[] | Refusal {
  const parts = Array.isArray(raw)
    ? raw.map(String)
    : typeof raw === 'string' && raw.trim() !== ''
      ? raw.split(',')
      : undefined
  if (parts === undefined || parts.length === 0) {
    const message = Array.isArray(raw)
      ? '"ids" must be a non-empty array of user ids.'
      : '"ids" must be a comma-separated list of user ids.'
    return { code: 'IDS_INVALID', message }
  }
  if (parts.length > maxIds) return tooManyIds(maxIds, 'ids')
  const ids: UserId[] = []
  for (const part of parts) {
    const id = parseUserId(part)
    if (!id) {
      return {
        code: 'IDS_INVALID',
        message: `Invalid user id ${JSON.stringify(part).slice(0, 40)}: user ids are positive 64-bit integers.`,
      }
    }
    ids.push(id)
  }
  return [...new Set(ids)]
}

/** `GET /api/v1/realtime/sse?ids=1,2,3[&positions=1]`, resuming by `Last-Event-ID`. */
export function sseQueryRequest(request: FastifyRequest, maxIds: number): SseRequest | Refusal {
  const query = (request.query ?? {}) as Record<string, unknown>
  // `?ids=1&ids=2` arrives as an array: the same list
  const rawIds = Array.isArray(query.ids) ? query.ids.join(',') : query.ids
  const ids = idsOf(rawIds, maxIds)
  if (!Array.isArray(ids)) return ids
  // one value, as `resume`, `since`, `access_token` (and Xbox's `level`): a repeated one is
  // refused rather than read one way (`?positions=1&positions=1` was read as no positions)
  if (Array.isArray(query.positions)) {
    return { code: 'INVALID_REQUEST', message: '"positions" must be given once.' }
  }
  const positions = query.positions === '1' || query.positions === 'true'
  const resume = resumePointOf(request, query)
  if (resume !== undefined && 'code' in resume) return resume
  return { ids, resume, positions, held: undefined }
}

/** `POST /api/v1/realtime/sse` with `{ids, resume?, since?, positions?}` (already schema-checked). */
export function sseBodyRequest(body: SseBody, maxIds: number): SseRequest | Refusal {
  const ids = idsOf(body.ids, maxIds)
  if (!Array.isArray(ids)) return ids
  if (body.resume !== undefined && body.since === undefined) {
    return {
      code: 'INVALID_REQUEST',
      message: '"since" (the last sequence number received) is required with "resume".',
    }
  }
  const resume =
    body.resume === undefined ? undefined : { token: body.resume, since: body.since ?? 0 }
  if (typeof body.positions !== 'object') {
    return { ids, resume, positions: body.positions === true, held: undefined }
  }
  const held = parsePositions(body.positions, maxIds)
  if (!Array.isArray(held)) {
    const { code, ...told } = held.error
    return { code: code === 'FRAME_INVALID' ? 'INVALID_REQUEST' : code, ...told }
  }
  return { ids, resume, positions: true, held }
}

/**
 * The response header that tells a client how many ids one stream may watch (SSE response and
 * WebSocket upgrade alike): a client need not hardcode the limit.
 */
export const MAX_IDS_HEADER = 'x-presenced-max-ids'

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store, no-transform',
  // proxies (nginx) must not buffer the stream
  'x-accel-buffering': 'no',
}

/**
 * `GET /api/v1/realtime/sse?ids=1,2,3` and `POST /api/v1/realtime/sse`: the same stream as the
 * WebSocket, one way. Each event is `id: <token>.<seq>` + `data: <frame>`, so EventSource
 * resumes by itself; a client holding positions resumes on any node (`POST`).
 */
export function serveSse(
  deps: RealtimeDeps,
  live: Set<() => Promise<void>>,
  /** The place the request was admitted to (Fanout.admit), for the stream to open in. */
  admissionOf: (request: FastifyRequest) => Admission | undefined,
) {
  return async (
    request: FastifyRequest,
    reply: FastifyReply,
    asked: SseRequest | Refusal,
  ): Promise<void> => {
    // a refusal tells the limit as every answer does (the routes' onRequest hook)
    if (!('ids' in asked)) {
      const { code, message, maxIds } = asked
      return void sendNativeError(reply, 400, code, message, maxIds === undefined ? {} : { maxIds })
    }
    const caller = userOf(request)
    const userId = caller.userId
    const { ids, resume: resumePoint } = asked
    const { fanout, log } = deps
    // a resumed stream's watches are the user's already: its new ids are checked on subscribe
    if (!resumePoint && !(await fanout.hasRoom(userId, ids.length))) {
      return void sendNativeError(
        reply,
        429,
        'WATCH_LIMIT',
        limitMessages.watches(deps.limits.watchesPerUser),
      )
    }

    // the app began to close while the check above waited: the stream would be held open
    if (deps.closing) throw shuttingDown()
    // a HEAD (Fastify serves it with this GET handler) drops every write, the headers' too until
    // the response ends: a stream would never answer, and hold one of the user's places
    const limits = { [MAX_IDS_HEADER]: String(deps.maxIds) }
    if (request.method === 'HEAD') return void reply.headers({ ...SSE_HEADERS, ...limits }).send()
    reply.hijack()
    const res = reply.raw
    if (res.destroyed) {
      // the client left while its checks waited (Redis): the close this stream would end on is
      // past, so no stream opens, and the place it was admitted to is given back
      const admission = admissionOf(request)
      if (admission) fanout.release(admission)
      return
    }
    res.writeHead(200, { ...SSE_HEADERS, ...limits, connection: 'keep-alive' })
    res.write('retry: 2000\n\n')
    res.once('close', deps.service.census.connectionOpened('sse'))

    let open = true
    /** Shutting down: nothing more is sent, so the checkpoint is what the client last got. */
    let paused = false
    /** Whether the token that opened the stream still lets it deliver. */
    let access: StreamAccess | undefined = undefined
    const end = (): void => {
      if (!open) return
      open = false
      access?.release()
      fanout.detach(stream, sink)
      deps.wheel.remove(keepalive)
      live.delete(shutdown)
      res.end()
      setTimeout(() => res.destroy(), END_GRACE_MS).unref()
    }
    /**
     * The node shuts down: in a fleet, where the stream stands is left under its token for the
     * node the browser reconnects to (`Last-Event-ID`), then the stream ends.
     */
    const shutdown = async (): Promise<void> => {
      if (!open || paused) return
      paused = true
      const point = deps.service.keepsCheckpoints ? fanout.checkpoint(stream) : undefined
      if (point && point.seq > 0) {
        // a later request of the stream may have added ids: the browser reconnects with these
        const wanted = new Set(ids)
        const checkpoint = {
          viewer: userId,
          seq: point.seq,
          held: point.held.filter(([id]) => wanted.has(id)),
        }
        await deps.service
          .checkpointStream(stream.token, checkpoint, deps.resumeWindowMs)
          .catch((error: unknown) => warnFailure(log, error, 'SSE checkpoint not saved'))
      }
      end()
    }
    /**
     * A stream lives no longer than the token that opened it, as a WebSocket (close 4001): its
     * expiry or revocation (a logout, on any node) sends an error frame, then the end (the
     * stream stays resumable with a fresh token).
     */
    const holder = {
      accessEnded: (reason: StreamEnd): void => {
        if (open) res.write(`data: ${errorFrame('UNAUTHENTICATED', reason)}\n\n`)
        end()
      },
    }
    const sink: Sink = {
      send(frame, seq, token) {
        if (!open || paused) return
        // past the token's expiry or revocation no frame goes out (accessEnded ends the stream)
        if (access?.stillAllowed() === false) return
        if (res.writableLength + frame.length > deps.queueBytes) {
          log.info({ stream: stream.id, buffered: res.writableLength }, 'slow SSE consumer cut off')
          res.write(`data: ${errorFrame('SLOW_CONSUMER', 'slow consumer')}\n\n`)
          return end()
        }
        res.write(
          seq === undefined ? `data: ${frame}\n\n` : `id: ${token}.${seq}\ndata: ${frame}\n\n`,
        )
      },
      replaced: () => end(),
    }
    const opened = fanout.open(userId, sink, admissionOf(request))
    if (!opened) {
      // another connection of the user got the last place after this one was admitted
      open = false
      res.end(
        `data: ${errorFrame('STREAM_LIMIT', limitMessages.streams(deps.limits.streamsPerUser))}\n\n`,
      )
      return
    }
    let stream: Stream = opened
    // on the keepalive wheel shared by every connection, not a timer of its own
    const keepalive: Kept = {
      wheelSlot: -1,
      keepalive: () => {
        // a timer only once less than two keepalive periods are left; past them, the end
        access?.watchExpiry(2 * deps.wheel.periodMs)
        if (open) res.write(': keepalive\n\n')
      },
      keepaliveFailed: (error) => {
        log.error({ err: error }, 'SSE keepalive failed')
        try {
          end()
        } catch (again) {
          log.error({ err: again }, 'SSE stream could not be ended cleanly')
          res.destroy()
        }
      },
    }
    deps.wheel.add(keepalive)
    live.add(shutdown)
    // the response closes when the peer goes away (the request may close as soon as it is read)
    res.on('close', () => {
      if (!open) return
      open = false
      access?.release()
      deps.wheel.remove(keepalive)
      live.delete(shutdown)
      fanout.detach(stream, sink)
    })

    // a token revoked or expired already ends the stream here
    access = deps.service.streamAccess(caller, holder)
    access.watchExpiry(2 * deps.wheel.periodMs)
    if (!open) return

    let toSubscribe = ids
    if (asked.positions) stream.positions = true
    let resumed = false
    let held = asked.held
    if (resumePoint) {
      const result = fanout.resume(userId, resumePoint.token, resumePoint.since, sink)
      if (result.ok) {
        fanout.close(stream)
        stream = result.stream
        if (asked.positions) stream.positions = true
        resumed = true
        // the request names the stream's users: those it no longer names are dropped first,
        // so they hold no watch against the limits the new ones are checked by
        await fanout.retain(stream, ids).catch((error: unknown) => {
          warnFailure(log, error, 'real-time retain failed')
        })
        if (!open) return
        toSubscribe = ids.filter((id) => !fanout.isWatching(stream, id))
      } else if (!held) {
        // a stream another node checkpointed as it shut down continues from its positions
        if (result.reason === 'unknown') {
          held = await deps.service
            .resumeCheckpoint(userId, resumePoint.token, resumePoint.since)
            .catch((error: unknown) => {
              warnFailure(log, error, 'SSE checkpoint not read')
              return undefined
            })
          if (!open) return
        }
        if (!held) sink.send(JSON.stringify({ type: 'reset', reason: result.reason }))
      }
    }
    if (!resumed && held) {
      // not held here (another node's, or gone): from the users' histories, as the WebSocket
      // does; the stream watches `ids`, so positions of other users are not recovered
      const wanted = new Set(ids)
      const recovered = await fanout
        .recover(
          stream,
          held.filter(([id]) => wanted.has(id)),
        )
        .catch((error: unknown) => {
          warnFailure(log, error, 'real-time recover failed')
          return 'unavailable' as const
        })
      const frame = recoveryFrame(recovered, deps.limits.watchesPerUser)
      // after a reset the server follows with a fresh snapshot of `ids`; the watch limit ends it
      if (frame !== undefined) sink.send(frame)
      if (recovered === 'watch_limit') return end()
      toSubscribe = ids.filter((id) => !fanout.isWatching(stream, id))
    }
    if (toSubscribe.length === 0) return
    const result = await fanout.subscribe(stream, toSubscribe).catch((error: unknown) => {
      warnFailure(log, error, 'real-time subscribe failed')
      sink.send(failureFrame(error, 'subscribe'))
      end()
    })
    if (result === 'watch_limit') {
      sink.send(
        errorFrame('WATCH_LIMIT', limitMessages.watches(deps.limits.watchesPerUser), {
          for: 'subscribe',
        }),
      )
      end()
    }
  }
}
