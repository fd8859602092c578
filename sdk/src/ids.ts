import { InvalidIdError } from './errors.js'

/** An id as callers may hold it: a safe integer, a decimal string, or a bigint. */
export type Id = number | string | bigint

/**
 * Anything with an id: a user object from another API, `{ id }`. A Presence is not one: its id
 * is `userId` (pass `presence.userId`).
 */
export type HasId = { readonly id: Id }

/**
 * Many ids: an array, a Set, any iterable object of them. A string is not one, though it is
 * iterable: `'123'` would be the users 1, 2 and 3.
 */
export type Ids = Iterable<Id | HasId> & object

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
    // the server's rule (presenced's user-id.ts): ASCII whitespace around the digits is taken,
    // as .NET's Int64.Parse takes it; other Unicode spaces (trim()'s) are not
    const s = unpadded(input)
    if (CANONICAL.test(s) && (s.length < 19 || BigInt(s) <= MAX_INT64)) return s
  }
  throw new InvalidIdError(input, what)
}

/**
 * The canonical decimal string of each id of `ids`, in order (toIdString). Throws a TypeError
 * for what is not an iterable object of ids: a string would be read as its characters, a number
 * or a `{ id }` as no ids at all, and either would answer other users or none without a word.
 */
export function toIdStrings(ids: Ids, what = 'user id'): string[] {
  return listOf(ids, `${what}s`, ': pass [id] for one').map((u) => toIdString(u, what))
}

/**
 * The items of a list given as any iterable object (an array, a Set, a generator). Throws a
 * TypeError for anything else: a string would be read as its characters, a number or a lone
 * object as no items at all.
 */
export function listOf<T>(items: Iterable<T> & object, what: string, hint = ''): T[] {
  const value: unknown = items
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function'
  ) {
    const shown = typeof value === 'string' ? JSON.stringify(value) : String(value)
    throw new TypeError(
      `Expected ${what} as an array (or another iterable), got ${typeof value} ${shown.slice(0, 40)}${hint}`,
    )
  }
  return Array.from(items)
}

/**
 * JSON.stringify, except that bigint values are written as bare integer literals, so an int64
 * id travels exactly as the wire format has it (a number), whatever its size. A bigint is
 * written as a marked string first, then unquoted; the mark carries random characters of each
 * call, so a caller's string is never taken for one (a `location` of `"\u0000int:5"` stays that
 * string: with a fixed mark it was sent as the number 5).
 */
export function stringifyJson(value: unknown): string {
  let mark: string | undefined
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'bigint') return v
    mark ??= `\u0000int${Math.random().toString(36).slice(2)}:`
    return mark + v.toString()
  })
  if (mark === undefined) return text
  // JSON.stringify writes the mark's NUL as \u0000
  const quoted = JSON.stringify(mark).slice(1, -1).replace(/\\/g, '\\\\')
  return text.replace(new RegExp(`"${quoted}(\\d+)"`, 'g'), '$1')
}

/**
 * `text` without space, tab, line feed, vertical tab, form feed and carriage return at either
 * end. A loop: a regex's `[…]+$` is quadratic on a long run of spaces followed by anything else.
 */
function unpadded(text: string): string {
  let start = 0
  let end = text.length
  while (start < end && isPadding(text.charCodeAt(start))) start++
  while (end > start && isPadding(text.charCodeAt(end - 1))) end--
  return start === 0 && end === text.length ? text : text.slice(start, end)
}

function isPadding(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d)
}
