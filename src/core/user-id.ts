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
 * A string is the canonical digits, optionally padded with ASCII whitespace (space, tab, line
 * feed, vertical tab, form feed, carriage return): the padding .NET's Int64.Parse skips, so what
 * Roblox's ASP.NET model binding takes (`userIds=%20123` in a form, `" 123"` in JSON) is taken on
 * every surface, and the id kept as its canonical digits. Everything else is refused, on every
 * surface alike: a sign (`+123`, which .NET takes), leading zeros (`0123`, which .NET takes; read
 * as octal by some clients), other Unicode spaces, other digits, exponents and fractions.
 *
 * @example parseUserId('9007199254740993') // '9007199254740993'
 * @example parseUserId(' 123\n') // '123'
 * @example parseUserId(1.5) // undefined
 */
export function parseUserId(input: unknown): UserId | undefined {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input > 0 ? (String(input) as UserId) : undefined
  }
  if (typeof input === 'bigint') {
    return input > 0n && input <= MAX_INT64 ? (input.toString() as UserId) : undefined
  }
  if (typeof input !== 'string') return undefined
  const text = CANONICAL.test(input) ? input : unpadded(input)
  if (text === undefined) return undefined
  if (text.length === 19 && BigInt(text) > MAX_INT64) return undefined
  return text as UserId
}

/**
 * `input` without its ASCII whitespace padding when what is left is canonical digits. A loop, not
 * a regex: `/\s+$/` is quadratic on a long string of spaces broken by other characters.
 */
function unpadded(input: string): string | undefined {
  let start = 0
  let end = input.length
  while (start < end && isPadding(input.charCodeAt(start))) start++
  while (end > start && isPadding(input.charCodeAt(end - 1))) end--
  if (end - start > 19 || (start === 0 && end === input.length)) return undefined
  const text = input.slice(start, end)
  return CANONICAL.test(text) ? text : undefined
}

function isPadding(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d)
}

/**
 * parseUserId without the padding: for an identity (a token's subject or user claim), which must
 * name the user exactly. A padded claim is an identity provider's misconfiguration, refused
 * (401) rather than guessed; padding is a habit of clients' request text, not of signed tokens.
 *
 * @example parseExactUserId('7') // '7'
 * @example parseExactUserId(' 7') // undefined
 */
export function parseExactUserId(input: unknown): UserId | undefined {
  const id = parseUserId(input)
  return typeof input === 'string' && id !== input ? undefined : id
}

/** Same rules as user ids: place, universe and title ids are int64 too. */
export const parseInt64Id = parseUserId as (input: unknown) => string | undefined

/**
 * An Xbox title id: a 32-bit unsigned integer, written as every id is (parseUserId's rules: a
 * JSON number while exact, or digits with ASCII padding taken), kept as its canonical digits.
 *
 * @example parseTitleId(' 1717113201') // '1717113201'
 * @example parseTitleId('4294967296') // undefined
 */
export function parseTitleId(input: unknown): string | undefined {
  const id = typeof input === 'bigint' ? undefined : parseUserId(input)
  return id !== undefined && id.length <= 10 && Number(id) <= 0xffffffff ? id : undefined
}
