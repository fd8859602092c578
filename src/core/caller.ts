import type { Scope, Viewer } from './privacy.js'
import type { UserId } from './user-id.js'

/** How a user's access token reached us; only `cookie` callers need a CSRF token. */
export type TokenChannel = 'cookie' | 'bearer' | 'xbl' | 'query'

/** A signed-in user. */
export interface UserCaller {
  kind: 'user'
  userId: UserId
  via: TokenChannel
  viewer: Viewer
  /** The token's id (jti), which logout revokes; undefined for tokens that carry none. */
  tokenId: string | undefined
  /**
   * When the token expires (epoch ms); a connection it opened lives no longer, and its revocation
   * is kept until then. Every accepted token has one.
   */
  expiresAt: number
  /** The display name the token carries, if any. */
  name: string | undefined
}

/** A trusted service holding a scoped API key (or the operator's admin key). */
export interface KeyCaller {
  kind: 'key'
  keyId: string
  scopes: readonly Scope[]
  /** Universe ids it may write presence for; empty means any. */
  universes: readonly string[]
  /**
   * When the key expires (epoch ms); undefined for one that never does, and for the operator's
   * admin key. What the key creates may not outlive it (ApiKeys.create's `issuer`).
   */
  expiresAt?: number | undefined
  viewer: Viewer
}

export interface AnonymousCaller {
  kind: 'anonymous'
  viewer: Viewer
}

/** Who sent a request, as the Authenticator established it. */
export type Caller = AnonymousCaller | UserCaller | KeyCaller

/** The key id of the operator's admin key (PRESENCED_ADMIN_KEY); no API key's id has this form. */
export const OPERATOR_KEY_ID = 'admin'

/**
 * The API key making a key or a webhook, or writing the catalogue (not the operator's admin key):
 * its id, expiry and universes. What it makes records it, expires no later than it
 * (`expiresWithin`), stays within its universes when it has a list (`universesWithin`), and stops
 * when it is revoked.
 */
export type Issuer = Pick<KeyCaller, 'keyId' | 'expiresAt' | 'universes'>

/** The issuer of what `caller` makes: an API key, not the operator's admin key (undefined). */
export function issuerOf(caller: Caller): Issuer | undefined {
  return caller.kind === 'key' && caller.keyId !== OPERATOR_KEY_ID ? caller : undefined
}
