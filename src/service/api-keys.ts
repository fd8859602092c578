import { createHash, randomBytes } from 'node:crypto'
import type { Scope, Viewer } from '../core/privacy.js'
import { parseInt64Id } from '../core/user-id.js'
import type { ApiKeyRecord, ProfileStore } from '../store/profile-store.js'
import type { Clock } from './clock.js'

export const scopes: readonly Scope[] = Object.freeze([
  'presence:read',
  'presence:read:private',
  'presence:write',
  'admin',
])

export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (scopes as readonly string[]).includes(value)
}

export interface CreateKeyInput {
  name: string
  scopes: readonly Scope[]
  /** Epoch ms after which the key is refused; undefined: never expires. */
  expiresAt?: number | undefined
  /** Universe ids the key may write presence for; empty or undefined: any. */
  universes?: readonly string[] | undefined
}

/** A key as listed: everything but its hash. */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'hash'>

export class ApiKeyInputError extends Error {}

const SECRET_PREFIX = 'pk_'
const MAX_NAME = 100
const MAX_UNIVERSES = 1000

/**
 * Scoped API keys for trusted services. The secret (`pk_…`) is returned once by `create` and only
 * its sha256 is stored, so a leaked database does not leak usable keys. Every `verify` reads the
 * store, so a revocation or an expiry takes effect at once, on every node sharing the store.
 *
 * @example
 * const keys = new ApiKeys(service.profiles, service.clock)
 * const { secret } = await keys.create({ name: 'matchmaker', scopes: ['presence:read'] })
 * const key = await keys.verify(secret) // the record, or undefined once revoked or expired
 */
export class ApiKeys {
  readonly #profiles: ProfileStore
  readonly #clock: Clock

  constructor(profiles: ProfileStore, clock: Clock) {
    this.#profiles = profiles
    this.#clock = clock
  }

  /** Creates a key; throws ApiKeyInputError with a clear message for bad input. */
  async create(input: CreateKeyInput): Promise<{ secret: string; key: ApiKeyInfo }> {
    const now = this.#clock.now()
    const name = typeof input.name === 'string' ? input.name.trim() : ''
    if (name.length === 0 || name.length > MAX_NAME) {
      throw new ApiKeyInputError(`name must be 1 to ${MAX_NAME} characters`)
    }
    if (!Array.isArray(input.scopes) || input.scopes.length === 0) {
      throw new ApiKeyInputError(`scopes must name at least one of ${scopes.join(', ')}`)
    }
    for (const scope of input.scopes) {
      if (!isScope(scope)) {
        throw new ApiKeyInputError(
          `unknown scope ${JSON.stringify(scope)}; scopes are ${scopes.join(', ')}`,
        )
      }
    }
    if (input.expiresAt !== undefined) {
      if (!Number.isSafeInteger(input.expiresAt)) {
        throw new ApiKeyInputError('expiresAt must be an instant')
      }
      if (input.expiresAt <= now) throw new ApiKeyInputError('expiresAt is in the past')
    }
    const universes: string[] = []
    for (const raw of input.universes ?? []) {
      const id = parseInt64Id(raw)
      if (id === undefined) {
        throw new ApiKeyInputError(
          `universe id ${JSON.stringify(String(raw)).slice(0, 40)} is not a positive 64-bit integer`,
        )
      }
      if (!universes.includes(id)) universes.push(id)
    }
    if (universes.length > MAX_UNIVERSES) {
      throw new ApiKeyInputError(`at most ${MAX_UNIVERSES} universes per key`)
    }
    const secret = SECRET_PREFIX + randomBytes(32).toString('base64url')
    const record: ApiKeyRecord = {
      id: randomBytes(8).toString('hex'),
      name,
      hash: hashSecret(secret),
      scopes: [...new Set(input.scopes)],
      universes,
      createdAt: now,
      expiresAt: input.expiresAt,
      revokedAt: undefined,
    }
    await this.#profiles.putApiKey(record)
    return { secret, key: infoOf(record) }
  }

  /** The live key with this secret, or undefined (unknown, revoked or expired). */
  async verify(secret: string): Promise<ApiKeyRecord | undefined> {
    if (!secret.startsWith(SECRET_PREFIX) || secret.length > 200) return undefined
    const record = await this.#profiles.getApiKeyByHash(hashSecret(secret))
    if (!record || !isActive(record, this.#clock.now())) return undefined
    return record
  }

  /** Revokes a key at once; undefined when no key has this id. Revoking twice keeps the first instant. */
  async revoke(id: string): Promise<ApiKeyInfo | undefined> {
    const record = (await this.#profiles.listApiKeys()).find((k) => k.id === id)
    if (!record) return undefined
    if (record.revokedAt === undefined) {
      record.revokedAt = this.#clock.now()
      await this.#profiles.putApiKey(record)
    }
    return infoOf(record)
  }

  /** Every key, revoked and expired ones included, without secrets or hashes. */
  async list(): Promise<ApiKeyInfo[]> {
    return (await this.#profiles.listApiKeys()).map(infoOf)
  }
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

export function isActive(record: ApiKeyRecord, now: number): boolean {
  return (
    record.revokedAt === undefined && (record.expiresAt === undefined || record.expiresAt > now)
  )
}

export function hasScope(record: Pick<ApiKeyRecord, 'scopes'>, scope: Scope): boolean {
  return record.scopes.includes(scope)
}

/** Whether the key may write presence for this universe (an empty allow-list allows any). */
export function mayWriteUniverse(
  record: Pick<ApiKeyRecord, 'universes'>,
  universeId: string | undefined,
): boolean {
  if (record.universes.length === 0) return true
  return universeId !== undefined && record.universes.includes(universeId)
}

/** The viewer a key reads as: privacy applies unless it has presence:read:private. */
export function viewerOfKey(record: ApiKeyRecord): Viewer {
  return { kind: 'service', keyId: record.id, scopes: record.scopes.filter(isScope) }
}

function infoOf(record: ApiKeyRecord): ApiKeyInfo {
  const { hash, ...info } = record
  void hash
  return info
}
