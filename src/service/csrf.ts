import { timingSafeEqual } from 'node:crypto'
import type { Tokens } from './tokens.js'

/** A token is valid in the bucket it was issued in and the next one: 30 to 60 minutes. */
export const CSRF_BUCKET_MS = 30 * 60 * 1000
const LENGTH = 16

/** The subject of a token issued to a caller without credentials: its client address. */
export function anonymousSubject(address: string): string {
  return `anon:${address}`
}

/**
 * Stateless CSRF tokens, bound to one subject (a user id): an HMAC of the subject and a time
 * bucket under a key derived from the token secret. Any node verifies any node's token, and a
 * token issued to one user is refused for another.
 *
 * @example
 * const csrf = new CsrfTokens(tokens)
 * const token = csrf.issue('123', Date.now())
 * csrf.verify('123', token, Date.now()) // true
 */
export class CsrfTokens {
  readonly #tokens: Tokens

  constructor(tokens: Tokens) {
    this.#tokens = tokens
  }

  issue(subject: string, now: number): string {
    return this.#mac(subject, Math.floor(now / CSRF_BUCKET_MS)).toString('base64url')
  }

  verify(subject: string, token: string | undefined, now: number): boolean {
    if (token === undefined || token.length === 0 || token.length > 64) return false
    const given = Buffer.from(token, 'base64url')
    if (given.length !== LENGTH) return false
    const bucket = Math.floor(now / CSRF_BUCKET_MS)
    return (
      timingSafeEqual(given, this.#mac(subject, bucket)) ||
      timingSafeEqual(given, this.#mac(subject, bucket - 1))
    )
  }

  #mac(subject: string, bucket: number): Buffer {
    return this.#tokens.mac('roblox-csrf', `${subject}\u0000${bucket}`).subarray(0, LENGTH)
  }
}
