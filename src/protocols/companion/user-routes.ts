import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Caller } from '../../core/caller.js'
import { fail } from '../../core/errors.js'
import { parseUserId, type UserId } from '../../core/user-id.js'
import type { PresenceService } from '../../service/presence-service.js'
import type { ProtocolContext } from '../context.js'
import { strictCaller } from './strict-caller.js'

const JSON_TYPE = 'application/json; charset=utf-8'
/** presenced keeps no account creation date; the epoch parses everywhere. */
const CREATED = '1970-01-01T00:00:00.000Z'

export interface UserNames {
  name: string
  displayName: string
}

/**
 * A user's names: `name` from the caller's own token claim, else the users catalogue
 * (`PUT /admin/v1/users/{id}` or an import), else `User<id>`; `displayName` from the catalogue,
 * else the name.
 */
export async function namesOf(
  service: PresenceService,
  userId: UserId,
  caller: Caller,
): Promise<UserNames> {
  const entry = await service.getUser(userId)
  const claimed = caller.kind === 'user' && caller.userId === userId ? caller.name : undefined
  const name = claimed ?? entry?.name ?? `User${userId}`
  return { name, displayName: entry?.displayName ?? name }
}

/**
 * The users host: `GET /v1/users/authenticated` (who the credential belongs to) and
 * `GET /v1/users/{id}` (what clients such as ro.py fetch right after it). Ids are written as
 * JSON numbers digit for digit (int64).
 */
export function userRoutes(app: FastifyInstance, context: ProtocolContext): void {
  const { service } = context
  const { auth } = service

  app.get(
    '/v1/users/authenticated',
    { schema: { tags: ['companion'], summary: 'The signed-in user' } },
    async (request, reply) => {
      const caller = auth.requireUser(strictCaller(request))
      const names = await namesOf(service, caller.userId, caller)
      return sendJson(
        reply,
        `{"id":${caller.userId},"name":${JSON.stringify(names.name)}` +
          `,"displayName":${JSON.stringify(names.displayName)}}`,
      )
    },
  )

  // digits only, with the ASCII padding every id may have (user-id.ts): any other segment
  // (`search`, `+1`, ...) is a path this service does not serve (404)
  app.get<{ Params: { userId: string } }>(
    '/v1/users/:userId(^[\\t-\\r ]*\\d+[\\t-\\r ]*$)',
    { schema: { tags: ['companion'], summary: 'A user by id' } },
    async (request, reply) => {
      // as on the presence routes: a credential present but invalid is refused, and a key
      // reads only with a read scope
      const caller = auth.requireReader(strictCaller(request))
      const userId = parseUserId(request.params.userId)
      if (userId === undefined) throw fail('USER_NOT_FOUND', 'The user id is invalid.')
      const names = await namesOf(service, userId, caller)
      return sendJson(
        reply,
        `{"description":"","created":"${CREATED}","isBanned":false` +
          `,"externalAppDisplayName":null,"hasVerifiedBadge":false,"id":${userId}` +
          `,"name":${JSON.stringify(names.name)},"displayName":${JSON.stringify(names.displayName)}}`,
      )
    },
  )
}

function sendJson(reply: FastifyReply, body: string): FastifyReply {
  return reply.code(200).type(JSON_TYPE).send(body)
}
