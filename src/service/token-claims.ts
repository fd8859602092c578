import { errors, type JWTPayload } from 'jose'

/**
 * The latest instant a token's `exp`, `iat` or `nbf` may name: 9999-12-31T23:59:59Z, in epoch
 * seconds. Past it a date is a mistake or an attack, not a lifetime: `exp` 1e306 is a finite
 * number that jose accepts, but it overflows to Infinity once made milliseconds, and a revocation
 * that expires at Infinity is sent to the other nodes as JSON `null` and lost there.
 */
export const LATEST_NUMERIC_DATE = 253_402_300_799

/**
 * How far ahead of this node's clock a token's `iat` may be, in seconds: the issuer's clock (a
 * platform's, or another node's) may run a little ahead of ours. jose checks `exp` and `nbf`
 * with no tolerance at all; a token issued later than this is refused as not issued yet.
 */
export const IAT_SKEW_SECONDS = 60

const DATE_CLAIMS = ['exp', 'iat', 'nbf'] as const

/**
 * Whether the date claims of a token whose signature verified are acceptable beyond what jose
 * checks (that they are numbers, `exp` not past and `nbf` reached): each present one a finite
 * number from 0 to LATEST_NUMERIC_DATE, and `iat` no later than `nowMs` + IAT_SKEW_SECONDS.
 *
 * @example
 * dateClaimsAcceptable({ exp: 1e306 }, Date.now()) // false: beyond year 9999
 * dateClaimsAcceptable({ iat: Date.now() / 1000 + 3600 }, Date.now()) // false: issued in an hour
 */
function dateClaimsAcceptable(payload: JWTPayload, nowMs: number): boolean {
  for (const claim of DATE_CLAIMS) {
    const value = payload[claim]
    if (value === undefined) continue
    // `!(… && …)` and not `<` / `>`: NaN is refused too
    if (!(typeof value === 'number' && value >= 0 && value <= LATEST_NUMERIC_DATE)) return false
  }
  return payload.iat === undefined || payload.iat <= nowMs / 1000 + IAT_SKEW_SECONDS
}

/**
 * Throws jose's claim error when `dateClaimsAcceptable` is false: the signature held, so the
 * token is refused as genuine but not valid now (TokenRefusal `stale`), as jose refuses an
 * expired one, and not counted as a guessed credential (a platform whose clock runs ahead would
 * otherwise block every address its users share).
 */
export function assertDateClaims(payload: JWTPayload, nowMs: number): void {
  if (!dateClaimsAcceptable(payload, nowMs)) {
    throw new errors.JWTClaimValidationFailed('a date claim is out of range', payload)
  }
}

/**
 * A token's id (`jti`), which revokes it (a logout): a string or nothing, as RFC 7519 has it. A
 * number would be revoked under the number on this node and stored as text, so that another node,
 * or this one after a restart, would not find it and take the token again; any other value could
 * not be stored at all. Such a token is refused as jose refuses a claim of the wrong type.
 *
 * @example tokenIdOf({ jti: 'a1b2' }) // 'a1b2'; tokenIdOf({ jti: 424242 }) throws
 */
export function tokenIdOf(payload: JWTPayload): string | undefined {
  const jti: unknown = payload.jti
  if (jti === undefined || typeof jti === 'string') return jti
  throw new errors.JWTClaimValidationFailed('"jti" claim must be a string', payload, 'jti')
}
