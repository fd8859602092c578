import { backoffDelay } from './backoff.js'
import {
  PresencedError,
  tokenRefusedOf,
  type ErrorProtocol,
  type TokenRefusedReason,
} from './errors.js'
import { parseJsonLossless } from './lossless-json.js'
import { setTimer } from './set-timer.js'
import { TokenSource, type TokenProvider } from './token.js'

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>

/**
 * How failed requests are retried: a 429 for every call; a 502, 503 or 504, and a connection
 * refused or reset, for idempotent calls (every call of this client: reads, heartbeats, cloak,
 * clearing a title). Other errors (4xx, 500) are never retried.
 */
export interface RetryOptions {
  /** Total attempts including the first; 1 disables retrying. @default 5 */
  maxAttempts?: number
  /** The first backoff; each retry doubles it. @default 1000 */
  baseDelayMs?: number
  /**
   * No single wait is longer, jitter included; a Retry-After beyond it fails at once instead.
   * @default 30000
   */
  maxDelayMs?: number
  /**
   * Up to this fraction of each (capped) wait is taken off at random, so clients spread out;
   * `1` is "full jitter" (anywhere from 0 to the wait). @default 0.2
   */
  jitter?: number
  /**
   * Retry an idempotent call whose connection was refused or reset, its answer's body included
   * (the server restarting, a node leaving a load balancer). `false` fails at once: what a command line wants, where an
   * unreachable server is more often a wrong URL than an outage. @default true
   */
  connectionErrors?: boolean
}

export interface TransportOptions {
  baseUrl: string
  token?: string | TokenProvider | undefined
  cookie?: string | undefined
  fetch?: FetchLike | undefined
  retry?: RetryOptions | false | undefined
  timeoutMs?: number | false | undefined
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
  /**
   * Whether repeating the request is harmless, so that a 502/503/504 or a broken connection
   * may be retried. @default true for GET, HEAD, PUT, DELETE and OPTIONS; POSTs that only read
   * or beat say so.
   */
  idempotent?: boolean
}

export interface JsonResponse<T = unknown> {
  status: number
  headers: Headers
  body: T
}

const defaultSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimer(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })

/** How long one attempt may take by default, its answer read whole (ClientOptions.timeoutMs). */
const DEFAULT_TIMEOUT_MS = 30_000

/**
 * The signal of one attempt: aborted by the caller's signal, or once `timeoutMs` has passed
 * (`expired` then says so). `done()` ends the timer and the link to the caller's signal.
 */
function attemptDeadline(
  timeoutMs: number | undefined,
  outer: AbortSignal | undefined,
): { signal: AbortSignal | undefined; readonly expired: boolean; done(): void } {
  if (timeoutMs === undefined) return { signal: outer, expired: false, done() {} }
  const controller = new AbortController()
  let expired = false
  const onAbort = () => controller.abort(outer?.reason)
  outer?.addEventListener('abort', onAbort, { once: true })
  const timer = setTimer(() => {
    expired = true
    controller.abort(new DOMException(`No answer within ${timeoutMs} ms`, 'TimeoutError'))
  }, timeoutMs)
  return {
    signal: controller.signal,
    get expired() {
      return expired
    },
    done() {
      clearTimeout(timer)
      outer?.removeEventListener('abort', onAbort)
    },
  }
}

/** Statuses that say "not now" of a request the server did not carry out (RFC 9110 15.6). */
const RETRY_STATUSES = new Set([502, 503, 504])

/** Methods whose repetition is harmless by definition (RFC 9110 9.2.2). */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'])

/**
 * Socket failures worth another try of an idempotent call: the connection was refused, reset or
 * timed out, or a DNS lookup failed for now. A name that does not exist (ENOTFOUND) or a bad
 * certificate will not fix itself, and an abort is the caller's, so those fail at once.
 */
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
])

/**
 * One HTTP exchange with presenced: credentials, the x-csrf-token challenge, retries with
 * backoff (429; 502/503/504 and broken connections for idempotent calls), lossless JSON, and
 * errors turned into PresencedError.
 */
export class Transport {
  readonly baseUrl: string
  /** The token: a fixed one, or the provider's (asked before each request and connection). */
  readonly tokens: TokenSource
  readonly cookie: string | undefined
  readonly sleep: Sleep
  /** The source of jitter (Math.random unless a test injects one), for every backoff. */
  readonly random: () => number
  readonly #fetch: FetchLike
  readonly #retry: Required<RetryOptions>
  /** How long one attempt may take, answer read whole; undefined: no limit. */
  readonly #timeoutMs: number | undefined
  #csrf: string | undefined

  constructor(options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.tokens = new TokenSource(options.token)
    this.cookie =
      options.cookie === undefined || options.cookie.includes('=')
        ? options.cookie
        : `.ROBLOSECURITY=${options.cookie}`
    const f = options.fetch ?? globalThis.fetch
    if (typeof f !== 'function') throw new TypeError('No fetch available: pass options.fetch')
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    const retry = options.retry === false ? { maxAttempts: 1 } : (options.retry ?? {})
    checkNumber('retry.maxAttempts', retry.maxAttempts)
    checkNumber('retry.baseDelayMs', retry.baseDelayMs, 0)
    checkNumber('retry.maxDelayMs', retry.maxDelayMs, 0)
    checkNumber('retry.jitter', retry.jitter)
    checkTimeout('timeoutMs', options.timeoutMs)
    this.#retry = {
      maxAttempts: Math.max(1, retry.maxAttempts ?? 5),
      baseDelayMs: retry.baseDelayMs ?? 1000,
      maxDelayMs: retry.maxDelayMs ?? 30_000,
      jitter: retry.jitter ?? 0.2,
      connectionErrors: retry.connectionErrors ?? true,
    }
    const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    // Infinity is no limit too (a timer would take it for 1 ms: see setTimer)
    this.#timeoutMs =
      timeout === false || !(timeout > 0) || timeout === Infinity ? undefined : timeout
    this.sleep = options.sleep ?? defaultSleep
    this.random = options.random ?? Math.random
  }

  /** The fetch in use (injected or global), for streaming responses. */
  fetch(input: string, init?: RequestInit): Promise<Response> {
    return this.#fetch(input, init)
  }

  /** The last token known (the fixed one, or the provider's latest); never logged. */
  get token(): string | undefined {
    return this.tokens.last
  }

  /**
   * The token to send now (`TokenSource.get`), or after the server refused `stale`
   * (`refresh`); a provider's failure becomes a PresencedError of status 0.
   */
  async currentToken(stale?: {
    refused: string | undefined
    reason?: TokenRefusedReason | undefined
  }): Promise<string | undefined> {
    try {
      return stale === undefined
        ? await this.tokens.get()
        : await this.tokens.refresh(stale.refused, stale.reason)
    } catch (error) {
      throw new PresencedError(
        `The token provider failed: ${error instanceof Error ? error.message : String(error)}`,
        { status: 0, protocol: 'http', cause: error },
      )
    }
  }

  /**
   * The headers that authenticate a request with `token` (also used by the real-time
   * transports); default: the last token known.
   */
  authHeaders(
    kind: 'default' | 'xbl' | 'none' = 'default',
    token: string | undefined = this.tokens.last,
  ): Record<string, string> {
    const headers: Record<string, string> = {}
    if (kind === 'none') return headers
    if (kind === 'xbl') {
      if (token === undefined) {
        throw new PresencedError('The Xbox API needs a token: pass createClient({ token })', {
          status: 0,
          protocol: 'xbox',
        })
      }
      headers.authorization = `XBL3.0 x=${userHashOf(token)};${token}`
      return headers
    }
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    if (this.cookie !== undefined) headers.cookie = this.cookie
    return headers
  }

  async request<T = unknown>(path: string, options: RequestOptions): Promise<JsonResponse<T>> {
    const url = this.baseUrl + path
    const method = options.method ?? 'GET'
    const idempotent = options.idempotent ?? IDEMPOTENT_METHODS.has(method)
    let csrfRetried = false
    /** A 401 was answered with a fresh token from the provider (once per call). */
    let tokenRefreshed = false
    /** The fresh token the provider gave after a 401: what the next attempt sends. */
    let fresh: string | undefined
    for (let attempt = 1; ; attempt++) {
      const token =
        options.auth === 'none'
          ? undefined
          : this.tokens.refreshable
            ? (fresh ?? (await this.currentToken()))
            : this.tokens.last
      fresh = undefined
      const headers: Record<string, string> = {
        accept: 'application/json',
        ...this.authHeaders(options.auth, token),
        ...options.headers,
      }
      if (options.body !== undefined) headers['content-type'] = 'application/json'
      if (this.#csrf !== undefined && options.auth !== 'none') headers['x-csrf-token'] = this.#csrf
      const deadline = attemptDeadline(this.#timeoutMs, options.signal)
      let response: Response
      try {
        response = await this.#fetch(url, {
          method,
          headers,
          body: options.body,
          signal: deadline.signal,
        })
      } catch (error) {
        deadline.done()
        if (options.signal?.aborted) throw error
        const retryable = idempotent && this.#retry.connectionErrors
        if (deadline.expired) {
          // no answer in time: as unreachable as a refused connection (a node that hangs)
          if (retryable && attempt < this.#retry.maxAttempts) {
            await this.sleep(this.#backoff(attempt, undefined)!, options.signal)
            continue
          }
          throw this.#timedOut(error)
        }
        if (
          retryable &&
          attempt < this.#retry.maxAttempts &&
          CONNECTION_ERRORS.has(networkCode(error) ?? '')
        ) {
          await this.sleep(this.#backoff(attempt, undefined)!, options.signal)
          continue
        }
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
        deadline.done()
        await response.body?.cancel()
        this.#csrf = challenge
        csrfRetried = true
        attempt--
        continue
      }

      const retryable =
        response.status === 429 || (idempotent && RETRY_STATUSES.has(response.status))
      /** Why a retryable answer is the call's failure: the server asked for too long a wait. */
      let notRetried: string | undefined
      if (retryable) {
        const wait = this.retryWait(
          attempt,
          parseRetryAfter(response.headers.get('retry-after')),
          'Retry-After',
        )
        if ('delayMs' in wait) {
          deadline.done()
          await response.body?.cancel()
          await this.sleep(wait.delayMs, options.signal)
          continue
        }
        notRetried = wait.notRetried
      }

      let text: string
      try {
        text = await response.text()
      } catch (error) {
        // the answer began and the connection ended before its last byte (or the attempt's time
        // ran out): as unreachable as a refused connection, and as safe to try again when the
        // request is idempotent
        deadline.done()
        if (options.signal?.aborted) throw error
        if (idempotent && this.#retry.connectionErrors && attempt < this.#retry.maxAttempts) {
          await this.sleep(this.#backoff(attempt, undefined)!, options.signal)
          continue
        }
        if (deadline.expired) throw this.#timedOut(error)
        throw new PresencedError(
          redactUrls(
            `Lost the connection to presenced at ${this.baseUrl} while reading its answer: ${networkReason(error)}`,
          ),
          { status: 0, protocol: 'network', cause: error },
        )
      }
      deadline.done()
      if (
        response.status === 401 &&
        !tokenRefreshed &&
        this.tokens.refreshable &&
        options.auth !== 'none'
      ) {
        // the token was refused (expired, most often): the provider is asked once for a new
        // one, and the request sent once more with it; the same token again is not retried
        tokenRefreshed = true
        fresh = await this.currentToken({
          refused: token,
          reason: tokenRefusedOf(response.headers.get('www-authenticate')),
        })
        if (fresh !== token) {
          options.signal?.throwIfAborted()
          attempt--
          continue
        }
      }
      const body = parseBody(text, response.headers.get('content-type'))
      if (!response.ok) throw errorOf(response, body, options.protocol, notRetried)
      return { status: response.status, headers: response.headers, body: body as T }
    }
  }

  #timedOut(cause: unknown): PresencedError {
    return new PresencedError(
      redactUrls(
        `presenced at ${this.baseUrl} did not answer in full within ${this.#timeoutMs} ms (timeoutMs)`,
      ),
      { status: 0, protocol: 'network', cause },
    )
  }

  /**
   * Whether a refusal that may pass (a 429, an `add()` refused `RATE_LIMITED`) after try number
   * `attempt` is tried again, by the `retry` options: after `delayMs` (#backoff), or not, the
   * last attempt made or a wait asked (`retryAfterMs`, told as `asked`) past `retry.maxDelayMs`,
   * which `notRetried` then says for the error's message.
   */
  retryWait(
    attempt: number,
    retryAfterMs: number | undefined,
    asked: string,
  ): { delayMs: number } | { notRetried: string | undefined } {
    if (attempt >= this.#retry.maxAttempts) return { notRetried: undefined }
    const delayMs = this.#backoff(attempt, retryAfterMs)
    if (delayMs !== undefined) return { delayMs }
    return {
      notRetried: `not retried: ${asked} asks for ${seconds(retryAfterMs!)}, more than retry.maxDelayMs, ${seconds(this.#retry.maxDelayMs)}`,
    }
  }

  /**
   * The wait before retry number `attempt`: 1 s, 2 s, 4 s … capped, jittered within the cap, and
   * never less than Retry-After. Undefined when the server asks for a longer wait than the cap.
   */
  #backoff(attempt: number, retryAfterMs: number | undefined): number | undefined {
    if (retryAfterMs !== undefined && retryAfterMs > this.#retry.maxDelayMs) return undefined
    return Math.max(backoffDelay(attempt, this.#retry, this.random), retryAfterMs ?? 0)
  }
}

/**
 * Refuses, naming it, an option that must be a number and is not, or is NaN (as
 * `Number(process.env.X)` gives), or is below `min`: such values bent the client silently
 * (`retry.maxAttempts: NaN` retried a 429 for ever, a negative or NaN delay retried at once).
 * Undefined (the default) passes.
 */
export function checkNumber(name: string, value: unknown, min?: number): void {
  if (value === undefined) return
  if (typeof value === 'number' && !Number.isNaN(value) && (min === undefined || value >= min)) {
    return
  }
  const got = typeof value === 'string' ? JSON.stringify(value) : String(value)
  const range = min === undefined ? '' : min === 0 ? ' of 0 or more' : ` of ${min} or more`
  throw new TypeError(`${name} must be a number${range}, got ${got}`)
}

/** Refuses a time limit that is neither a number (0 or less: none) nor false; see checkNumber. */
export function checkTimeout(name: string, value: unknown): void {
  if (value === undefined || value === false) return
  if (typeof value === 'number' && !Number.isNaN(value)) return
  const got = typeof value === 'string' ? JSON.stringify(value) : String(value)
  throw new TypeError(`${name} must be a number or false, got ${got}`)
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

/** A wait in seconds, as a message says it: "120 s", "1.5 s". */
export function seconds(ms: number): string {
  return `${Math.round(ms) / 1000} s`
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
function errorOf(
  response: Response,
  body: unknown,
  protocol: ErrorProtocol,
  note?: string,
): PresencedError {
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
  message ??= `HTTP ${response.status} ${response.statusText}`.trim()
  return new PresencedError(note === undefined ? message : `${message} (${note})`, {
    status: response.status,
    code,
    protocol,
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    body,
    reason:
      response.status === 401
        ? tokenRefusedOf(response.headers.get('www-authenticate'))
        : undefined,
  })
}

interface FetchFailure {
  code?: unknown
  message?: unknown
  errors?: unknown
}

/** The socket error undici hides in `cause` (the first of several when every address failed). */
function innerCause(error: unknown): FetchFailure | undefined {
  const cause = (error as { cause?: FetchFailure } | undefined)?.cause
  return Array.isArray(cause?.errors) ? (cause.errors[0] as FetchFailure) : cause
}

/** The code of a fetch failure's socket error (ECONNREFUSED, ...), when there is one. */
function networkCode(error: unknown): string | undefined {
  const code = innerCause(error)?.code
  return typeof code === 'string' ? code : undefined
}

/** The useful part of a fetch failure: undici hides the socket error (or several) in `cause`. */
export function networkReason(error: unknown): string {
  const inner = innerCause(error)
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
