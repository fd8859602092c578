/** Where a platform's JWKS is read from: a file, or a URL; and why a read failed, for the log. */
import type { JSONWebKeySet } from 'jose'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'

/** Why a JWKS could not be read, in words that quote nothing of it (nor of its URL). */
class JwksInvalid extends Error {}

/**
 * Why loading a JWKS failed, for the log: never the error's message, which may quote the set or
 * the URL.
 */
export function reasonOf(error: unknown): string {
  if (error instanceof JwksInvalid) return error.message
  const { name, code, cause } = error as { name?: string; code?: unknown; cause?: unknown }
  if (typeof code === 'string') return code
  const causeCode = (cause as { code?: unknown } | undefined)?.code
  return typeof causeCode === 'string' ? causeCode : (name ?? 'failed')
}

/** The JWKS in `text`; throws JwksInvalid (saying why, quoting nothing) when it is none. */
function parseJwks(text: string): JSONWebKeySet {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new JwksInvalid('not JSON')
  }
  const keys = (parsed as JSONWebKeySet | null)?.keys
  if (!Array.isArray(keys)) throw new JwksInvalid('not a JWKS: no "keys" array')
  // what jose's key sets refuse: checked here, so that a file is refused at start
  if (!keys.every((key) => typeof key === 'object' && key !== null && !Array.isArray(key))) {
    throw new JwksInvalid('not a JWKS: a member of "keys" is no object')
  }
  return parsed as JSONWebKeySet
}

/** Reads and checks a JWKS file (at start); throws a message naming the file when it is not one. */
export function readJwksFile(path: string): JSONWebKeySet {
  const text = readFileSync(path, 'utf8')
  try {
    return parseJwks(text)
  } catch (error) {
    throw new Error(`${path} is ${(error as Error).message}`)
  }
}

/** A JWKS file as it is now. */
export async function jwksFromFile(path: string): Promise<JSONWebKeySet> {
  return parseJwks(await readFile(path, 'utf8'))
}

/** How a JWKS URL is fetched (PRESENCED_JWT_JWKS_TIMEOUT, PRESENCED_JWT_JWKS_MAX_BYTES). */
export interface JwksFetchLimits {
  /** ms the whole fetch may take, its body read to the end included. */
  timeoutMs: number
  /** The longest body read, in bytes (decoded, if compressed). */
  maxBytes: number
}

/**
 * The JWKS a URL serves now: a 200, redirects not followed, whole within `timeoutMs` (an
 * endpoint that answers its headers and then drips its body is cut off too), its body at most
 * `maxBytes`: a reply that says it is longer is refused unread, one that turns out longer is cut
 * off there, so an endpoint sending a huge or endless body costs no more memory than that.
 */
export async function jwksFromUrl(url: string, limits: JwksFetchLimits): Promise<JSONWebKeySet> {
  const signal = AbortSignal.timeout(limits.timeoutMs)
  try {
    const response = await fetch(url, {
      headers: { accept: 'application/json, application/jwk-set+json', 'user-agent': 'presenced' },
      redirect: 'manual',
      signal,
    })
    if (response.status !== 200) {
      await response.body?.cancel()
      throw new JwksInvalid(`HTTP ${response.status}`)
    }
    return parseJwks(await boundedText(response, limits.maxBytes))
  } catch (error) {
    if (!signal.aborted || error instanceof JwksInvalid) throw error
    throw new JwksInvalid(`no reply within ${limits.timeoutMs} ms`)
  }
}

/** The body of `response` as utf-8 text (as Response.text reads it); JwksInvalid past `maxBytes`. */
async function boundedText(response: Response, maxBytes: number): Promise<string> {
  const tooLong = () => new JwksInvalid(`a reply over ${maxBytes} bytes`)
  if (Number(response.headers.get('content-length')) > maxBytes) {
    await response.body?.cancel()
    throw tooLong()
  }
  const chunks: Uint8Array[] = []
  let bytes = 0
  const reader = response.body?.getReader()
  while (reader) {
    const { done, value } = await reader.read()
    if (done) break
    bytes += value.byteLength
    if (bytes > maxBytes) {
      // the rest is never read: the connection is closed
      await reader.cancel()
      throw tooLong()
    }
    chunks.push(value)
  }
  // TextDecoder drops a byte order mark, as Response.text does
  return new TextDecoder().decode(Buffer.concat(chunks, bytes))
}
