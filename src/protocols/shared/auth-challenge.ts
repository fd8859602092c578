import type { PresenceError } from '../../core/errors.js'

/** The header a refused token's reply carries (RFC 6750 §3). */
export const AUTH_CHALLENGE_HEADER = 'www-authenticate'

/**
 * The `WWW-Authenticate` challenge of a reply refusing a token (UNAUTHENTICATED with
 * `tokenRefused`), the same in every protocol and added to its own body, which stays as it was:
 * `Bearer error="invalid_token", error_description="token expired"` (a fresh token will do) or
 * `"token invalid"`. A client knows from it whether to refresh. Undefined for any other error,
 * and for a request that carried no token (nothing was refused).
 *
 * @example
 * const challenge = authChallenge(error)
 * if (challenge !== undefined) void reply.header(AUTH_CHALLENGE_HEADER, challenge)
 */
export function authChallenge(error: PresenceError): string | undefined {
  const refused = error.details.tokenRefused
  if (refused === undefined) return undefined
  return `Bearer error="invalid_token", error_description="token ${refused}"`
}
