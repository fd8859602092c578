import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Caller, UserCaller } from '../../core/caller.js'
import type { UserId } from '../../core/user-id.js'
import type { Activity } from '../../core/presence.js'
import type { ProtocolContext } from '../context.js'
import { deviceOf, isStudio, parseRegisterRequest, parseUsersRequest } from './requests.js'
import { registerSchema, usersSchema } from './schemas.js'
import type { Admission, PresenceService } from '../../service/presence-service.js'
import type { RequestAdmission } from '../../service/admission.js'
import { writeSummariesReply } from './reply-writer.js'
import type { RobloxViewOptions } from './view.js'

/** Tells a client how many seconds it may wait before its next register-app-presence. */
export const HEARTBEAT_HEADER = 'x-presence-heartbeat-after'

export const JSON_TYPE = 'application/json; charset=utf-8'

/** The Roblox presence v1 routes; the scope's onRequest hook has set `request.caller`. */
export function robloxRoutes(app: FastifyInstance, context: ProtocolContext): void {
  const { service, settings } = context
  const viewOptions = { invisibleSelfView: settings.invisibleSelfView }
  const beatAfter = heartbeatAfter(settings)

  // a read: a cookie caller needs no CSRF token for it (plugin.ts, `readers`)
  app.post('/v1/presence/users', { schema: usersSchema }, async (request, reply) => {
    return sendJson(reply, await usersReply(service, viewOptions, request.caller, request.body))
  })

  app.post(
    '/v1/presence/register-app-presence',
    {
      schema: registerSchema,
      // read by the Roblox scope's admission (plugin.ts): a key here is refused as no user
      config: { userOnly: true },
      // refuse anonymous callers before their body is even read (the lean path mirrors it)
      onRequest: async function requireSignedIn(request) {
        service.auth.requireUser(request.caller)
      },
    },
    async (request, reply) => {
      const caller = service.auth.requireUser(request.caller)
      const beat = await registerPresence(
        service,
        caller,
        request.body,
        request.headers['user-agent'],
      )
      return sendJson(beat ? reply.header(HEARTBEAT_HEADER, beatAfter) : reply, '{}')
    },
  )
}

/** Seconds a client may wait before its next heartbeat: half the TTL, for one lost or slow beat. */
export function heartbeatAfter(settings: ProtocolContext['settings']): string {
  return String(Math.max(1, Math.floor(settings.sessionTtlSeconds / 2)))
}

/**
 * Applies a register-app-presence body (throws RobloxError for a bad one): a heartbeat of the
 * caller's session on the device, or its end (`disconnect`). True for a heartbeat, whose reply
 * tells when to beat next. Shared by the Fastify route and the lean path (lean-heartbeat.ts),
 * which passes its `admission` (rate limit, CSRF) to be counted in the heartbeat's own step.
 * Answered without a promise when the service's heartbeat is (PresenceService.beat: embedded
 * mode), its error then thrown: no async layer of its own (issue 19).
 */
export function registerPresence(
  service: PresenceService,
  caller: UserCaller,
  rawBody: unknown,
  userAgent: string | undefined,
  admission?: RequestAdmission,
): boolean | Promise<boolean> {
  const body = parseRegisterRequest(rawBody)
  const device = deviceOf(body, userAgent)
  const key = device.key
  if (body.disconnect) return endAppSession(service, caller, key, admission)
  // field by field, in this order (the store interns activities by their JSON text): spreading
  // conditional objects cost a heartbeat a temporary object and a slow property copy each
  const activity: Activity = {
    kind: isStudio(body.location) ? 'inStudio' : body.placeId !== undefined ? 'inGame' : 'online',
  }
  if (body.location !== undefined && body.location !== '') activity.location = body.location
  if (body.placeId !== undefined) activity.placeId = body.placeId
  if (body.gameId !== undefined) activity.gameId = body.gameId
  // the change is not read here (SessionWrite.refreshUnread): a refresh's state before is not made
  const change = service.beat(
    {
      userId: caller.userId,
      key,
      source: 'app',
      deviceType: device.deviceType,
      activity,
      refreshUnread: true,
    },
    admission,
  )
  return change instanceof Promise ? change.then(beating) : true
}

function beating(): true {
  return true
}

/** register-app-presence's `disconnect`: the session on the device ended, after its admission. */
async function endAppSession(
  service: PresenceService,
  caller: UserCaller,
  key: string,
  admission: RequestAdmission | undefined,
): Promise<false> {
  await admission?.run()
  await service.endSession(caller.userId, key, 'explicit')
  return false
}

/**
 * The 200 body of POST /v1/presence/users for a parsed request body; throws RobloxError for a
 * bad one. Shared by the Fastify route and the lean node:http path (lean-users.ts).
 */
export async function usersReply(
  service: PresenceService,
  viewOptions: RobloxViewOptions,
  caller: Caller,
  body: unknown,
  admission?: Admission,
): Promise<Buffer> {
  return usersReplyOf(service, viewOptions, caller, parseUsersRequest(body), admission)
}

/**
 * The 200 body of POST /v1/presence/users for ids already parsed; `admission` (the lean path's
 * rate limit) runs beside the read (PresenceService.lookup); `values`: the ids' values when the
 * parser has them (PresenceStore.summarize).
 */
export async function usersReplyOf(
  service: PresenceService,
  viewOptions: RobloxViewOptions,
  caller: Caller,
  ids: UserId[],
  admission?: Admission,
  values?: readonly number[],
): Promise<Buffer> {
  return writeSummariesReply(
    // the reply shows no device type or source: not read (issue 19)
    await service.lookupSummaries(caller.viewer, ids, admission, values, false),
    viewOptions,
  )
}

/** Bodies are written as exact JSON text (int64 ids), so Fastify's serializer is bypassed. */
function sendJson(reply: FastifyReply, body: string | Buffer): FastifyReply {
  return reply.code(200).type(JSON_TYPE).send(body)
}
