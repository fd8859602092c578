import { SignJWT, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose'
import { createHmac } from 'node:crypto'
import { parseExactUserId, type UserId } from '../core/user-id.js'
import { ExternalTokens, type ExternalTokenOptions } from './external-tokens.js'
import type { JwksLog } from './jwks-keys.js'
import { BEARER_PREFIX, isPlainBearerToken } from './bearer.js'
import { assertDateClaims, tokenIdOf } from './token-claims.js'

export interface TokenClaims {
  userId: UserId
  /** Display name carried in the token, if it was issued with one. */
  name: string | undefined
  /** The token's id, for revocation. */
  jti: string | undefined
  /**
   * Expiry, epoch seconds: every accepted token has one (a token valid forever could not be
   * revoked for good without remembering its revocation forever), no later than year 9999.
   */
  exp: number
}

export interface IssueOptions {
  name?: string
  /** Lifetime in seconds; default 30 days. */
  ttlSeconds?: number
}

export interface TokensOptions {
  /** A platform's own tokens, accepted besides presenced's (PRESENCED_JWT_*); none when unset. */
  external?: ExternalTokenOptions | undefined
  /** Where a platform's JWKS that cannot be loaded (and loads again) is said. */
  log?: JwksLog | undefined
  /** How many verified tokens are remembered (least recently used go first). @default 10000 */
  cacheSize?: number
  /** Epoch milliseconds. @default Date.now */
  now?: () => number
}

/**
 * The longest a verified token is remembered, even when it expires later: a key removed from a
 * platform's JWKS stops working within this time (a fetched JWKS is kept PRESENCED_JWT_JWKS_MAX_AGE,
 * 10 minutes, anyway; longer while it cannot be fetched again).
 */
const MAX_REMEMBER_MS = 5 * 60_000

/**
 * Why a token is refused: `forged` when it is no token this service (or the platform) signed
 * (bad signature, unknown key, malformed, empty), `expired` when it was genuinely signed and its
 * `exp` has passed (a fresh token will do), `stale` when it was genuinely signed but is not valid
 * for another reason (not before, a date out of range, wrong issuer or audience, a platform's
 * user claim that names no user: a signature only the key's holder can make, which no guesser
 * has, but a fresh token of the same kind would be refused too), `unavailable` when the
 * platform's keys could not be read (not the client's fault).
 */
export type TokenRefusal = 'forged' | 'expired' | 'stale' | 'unavailable'

interface Remembered {
  claims: TokenClaims
  /** Epoch ms the claims are answered from memory until. */
  until: number
  /** #placements when it was last put at the young end of the Map's order. */
  placed: number
  /** The token (ownCopy): a lookup answers only for this very text. */
  token: string
  /** The Map's key (cacheKey of `token`), put back when the entry moves. */
  key: number
  /** `Bearer <token>` is its usual header (isPlainBearerToken): rememberedBearer finds it. */
  bearer: boolean
}

/**
 * The token as the cache of verified tokens keeps it: a copy of its own. A Bearer token is a
 * slice of its request's header and, kept as it is, would keep the whole header alive for as long
 * as it is remembered (about 230 bytes per open real-time connection). Only an entry being added
 * is copied: a lookup uses the token as it came (text is compared, so a slice finds its copy).
 * Found by its text (cacheKey), not a digest of it: the SHA-256 of every request's token (and the
 * string made of it) was about 10k instructions per heartbeat, a remembered token's whole check
 * otherwise; the text answers only for the very same token, as a digest did. Undefined for a
 * token whose text would not come back the same from utf-8 (a lone surrogate): never remembered.
 */
function ownCopy(token: string): string | undefined {
  const copy = Buffer.from(token, 'utf8').toString('utf8')
  return copy === token ? copy : undefined
}

/**
 * Where a token is found in the cache: a number made of its last 8 characters (the end of its
 * signature: about 48 random bits of an HS256 JWT's, as many of any other's; all of it when
 * shorter), mixed into 32 bits of which the top 30 are kept. A Map hashes the key of every
 * lookup, and the token comes in a new string each request: hashing all ~200 characters of
 * presenced's tokens was ~2.4k of a heartbeat's instructions under callgrind, its last 43 ~0.56k,
 * a slice of its last 16 (a new string, hashed through V8's runtime) ~0.8k with its lookup; a
 * number is hashed in the Map's own code, its characters read where they are. Below 2^30, so a
 * small integer (a Smi, with or without pointer compression), kept in the Map's entry itself: a
 * key of up to 52 bits was a HeapNumber, another object read (a cache line, cold at speed) for
 * each entry of its bucket compared (issue 19: the Map's lookup was the heartbeat's largest
 * builtin in a timed profile, most of its samples on those reads). The entry found answers only
 * if its whole token is the same text: two tokens may end alike (a forged one may copy a
 * signature); two verified tokens whose keys met (about one pair in a cache of 46,000) would
 * only take each other's place (one verified again), not each other's claims.
 */
function cacheKey(token: string): number {
  const n = token.length
  let h = 0
  for (let i = n > KEY_CHARS ? n - KEY_CHARS : 0; i < n; i++) {
    h = Math.imul(h ^ token.charCodeAt(i), MIX)
  }
  // the top 30 bits (the best mixed): a Smi
  return h >>> 2
}

const KEY_CHARS = 8
/** An odd multiplier that spreads each character over the top bits (the golden ratio's). */
const MIX = 0x9e3779b1

/**
 * Access tokens. presenced's own are HS256 JWTs whose subject is the user id (a decimal string,
 * never a number); only HS256 is accepted for them, so `alg: none` and key-confusion tokens are
 * refused. With `external`, a platform's tokens (RS256, ES256, EdDSA, ...) are accepted too.
 *
 * `verify` answers "is the signature valid and are the claims acceptable now" — not "has the
 * token been revoked": revocation is the caller's check, against the store that keeps it. That
 * is what lets `verify` remember a verified token until it expires, so a client beating every
 * few seconds costs one signature check per token, not one per request.
 *
 * @example
 * const tokens = new Tokens(secret)
 * const token = await tokens.issue('123' as UserId, { ttlSeconds: 3600 })
 * const claims = await tokens.verify(token) // { userId: '123', ... }, or undefined
 */
export class Tokens {
  readonly #secret: Uint8Array<ArrayBuffer>
  /** Imported once: importing the key on every verify was 15 % of a heartbeat's CPU time. */
  readonly #hmacKey: Promise<CryptoKey>
  readonly #external: ExternalTokens | undefined
  /**
   * cacheKey(token) → its token's claims until `until` (epoch ms); Map order: about least
   * recently used first.
   */
  readonly #verified = new Map<number, Remembered>()
  /** Counts insertions into #verified: how young an entry is in its order. */
  #placements = 0
  readonly #cacheSize: number
  readonly #now: () => number
  readonly #derived = new Map<string, Buffer>()

  constructor(secret: string, options: TokensOptions = {}) {
    this.#secret = new TextEncoder().encode(secret)
    this.#hmacKey = crypto.subtle.importKey(
      'raw',
      this.#secret,
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    )
    // a rejection surfaces where the key is awaited; this only keeps it from being "unhandled"
    this.#hmacKey.catch(() => {})
    this.#external = options.external && new ExternalTokens(options.external, options.log)
    this.#cacheSize = options.cacheSize ?? 10_000
    this.#now = options.now ?? Date.now
  }

  async issue(userId: UserId, options: IssueOptions = {}): Promise<string> {
    // by the clock verify reads: a token issued "now" is never issued in its future
    const iat = Math.floor(this.#now() / 1000)
    const jwt = new SignJWT(options.name ? { name: options.name } : {})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuedAt(iat)
      .setJti(crypto.randomUUID())
      .setExpirationTime(iat + (options.ttlSeconds ?? 30 * 24 * 3600))
    return jwt.sign(await this.#hmacKey)
  }

  /**
   * The claims of a token whose signature and claims are valid (presenced's own, or the
   * configured platform's), or undefined for anything else; never throws. A token verified
   * before is answered from memory with the very same claims until it expires.
   */
  async verify(token: string): Promise<TokenClaims | undefined> {
    const checked = await this.check(token)
    return typeof checked === 'string' ? undefined : checked
  }

  /** Like `verify`, but a refused token says why (TokenRefusal); never throws. */
  async check(token: string): Promise<TokenClaims | TokenRefusal> {
    if (token.length === 0 || token.length > 4096) return 'forged'
    const now = this.#now()
    return this.#remembered(token, now) ?? (await this.#check(token, now))
  }

  /**
   * The claims `check` answers from memory for a token verified before, at once; undefined when
   * it would have to verify it. Every request's caller asks: `check`'s promise, awaited, cost
   * a remembered token's check a promise and a turn of the microtask queue.
   */
  remembered(token: string): TokenClaims | undefined {
    // never remembered (check refuses it unread): not even its last segment is hashed
    if (token.length > 4096) return undefined
    return this.#remembered(token, this.#now())
  }

  /**
   * Loads the platform's JWKS (a URL's) in the background, at start, and keeps it fresh until
   * `stopKeyRefresh`: see ExternalTokens.prefetch. Never rejects; resolves once the first load is
   * done, at once when there is none to load.
   */
  prefetchKeys(): Promise<void> {
    return this.#external?.prefetch() ?? Promise.resolve()
  }

  /** Stops keeping the platform's JWKS fresh (at shutdown); tokens still load it when needed. */
  stopKeyRefresh(): void {
    this.#external?.stop()
  }

  /**
   * Seconds a token refused `unavailable` should wait before it is sent again: until the
   * platform's keys may be loaded again (the rest of the cooldown after a load that failed),
   * at least 1.
   */
  unavailableRetryAfter(): number {
    return Math.max(1, Math.ceil((this.#external?.retryAfterMs() ?? 0) / 1000))
  }

  /** Verified tokens held in memory now, at most `cacheSize` (for metrics and tests). */
  get rememberedTokens(): number {
    return this.#verified.size
  }

  /**
   * `remembered` for an Authorization header (not blank) as it came: the claims of a token
   * remembered when the header is exactly `Bearer <that token>`, else undefined (bearerToken
   * reads it then). Only a token whose usual header that is (Remembered.bearer) is found, so
   * this answers as reading the header first would, with no pattern run over it.
   */
  rememberedBearer(header: string): TokenClaims | undefined {
    if (header.length > 4096 + BEARER_PREFIX.length) return undefined
    const entry = this.#verified.get(cacheKey(header))
    if (
      entry === undefined ||
      !entry.bearer ||
      header.length !== entry.token.length + BEARER_PREFIX.length ||
      !header.startsWith(BEARER_PREFIX) ||
      // a slice compared whole: endsWith, a character at a time, cost as much as the pattern
      header.slice(BEARER_PREFIX.length) !== entry.token
    ) {
      return undefined
    }
    return this.#fresh(entry, this.#now())
  }

  #remembered(token: string, now: number): TokenClaims | undefined {
    const entry = this.#verified.get(cacheKey(token))
    if (entry === undefined || entry.token !== token) return undefined
    return this.#fresh(entry, now)
  }

  /** A remembered entry's claims while they may be answered from memory (see #remembered). */
  #fresh(entry: Remembered, now: number): TokenClaims | undefined {
    if (entry.until <= now) {
      this.#verified.delete(entry.key)
      return undefined
    }
    // Moving a token to the young end on every hit was a Map delete and insert per request;
    // one that moved in the last eighth of the cache's placements is young enough to stay.
    if (this.#placements - entry.placed > this.#cacheSize >> 3) {
      this.#verified.delete(entry.key)
      this.#place(entry)
    }
    return entry.claims
  }

  #place(entry: Remembered): void {
    entry.placed = this.#placements++
    this.#verified.set(entry.key, entry)
  }

  async #check(token: string, now: number): Promise<TokenClaims | TokenRefusal> {
    let claims: TokenClaims | TokenRefusal = 'forged'
    try {
      const { alg } = decodeProtectedHeader(token)
      if (alg === 'HS256') claims = (await this.#checkOwn(token, now)) ?? 'forged'
      else if (this.#external) claims = await this.#checkExternal(this.#external, token, now)
    } catch (error) {
      // jose checks the claims only once the signature holds
      if (error instanceof joseErrors.JWTExpired) return 'expired'
      if (isStale(error)) return 'stale'
      if (error instanceof joseErrors.JOSEError || error instanceof TypeError) return 'forged'
      throw error
    }
    if (typeof claims === 'string') return claims
    Object.freeze(claims)
    const until = Math.min(now + MAX_REMEMBER_MS, claims.exp * 1000)
    const copy = ownCopy(token)
    if (copy === undefined) return claims
    this.#place({
      claims,
      until,
      placed: 0,
      token: copy,
      key: cacheKey(copy),
      bearer: isPlainBearerToken(copy),
    })
    if (this.#verified.size > this.#cacheSize) {
      this.#verified.delete(this.#verified.keys().next().value!)
    }
    return claims
  }

  async #checkExternal(
    external: ExternalTokens,
    token: string,
    now: number,
  ): Promise<TokenClaims | TokenRefusal> {
    try {
      // signed by the platform, but no user: no guess (the claim configured may be wrong)
      return (await external.verify(token, now)) ?? 'stale'
    } catch (error) {
      // whatever failed (a bad signature, the platform's JWKS endpoint down, a broken key
      // file), the token is not accepted, and a request is refused rather than crashed
      return refusalOf(error)
    }
  }

  async #checkOwn(token: string, now: number): Promise<TokenClaims | undefined> {
    const { payload } = await jwtVerify(token, await this.#hmacKey, {
      algorithms: ['HS256'],
      // as for a platform's tokens: one without an expiry would be valid, and its revocation
      // kept, forever (every token presenced issues has one)
      requiredClaims: ['exp'],
      currentDate: new Date(now),
    })
    assertDateClaims(payload, now)
    // a JSON number subject would be rounded past 2^53: only the decimal string we issue
    const userId = typeof payload.sub === 'string' ? parseExactUserId(payload.sub) : undefined
    if (!userId) return undefined
    return {
      userId,
      name: typeof payload.name === 'string' ? payload.name : undefined,
      jti: tokenIdOf(payload),
      exp: payload.exp!,
    }
  }

  /**
   * HMAC-SHA256 of `data` under a key derived from the token secret for `purpose`: stateless
   * tokens of other kinds (e.g. CSRF) need no secret of their own and verify on every node.
   */
  mac(purpose: string, data: string): Buffer {
    let key = this.#derived.get(purpose)
    if (!key) {
      key = createHmac('sha256', this.#secret).update(`presenced:${purpose}`).digest()
      this.#derived.set(purpose, key)
    }
    return createHmac('sha256', key).update(data).digest()
  }
}

/**
 * Why a platform's token failed to verify (see TokenRefusal). jose's errors are about the token
 * but JWKSInvalid, a member of the platform's set that is no public key; the rest (JwksUnavailable,
 * a key of the set that cannot be imported) are about the platform's keys.
 */
function refusalOf(error: unknown): TokenRefusal {
  if (error instanceof joseErrors.JWTExpired) return 'expired'
  if (isStale(error)) return 'stale'
  if (error instanceof joseErrors.JOSEError && !(error instanceof joseErrors.JWKSInvalid)) {
    return 'forged'
  }
  return 'unavailable'
}

/** A genuinely signed token whose claims refuse it now (jose checks them after the signature). */
function isStale(error: unknown): boolean {
  return (
    error instanceof joseErrors.JWTExpired || error instanceof joseErrors.JWTClaimValidationFailed
  )
}
