import type { FastifyRequest } from 'fastify'
import type { UserCaller } from '../../core/caller.js'
import type { Credential } from '../../service/authenticator.js'
import type { PresenceService } from '../../service/presence-service.js'
import { apiKeyCredential, authorizationCredential, oneCredential } from '../shared/credentials.js'

/**
 * The token of a request: `Authorization: Bearer` or `?access_token=` (browsers' only way).
 * An `x-api-key` is read too, so that a key is refused as a key (403), not as no credential.
 * A request carrying more than one of the three is refused (400) rather than one of them picked:
 * a second credential, wrong or another user's, would otherwise be silently ignored.
 */
function credentialOf(request: FastifyRequest): Credential {
  const fromQuery = (request.query as Record<string, unknown> | undefined)?.access_token
  if (Array.isArray(fromQuery))
    return { kind: 'several', names: fromQuery.map(() => '?access_token=') }
  return oneCredential([
    ['Authorization', authorizationCredential(request)],
    [
      '?access_token=',
      typeof fromQuery === 'string' ? { kind: 'token', token: fromQuery, via: 'query' } : undefined,
    ],
    ['x-api-key', apiKeyCredential(request.headers)],
  ])
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
