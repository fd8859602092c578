import { InvalidIdError } from './errors.js'

/** An id as callers may hold it: a safe integer, a decimal string, or a bigint. */
export type Id = number | string | bigint

/** Anything with an id: a user object from another API, a Presence, `{ id }`. */
export type HasId = { readonly id: Id }

const MAX_INT64 = 9223372036854775807n
const CANONICAL = /^[1-9][0-9]{0,18}$/

/**
 * The canonical decimal string of a positive int64 id, or throws InvalidIdError. A number is
 * accepted only while it is exact: 2^53 + 1 typed as a number has already been rounded.
 */
export function toIdString(input: unknown, what = 'user id'): string {
  if (typeof input === 'object' && input !== null && 'id' in input) {
    return toIdString((input as { id: unknown }).id, what)
  }
  if (typeof input === 'number') {
    if (Number.isSafeInteger(input) && input > 0) return String(input)
  } else if (typeof input === 'bigint') {
    if (input > 0n && input <= MAX_INT64) return input.toString()
  } else if (typeof input === 'string') {
    const s = input.trim()
    if (CANONICAL.test(s) && (s.length < 19 || BigInt(s) <= MAX_INT64)) return s
  }
  throw new InvalidIdError(input, what)
}

const MARK = '\u0000int:'
const MARKED = /"\\u0000int:(\d+)"/g

/**
 * JSON.stringify, except that bigint values are written as bare integer literals, so an int64
 * id travels exactly as the wire format has it (a number), whatever its size.
 */
export function stringifyJson(value: unknown): string {
  const text = JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'bigint' ? MARK + v.toString() : v,
  )
  return text.includes('\\u0000int:') ? text.replace(MARKED, '$1') : text
}
