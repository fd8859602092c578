import type { FastifyRequest } from 'fastify'
import type { UserCaller } from '../../core/caller.js'
import type { Credential } from '../../service/authenticator.js'
import type { PresenceService } from '../../service/presence-service.js'
import { bearerOrKeyCredential } from '../shared/credentials.js'

/**
 * The token of a request: `Authorization: Bearer`, else `?access_token=` (browsers' only way).
 * An `x-api-key` is read too, so that a key is refused as a key (403), not as no credential.
 */
function credentialOf(request: FastifyRequest): Credential {
  const header = bearerOrKeyCredential(request.headers)
  if (header?.kind === 'token') return header
  const query = request.query as Record<string, unknown> | undefined
  const fromQuery = query?.access_token
  if (typeof fromQuery === 'string') return { kind: 'token', token: fromQuery, via: 'query' }
  return header ?? { kind: 'none' }
}

/**
 * A preValidation hook: refuses the request before any upgrade or stream starts unless it
 * carries a valid user token (401; 403 for an API key, which is no user).
 */
export function requireUser(service: PresenceService) {
  const { auth } = service
  return async (request: FastifyRequest): Promise<void> => {
    request.caller = auth.requireUser(await auth.authenticate(credentialOf(request), request.ip))
  }
}

/** The user `requireUser` let through. */
export function userOf(request: FastifyRequest): UserCaller {
  const caller = request.caller
  if (caller?.kind !== 'user') throw new Error('native route without requireUser')
  return caller
}
