import type { IncomingHttpHeaders } from 'node:http'
import { fail } from '../../core/errors.js'
import type { Credential } from '../../service/authenticator.js'
import { apiKeyCredential } from '../shared/credentials.js'

/** `XBL3.0 x=<userhash>;<token>`: the user hash is not checked, the token is. */
const XBL = /^XBL3\.0 x=([^;\s]*);(\S+)$/

/**
 * The credential of an Xbox request: `Authorization: XBL3.0 x=<userhash>;<token>` where the
 * token is one presenced issued, or else an API key in `x-api-key` (a third-party site: it
 * reads as a non-friend unless the key has `presence:read:private`). As Xbox documents it, no
 * credential at all is 403 Forbidden; one that is present but malformed, invalid or expired is
 * 401, which tells a client to refresh it (a malformed one counts as a guessed credential).
 */
export function xboxCredential(headers: IncomingHttpHeaders): Credential {
  const header = headers.authorization
  if (typeof header === 'string' && header !== '') {
    const match = XBL.exec(header.trim())
    if (!match) {
      // refused by the authenticator, which counts it as a guessed credential
      return {
        kind: 'malformed',
        message: 'The Authorization header must be "XBL3.0 x=<userhash>;<token>".',
      }
    }
    return { kind: 'token', token: match[2]!, via: 'xbl' }
  }
  const key = apiKeyCredential(headers)
  if (key) return key
  throw fail(
    'AUTHORIZATION_MISSING',
    'Authorization is required: "XBL3.0 x=<userhash>;<token>" (or an API key in x-api-key).',
  )
}
