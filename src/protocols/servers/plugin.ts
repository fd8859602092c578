import type { FastifyInstance, FastifyRequest } from 'fastify'
import { PresenceError } from '../../core/errors.js'
import { ApiKeys } from '../../service/api-keys.js'
import { GameServers, type ServerReportInput } from '../../service/game-servers.js'
import type { ProtocolContext } from '../context.js'
import { keyOf, requireKey } from './auth.js'
import { serversErrorHandler } from './errors.js'
import { endSchema, reportSchema, rosterSchema } from './schemas.js'

interface Params {
  gameId: string
}

const iso = (ms: number) => new Date(ms).toISOString()

/**
 * Game servers report their players: `PUT`, `DELETE` and `GET /api/v1/servers/{gameId}` with a
 * scoped API key in `x-api-key` (docs/reference/servers.md).
 */
export async function serversProtocol(
  app: FastifyInstance,
  context: ProtocolContext,
): Promise<void> {
  const { service } = context
  const apiKeys = new ApiKeys(service.profiles, service.clock)
  const servers = new GameServers(service)
  const write = requireKey(apiKeys, 'presence:write')
  const read = requireKey(apiKeys, 'presence:read', 'presence:read:private')

  await app.register(
    async (scope) => {
      scope.setErrorHandler(serversErrorHandler)

      scope.put<{ Params: Params; Body: ServerReportInput }>(
        '/:gameId',
        { schema: reportSchema, onRequest: write, preValidation: requireJson },
        async (request) => {
          const outcome = await servers.report(keyOf(request), request.params.gameId, request.body)
          return {
            ...outcome,
            universeId: outcome.universeId ?? null,
            expiresAt: iso(outcome.expiresAt),
          }
        },
      )

      scope.delete<{ Params: Params }>(
        '/:gameId',
        { schema: endSchema, onRequest: write },
        async (request) => servers.end(keyOf(request), request.params.gameId),
      )

      scope.get<{ Params: Params }>(
        '/:gameId',
        { schema: rosterSchema, onRequest: read },
        async (request) => {
          const roster = await servers.roster(request.params.gameId)
          return {
            gameId: roster.gameId,
            placeId: roster.activity.placeId ?? null,
            universeId: roster.activity.universeId ?? null,
            players: roster.players,
            updatedAt: iso(roster.updatedAt),
            expiresAt: iso(roster.expiresAt),
          }
        },
      )
    },
    { prefix: '/api/v1/servers' },
  )
}

/** A body in another type (text/plain has a default parser) is a 415, not a schema error. */
async function requireJson(request: FastifyRequest): Promise<void> {
  const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json' && type !== 'text/json') {
    throw new PresenceError(
      'unsupported_media_type',
      'UNSUPPORTED_MEDIA_TYPE',
      'Send the report as application/json.',
    )
  }
}
