import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { hasScope, type ApiKeys } from '../../service/api-keys.js'
import { sendAdminError } from './errors.js'

/**
 * An onRequest hook admitting the admin key or a scoped API key with the `admin` scope, both in
 * `x-api-key`. It runs before the body is read, so a refused import never gets parsed.
 */
export function adminAuth(adminKey: string, apiKeys: ApiKeys) {
  const expected = digest(adminKey)
  return async (
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply | undefined> => {
    const header = request.headers['x-api-key']
    if (typeof header !== 'string' || header === '') {
      return sendAdminError(
        reply,
        401,
        'API_KEY_MISSING',
        'Send the admin key in the x-api-key header.',
      )
    }
    // compare digests: equal lengths, and no early exit that would time the key's prefix
    if (timingSafeEqual(digest(header), expected)) return undefined
    const key = await apiKeys.verify(header)
    if (!key) {
      return sendAdminError(
        reply,
        401,
        'API_KEY_INVALID',
        'The x-api-key is not the admin key nor a live API key (unknown, expired or revoked).',
      )
    }
    if (!hasScope(key, 'admin')) {
      return sendAdminError(
        reply,
        403,
        'SCOPE_MISSING',
        'This API key lacks the required scope: admin. Verify your API key has the required scopes.',
      )
    }
    return undefined
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
