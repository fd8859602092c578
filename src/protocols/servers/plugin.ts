import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { KeyCaller } from '../../core/caller.js'
import { fail } from '../../core/errors.js'
import type { Scope } from '../../core/privacy.js'
import type { ServerReportInput } from '../../service/game-servers.js'
import type { ProtocolContext } from '../context.js'
import { apiKeyCredential, authorizationCredential, oneCredential } from '../shared/credentials.js'
import { mapErrorToRecord } from '../shared/error-record.js'
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
  const { auth, servers } = service
  /**
   * An onRequest hook: a live key holding one of `scopes`, then the request budget of that key
   * for this server (GameServers.admit), both before the body is read: a refused report is
   * never parsed, let alone written.
   */
  const requireKey =
    (...scopes: [Scope, ...Scope[]]) =>
    async (request: FastifyRequest<{ Params: Params }>): Promise<void> => {
      // a token is read too: beside the key it is refused (400) rather than ignored, and alone
      // it is refused as no key
      const credential = oneCredential([
        ['Authorization', authorizationCredential(request)],
        ['x-api-key', apiKeyCredential(request.headers)],
      ])
      const caller = await auth.authenticate(credential, request.ip)
      const key = auth.requireScope(caller, ...scopes)
      await servers.admit(key, request.params.gameId)
      request.caller = key
    }
  const keyOf = (request: FastifyRequest) => request.caller as KeyCaller
  const write = requireKey('presence:write')
  const read = requireKey('presence:read', 'presence:read:private')

  await app.register(
    async (scope) => {
      scope.setErrorHandler(mapErrorToRecord)

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
          const roster = await servers.roster(request.caller.viewer, request.params.gameId)
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
    throw fail('UNSUPPORTED_MEDIA_TYPE', 'Send the report as application/json.')
  }
}
