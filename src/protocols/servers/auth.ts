import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Scope } from '../../core/privacy.js'
import { hasScope, type ApiKeys } from '../../service/api-keys.js'
import type { ApiKeyRecord } from '../../store/profile-store.js'
import { sendServersError } from './errors.js'

const keys = new WeakMap<FastifyRequest, ApiKeyRecord>()

/**
 * An onRequest hook admitting a live API key in `x-api-key` holding one of `scopes` (the first
 * is the one named when it is missing). It runs before the body is read: a refused report of
 * 10,000 players is never parsed. Every request reads the key afresh, so revocation and expiry
 * take effect at once.
 */
export function requireKey(apiKeys: ApiKeys, ...scopes: [Scope, ...Scope[]]) {
  return async (
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply | undefined> => {
    const header = request.headers['x-api-key']
    if (typeof header !== 'string' || header === '') {
      return sendServersError(
        reply,
        401,
        'API_KEY_MISSING',
        `Send an API key with the ${scopes[0]} scope in the x-api-key header.`,
      )
    }
    const key = await apiKeys.verify(header)
    if (!key) {
      return sendServersError(
        reply,
        401,
        'API_KEY_INVALID',
        'The x-api-key is not a live API key (unknown, expired or revoked).',
      )
    }
    if (!scopes.some((scope) => hasScope(key, scope))) {
      return sendServersError(
        reply,
        403,
        'SCOPE_MISSING',
        `This API key lacks the required scope: ${scopes[0]}. Verify your API key has the required scopes.`,
      )
    }
    keys.set(request, key)
    return undefined
  }
}

/** The key `requireKey` let through. */
export function keyOf(request: FastifyRequest): ApiKeyRecord {
  const key = keys.get(request)
  if (!key) throw new Error('servers route without requireKey')
  return key
}
