/**
 * Byte-level helpers of the request parsers that read a JSON body's plain shape from its bytes
 * (the Roblox read's parseUsersJson, the Xbox batch's parseBatchJson).
 */

/**
 * The byte at `i`, 0 past the end. Never reading past the end keeps V8's element loads inlined
 * (one read past the end, where every body ends, turns the site into a generic one).
 */
export function byteAt(body: Uint8Array, i: number, n: number): number {
  return i < n ? body[i]! : 0
}

/** Whether `body` holds `bytes` at `i`. */
export function holdsAt(body: Uint8Array, i: number, n: number, bytes: Uint8Array): boolean {
  if (i + bytes.length > n) return false
  for (let k = 0; k < bytes.length; k++) if (body[i + k] !== bytes[k]) return false
  return true
}

/** The index of the first byte at or after `i` that is not JSON whitespace (`n` if none). */
export function skipSpace(body: Uint8Array, i: number, n: number): number {
  while (i < n) {
    const c = body[i]!
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i
    i++
  }
  return n
}
