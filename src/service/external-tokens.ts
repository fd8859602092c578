import { errors as joseErrors, jwtVerify, type JWTVerifyOptions } from 'jose'
import { createPublicKey, KeyObject } from 'node:crypto'
import { parseExactUserId } from '../core/user-id.js'
import { JwksKeys, JwksUnavailable, type JwksLog } from './jwks-keys.js'
import { jwksFromFile, jwksFromUrl, readJwksFile } from './jwks-sources.js'
import { assertDateClaims, tokenIdOf } from './token-claims.js'
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
   * A JWKS served over HTTP(S): fetched at start and again in the background before it expires
   * (`prefetch`; without it, when a token needs it), fetched again for an unknown `kid` or a
   * signature its key refuses (a key replaced under the same `kid`); while fetches fail, the
   * last good set is kept (jwks-keys.ts).
   */
  | { kind: 'jwks-url'; url: string }
  /**
   * A JWKS in a JSON file: read at start and again for an unknown `kid` or a refused signature;
   * while it cannot be read (mid-write, removed), the last good set is kept.
   */
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
  /**
   * ms a fetched JWKS is fresh: kept fresh in the background, it is fetched again at 65-85 % of
   * this; past it, it is fetched again before or while (within jwksMaxStaleMs) it is used.
   */
  jwksMaxAgeMs: number
  /** ms past jwksMaxAgeMs the last fetched JWKS is still used while fetching it again fails. */
  jwksMaxStaleMs: number
  /** The longest JWKS reply read, in bytes: a longer one is a failed fetch. */
  jwksMaxBytes: number
  /** ms a JWKS fetch may take, its reply read whole: a longer one is a failed fetch. */
  jwksTimeoutMs: number
}

/**
 * Verifies tokens issued by another identity provider (a game platform's accounts), so its
 * users need no presenced token. Signatures are checked with jose against a PEM key or a JWKS;
 * `iss`, `aud` and `exp` are required as configured, dates must be sane (token-claims.ts); the user
 * id comes from one claim, exactly.
 *
 * @example
 * const platform = new ExternalTokens({ keys: { kind: 'jwks-url', url: 'https://id.example.com/jwks.json' },
 *   issuer: 'https://id.example.com', audience: ['presenced'], userClaim: 'sub',
 *   algorithms: ['RS256'], jwksCooldownMs: 30_000, jwksMaxAgeMs: 600_000,
 *   jwksMaxStaleMs: 86_400_000, jwksMaxBytes: 1_048_576, jwksTimeoutMs: 5000 }, app.log)
 * const claims = await platform.verify(token) // throws unless signed, undefined without a user
 */
export class ExternalTokens {
  readonly #options: ExternalTokenOptions
  readonly #keys: KeyObject | JwksKeys

  /** @param log where a JWKS that cannot be loaded (and loads again) is said */
  constructor(options: ExternalTokenOptions, log?: JwksLog) {
    this.#options = options
    this.#keys = keysOf(options, log)
  }

  /**
   * Loads a JWKS URL's set now (at start, in the background), so that the first token after a
   * start does not wait for the fetch, and keeps it fresh from then on until `stop`
   * (JwksKeys.keepFresh), so that no later token waits for one either. Resolves once the first
   * fetch is done, loaded or not: a failure is said in the log (once) and starts the cooldown,
   * as a token's fetch that failed would; never rejects. Nothing to do for a PEM key or a JWKS
   * file (read at start already, and again only for a key it lacks).
   */
  async prefetch(): Promise<void> {
    if (this.#keys instanceof JwksKeys && this.#options.keys.kind === 'jwks-url') {
      await this.#keys.keepFresh()
    }
  }

  /** Stops keeping a JWKS URL's set fresh in the background (at shutdown). */
  stop(): void {
    if (this.#keys instanceof JwksKeys) this.#keys.stop()
  }

  /**
   * ms until the platform's keys may be loaded again, for a token refused as unavailable to
   * wait (JwksKeys.retryAfterMs); 0 when they may be now, or are no JWKS.
   */
  retryAfterMs(): number {
    return this.#keys instanceof JwksKeys ? this.#keys.retryAfterMs() : 0
  }

  /**
   * The claims of a valid token; undefined for a token the platform did sign, but whose user
   * claim names no user (PRESENCED_JWT_USER_CLAIM); throws for any other refusal: jose's errors
   * about the token, JwksUnavailable when the platform's keys cannot tell. `now` is epoch ms, as
   * the caller's clock has it.
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
    const userId = parseExactUserId(payload[this.#options.userClaim])
    if (!userId) return undefined
    return {
      userId,
      name: typeof payload.name === 'string' ? payload.name : undefined,
      jti: tokenIdOf(payload),
      exp: payload.exp!,
    }
  }
}

/**
 * Verifies against a JWKS. A signature that fails against the key its `kid` names may be a key
 * the platform replaced under the same `kid`: the set is loaded again (at most once per
 * cooldown, see JwksKeys.refresh) and the token verified once more before it is refused. When
 * that load cannot be made (the JWKS is down), the token is refused for its signature, not as
 * unavailable: the key it names is known and refuses it, and a forged token must count as a
 * wrong credential (the failure limit) whether or not the platform's endpoint answers.
 */
async function verifyWithKeySet(token: string, keys: JwksKeys, checks: JWTVerifyOptions) {
  const loaded = keys.loads()
  try {
    return await verifyWithAny(token, keys, checks)
  } catch (error) {
    if (!(error instanceof joseErrors.JWSSignatureVerificationFailed)) throw error
    // keys loaded since this check began (by another request) are tried without a load
    if (keys.loads() === loaded && !(await reloaded(keys, error))) throw error
    return await verifyWithAny(token, keys, checks)
  }
}

/**
 * jwtVerify against the set. A token naming no `kid` that several of the set's keys could verify
 * (a platform rotating keys without kids publishes both) makes jose throw
 * JWKSMultipleMatchingKeys, which holds those keys: each is tried, as jose advises, and the token
 * is refused for its signature only when none verifies it (else every token of such a platform
 * was refused as forged while its set held two keys).
 */
async function verifyWithAny(token: string, keys: JwksKeys, checks: JWTVerifyOptions) {
  try {
    return await jwtVerify(token, keys.getKey, checks)
  } catch (error) {
    if (!(error instanceof joseErrors.JWKSMultipleMatchingKeys)) throw error
    for await (const key of error) {
      try {
        return await jwtVerify(token, key, checks)
      } catch (refusal) {
        if (!(refusal instanceof joseErrors.JWSSignatureVerificationFailed)) throw refusal
      }
    }
    throw new joseErrors.JWSSignatureVerificationFailed()
  }
}

/** Whether the set was loaded anew; a load that fails rethrows the signature's refusal. */
async function reloaded(keys: JwksKeys, refusal: Error): Promise<boolean> {
  try {
    return await keys.refresh()
  } catch (error) {
    if (error instanceof JwksUnavailable) throw refusal
    throw error
  }
}

function keysOf(options: ExternalTokenOptions, log: JwksLog | undefined): KeyObject | JwksKeys {
  const { keys, jwksCooldownMs: cooldownMs, jwksMaxAgeMs, jwksMaxStaleMs: maxStaleMs } = options
  switch (keys.kind) {
    case 'pem':
      return createPublicKey(keys.pem)
    case 'jwks-url': {
      const times = { cooldownMs, maxAgeMs: jwksMaxAgeMs, maxStaleMs }
      const limits = { timeoutMs: options.jwksTimeoutMs, maxBytes: options.jwksMaxBytes }
      return new JwksKeys(() => jwksFromUrl(keys.url, limits), 'JWKS URL', times, log)
    }
    case 'jwks-file': {
      // a file has no age: it is read again only for a key it lacks
      const times = { cooldownMs, maxAgeMs: Infinity, maxStaleMs }
      const initial = readJwksFile(keys.path)
      return new JwksKeys(() => jwksFromFile(keys.path), 'JWKS file', times, log, initial)
    }
  }
}
