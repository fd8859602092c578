import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { parseUserId, type UserId } from '../../core/user-id.js'
import type { PresenceService } from '../../service/presence-service.js'
import type { TokenClaims } from '../../service/tokens.js'
import type { ProtocolContext } from '../context.js'
import { unauthorized } from '../roblox/auth.js'
import { RobloxError } from '../roblox/errors.js'
import type { CompanionCaller } from './caller.js'

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
  claims: TokenClaims | undefined,
): Promise<UserNames> {
  const entry = await service.profiles.getUser(userId)
  const claimed = claims?.userId === userId ? claims.name : undefined
  const name = claimed ?? entry?.name ?? `User${userId}`
  return { name, displayName: entry?.displayName ?? name }
}

/**
 * The users host: `GET /v1/users/authenticated` (who the credential belongs to) and
 * `GET /v1/users/{id}` (what clients such as ro.py fetch right after it). Ids are written as
 * JSON numbers digit for digit (int64).
 */
export function userRoutes(
  app: FastifyInstance,
  context: ProtocolContext,
  callerOf: (request: FastifyRequest) => CompanionCaller,
): void {
  const { service } = context

  app.get(
    '/v1/users/authenticated',
    { schema: { tags: ['companion'], summary: 'The signed-in user' } },
    async (request, reply) => {
      const { claims } = callerOf(request)
      if (claims === undefined) throw unauthorized()
      const names = await namesOf(service, claims.userId, claims)
      return sendJson(
        reply,
        `{"id":${claims.userId},"name":${JSON.stringify(names.name)}` +
          `,"displayName":${JSON.stringify(names.displayName)}}`,
      )
    },
  )

  app.get<{ Params: { userId: string } }>(
    '/v1/users/:userId',
    { schema: { tags: ['companion'], summary: 'A user by id' } },
    async (request, reply) => {
      const caller = callerOf(request)
      // a credential that is present but invalid is refused, as on the presence routes
      if (caller.credential.via !== 'none' && caller.claims === undefined) throw unauthorized()
      const userId = parseUserId(request.params.userId)
      if (userId === undefined) throw new RobloxError(404, 3, 'The user id is invalid.')
      const names = await namesOf(service, userId, caller.claims)
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
