import type { Scope } from './privacy.js'

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
