import { SignJWT, errors as joseErrors, jwtVerify } from 'jose'
import { createHmac } from 'node:crypto'
import { parseUserId, type UserId } from '../core/user-id.js'

export interface TokenClaims {
  userId: UserId
  /** Display name carried in the token, if it was issued with one. */
  name: string | undefined
  /** The token's id, for revocation. */
  jti: string | undefined
  /** Expiry, epoch seconds. */
  exp: number | undefined
}

export interface IssueOptions {
  name?: string
  /** Lifetime in seconds; default 30 days. */
  ttlSeconds?: number
}

/**
 * Access tokens: HS256 JWTs whose subject is the user id (a decimal string, never a number).
 * Only HS256 is accepted, so `alg: none` and key-confusion tokens are refused.
 */
export class Tokens {
  readonly #key: Uint8Array
  readonly #derived = new Map<string, Buffer>()

  constructor(secret: string) {
    this.#key = new TextEncoder().encode(secret)
  }

  async issue(userId: UserId, options: IssueOptions = {}): Promise<string> {
    const jwt = new SignJWT(options.name ? { name: options.name } : {})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuedAt()
      .setJti(crypto.randomUUID())
      .setExpirationTime(`${options.ttlSeconds ?? 30 * 24 * 3600}s`)
    return jwt.sign(this.#key)
  }

  /**
   * The claims of a token whose signature and claims are valid, or undefined for anything else
   * (never throws). Whether it was revoked is the Authenticator's question, not this one's.
   */
  async verify(token: string): Promise<TokenClaims | undefined> {
    if (token.length === 0 || token.length > 4096) return undefined
    try {
      const { payload } = await jwtVerify(token, this.#key, { algorithms: ['HS256'] })
      // a JSON number subject would be rounded past 2^53: only the decimal string we issue
      const userId = typeof payload.sub === 'string' ? parseUserId(payload.sub) : undefined
      if (!userId) return undefined
      return {
        userId,
        name: typeof payload.name === 'string' ? payload.name : undefined,
        jti: payload.jti,
        exp: payload.exp,
      }
    } catch (error) {
      if (error instanceof joseErrors.JOSEError || error instanceof TypeError) return undefined
      throw error
    }
  }

  /**
   * HMAC-SHA256 of `data` under a key derived from the token secret for `purpose`: stateless
   * tokens of other kinds (e.g. CSRF) need no secret of their own and verify on every node.
   */
  mac(purpose: string, data: string): Buffer {
    let key = this.#derived.get(purpose)
    if (!key) {
      key = createHmac('sha256', this.#key).update(`presenced:${purpose}`).digest()
      this.#derived.set(purpose, key)
    }
    return createHmac('sha256', key).update(data).digest()
  }
}
