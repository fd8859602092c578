import type { FastifyRequest } from 'fastify'
import type { Viewer } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import { hasScope, viewerOfKey, type ApiKeys } from '../../service/api-keys.js'
import type { Tokens } from '../../service/tokens.js'
import { XboxError, XboxErrorCode } from './errors.js'

/** Who calls: a user (XBL3.0 with a presenced token) or a third-party service (API key). */
export type XboxCaller =
  { kind: 'user'; userId: UserId; viewer: Viewer } | { kind: 'service'; viewer: Viewer }

/** `XBL3.0 x=<userhash>;<token>`: the user hash is not checked, the token is. */
const XBL = /^XBL3\.0 x=([^;\s]*);(\S+)$/

const unauthorized = (message: string) => new XboxError(401, XboxErrorCode.Unauthorized, message)

/**
 * Authenticates an Xbox request: `Authorization: XBL3.0 x=<userhash>;<token>` where the token is
 * one presenced issued, or else an API key with `presence:read` in `x-api-key` (a third-party
 * site: it reads as a non-friend unless the key has `presence:read:private`).
 */
export async function authenticate(
  request: FastifyRequest,
  tokens: Tokens,
  apiKeys: ApiKeys,
): Promise<XboxCaller> {
  const header = request.headers.authorization
  if (typeof header === 'string' && header !== '') {
    const match = XBL.exec(header.trim())
    if (!match) {
      throw unauthorized('The Authorization header must be "XBL3.0 x=<userhash>;<token>".')
    }
    const claims = await tokens.verify(match[2]!)
    if (!claims) throw unauthorized('The XBL3.0 token is invalid or expired.')
    return { kind: 'user', userId: claims.userId, viewer: { kind: 'user', userId: claims.userId } }
  }
  const key = request.headers['x-api-key']
  if (typeof key === 'string' && key !== '') {
    const record = await apiKeys.verify(key)
    if (!record) throw unauthorized('The x-api-key is unknown, expired or revoked.')
    if (!hasScope(record, 'presence:read') && !hasScope(record, 'presence:read:private')) {
      throw new XboxError(
        403,
        XboxErrorCode.Forbidden,
        'This API key lacks the presence:read scope.',
      )
    }
    return { kind: 'service', viewer: viewerOfKey(record) }
  }
  throw unauthorized('Authorization is required: "XBL3.0 x=<userhash>;<token>".')
}
