/**
 * JSON.parse rounds integers above 2^53, and ids are int64. Before parsing, every integer
 * literal too large to be exact becomes a string literal with the same digits. Bodies without
 * a 16-digit run take the plain fast path.
 */
export function parseJsonLossless(text: string): unknown {
  if (!/\d{16}/.test(text)) return JSON.parse(text)
  return JSON.parse(quoteLongIntegers(text))
}

function quoteLongIntegers(text: string): string {
  let out = ''
  let copied = 0
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // skip a string literal, escapes included
      i++
      while (i < n) {
        const d = text.charCodeAt(i)
        if (d === 0x5c) i += 2
        else {
          i++
          if (d === 0x22) break
        }
      }
      continue
    }
    if (c === 0x2d || isDigit(c)) {
      const start = i
      i++
      while (i < n && isDigit(text.charCodeAt(i))) i++
      const next = text.charCodeAt(i)
      const integer = next !== 0x2e && next !== 0x65 && next !== 0x45
      if (integer && !Number.isSafeInteger(Number(text.slice(start, i)))) {
        out += text.slice(copied, start) + '"' + text.slice(start, i) + '"'
        copied = i
      } else if (!integer) {
        while (i < n && isNumberChar(text.charCodeAt(i))) i++
      }
      continue
    }
    i++
  }
  return copied === 0 ? text : out + text.slice(copied)
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39
}

function isNumberChar(code: number): boolean {
  return (
    isDigit(code) ||
    code === 0x2e ||
    code === 0x65 ||
    code === 0x45 ||
    code === 0x2b ||
    code === 0x2d
  )
}
