import { PresencedError, type ErrorProtocol } from './errors.js'
import { parseJsonLossless } from './lossless-json.js'

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>

/** How 429 answers are retried. Other errors are never retried. */
export interface RetryOptions {
  /** Total attempts including the first; 1 disables retrying. @default 5 */
  maxAttempts?: number
  /** The first backoff; each retry doubles it. @default 1000 */
  baseDelayMs?: number
  /** No single wait is longer; a Retry-After beyond it fails at once instead. @default 30000 */
  maxDelayMs?: number
  /** Up to this fraction of the backoff is added at random, so clients spread out. @default 0.2 */
  jitter?: number
}

export interface TransportOptions {
  baseUrl: string
  token?: string | undefined
  cookie?: string | undefined
  fetch?: FetchLike | undefined
  retry?: RetryOptions | false | undefined
  sleep?: Sleep | undefined
  random?: (() => number) | undefined
}

export interface RequestOptions {
  method?: string
  /** A JSON text (already serialized, so int64 ids stay exact). */
  body?: string | undefined
  headers?: Record<string, string>
  protocol: ErrorProtocol
  signal?: AbortSignal | undefined
  /** Xbox calls authenticate with XBL3.0 rather than Bearer. */
  auth?: 'default' | 'xbl' | 'none'
}

export interface JsonResponse<T = unknown> {
  status: number
  headers: Headers
  body: T
}

const defaultSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })

/**
 * One HTTP exchange with presenced: credentials, the x-csrf-token challenge, 429 backoff,
 * lossless JSON, and errors turned into PresencedError.
 */
export class Transport {
  readonly baseUrl: string
  readonly token: string | undefined
  readonly cookie: string | undefined
  readonly sleep: Sleep
  readonly #fetch: FetchLike
  readonly #retry: Required<RetryOptions>
  readonly #random: () => number
  #csrf: string | undefined

  constructor(options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.token = options.token
    this.cookie =
      options.cookie === undefined || options.cookie.includes('=')
        ? options.cookie
        : `.ROBLOSECURITY=${options.cookie}`
    const f = options.fetch ?? globalThis.fetch
    if (typeof f !== 'function') throw new TypeError('No fetch available: pass options.fetch')
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    const retry = options.retry === false ? { maxAttempts: 1 } : (options.retry ?? {})
    this.#retry = {
      maxAttempts: Math.max(1, retry.maxAttempts ?? 5),
      baseDelayMs: retry.baseDelayMs ?? 1000,
      maxDelayMs: retry.maxDelayMs ?? 30_000,
      jitter: retry.jitter ?? 0.2,
    }
    this.sleep = options.sleep ?? defaultSleep
    this.#random = options.random ?? Math.random
  }

  /** The fetch in use (injected or global), for streaming responses. */
  fetch(input: string, init?: RequestInit): Promise<Response> {
    return this.#fetch(input, init)
  }

  /** The headers that authenticate a request (also used by the real-time transports). */
  authHeaders(kind: 'default' | 'xbl' | 'none' = 'default'): Record<string, string> {
    const headers: Record<string, string> = {}
    if (kind === 'none') return headers
    if (kind === 'xbl') {
      if (this.token === undefined) {
        throw new PresencedError('The Xbox API needs a token: pass createClient({ token })', {
          status: 0,
          protocol: 'xbox',
        })
      }
      headers.authorization = `XBL3.0 x=${userHashOf(this.token)};${this.token}`
      return headers
    }
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    if (this.cookie !== undefined) headers.cookie = this.cookie
    return headers
  }

  async request<T = unknown>(path: string, options: RequestOptions): Promise<JsonResponse<T>> {
    const url = this.baseUrl + path
    let csrfRetried = false
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = {
        accept: 'application/json',
        ...this.authHeaders(options.auth),
        ...options.headers,
      }
      if (options.body !== undefined) headers['content-type'] = 'application/json'
      if (this.#csrf !== undefined && options.auth !== 'none') headers['x-csrf-token'] = this.#csrf
      let response: Response
      try {
        response = await this.#fetch(url, {
          method: options.method ?? 'GET',
          headers,
          body: options.body,
          signal: options.signal,
        })
      } catch (error) {
        if (options.signal?.aborted) throw error
        throw new PresencedError(
          redactUrls(`Cannot reach presenced at ${this.baseUrl}: ${networkReason(error)}`),
          {
            status: 0,
            protocol: 'network',
            cause: error,
          },
        )
      }

      // The x-csrf-token challenge: a cookie-authenticated write is refused once with a fresh
      // token, and the same request carrying it succeeds. The token is kept for later calls.
      const challenge = response.headers.get('x-csrf-token')
      if (response.status === 403 && challenge && !csrfRetried && challenge !== this.#csrf) {
        await response.body?.cancel()
        this.#csrf = challenge
        csrfRetried = true
        attempt--
        continue
      }

      if (response.status === 429 && attempt < this.#retry.maxAttempts) {
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'))
        const delay = this.#backoff(attempt, retryAfterMs)
        if (delay !== undefined) {
          await response.body?.cancel()
          await this.sleep(delay, options.signal)
          continue
        }
      }

      const text = await response.text()
      const body = parseBody(text, response.headers.get('content-type'))
      if (!response.ok) throw errorOf(response, body, options.protocol)
      return { status: response.status, headers: response.headers, body: body as T }
    }
  }

  /**
   * The wait before retry number `attempt`: 1 s, 2 s, 4 s … capped, plus jitter, and never
   * less than Retry-After. Undefined when the server asks for a longer wait than the cap.
   */
  #backoff(attempt: number, retryAfterMs: number | undefined): number | undefined {
    const { baseDelayMs, maxDelayMs, jitter } = this.#retry
    if (retryAfterMs !== undefined && retryAfterMs > maxDelayMs) return undefined
    const exponential = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1))
    const jittered = Math.min(maxDelayMs, exponential * (1 + jitter * this.#random()))
    return Math.max(jittered, retryAfterMs ?? 0)
  }
}

/**
 * The XBL3.0 user hash. presenced does not check it against anything, but real clients always
 * send one; the token's subject makes a stable, meaningful value.
 */
function userHashOf(token: string): string {
  return subjectOf(token) ?? '0'
}

/** The `sub` of a JWT, read without verifying (the server verifies; this is only a hint). */
export function subjectOf(token: string): string | undefined {
  const payload = token.split('.')[1]
  if (payload === undefined) return undefined
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/')
    const json = JSON.parse(atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4))) as {
      sub?: unknown
    }
    return typeof json.sub === 'string' ? json.sub : undefined
  } catch {
    return undefined
  }
}

export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

function parseBody(text: string, contentType: string | null): unknown {
  if (text === '') return undefined
  if (contentType !== null && !/json/i.test(contentType)) return text
  try {
    return parseJsonLossless(text)
  } catch {
    return text
  }
}

/** Reads the error shapes of every protocol: Roblox, Xbox (incl. its 429 body) and native. */
function errorOf(response: Response, body: unknown, protocol: ErrorProtocol): PresencedError {
  let code: number | string | undefined
  let message: string | undefined
  if (isObject(body)) {
    const first = Array.isArray(body.errors) ? body.errors[0] : undefined
    if (isObject(first)) {
      code = typeof first.code === 'number' || typeof first.code === 'string' ? first.code : code
      message = typeof first.message === 'string' ? first.message : undefined
    } else if (isObject(body.error)) {
      code = typeof body.error.code === 'string' ? body.error.code : undefined
      message = typeof body.error.message === 'string' ? body.error.message : undefined
    } else {
      if (typeof body.code === 'number' || typeof body.code === 'string') code = body.code
      if (typeof body.message === 'string') message = body.message
      else if (typeof body.error === 'string') message = body.error
      else if (typeof body.description === 'string') message = body.description
      else if (body.type === 'burst' || body.type === 'sustain') {
        message = `Rate limit exceeded (${body.type}: ${String(body.maxRequests)} requests per ${String(body.periodInSeconds)} s)`
      }
    }
  } else if (typeof body === 'string' && body.length > 0 && body.length < 300) {
    message = body
  }
  return new PresencedError(message ?? `HTTP ${response.status} ${response.statusText}`.trim(), {
    status: response.status,
    code,
    protocol,
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    body,
  })
}

/** The useful part of a fetch failure: undici hides the socket error (or several) in `cause`. */
export function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown; errors?: unknown } }).cause
  const inner = Array.isArray(cause?.errors) ? (cause.errors[0] as typeof cause) : cause
  if (typeof inner?.code === 'string') return inner.code
  if (typeof inner?.message === 'string' && inner.message !== '') return inner.message
  return error instanceof Error ? error.message : String(error)
}

const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/?#\s@]*@/gi

/** A message with every URL's `user:password@` shown as `***@`, so no password is echoed. */
export function redactUrls(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1***@')
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
