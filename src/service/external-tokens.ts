import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors as joseErrors,
  jwksCache,
  jwtVerify,
  type FetchImplementation,
  type JSONWebKeySet,
  type JWKSCacheInput,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose'
import { createPublicKey, KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseUserId } from '../core/user-id.js'
import { assertDateClaims } from './token-dates.js'
import type { TokenClaims } from './tokens.js'

/** Signature algorithms a platform's tokens may use: asymmetric only, never `none` or HMAC. */
export const EXTERNAL_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const

/** Where a platform's verification keys come from. */
export type ExternalKeySource =
  /** One public key, PEM (SPKI), e.g. `-----BEGIN PUBLIC KEY-----...`. */
  | { kind: 'pem'; pem: string }
  /**
   * A JWKS served over HTTP(S): fetched when needed, cached, fetched again for an unknown `kid`
   * or a signature its key refuses (a key replaced under the same `kid`).
   */
  | { kind: 'jwks-url'; url: string }
  /** A JWKS in a JSON file: read at start and again for an unknown `kid` or a refused signature. */
  | { kind: 'jwks-file'; path: string }

/**
 * How to verify a platform's own access tokens (PRESENCED_JWT_*; see docs/reference/config.md).
 * Every field is set by config.ts with its default.
 */
export interface ExternalTokenOptions {
  keys: ExternalKeySource
  /** Required `iss`, when set. */
  issuer: string | undefined
  /** Accepted `aud` values (one must match), when set. */
  audience: string[] | undefined
  /** The claim holding the user id: a decimal int64 string, or a JSON number up to 2^53 − 1. */
  userClaim: string
  /** Accepted `alg` values; a subset of EXTERNAL_ALGORITHMS. */
  algorithms: string[]
  /**
   * ms after a JWKS fetch (or file read) before an unknown `kid` or a bad signature may trigger
   * another; after a fetch that failed, before any may (the set's expiry too).
   */
  jwksCooldownMs: number
  /** ms a fetched JWKS is used before it is fetched again. */
  jwksMaxAgeMs: number
}

/**
 * Verifies tokens issued by another identity provider (a game platform's accounts), so its
 * users need no presenced token. Signatures are checked with jose against a PEM key or a JWKS;
 * `iss`, `aud` and `exp` are required as configured, dates must be sane (token-dates.ts); the user
 * id comes from one claim, exactly.
 *
 * @example
 * const platform = new ExternalTokens({ keys: { kind: 'jwks-url', url: 'https://id.example.com/jwks.json' },
 *   issuer: 'https://id.example.com', audience: ['presenced'], userClaim: 'sub',
 *   algorithms: ['RS256'], jwksCooldownMs: 30_000, jwksMaxAgeMs: 600_000 })
 * const claims = await platform.verify(token) // undefined unless valid
 */
export class ExternalTokens {
  readonly #options: ExternalTokenOptions
  readonly #keys: KeyObject | KeySet

  constructor(options: ExternalTokenOptions) {
    this.#options = options
    this.#keys = keysOf(options)
  }

  /**
   * The claims of a valid token, or undefined. Throws only for a failure that is not about the
   * token (the caller treats it like a refusal). `now` is epoch ms, as the caller's clock has it.
   */
  async verify(token: string, now: number): Promise<TokenClaims | undefined> {
    const { issuer, audience, algorithms } = this.#options
    const checks = {
      algorithms,
      issuer,
      audience,
      // a platform token without an expiry would be valid forever (and cached forever)
      requiredClaims: ['exp'],
      currentDate: new Date(now),
    }
    const keys = this.#keys
    const { payload } =
      keys instanceof KeyObject
        ? await jwtVerify(token, keys, checks)
        : await verifyWithKeySet(token, keys, checks)
    assertDateClaims(payload, now)
    const userId = parseUserId(payload[this.#options.userClaim])
    if (!userId) return undefined
    return {
      userId,
      name: typeof payload.name === 'string' ? payload.name : undefined,
      jti: payload.jti,
      exp: payload.exp!,
    }
  }
}

/**
 * Verifies against a JWKS. A signature that fails against the key its `kid` names may be a key
 * the platform replaced under the same `kid`: the set is loaded again (at most once per
 * cooldown, see KeySet.refresh) and the token verified once more before it is refused.
 */
async function verifyWithKeySet(token: string, keys: KeySet, checks: JWTVerifyOptions) {
  const loaded = keys.loads()
  try {
    return await jwtVerify(token, keys.getKey, checks)
  } catch (error) {
    if (!(error instanceof joseErrors.JWSSignatureVerificationFailed)) throw error
    // keys loaded since this check began (by another request) are tried without a load
    if (keys.loads() === loaded && !(await keys.refresh())) throw error
    return await jwtVerify(token, keys.getKey, checks)
  }
}

/** A platform's JWKS, from a URL or a file, that can be loaded again. */
interface KeySet {
  /** The key a token's header names, for jwtVerify; loads the set again for an unknown `kid`. */
  readonly getKey: JWTVerifyGetKey
  /** Changes whenever the set is loaded anew (by `refresh`, an unknown `kid` or its age). */
  loads(): number
  /**
   * Loads the set again, unless it was loaded within the cooldown (then false): anyone can send
   * a bad signature, and each must not fetch the platform's JWKS. A load under way is awaited
   * rather than started again. Throws when the set cannot be loaded (the URL), or when a load
   * failed within the cooldown (then none is tried).
   */
  refresh(): Promise<boolean>
}

function keysOf(options: ExternalTokenOptions): KeyObject | KeySet {
  const { keys } = options
  switch (keys.kind) {
    case 'pem':
      return createPublicKey(keys.pem)
    case 'jwks-url':
      return remoteKeySet(keys.url, options.jwksCooldownMs, options.jwksMaxAgeMs)
    case 'jwks-file':
      return fileKeySet(keys.path, options.jwksCooldownMs)
  }
}

/**
 * A JWKS served over HTTP(S): jose's remote set (fetched on first use, again when older than
 * `maxAgeMs` or for an unknown `kid` after `cooldownMs`), which also loads on `refresh`.
 *
 * jose's cooldown counts from its last successful fetch only: while the endpoint fails (an error
 * status, no connection, a timeout, no JWKS), each token naming an unknown `kid`, and each token
 * once the set has expired (or before it was ever fetched), would fetch again, so anyone could
 * make presenced hammer the platform's endpoint exactly when it struggles. Every fetch jose
 * makes goes through `gate`: after one that failed, none is tried until `cooldownMs` has passed,
 * and the token that would have fetched is refused as the set being unavailable.
 */
function remoteKeySet(url: string, cooldownMs: number, maxAgeMs: number): KeySet {
  // jose writes the time of each fetch it applies here: the mark of a new load
  const cache: JWKSCacheInput = {}
  /** When the last fetch began; one that jose has not applied since (cache.uat) failed. */
  let triedAt = -Infinity
  const gate: FetchImplementation = async (input, init) => {
    if ((cache.uat ?? -Infinity) < triedAt && Date.now() - triedAt < cooldownMs) {
      throw new JwksUnavailable(Date.now() - triedAt)
    }
    triedAt = Date.now()
    return fetch(input, init)
  }
  const remote = createRemoteJWKSet(new URL(url), {
    cooldownDuration: cooldownMs,
    cacheMaxAge: maxAgeMs,
    [jwksCache]: cache,
    [customFetch]: gate,
  })
  return {
    getKey: remote,
    loads: () => cache.uat ?? 0,
    async refresh() {
      // within the cooldown of a failed fetch, reload throws (gate): the token is refused as
      // unavailable, not as forged, since the key may well have been replaced
      if (!remote.reloading && remote.coolingDown) return false
      await remote.reload()
      return true
    },
  }
}

/** A JWKS fetch not tried, within the cooldown of one that failed (a TokenRefusal 'unavailable'). */
class JwksUnavailable extends Error {
  constructor(sinceMs: number) {
    // no URL: it may carry a credential
    super(`the JWKS fetch failed ${sinceMs} ms ago; none until PRESENCED_JWT_JWKS_COOLDOWN ends`)
    this.name = 'JwksUnavailable'
  }
}

/** Reads and checks a JWKS file; throws a message naming the file when it is not one. */
export function readJwksFile(path: string): JSONWebKeySet {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as JSONWebKeySet
  if (!Array.isArray(parsed?.keys)) throw new Error(`${path} is not a JWKS: no "keys" array`)
  return parsed
}

/**
 * A JWKS file, re-read when a token names a key it lacks or on `refresh` (at most once per
 * cooldown), so keys rotated into the file (a mounted secret, say) are picked up without a
 * restart. A file caught mid-write or broken keeps the keys read before.
 */
function fileKeySet(path: string, cooldownMs: number): KeySet {
  let keySet = createLocalJWKSet(readJwksFile(path))
  let readAt = Date.now()
  let reads = 0
  const reread = (): boolean => {
    if (Date.now() - readAt < cooldownMs) return false
    readAt = Date.now()
    try {
      keySet = createLocalJWKSet(readJwksFile(path))
    } catch {
      return false
    }
    reads++
    return true
  }
  return {
    getKey: async (header, token) => {
      try {
        return await keySet(header, token)
      } catch (error) {
        if (!(error instanceof joseErrors.JWKSNoMatchingKey) || !reread()) throw error
        return keySet(header, token)
      }
    },
    loads: () => reads,
    refresh: async () => reread(),
  }
}
