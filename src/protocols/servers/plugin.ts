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
  refuseCoercible(request.body)
}

/**
 * The app's Ajv coerces (`true` → 1, `[7]` → 7, `players: 5` → `[5]`): no player or place may be
 * made that way. Checked before validation, on the body as sent.
 */
function refuseCoercible(body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return
  const o = body as Record<string, unknown>
  // objects are left to the schema; these are what coercion would turn into ids
  const coercible = (v: unknown) => typeof v === 'boolean' || v === null || Array.isArray(v)
  const invalid = (code: string, message: string) => new PresenceError('bad_request', code, message)
  for (const [name, code] of [
    ['placeId', 'PLACE_ID_INVALID'],
    ['universeId', 'UNIVERSE_ID_INVALID'],
  ] as const) {
    if (coercible(o[name])) {
      throw invalid(code, `${name} must be a positive 64-bit integer (a JSON number or string).`)
    }
  }
  const players = o.players
  if (players === undefined || (typeof players === 'object' && !Array.isArray(players))) return
  if (!Array.isArray(players) || players.some(coercible)) {
    throw invalid(
      'USER_ID_INVALID',
      'players must be an array of user ids (JSON numbers or strings).',
    )
  }
}
