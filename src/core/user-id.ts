/**
 * A user id is a positive int64. It is kept as its canonical decimal string everywhere inside
 * presenced, because a JS number silently rounds above 2^53.
 */
export type UserId = string & { readonly __brand: 'UserId' }

const MAX_INT64 = 9223372036854775807n
const CANONICAL = /^[1-9][0-9]{0,18}$/

/**
 * Returns the canonical id, or undefined when the input is not a positive int64.
 * Numbers are accepted only while they are exact (safe integers); a larger id must arrive as
 * a string or as a JSON literal kept exact by the body parser.
 *
 * @example parseUserId('9007199254740993') // '9007199254740993'
 * @example parseUserId(1.5) // undefined
 */
export function parseUserId(input: unknown): UserId | undefined {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input > 0 ? (String(input) as UserId) : undefined
  }
  if (typeof input === 'bigint') {
    return input > 0n && input <= MAX_INT64 ? (input.toString() as UserId) : undefined
  }
  if (typeof input !== 'string' || !CANONICAL.test(input)) return undefined
  if (input.length === 19 && BigInt(input) > MAX_INT64) return undefined
  return input as UserId
}

/** Same rules as user ids: place, universe and title ids are int64 too. */
export const parseInt64Id = parseUserId as (input: unknown) => string | undefined
