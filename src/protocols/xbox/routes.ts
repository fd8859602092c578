import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { PresenceService } from '../../service/presence-service.js'
import type { Authenticator } from '../../service/authenticator.js'
import { replyHeaders } from '../shared/lean-routes.js'
import { leanBatchRoute } from './lean-batch.js'
import type { Caller } from '../../core/caller.js'
import { fail } from '../../core/errors.js'
import type { Title } from '../../core/catalogue.js'
import type { VisiblePresence } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { ProtocolContext } from '../context.js'
import { xboxCredential } from './auth.js'
import { badRequest } from './errors.js'
import { acceptedLocales } from './rich-presence.js'
import { parseDeviceType } from './device-types.js'
import {
  batchBodySchema,
  levelQuerySchema,
  parseBatchRequest,
  parseLevel,
  parseStateRequest,
  parseTitleId,
  parseTitleRequest,
  parseXuidSegment,
  stateRequestSchema,
  type BatchQuery,
  titleRequestSchema,
} from './schemas.js'
import { plainSummaries, writeRecords, writeSummaryBatch } from './reply-writer.js'
import {
  presenceRecord,
  titleIdsOf,
  type PresenceRecord,
  type XboxLevel,
  type XboxViewOptions,
} from './view.js'

/** The contract version presenced speaks, and answers with. */
const CONTRACT_VERSION = '3'
/** `vnext` asks for the newest version a service speaks: here, 3. */
const ACCEPTED_CONTRACT_VERSIONS = /^(3|vnext)$/i

interface Target {
  Params: { target: string }
  Querystring: { level?: string; titleId?: string }
}

/**
 * The Xbox Live presence routes (userpresence.xboxlive.com), over the same sessions as every
 * other protocol. Every request needs `Authorization: XBL3.0 x=<userhash>;<token>` (403 when
 * missing, 401 when invalid), `x-xbl-contract-version: 3` or `vnext` (400) and an Accept
 * allowing application/json (406); reads also spend the caller's Xbox read budget (429).
 */
export async function xboxPresenceRoutes(
  app: FastifyInstance,
  context: ProtocolContext,
): Promise<void> {
  const { service, settings } = context
  const heartbeatMs = settings.xboxHeartbeatSeconds * 1000
  // a title heartbeating on time is never seen offline: network delays get a grace period
  const titleTtlMs = heartbeatMs + Math.max(10_000, heartbeatMs / 5)

  // runs before the body is read, so a refused request is never parsed
  app.addHook('onRequest', async function admitXboxCaller(request) {
    // a path or method this API does not serve is answered as such, whoever asks
    const config = request.routeOptions.config as { unserved?: boolean; userOnly?: boolean }
    if (config.unserved === true) return
    const { target } = request.params as { target?: string }
    // `me` is the caller's own: only a user has one (parseXuidSegment's spelling, unchecked here)
    const userOnly = config.userOnly === true || target === 'me'
    request.caller = await admitXbox(service, request.headers, request.ip, userOnly)
  })

  /** Reads spend the caller's Xbox read budget, after the checks every request passes. */
  const read = {
    onRequest: async function spendXboxRead(request: FastifyRequest) {
      return service.limits.xboxRead(request.caller, request.ip)
    },
  }

  const records = (
    request: FastifyRequest,
    presences: readonly VisiblePresence[],
    level: XboxLevel,
    filters: RecordFilters = {},
  ) => recordsOf(context, request.headers, presences, level, filters)

  app.post(
    '/users/batch',
    {
      ...read,
      schema: { tags: ['xbox'], summary: 'Presence of up to 1100 users', body: batchBodySchema },
    },
    async (request, reply) => {
      const query = parseBatchRequest(request.body)
      return sendJson(reply, await batchReply(context, request.caller, request.headers, query))
    },
  )
  context.lean?.add(leanBatchRoute(context))

  // GET /users/batch would otherwise read as a user named "batch"
  app.get('/users/batch', async () => {
    throw fail('METHOD_NOT_ALLOWED', 'Use POST /users/batch.', { allow: 'POST' })
  })

  app.get<Target>(
    '/users/:target',
    {
      ...read,
      schema: { tags: ['xbox'], summary: 'Presence of one user', querystring: levelQuerySchema },
    },
    async (request, reply) => {
      const caller = request.caller
      const xuid = targetOf(request.params.target, caller, service.auth)
      const level = parseLevel(request.query.level)
      const presences = await service.lookup(caller.viewer, [xuid])
      const [record] = await records(request, presences, level)
      return sendJson(reply, record)
    },
  )

  app.get<Target & { Params: { moniker: string } }>(
    '/users/:target/groups/:moniker',
    {
      ...read,
      config: { userOnly: true },
      schema: {
        tags: ['xbox'],
        summary: "Presence of the caller's friends (People)",
        querystring: levelQuerySchema,
      },
    },
    async (request, reply) => {
      const caller = request.caller
      // a friend list is the user's own business: no one else may list it
      const xuid = ownTarget(
        request.params.target,
        caller,
        service.auth,
        'Only your own People group is readable.',
      )
      if (request.params.moniker !== 'People') {
        throw fail('NOT_FOUND', 'The only group is "People".')
      }
      const level = parseLevel(request.query.level)
      const friends = await service.listFriends(xuid)
      const presences = await service.lookup(caller.viewer, friends)
      return sendJson(reply, writeRecords(await records(request, presences, level)))
    },
  )

  app.put<Target>(
    '/users/:target/state',
    {
      config: { userOnly: true },
      // the caller's state-write budget, before the body is read: a refused write is never parsed
      onRequest: async function spendStateWrite(request: FastifyRequest) {
        return service.limits.stateWrite(service.auth.requireUser(request.caller).userId)
      },
      schema: {
        tags: ['xbox'],
        summary: 'Appear offline (Cloaked) or not',
        body: stateRequestSchema,
      },
    },
    async (request, reply) => {
      const xuid = ownTarget(request.params.target, request.caller, service.auth)
      const state = parseStateRequest(request.body)
      await service.putSettings(xuid, { invisible: state === 'Cloaked' })
      return sendJson(reply, { xuid, state })
    },
  )

  const titlePath = '/users/:target/devices/current/titles/current'

  app.post<Target>(
    titlePath,
    {
      config: { userOnly: true },
      schema: { tags: ['xbox'], summary: "Write the title's presence", body: titleRequestSchema },
    },
    async (request, reply) => {
      const xuid = ownTarget(request.params.target, request.caller, service.auth)
      const write = parseTitleRequest(request.body)
      const titleId = write.id ?? titleIdOf(request) ?? settings.xboxDefaultTitleId
      const deviceType = parseDeviceType(request.headers['x-xbl-device-type'])
      // the title's budget is counted with the write (one Redis round trip in fleet mode)
      const admission = service.limits.admission(service.limits.titleWriteHit(xuid, titleId))
      await service.titleHeartbeat(
        {
          userId: xuid,
          titleId,
          deviceType,
          placement: write.placement,
          titleState: write.state,
          richPresence: write.richPresence,
          ttlMs: titleTtlMs,
        },
        admission,
      )
      return reply
        .code(200)
        .header('x-heartbeat-after', String(settings.xboxHeartbeatSeconds))
        .header('cache-control', 'no-cache')
        .send()
    },
  )

  app.delete<Target>(
    titlePath,
    {
      config: { userOnly: true },
      schema: { tags: ['xbox'], summary: "Remove the title's presence at once" },
    },
    async (request, reply) => {
      const xuid = ownTarget(request.params.target, request.caller, service.auth)
      const deviceType = parseDeviceType(request.headers['x-xbl-device-type'])
      // without a named title: whatever this device runs (Xbox knows the title from the token);
      // found, counted against each title's budget and ended in one step (one Redis round trip)
      const titleId = titleIdOf(request)
      await service.endTitles(
        { userId: xuid, deviceType, ...(titleId !== undefined && { titleId }) },
        service.limits.titleWrites(xuid, settings.xboxDefaultTitleId),
      )
      return reply.code(200).header('cache-control', 'no-cache').send()
    },
  )

  // Clients JSON.parse every error: anything else under /users is answered in the Xbox shape,
  // 405 with Allow where the path is served with other methods, else 404.
  for (const url of ['/users', '/users/*']) {
    app.route({
      method: UNSERVED_METHODS,
      url,
      config: { unserved: true },
      schema: { hide: true },
      handler: async (request) => {
        const path = request.url.split('?')[0]!
        const allow = XBOX_PATHS.find(([pattern]) => pattern.test(path))?.[1]
        if (allow === undefined) {
          throw fail('NOT_FOUND', `No Xbox presence resource at ${path.slice(0, 100)}.`)
        }
        if (allow.split(', ').includes(request.method)) {
          // A served path and method land here only when a segment is longer than Fastify's
          // maxParamLength (100): answered as its route answers a segment that names no user.
          const single = SINGLE_USER_PATH.test(path)
          request.caller = await admitXbox(service, request.headers, request.ip, !single)
          const segment = decodedSegment(path.split('/')[2]!)
          if (single) targetOf(segment, request.caller, service.auth)
          else ownTarget(segment, request.caller, service.auth)
          throw fail('NOT_FOUND', `No Xbox presence resource at ${path.slice(0, 100)}.`)
        }
        throw fail(
          'METHOD_NOT_ALLOWED',
          `${path.slice(0, 100)} does not support ${request.method}; it supports ${allow}.`,
          { allow },
        )
      },
    })
  }
}

/** Every method a client may try on a path this API does not serve that way. */
const UNSERVED_METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']

const SINGLE_USER_PATH = /^\/users\/[^/]+$/

/** The paths of this API and the methods each serves (for the Allow of a 405). */
const XBOX_PATHS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\/users\/batch$/, 'POST'],
  [SINGLE_USER_PATH, 'GET'],
  [/^\/users\/[^/]+\/groups\/[^/]+$/, 'GET'],
  [/^\/users\/[^/]+\/state$/, 'PUT'],
  [/^\/users\/[^/]+\/devices\/current\/titles\/current$/, 'POST, DELETE'],
]

/**
 * The title of a write when its body names none: `?titleId=` or the `x-xbl-title-id` header
 * (presenced tokens carry no title claim); undefined when neither is given. A repeated
 * `?titleId=`, or the two naming different titles, is refused (400) rather than one picked.
 */
function titleIdOf(request: FastifyRequest<Target>): string | undefined {
  const query: unknown = request.query.titleId
  if (Array.isArray(query)) throw badRequest('titleId must be given once.')
  const header = request.headers['x-xbl-title-id']
  const named = [query, header].filter((raw) => raw !== undefined && raw !== '')
  if (named.length === 0) return undefined
  const titleIds = named.map(parseTitleId)
  if (titleIds.some((titleId) => !titleId)) {
    throw badRequest('The title id (titleId, x-xbl-title-id) must be a 32-bit integer.')
  }
  if (titleIds.length > 1 && titleIds[0] !== titleIds[1]) {
    throw badRequest('?titleId= and x-xbl-title-id name two titles: send one, or the same.')
  }
  return titleIds[0]
}

/** A path segment as a route's params decode it; one that does not decode is kept as it is. */
function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/** The user a path names; `me` is the caller, who must then be a user (the authenticator says). */
function targetOf(segment: string, caller: Caller, auth: Authenticator): UserId {
  const parsed = parseXuidSegment(segment)
  if (parsed === undefined) {
    throw fail('NOT_FOUND', 'No such resource: name the user as me or xuid(<xuid>).')
  }
  return parsed === 'me' ? auth.requireUser(caller).userId : parsed
}

/** The user a path names, who must be the caller: a key is no user, another user is refused. */
function ownTarget(
  segment: string,
  caller: Caller,
  auth: Authenticator,
  message = 'XUID specified in the claim does not match URI XUID.',
): UserId {
  const user = auth.requireUser(caller)
  const xuid = targetOf(segment, caller, auth)
  if (user.userId !== xuid) throw fail('FORBIDDEN', message)
  return xuid
}

/** A JSON reply: a value is stringified, bytes (already JSON) are sent as they are. */
function sendJson(reply: FastifyReply, body: unknown): FastifyReply {
  return reply
    .header('cache-control', 'no-cache')
    .header('x-xbl-contract-version', CONTRACT_VERSION)
    .type('application/json; charset=utf-8')
    .send(Buffer.isBuffer(body) ? body : JSON.stringify(body))
}

/** Whether an Accept header allows application/json; no header allows anything. */
export function acceptsJson(header: string | undefined): boolean {
  if (header === undefined || header.trim() === '') return true
  for (const part of header.split(',')) {
    const [range, ...params] = part.split(';')
    const type = range!.trim().toLowerCase()
    if (type !== 'application/json' && type !== 'application/*' && type !== '*/*') continue
    const q = params.map((p) => p.trim().split('=')).find(([name]) => name?.toLowerCase() === 'q')
    if (q === undefined || Number(q[1]) > 0) return true
  }
  return false
}

/**
 * Every check an Xbox request passes before its body is read: the caller (403 without a
 * credential, 401 for a bad one; a key needs a read scope, and on a `userOnly` route is refused as
 * no user), the contract version (400) and Accept (406). Shared with the lean batch route.
 */
export async function admitXbox(
  service: PresenceService,
  headers: IncomingHttpHeaders,
  ip: string,
  userOnly = false,
): Promise<Caller> {
  const authenticated = await service.auth.authenticate(xboxCredential(headers), ip)
  const caller = userOnly
    ? service.auth.requireNoKey(authenticated)
    : service.auth.requireReader(authenticated)
  const version = headers['x-xbl-contract-version']
  if (version === undefined || version === '') {
    throw badRequest(
      'The x-xbl-contract-version header is required; presenced supports version 3 (or vnext).',
      'CONTRACT_VERSION_UNSUPPORTED',
    )
  }
  if (typeof version !== 'string' || !ACCEPTED_CONTRACT_VERSIONS.test(version)) {
    throw badRequest(
      `x-xbl-contract-version ${JSON.stringify(String(version)).slice(0, 40)} is not supported; presenced supports version 3 (or vnext).`,
      'CONTRACT_VERSION_UNSUPPORTED',
    )
  }
  if (!acceptsJson(headers.accept)) {
    throw fail(
      'NOT_ACCEPTABLE',
      'Presence responds with application/json only: the Accept header must allow it.',
    )
  }
  return caller
}

interface RecordFilters {
  deviceTypes?: Set<string>
  titleIds?: Set<string>
  onlineOnly?: boolean
}

/** How the caller sees records at `level`: the titles the sessions name, their locales. */
async function viewOptionsOf(
  context: ProtocolContext,
  headers: IncomingHttpHeaders,
  presences: readonly VisiblePresence[],
  level: XboxLevel,
  filters: RecordFilters,
  /** With the platform title, whatever `presences` name (for records written from summaries). */
  platformTitle = false,
): Promise<XboxViewOptions> {
  const { service, settings } = context
  let titles = new Map<string, Title>()
  if (level === 'title' || level === 'all') {
    const ids = titleIdsOf(presences, settings.xboxDefaultTitleId)
    if (platformTitle) ids.add(settings.xboxDefaultTitleId)
    titles = await service.getTitles(ids)
  }
  return {
    level,
    locales: acceptedLocales(headers['accept-language']),
    titles,
    platformTitleId: settings.xboxDefaultTitleId,
    deviceTypes: filters.deviceTypes,
    titleIds: filters.titleIds,
  }
}

/** The records of `presences` as the caller's view at `level`; filtered out users dropped. */
async function recordsOf(
  context: ProtocolContext,
  headers: IncomingHttpHeaders,
  presences: readonly VisiblePresence[],
  level: XboxLevel,
  filters: RecordFilters,
): Promise<PresenceRecord[]> {
  const options = await viewOptionsOf(context, headers, presences, level, filters)
  const out: PresenceRecord[] = []
  for (const presence of presences) {
    const record = presenceRecord(presence, options)
    if (record && !(filters.onlineOnly && record.state === 'Offline')) out.push(record)
  }
  return out
}

/** The 200 body of POST /users/batch for a parsed query (the Fastify and the lean route). */
export async function batchReply(
  context: ProtocolContext,
  caller: Caller,
  headers: IncomingHttpHeaders,
  query: BatchQuery,
): Promise<Buffer> {
  const { service } = context
  // summaries for everyone (no Session objects); full presences only for the users whose record
  // a summary cannot tell (several sessions, a title's, filters): the same bytes as writeBatch
  // the parser's values of the ids (when it gave them): the store need not read the digits again
  const summaries = await service.lookupSummaries(
    caller.viewer,
    query.users,
    undefined,
    query.values,
  )
  // the users are canonical ids (parseUserId's, or parseBatchJson's digits): not checked again
  const { plain, notPlain } = plainSummaries(summaries, query, true)
  const full = notPlain === undefined ? [] : await service.lookup(caller.viewer, notPlain)
  const options = await viewOptionsOf(context, headers, full, query.level, query, true)
  return writeSummaryBatch(summaries, full, options, query.onlineOnly, plain)
}

/** The headers of every Xbox JSON reply. */
export const XBOX_JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-cache',
  'x-xbl-contract-version': CONTRACT_VERSION,
  'content-type': 'application/json; charset=utf-8',
})

/** XBOX_JSON_HEADERS for the lean batch's replies, validated once (see replyHeaders). */
export const XBOX_BATCH_HEADERS = replyHeaders(XBOX_JSON_HEADERS)
