import type { IncomingHttpHeaders } from 'node:http'
import type { Credential } from '../../service/authenticator.js'
import { apiKeyCredential, bearerHeaderCredential, cookieValue } from '../shared/credentials.js'

export const COOKIE_NAME = '.ROBLOSECURITY'

/**
 * Reads the credential as Roblox clients send it: `Authorization: Bearer <token>` (preferred
 * when both are present: a cross-site page cannot set it, so it needs no CSRF token) or the
 * `.ROBLOSECURITY` cookie among any others, with a trailing `;` or an empty Cookie header
 * tolerated. Real Roblox cookies start with a `_|WARNING:…|_` banner; it is skipped. Without
 * either, a trusted service may send a scoped API key in `x-api-key`.
 */
export function robloxCredential(headers: IncomingHttpHeaders): Credential {
  return (
    bearerHeaderCredential(headers) ??
    robloxCookieCredential(headers) ??
    apiKeyCredential(headers) ?? { kind: 'none' }
  )
}

/** The `.ROBLOSECURITY` cookie's token (its banner skipped); undefined without one. */
export function robloxCookieCredential(headers: IncomingHttpHeaders): Credential | undefined {
  const cookie = cookieValue(headers.cookie, COOKIE_NAME)
  return cookie !== undefined && cookie !== ''
    ? { kind: 'token', token: stripBanner(cookie), via: 'cookie' }
    : undefined
}

function stripBanner(value: string): string {
  const end = value.lastIndexOf('|_')
  return value.startsWith('_|') && end > 0 ? value.slice(end + 2) : value
}
