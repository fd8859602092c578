import type { IncomingHttpHeaders } from 'node:http'
import { anonymous, type Viewer } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import { hasScope, viewerOfKey, type ApiKeys } from '../../service/api-keys.js'
import type { Tokens } from '../../service/tokens.js'
import { RobloxError, messages } from './errors.js'

export const COOKIE_NAME = '.ROBLOSECURITY'

/** How the caller proved who they are; only `cookie` callers need a CSRF token. */
export type Credential =
  { via: 'none' } | { via: 'cookie'; token: string } | { via: 'bearer'; token: string }

export type Caller =
  | { via: 'none'; viewer: Viewer; userId: undefined }
  | { via: 'apiKey'; viewer: Viewer; userId: undefined; keyId: string }
  | { via: 'cookie' | 'bearer'; viewer: Viewer; userId: UserId }

/**
 * Reads the credential as Roblox clients send it: `Authorization: Bearer <token>` (preferred
 * when both are present: a cross-site page cannot set it, so it needs no CSRF token) or the
 * `.ROBLOSECURITY` cookie among any others, with a trailing `;` or an empty Cookie header
 * tolerated. Real Roblox cookies start with a `_|WARNING:…|_` banner; it is skipped.
 */
export function readCredential(headers: IncomingHttpHeaders): Credential {
  const authorization = headers.authorization
  if (authorization !== undefined && authorization.trim() !== '') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
    // A malformed Authorization header is a present-but-invalid credential, not anonymity.
    return { via: 'bearer', token: match?.[1] ?? '' }
  }
  const cookie = cookieValue(headers.cookie, COOKIE_NAME)
  if (cookie !== undefined && cookie !== '') return { via: 'cookie', token: stripBanner(cookie) }
  return { via: 'none' }
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() !== name) continue
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1)
    }
    try {
      return decodeURIComponent(value)
    } catch {
      return value
    }
  }
  return undefined
}

function stripBanner(value: string): string {
  const end = value.lastIndexOf('|_')
  return value.startsWith('_|') && end > 0 ? value.slice(end + 2) : value
}

/**
 * Resolves the caller. No credential: anonymous. A credential that is present but invalid or
 * expired is refused with 401 on every route, /users included, rather than silently downgraded
 * to anonymous: the client learns at once that it must sign in again. Without a user credential,
 * a trusted service may send a scoped API key in `x-api-key` (401 unless live, 403 without
 * `presence:read`); it reads as `viewerOfKey` and is no user, so it cannot register presence.
 */
export async function authenticate(
  headers: IncomingHttpHeaders,
  tokens: Tokens,
  apiKeys?: ApiKeys,
): Promise<Caller> {
  const credential = readCredential(headers)
  if (credential.via === 'none') {
    const key = headers['x-api-key']
    if (apiKeys && typeof key === 'string' && key !== '') return keyCaller(key, apiKeys)
    return { via: 'none', viewer: anonymous, userId: undefined }
  }
  const claims = await tokens.verify(credential.token)
  if (!claims) throw unauthorized()
  return {
    via: credential.via,
    viewer: { kind: 'user', userId: claims.userId },
    userId: claims.userId,
  }
}

async function keyCaller(secret: string, apiKeys: ApiKeys): Promise<Caller> {
  const record = await apiKeys.verify(secret)
  if (!record) throw new RobloxError(401, 0, messages.apiKeyInvalid)
  if (!hasScope(record, 'presence:read') && !hasScope(record, 'presence:read:private')) {
    throw new RobloxError(403, 0, messages.scopeMissing('presence:read'))
  }
  return { via: 'apiKey', viewer: viewerOfKey(record), userId: undefined, keyId: record.id }
}

export const unauthorized = () => new RobloxError(401, 0, messages.unauthorized)
