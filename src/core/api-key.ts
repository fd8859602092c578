import type { Scope } from './privacy.js'
import { fail, type PresenceError } from './errors.js'

export const scopes: readonly Scope[] = Object.freeze([
  'presence:read',
  'presence:read:private',
  'presence:write',
  'admin',
])

export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (scopes as readonly string[]).includes(value)
}

/** A scoped API key as stored: only its hash is kept. */
export interface ApiKeyRecord {
  id: string
  name: string
  /** sha256 of the secret, hex. */
  hash: string
  scopes: string[]
  /** Universe ids it may write presence for; empty means any. */
  universes: string[]
  createdAt: number
  expiresAt: number | undefined
  revokedAt: number | undefined
  /**
   * The id of the API key (admin scope) that created it; absent for a key the operator's admin
   * key created (and for keys made before issuers were recorded). A key stands only while its
   * issuer does (`withIssuers`).
   */
  issuedBy?: string | undefined
}

/** A key as listed: everything but its hash. */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'hash'>

export function isActive(
  record: Pick<ApiKeyRecord, 'revokedAt' | 'expiresAt'>,
  now: number,
): boolean {
  return (
    record.revokedAt === undefined && (record.expiresAt === undefined || record.expiresAt > now)
  )
}

/** What decides whether a key is usable: its expiry and revocation. */
export type KeyStanding = Pick<ApiKeyRecord, 'expiresAt' | 'revokedAt'>

/**
 * `record` as it stands with the keys that issued it, `issuers` (its issuer, that one's issuer,
 * and so on up to a key the operator made): revoked at the earliest revocation among them, expiring
 * at the earliest expiry. What an admin-scope key makes stops with it, as the holder of a leaked
 * key expects when revoking it: a key that made others and was revoked must not act on through
 * them. An issuer missing from the store (`undefined`) cannot vouch for anything, nor can one whose
 * universes a key below it reaches past (`universesWithin`: ApiKeys.create refuses to make such a
 * key, so only a store written before that rule, or by hand, holds one): the key counts as
 * revoked from its own creation.
 *
 * @example
 * withIssuers(child, [parent]) // { ...child, revokedAt: parent.revokedAt } once parent is revoked
 */
export function withIssuers<T extends KeyStanding & Pick<ApiKeyRecord, 'createdAt' | 'universes'>>(
  record: T,
  issuers: readonly ((KeyStanding & Pick<ApiKeyRecord, 'universes'>) | undefined)[],
): T {
  let { expiresAt, revokedAt } = record
  let below: Pick<ApiKeyRecord, 'universes'> = record
  for (const issuer of issuers) {
    const vouches = issuer !== undefined && universesWithin(below.universes, issuer.universes)
    const revoked = vouches ? issuer.revokedAt : record.createdAt
    if (issuer !== undefined) below = issuer
    if (revoked !== undefined && (revokedAt === undefined || revoked < revokedAt)) {
      revokedAt = revoked
    }
    const expires = issuer?.expiresAt
    if (expires !== undefined && (expiresAt === undefined || expires < expiresAt)) {
      expiresAt = expires
    }
  }
  return expiresAt === record.expiresAt && revokedAt === record.revokedAt
    ? record
    : { ...record, expiresAt, revokedAt }
}

export function hasScope(record: { scopes: readonly string[] }, scope: Scope): boolean {
  return record.scopes.includes(scope)
}

/** Whether the key may write presence for this universe (an empty allow-list allows any). */
export function mayWriteUniverse(
  record: { universes: readonly string[] },
  universeId: string | undefined,
): boolean {
  if (record.universes.length === 0) return true
  return universeId !== undefined && record.universes.includes(universeId)
}

/**
 * Whether a key (or what it binds) expiring at `expiresAt` (undefined: never) may be made by an
 * API key expiring at `issuerExpiresAt` (undefined: never, or the operator's admin key): what an
 * expiring key makes must not outlive it, else it could act on after its own expiry.
 */
export function expiresWithin(
  expiresAt: number | undefined,
  issuerExpiresAt: number | undefined,
): boolean {
  return issuerExpiresAt === undefined || (expiresAt !== undefined && expiresAt <= issuerExpiresAt)
}

/**
 * Whether what a key limited to `issuerUniverses` (empty: any) makes or touches, reaching
 * `universes` (empty: every universe), stays within its limit: the universe counterpart of
 * `expiresWithin`. An admin key limited to some universes that could make an unlimited key, a
 * webhook seeing every user, or move another universe's catalogue place into its own, would
 * make its list no boundary. So what it makes names universes, all of them its own.
 *
 * @example
 * universesWithin(['2'], ['1', '2']) // true
 * universesWithin([], ['1', '2'])    // false: every universe
 * universesWithin([], [])            // true: an unlimited key is bound by nothing
 */
export function universesWithin(
  universes: readonly string[],
  issuerUniverses: readonly string[],
): boolean {
  return (
    issuerUniverses.length === 0 ||
    (universes.length > 0 && universes.every((u) => issuerUniverses.includes(u)))
  )
}

/**
 * The refusal (403 FORBIDDEN) of what `universesWithin` does not allow: `what` says what the key
 * may do instead.
 */
export function beyondUniverses(issuerUniverses: readonly string[], what: string): PresenceError {
  return fail(
    'FORBIDDEN',
    `The API key making this change is limited to universes ${issuerUniverses.join(', ')}: ${what}`,
  )
}
