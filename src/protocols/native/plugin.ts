import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { fail } from '../../core/errors.js'
import type { ProtocolContext } from '../context.js'
import { requireUser, userOf } from './auth.js'
import { mapErrorToRecord, requireJsonBody } from '../shared/error-record.js'
import { sseBodySchema } from './schemas.js'
import { MAX_IDS_HEADER, serveSse, sseBodyRequest, sseQueryRequest, type SseBody } from './sse.js'
import { KeepaliveWheel } from './keepalive.js'
import { PendingAdmissions } from './admissions.js'
import { streamLimit } from './limits.js'
import { renderNative } from './view.js'
import {
  headUpgrade,
  notUpgradable,
  refuseHandshake,
  serveWebSocket,
  shuttingDown,
  type RealtimeDeps,
} from './ws.js'
import { warnFailure } from '../shared/warn-failure.js'
import { REALTIME_URL, asksUpgrade } from '../shared/upgrade-requests.js'

/** Largest client frame; `ws` closes with 1009 beyond it. */
const MAX_FRAME_BYTES = 64 * 1024

/**
 * The native real-time API (docs/reference/native.md): `GET /api/v1/realtime` (WebSocket) and
 * `GET`/`POST /api/v1/realtime/sse` (Server-Sent Events), both fed by one Fanout on the change bus.
 */
export async function nativeProtocol(
  app: FastifyInstance,
  context: ProtocolContext,
): Promise<void> {
  const { service, settings } = context
  const fanout = service.createFanout({
    render: renderNative,
    flapGraceMs: settings.flapGraceMs,
    replayFrames: settings.realtimeReplayFrames,
    resumeWindowMs: settings.realtimeResumeMs,
    onError: (error) => warnFailure(app.log, error, 'real-time fanout dropped a change'),
    limits: {
      streamsPerUser: settings.realtimeStreamsPerUser,
      watchesPerUser: settings.realtimeWatchesPerUser,
      detachedWatches: settings.realtimeDetachedWatches,
    },
  })
  const deps: RealtimeDeps = {
    fanout,
    service,
    log: app.log,
    queueBytes: settings.realtimeQueueBytes,
    maxIds: settings.realtimeMaxIds,
    resumeWindowMs: settings.realtimeResumeMs,
    limits: {
      streamsPerUser: settings.realtimeStreamsPerUser,
      watchesPerUser: settings.realtimeWatchesPerUser,
      subscribeRate: settings.realtimeSubscribeRate,
    },
    // connection presence must be refreshed well within the session TTL
    wheel: new KeepaliveWheel(
      Math.min(25_000, Math.floor((settings.sessionTtlSeconds * 1000) / 3)),
    ),
  }
  /** Each open SSE stream's shutdown: in a fleet, checkpointed for another node, then ended. */
  const sseStreams = new Set<() => Promise<void>>()

  // before @fastify/websocket's own preClose, so peers get 1001 rather than no code
  app.addHook('preClose', async () => {
    deps.closing = true
    for (const kept of deps.wheel.members()) kept.shutdown?.()
    await Promise.all([...sseStreams].map((shutdown) => shutdown()))
  })
  // connections are found on the keepalive wheel: ws need not track them (a closure each)
  await app.register(websocket, {
    // no permessage-deflate (ws's default, said here): frames are written as their bytes (ws.ts
    // sendParts), and compressing each socket's copy would cost more than the bytes it saves
    options: { maxPayload: MAX_FRAME_BYTES, clientTracking: false, perMessageDeflate: false },
  })
  app.websocketServer.on('wsClientError', refuseHandshake)
  // the upgrade tells the limit a stream's ids are held to, as an SSE response does
  app.websocketServer.on('headers', (headers: string[]) => {
    headers.push(`${MAX_IDS_HEADER}: ${settings.realtimeMaxIds}`)
  })
  app.addHook('onClose', async () => {
    deps.wheel.stop()
    // before the stores close (their hooks run after this one): frees the users' fleet places
    await fanout.stop()
  })

  app.setErrorHandler(mapErrorToRecord)
  const authenticate = requireUser(service)
  const admissions = new PendingAdmissions(fanout)
  // a request answered without opening its stream (an error, a plain GET) gives its place back
  app.addHook('onResponse', async (request) => admissions.settle(request))
  // refused before any upgrade or stream starts: a clear 429, not a dropped socket
  const admit = async (request: FastifyRequest): Promise<void> => {
    await authenticate(request)
    const caller = userOf(request)
    // each connection (a reconnect storm too) is a request of the user's budget
    await service.limits.request(caller, request.ip)
    const admission = await fanout.admit(caller.userId)
    if (!admission) throw streamLimit(settings.realtimeStreamsPerUser)
    admissions.hold(request, admission)
    // the app began to close while the checks waited (a JWKS fetch, Redis): the shutdown that
    // ends every connection is past, one opened now would be held open (its place given back)
    if (deps.closing) throw shuttingDown()
  }
  // @fastify/websocket upgrades a request to any route of this scope (an SSE stream's: a 101, then
  // a close frame): only the WebSocket route is one to upgrade
  app.addHook('onRequest', function refuseSseUpgrade(request, _reply, done) {
    done(
      asksUpgrade(request.raw) && request.routeOptions.url !== REALTIME_URL
        ? notUpgradable()
        : undefined,
    )
  })
  app.route({
    method: 'GET',
    url: REALTIME_URL,
    preValidation: admit,
    handler: async (request) => {
      // Fastify serves HEAD with this handler, @fastify/websocket never upgrades one: a HEAD
      // asking for the upgrade is the wrong method (405 naming GET), one that does not is told
      // what its GET would be
      if (request.method === 'HEAD' && request.ws) throw headUpgrade()
      throw fail(
        'UPGRADE_REQUIRED',
        'This endpoint speaks WebSocket; use /api/v1/realtime/sse for Server-Sent Events.',
      )
    },
    wsHandler: (socket, request) => {
      serveWebSocket(socket, userOf(request), deps, request.ip, admissions.take(request))
    },
  })
  const sse = serveSse(deps, sseStreams, (request) => admissions.take(request))
  // every SSE answer tells the limit, a refusal before the handler (401, 429, a body its schema
  // or parser refuses) too: a client learns how many ids to ask for whatever went wrong
  const tellMaxIds = async (_request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    reply.header(MAX_IDS_HEADER, String(settings.realtimeMaxIds))
  }
  app.get(
    '/api/v1/realtime/sse',
    { onRequest: tellMaxIds, preValidation: admit },
    (request, reply) => sse(request, reply, sseQueryRequest(request, settings.realtimeMaxIds)),
  )
  // positions for 1000 users do not fit a URL: the same stream, asked for in a body
  app.post<{ Body: SseBody }>(
    '/api/v1/realtime/sse',
    // refused (401, 429) before the body is read, as GET is before its stream starts
    { schema: sseBodySchema, onRequest: [tellMaxIds, admit], preValidation: requireJsonBody },
    (request, reply) => sse(request, reply, sseBodyRequest(request.body, settings.realtimeMaxIds)),
  )
}
