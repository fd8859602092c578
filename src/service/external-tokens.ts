import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose'
import { createPublicKey, type KeyObject } from 'node:crypto'
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
  /** A JWKS served over HTTP(S): fetched when needed, cached, fetched again for an unknown `kid`. */
  | { kind: 'jwks-url'; url: string }
  /** A JWKS in a JSON file: read at start and again when a token names an unknown `kid`. */
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
  /** ms after a JWKS fetch (or file read) before an unknown `kid` may trigger another. */
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
  readonly #key: KeyObject | JWTVerifyGetKey

  constructor(options: ExternalTokenOptions) {
    this.#options = options
    this.#key = keyOf(options)
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
    const key = this.#key
    const { payload } =
      typeof key === 'function'
        ? await jwtVerify(token, key, checks)
        : await jwtVerify(token, key, checks)
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

function keyOf(options: ExternalTokenOptions): KeyObject | JWTVerifyGetKey {
  const { keys } = options
  switch (keys.kind) {
    case 'pem':
      return createPublicKey(keys.pem)
    case 'jwks-url':
      return createRemoteJWKSet(new URL(keys.url), {
        cooldownDuration: options.jwksCooldownMs,
        cacheMaxAge: options.jwksMaxAgeMs,
      })
    case 'jwks-file':
      return fileKeySet(keys.path, options.jwksCooldownMs)
  }
}

/** Reads and checks a JWKS file; throws a message naming the file when it is not one. */
export function readJwksFile(path: string): JSONWebKeySet {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as JSONWebKeySet
  if (!Array.isArray(parsed?.keys)) throw new Error(`${path} is not a JWKS: no "keys" array`)
  return parsed
}

/**
 * A JWKS file, re-read when a token names a key it lacks (at most once per cooldown), so keys
 * rotated into the file (a mounted secret, say) are picked up without a restart.
 */
function fileKeySet(path: string, cooldownMs: number): JWTVerifyGetKey {
  let keySet = createLocalJWKSet(readJwksFile(path))
  let readAt = Date.now()
  return async (header, token) => {
    try {
      return await keySet(header, token)
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey) || Date.now() - readAt < cooldownMs) {
        throw error
      }
      readAt = Date.now()
      try {
        keySet = createLocalJWKSet(readJwksFile(path))
      } catch {
        // a file caught mid-write or broken: keep the keys we had, the token stays refused
        throw error
      }
      return keySet(header, token)
    }
  }
}
