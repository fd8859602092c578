import { isUtf8 } from 'node:buffer'
import { parse as parseQuery, type ParsedUrlQuery } from 'node:querystring'
import { fail, type ErrorCode } from '../../core/errors.js'

/*
 * How every body with text in it is read, on every protocol: as UTF-8, the only charset the
 * service reads (RFC 8259 has JSON exchanged as UTF-8; NDJSON and form bodies follow). A body
 * labelled with another charset is refused (415) rather than read as UTF-8 (a UTF-16 body read
 * so is garbage that may still parse); bytes that are not UTF-8 are refused (400) rather than
 * read as U+FFFD, which would write a name or a rich presence string other than the one sent;
 * a UTF-8 byte-order mark at the start is skipped (RFC 8259 §8.1 lets a parser ignore it, as
 * .NET's readers do). Each protocol's error handler words the refusal in its own shape.
 */

/** Charset names read as UTF-8 (compared lower-cased, without quotes). */
const UTF8_NAMES: ReadonlySet<string> = new Set(['utf-8', 'utf8'])

/**
 * Refuses (415 UNSUPPORTED_MEDIA_TYPE) a Content-Type whose `charset` is not UTF-8. No charset
 * is UTF-8.
 *
 * @example checkCharset('application/json; charset=utf-16') // throws, 415
 */
export function checkCharset(contentType: string | undefined): void {
  if (contentType === undefined || !/charset/i.test(contentType)) return
  for (const parameter of contentType.split(';').slice(1)) {
    const eq = parameter.indexOf('=')
    if (eq < 0 || parameter.slice(0, eq).trim().toLowerCase() !== 'charset') continue
    const name = parameter
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase()
    if (!UTF8_NAMES.has(name)) {
      throw fail(
        'UNSUPPORTED_MEDIA_TYPE',
        `The body's charset ${JSON.stringify(name.slice(0, 40))} is not read: send it as UTF-8 (charset=utf-8, or no charset).`,
      )
    }
  }
}

/** Whether `bytes` start with a UTF-8 byte-order mark (EF BB BF). */
export function hasUtf8Bom(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf
}

/**
 * The text of a body's bytes: a leading UTF-8 BOM skipped, bytes that are not UTF-8 refused
 * (400 `code`, INVALID_JSON for a JSON body).
 *
 * @example bodyText(Buffer.from('\ufeff{}')) // '{}'
 */
export function bodyText(bytes: Buffer, code: ErrorCode = 'INVALID_REQUEST'): string {
  const start = hasUtf8Bom(bytes) ? 3 : 0
  if (!isUtf8(start === 0 ? bytes : bytes.subarray(start))) {
    throw fail(code, 'The request body is not valid UTF-8.')
  }
  return bytes.toString('utf8', start)
}

/**
 * A form body (`application/x-www-form-urlencoded`) as querystring parses it, except that a
 * percent-escape whose bytes are not UTF-8 (`%E9`, a latin-1 client's `é`) is refused (400)
 * rather than read as U+FFFD. A malformed escape (`%zz`) stays text, as querystring keeps it.
 *
 * @example parseForm('userIds=1&userIds=2') // { userIds: ['1', '2'] }
 */
export function parseForm(text: string): ParsedUrlQuery {
  let notUtf8 = false
  const query = parseQuery(text, undefined, undefined, {
    // querystring reads a piece leniently when this throws: note it instead
    decodeURIComponent: (piece: string) => {
      try {
        return decodeURIComponent(piece.replace(MALFORMED_ESCAPE, '%25'))
      } catch {
        notUtf8 = true
        return piece
      }
    },
  })
  if (notUtf8) {
    throw fail('INVALID_REQUEST', 'The form body has a percent-escape that is not valid UTF-8.')
  }
  return query
}

/** A `%` not followed by two hex digits. */
const MALFORMED_ESCAPE = /%(?![0-9a-fA-F]{2})/g
