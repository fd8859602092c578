import type { FastifyRequest } from 'fastify'
import type { UserCaller } from '../../core/caller.js'
import type { Credential } from '../../service/authenticator.js'
import type { PresenceService } from '../../service/presence-service.js'
import { bearerCredential } from '../shared/credentials.js'

/** The token of a request: `Authorization: Bearer`, else `?access_token=` (browsers' only way). */
function credentialOf(request: FastifyRequest): Credential {
  const bearer = bearerCredential(request.headers)
  if (bearer) return bearer
  const query = request.query as Record<string, unknown> | undefined
  const fromQuery = query?.access_token
  return typeof fromQuery === 'string'
    ? { kind: 'token', token: fromQuery, via: 'query' }
    : { kind: 'none' }
}

/**
 * A preValidation hook: refuses the request with 401 before any upgrade or stream starts unless
 * it carries a valid user token.
 */
export function requireUser(service: PresenceService) {
  const { auth } = service
  return async (request: FastifyRequest): Promise<void> => {
    request.caller = auth.requireUser(await auth.authenticate(credentialOf(request)))
  }
}

/** The user `requireUser` let through. */
export function userOf(request: FastifyRequest): UserCaller {
  const caller = request.caller
  if (caller?.kind !== 'user') throw new Error('native route without requireUser')
  return caller
}
