import { createHash, randomBytes } from 'node:crypto'
import {
  beyondUniverses,
  expiresWithin,
  isActive,
  isScope,
  scopes,
  universesWithin,
  withIssuers,
  type ApiKeyInfo,
  type ApiKeyRecord,
} from '../core/api-key.js'
import type { Issuer } from '../core/caller.js'
import { fail } from '../core/errors.js'
import type { Scope } from '../core/privacy.js'
import { parseInt64Id } from '../core/user-id.js'
import type { CredentialStore } from '../store/credential-store.js'
import type { Clock } from './clock.js'
import { LATEST_NUMERIC_DATE } from './token-claims.js'

export interface CreateKeyInput {
  name: string
  scopes: readonly Scope[]
  /** Epoch ms after which the key is refused; undefined: never expires. */
  expiresAt?: number | undefined
  /** Or: seconds from now after which the key is refused. */
  expiresInSeconds?: number | undefined
  /** Universe ids the key may write presence for; empty or undefined: any. */
  universes?: readonly string[] | undefined
  /**
   * The API key creating it (admin scope), when not the operator's admin key: a key it creates
   * must expire by the instant it does, else an expiring key (on-call access, say) could make
   * one that outlives it and act on after its own expiry. A key that never expires binds nothing.
   * The new key records it (`issuedBy`) and stands only while it does: revoking it revokes this.
   * An issuer limited to universes makes only keys limited to some of them (core
   * `universesWithin`): keys are never changed once made, so the limit holds down the chain.
   */
  issuer?: Issuer | undefined
}

const invalid = (message: string) => fail('INVALID_REQUEST', message)

const SECRET_PREFIX = 'pk_'
const MAX_NAME = 100
const MAX_UNIVERSES = 1000
/**
 * The most issuers looked up above a key. Chains are made one admin key at a time and a key's
 * issuer exists before it, so none is near this; a longer one (or a loop, which only a store
 * edited by hand could hold) vouches for nothing: the key is refused.
 */
const MAX_CHAIN = 32

/**
 * Scoped API keys for trusted services. The secret (`pk_…`) is returned once by `create` and only
 * its sha256 is stored, so a leaked database does not leak usable keys. Every `verify` reads the
 * store, so a revocation or an expiry takes effect at once, on every node sharing the store.
 *
 * A key made by another API key (admin scope) records it (`issuedBy`), and stands only while
 * every key up that chain does (core `withIssuers`): revoking a leaked admin key stops every key
 * it made, and the keys those made, at the same instant and on every node, with no key rewritten
 * (a key made while its issuer was being revoked is stopped too). Keys the operator's admin key
 * made have no issuer and stand alone.
 *
 * @example
 * const keys = new ApiKeys(credentialStore, systemClock)
 * const { secret } = await keys.create({ name: 'matchmaker', scopes: ['presence:read'] })
 * const key = await keys.verify(secret) // the record, or undefined once revoked or expired
 */
export class ApiKeys {
  readonly #store: CredentialStore
  readonly #clock: Clock

  constructor(store: CredentialStore, clock: Clock) {
    this.#store = store
    this.#clock = clock
  }

  /** Creates a key; throws INVALID_REQUEST with a clear message for bad input. */
  async create(input: CreateKeyInput): Promise<{ secret: string; key: ApiKeyInfo }> {
    const now = this.#clock.now()
    const name = typeof input.name === 'string' ? input.name.trim() : ''
    if (name.length === 0 || name.length > MAX_NAME) {
      throw invalid(`name must be 1 to ${MAX_NAME} characters`)
    }
    if (!Array.isArray(input.scopes) || input.scopes.length === 0) {
      throw invalid(`scopes must name at least one of ${scopes.join(', ')}`)
    }
    for (const scope of input.scopes) {
      if (!isScope(scope)) {
        throw invalid(`unknown scope ${JSON.stringify(scope)}; scopes are ${scopes.join(', ')}`)
      }
    }
    if (input.expiresAt !== undefined && input.expiresInSeconds !== undefined) {
      throw invalid('Give expiresAt or expiresIn, not both.')
    }
    const expiresAt =
      input.expiresInSeconds !== undefined ? now + input.expiresInSeconds * 1000 : input.expiresAt
    if (expiresAt !== undefined) {
      // a Date holds ms up to 8.64e15, below the largest safe integer: an expiresIn past it was
      // stored, and every listing of the keys then failed making its date (a 500)
      if (!Number.isSafeInteger(expiresAt) || expiresAt > LATEST_NUMERIC_DATE * 1000) {
        throw invalid(
          `${input.expiresInSeconds !== undefined ? 'expiresIn' : 'expiresAt'} must end by 9999-12-31T23:59:59Z`,
        )
      }
      if (expiresAt <= now) throw invalid('expiresAt is in the past')
    }
    const until = input.issuer?.expiresAt
    if (until !== undefined && !expiresWithin(expiresAt, until)) {
      throw fail(
        'FORBIDDEN',
        `The API key creating this one expires at ${new Date(until).toISOString()}: a key it creates must expire no later (give expiresAt or expiresIn).`,
      )
    }
    const universes: string[] = []
    for (const raw of input.universes ?? []) {
      const id = parseInt64Id(raw)
      if (id === undefined) {
        throw invalid(
          `universe id ${JSON.stringify(String(raw)).slice(0, 40)} is not a positive 64-bit integer`,
        )
      }
      if (!universes.includes(id)) universes.push(id)
    }
    if (universes.length > MAX_UNIVERSES) {
      throw invalid(`at most ${MAX_UNIVERSES} universes per key`)
    }
    // the list limits presence writes, nothing else: on a key that reads or administers only, an
    // operator meaning "this universe only" would get a key for every universe, said nowhere
    if (universes.length > 0 && !input.scopes.includes('presence:write')) {
      throw invalid(
        'universes limit presence:write only: a key without it reads (or administers) every universe. Leave universes out, or add presence:write.',
      )
    }
    const limit = input.issuer?.universes ?? []
    if (!universesWithin(universes, limit)) {
      // a key without a list writes (or reads, or administers) every universe
      throw beyondUniverses(
        limit,
        'a key it creates must name universes, all of them among these (and so have presence:write).',
      )
    }
    const secret = SECRET_PREFIX + randomBytes(32).toString('base64url')
    const record: ApiKeyRecord = {
      id: randomBytes(8).toString('hex'),
      name,
      hash: hashSecret(secret),
      scopes: [...new Set(input.scopes)],
      universes,
      createdAt: now,
      expiresAt,
      revokedAt: undefined,
      ...(input.issuer && { issuedBy: input.issuer.keyId }),
    }
    await this.#store.putApiKey(record)
    return { secret, key: infoOf(record) }
  }

  /** The live key with this secret, or undefined (unknown, revoked or expired). */
  async verify(secret: string): Promise<ApiKeyRecord | undefined> {
    const checked = await this.check(secret)
    return typeof checked === 'string' ? undefined : checked
  }

  /**
   * Like `verify`, but a refused secret says why: `unknown` (no key was ever issued with it) or
   * `inactive` (a key issued once, revoked or expired since, itself or a key up its chain of
   * issuers). The record is answered as it stands with its issuers (`withIssuers`): its
   * `expiresAt` is the earliest of the chain's.
   */
  async check(secret: string): Promise<ApiKeyRecord | 'unknown' | 'inactive'> {
    if (!secret.startsWith(SECRET_PREFIX) || secret.length > 200) return 'unknown'
    const record = await this.#store.getApiKeyByHash(hashSecret(secret))
    if (!record) return 'unknown'
    const now = this.#clock.now()
    if (!isActive(record, now)) return 'inactive'
    if (record.issuedBy === undefined) return record
    const standing = withIssuers(record, await issuersOf(record, (id) => this.#store.getApiKey(id)))
    return isActive(standing, now) ? standing : 'inactive'
  }

  /** Whether the key is usable now. */
  isActive(key: Pick<ApiKeyInfo, 'revokedAt' | 'expiresAt'>): boolean {
    return isActive(key, this.#clock.now())
  }

  /**
   * Revokes a key at once; undefined when no key has this id. Revoking twice keeps the first
   * instant, and writes the key again: a store keeps it by id and by secret hash (Redis: two
   * keys, on a cluster two slots written apart), and a revocation that failed midway may have
   * landed in the copy read here and not in the one authentication reads; its retry completes it.
   * `by`: the API key revoking it, when not the operator's admin key. One limited to universes
   * revokes only keys within them (core `universesWithin`; itself and what it made included):
   * the operators' keys and another universe's game servers are not its to stop.
   */
  async revoke(id: string, by?: Issuer): Promise<ApiKeyInfo | undefined> {
    const record = await this.#store.getApiKey(id)
    if (!record) return undefined
    if (by && !universesWithin(record.universes, by.universes)) {
      throw beyondUniverses(
        by.universes,
        `it revokes only keys limited to some of these, and API key ${record.id} ${record.universes.length === 0 ? 'reaches every universe' : `is limited to ${record.universes.join(', ')}`}.`,
      )
    }
    record.revokedAt ??= this.#clock.now()
    await this.#store.putApiKey(record)
    return infoOf(withIssuers(record, await issuersOf(record, (k) => this.#store.getApiKey(k))))
  }

  /** The key with this id, revoked and expired ones included, or undefined (see `list`). */
  async get(id: string): Promise<ApiKeyInfo | undefined> {
    return (await this.list()).find((k) => k.id === id)
  }

  /**
   * Every key, revoked and expired ones included, without secrets or hashes, each as it stands
   * with its issuers: a key whose issuer was revoked is listed revoked since that instant.
   */
  async list(): Promise<ApiKeyInfo[]> {
    const records = await this.#store.listApiKeys()
    const byId = new Map(records.map((k) => [k.id, k]))
    return Promise.all(
      records.map(async (k) => infoOf(withIssuers(k, await issuersOf(k, (id) => byId.get(id))))),
    )
  }
}

/**
 * The keys that issued `record`, nearest first (see MAX_CHAIN); `undefined` for one missing
 * from the store, or a chain too long or looping, which ends the walk.
 */
async function issuersOf(
  record: ApiKeyRecord,
  lookup: (id: string) => ApiKeyRecord | undefined | Promise<ApiKeyRecord | undefined>,
): Promise<(ApiKeyRecord | undefined)[]> {
  const issuers: (ApiKeyRecord | undefined)[] = []
  const seen = new Set([record.id])
  for (let id = record.issuedBy; id !== undefined;) {
    const issuer = seen.has(id) || issuers.length >= MAX_CHAIN ? undefined : await lookup(id)
    issuers.push(issuer)
    if (issuer === undefined) break
    seen.add(id)
    id = issuer.issuedBy
  }
  return issuers
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

function infoOf(record: ApiKeyRecord): ApiKeyInfo {
  const { hash, ...info } = record
  void hash
  return info
}
