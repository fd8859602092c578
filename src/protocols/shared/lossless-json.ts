/**
 * JSON.parse as every protocol needs it for ids, which are int64 and written as runs of digits:
 *
 * - JSON.parse rounds integers above 2^53, so an integer literal too long to be exact is turned
 *   into a string literal holding the same digits; the id parsers then accept it exactly or
 *   refuse it by name.
 * - JSON.parse reads `1e3` as 1000 and `1.0` as 1, which an id parser could not tell from the
 *   literals `1000` and `1`. A literal with a fraction or an exponent whose value is a whole
 *   number is therefore kept as its text (`"1e3"`), so no integer reader takes it for one.
 *   Other fractions (`1.5`) stay numbers: nothing that reads an integer accepts them anyway.
 *
 * Bodies without such a literal take the fast path (JSON.parse alone).
 */
export function parseJsonLossless(text: string): unknown {
  const value: unknown = mayNeedRewrite(text) ? JSON.parse(rewriteNumbers(text)) : JSON.parse(text)
  // a lone surrogate can only come escaped (the text is UTF-8 decoded): looked for only then
  if (text.includes('\\u') && SURROGATE_ESCAPE.test(text) && !isText(value)) {
    throw new NotTextError()
  }
  return value
}

/**
 * Thrown by parseJsonLossless for valid JSON holding a string (or a member name) that is not
 * Unicode text: a `\ud800` escape without its pair. Stored, it was read back differently (the
 * SQLite store kept U+FFFD in its place while the reply had echoed the escape); every reader of
 * the wire refuses it as it refuses bytes that are not UTF-8 (body-text.ts).
 */
export class NotTextError extends SyntaxError {
  constructor() {
    super('a string escapes a lone UTF-16 surrogate (such as \\ud800): it is not Unicode text')
  }
}

/** `\u` and a surrogate's code (D800 to DFFF); an escaped backslash before it only costs a walk. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/

/** A surrogate code unit without its pair (in `u` mode a pair is one code point, never Cs). */
const LONE_SURROGATE = /\p{Cs}/u

/** Whether every string and member name in `value` is well-formed. A loop: no depth limit. */
function isText(value: unknown): boolean {
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const item = pending.pop()
    if (typeof item === 'string') {
      if (LONE_SURROGATE.test(item)) return false
    } else if (Array.isArray(item)) {
      for (const element of item as unknown[]) pending.push(element)
    } else if (item !== null && typeof item === 'object') {
      for (const [key, member] of Object.entries(item)) {
        if (LONE_SURROGATE.test(key)) return false
        pending.push(member)
      }
    }
  }
  return true
}

/**
 * Whether 16 digits follow each other anywhere, or a digit is followed by `.`, `e` or `E` (a
 * string such as a uuid may say so too: the rewrite then leaves it as it is). A loop rather
 * than a regex: measured, /\d{16}/ took twice as long as JSON.parse itself on an 1100-XUID body.
 */
function mayNeedRewrite(text: string): boolean {
  let run = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (isDigit(c)) {
      if (++run === 16) return true
    } else {
      if (run > 0 && (c === 0x2e || c === 0x65 || c === 0x45)) return true // . e E
      run = 0
    }
  }
  return false
}

/** A number literal as JSON's grammar has it (the scan below is looser, to find its end). */
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/

/**
 * Quotes the literals described above. Only a well-formed literal in a value position is
 * quoted, so the rewrite never turns invalid JSON (`[01]`, `[1.]`, `{1:2}`) into valid JSON:
 * JSON.parse still refuses what it would have refused.
 */
function rewriteNumbers(text: string): string {
  let out = ''
  let copiedUpTo = 0
  /** The open containers, innermost last: `{` or `[`. */
  const open: number[] = []
  /** The last structural character, or 0 right after a value. */
  let previous = 0
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      i++
      while (i < n) {
        const d = text.charCodeAt(i)
        if (d === 0x5c /* \ */) i += 2
        else if (d === 0x22) {
          i++
          break
        } else i++
      }
      previous = 0
      continue
    }
    if (c !== 0x2d /* - */ && !isDigit(c)) {
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        open.push(c)
        previous = c
      } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        open.pop()
        previous = 0
      } else if (c === 0x2c /* , */ || c === 0x3a /* : */) {
        previous = c
      } else if (c > 0x20) {
        previous = 0 // true, false, null (or garbage JSON.parse will refuse)
      }
      i++
      continue
    }
    const start = i
    i++
    while (i < n && isDigit(text.charCodeAt(i))) i++
    const digits = i - start - (c === 0x2d ? 1 : 0)
    let isInteger = true
    if (text.charCodeAt(i) === 0x2e /* . */) {
      isInteger = false
      i++
      while (i < n && isDigit(text.charCodeAt(i))) i++
    }
    const e = text.charCodeAt(i)
    if (e === 0x65 || e === 0x45) {
      isInteger = false
      i++
      const sign = text.charCodeAt(i)
      if (sign === 0x2b || sign === 0x2d) i++
      while (i < n && isDigit(text.charCodeAt(i))) i++
    }
    const atKey = previous === 0x7b || (previous === 0x2c && open[open.length - 1] === 0x7b)
    previous = 0
    const literal = text.slice(start, i)
    const quote = isInteger
      ? digits > 15 && !Number.isSafeInteger(Number(literal))
      : Number.isInteger(Number(literal))
    if (quote && !atKey && JSON_NUMBER.test(literal)) {
      out += text.slice(copiedUpTo, start) + '"' + literal + '"'
      copiedUpTo = i
    }
  }
  return copiedUpTo === 0 ? text : out + text.slice(copiedUpTo)
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39
}

/**
 * A JSON request body as every JSON route takes it: empty is absent (undefined), long integers
 * stay exact; invalid JSON throws a 400 error with code INVALID_JSON, which each protocol's
 * error handler words its own way.
 */
export function parseJsonBody(text: string): unknown {
  if (text === '') return undefined
  try {
    return parseJsonLossless(text)
  } catch (cause) {
    const error = new Error(
      cause instanceof NotTextError
        ? `The request body is not text: ${cause.message}.`
        : 'The request body is not valid JSON.',
    ) as Error & {
      statusCode: number
      code: string
    }
    error.statusCode = 400
    error.code = 'INVALID_JSON'
    throw error
  }
}
