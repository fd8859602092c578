import type { FastifyReply, FastifyRequest } from 'fastify'
import { parseUserId, type UserId } from '../../core/user-id.js'
import type { Sink, Stream } from '../../service/realtime.js'
import { userOf } from './auth.js'
import { errorFrame, sendNativeError } from './errors.js'
import type { Kept } from './keepalive.js'
import { limitMessages } from './limits.js'
import type { RealtimeDeps } from './ws.js'

/** How long a cut-off SSE peer gets before its socket is destroyed. */
const END_GRACE_MS = 5_000

interface ResumePoint {
  token: string
  since: number
}

/** `Last-Event-ID: <token>.<seq>` (what EventSource sends back) or `?resume=&since=`. */
function resumePointOf(
  request: FastifyRequest,
  query: Record<string, unknown>,
): ResumePoint | undefined {
  const header = request.headers['last-event-id']
  const raw =
    typeof header === 'string' && header !== ''
      ? header
      : typeof query.resume === 'string' || typeof query.since === 'string'
        ? `${String(query.resume ?? '')}.${String(query.since ?? '')}`
        : undefined
  if (raw === undefined) return undefined
  const match = /^([A-Za-z0-9_-]{0,64})\.(\d{1,15})$/.exec(raw)
  return match ? { token: match[1]!, since: Number(match[2]) } : { token: '', since: -1 }
}

function idsOf(raw: unknown, maxIds: number): UserId[] | { code: string; message: string } {
  const text = Array.isArray(raw) ? raw.join(',') : raw
  if (typeof text !== 'string' || text.trim() === '') {
    return { code: 'IDS_INVALID', message: '"ids" must be a comma-separated list of user ids.' }
  }
  const parts = text.split(',').map((part) => part.trim())
  if (parts.length > maxIds) return { code: 'TOO_MANY_IDS', message: `At most ${maxIds} ids.` }
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

/**
 * `GET /api/v1/realtime/sse?ids=1,2,3`: the same stream as the WebSocket, one way. Each event
 * is `id: <token>.<seq>` + `data: <frame>`, so EventSource resumes by itself.
 */
export function serveSse(deps: RealtimeDeps, live: Set<() => void>) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const userId = userOf(request).userId
    const query = (request.query ?? {}) as Record<string, unknown>
    const ids = idsOf(query.ids, deps.maxIds)
    if (!Array.isArray(ids)) return void sendNativeError(reply, 400, ids.code, ids.message)
    const resumePoint = resumePointOf(request, query)
    const { fanout, log } = deps
    // a resumed stream's watches are the user's already: its new ids are checked on subscribe
    if (!resumePoint && !fanout.hasRoom(userId, ids.length)) {
      return void sendNativeError(
        reply,
        429,
        'WATCH_LIMIT',
        limitMessages.watches(deps.limits.watchesPerUser),
      )
    }

    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store, no-transform',
      connection: 'keep-alive',
      // proxies (nginx) must not buffer the stream
      'x-accel-buffering': 'no',
    })
    res.write('retry: 2000\n\n')
    res.once('close', deps.service.census.connectionOpened('sse'))

    let open = true
    const end = (): void => {
      if (!open) return
      open = false
      fanout.detach(stream, sink)
      deps.wheel.remove(keepalive)
      live.delete(end)
      res.end()
      setTimeout(() => res.destroy(), END_GRACE_MS).unref()
    }
    const sink: Sink = {
      send(frame, seq, token) {
        if (!open) return
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
    const opened = fanout.open(userId, sink)
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
        if (open) res.write(': keepalive\n\n')
      },
    }
    deps.wheel.add(keepalive)
    live.add(end)
    // the response closes when the peer goes away (the request may close as soon as it is read)
    res.on('close', () => {
      if (!open) return
      open = false
      deps.wheel.remove(keepalive)
      live.delete(end)
      fanout.detach(stream, sink)
    })

    let toSubscribe = ids
    if (resumePoint) {
      const result = fanout.resume(userId, resumePoint.token, resumePoint.since, sink)
      if (result.ok) {
        fanout.close(stream)
        stream = result.stream
        toSubscribe = ids.filter((id) => !fanout.isWatching(stream, id))
      } else {
        sink.send(JSON.stringify({ type: 'reset', reason: result.reason }))
      }
    }
    if (toSubscribe.length === 0) return
    const result = await fanout.subscribe(stream, toSubscribe).catch((error: unknown) => {
      log.warn({ err: error }, 'real-time subscribe failed')
      sink.send(errorFrame('UNAVAILABLE', 'The presence store is unavailable. Try again shortly.'))
      end()
    })
    if (result === 'watch_limit') {
      sink.send(errorFrame('WATCH_LIMIT', limitMessages.watches(deps.limits.watchesPerUser)))
      end()
    }
  }
}
