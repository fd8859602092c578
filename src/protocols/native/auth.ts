import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UserId } from '../../core/user-id.js'
import type { Tokens } from '../../service/tokens.js'
import { sendNativeError } from './errors.js'

const users = new WeakMap<FastifyRequest, { userId: UserId; expiresAt: number | undefined }>()

/** The token of a request: `Authorization: Bearer`, else `?access_token=` (browsers' only way). */
function tokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    return match?.[1]
  }
  const query = request.query as Record<string, unknown> | undefined
  const fromQuery = query?.access_token
  return typeof fromQuery === 'string' ? fromQuery : undefined
}

/**
 * A preValidation hook: refuses the request with 401 before any upgrade or stream starts unless
 * it carries a valid user token.
 */
export function requireUser(tokens: Tokens) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const token = tokenOf(request)
    const claims = token === undefined ? undefined : await tokens.verify(token)
    if (!claims) {
      return sendNativeError(
        reply,
        401,
        'UNAUTHENTICATED',
        'Authorization has been denied for this request.',
      )
    }
    users.set(request, {
      userId: claims.userId,
      expiresAt: claims.exp === undefined ? undefined : claims.exp * 1000,
    })
  }
}

/** The user `requireUser` let through. */
export function userOf(request: FastifyRequest): UserId {
  return callerOf(request).userId
}

/** The user `requireUser` let through, and when their token expires (epoch ms). */
export function callerOf(request: FastifyRequest): {
  userId: UserId
  expiresAt: number | undefined
} {
  const caller = users.get(request)
  if (caller === undefined) throw new Error('native route without requireUser')
  return caller
}
