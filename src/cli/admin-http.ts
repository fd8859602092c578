/** What the admin CLI commands share: where the server is, the admin key, and one request. */
export interface AdminTarget {
  url: string
  adminKey: string
  /** --timeout: how long each request may take, its answer read in full; none by default. */
  timeoutMs?: number | undefined
}

export const DEFAULT_URL = 'http://127.0.0.1:8080'

/**
 * The server every command talks to: --url, else PRESENCED_URL, else the default, without
 * trailing slashes. An empty PRESENCED_URL counts as unset (`PRESENCED_URL= presenced …`).
 * Not yet checked: see urlProblem.
 */
export function chosenUrl(
  flag: string | undefined,
  env: Record<string, string | undefined> = process.env,
): string {
  return (flag ?? (env.PRESENCED_URL || DEFAULT_URL)).replace(/\/+$/, '')
}

/** The longest input an error message quotes whole: an int64 id (19 digits) fits. */
const ECHO_WHOLE_MAX = 24
/** How much of a longer one is shown: enough to recognise it (a JWT's `eyJ…`), too little to use. */
const ECHO_HEAD = 12

/**
 * An input quoted for an error message. One past ECHO_WHOLE_MAX is cut to its first characters
 * and its length: what is pasted where an id goes (`presenced get 1 "$TOKEN"`) is often a token
 * or key, and must not end up whole in a terminal, a CI log or a bug report.
 */
export function echoed(value: string): string {
  if (value.length <= ECHO_WHOLE_MAX) return JSON.stringify(value)
  return `${JSON.stringify(value.slice(0, ECHO_HEAD) + '…')} (${value.length} characters)`
}

const CREDENTIALS = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i

/** The URL with any `user:password@` shown as `***@`, for messages. */
export function redactUrl(url: string): string {
  return url.replace(CREDENTIALS, '$1***@')
}

/**
 * Why --url cannot be used, or undefined when it can: it must be http(s), and it may not carry
 * `user:password@` (fetch refuses such a URL, and the password would be echoed in messages).
 */
export function urlProblem(url: string): string | undefined {
  if (!/^https?:\/\/[^/]/i.test(url)) {
    return `--url must be an http(s) URL, got ${JSON.stringify(redactUrl(url))}`
  }
  if (CREDENTIALS.test(url)) {
    return `--url must not carry credentials (user:password@), got ${JSON.stringify(redactUrl(url))}`
  }
  return undefined
}

/** The longest delay setTimeout holds (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * --timeout SECONDS as milliseconds (undefined when not given), or a problem to report as bad
 * usage: it must be a positive number. Past 24.8 days it is 24.8 days, which no command notices.
 */
export function parseTimeout(value: string | undefined): { ms?: number; problem?: string } {
  if (value === undefined) return {}
  const seconds = Number(value)
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds <= 0) {
    return {
      problem: `--timeout must be a positive number of seconds, got ${JSON.stringify(value)}`,
    }
  }
  // a timer holds 2^31 - 1 ms (24.8 days) at most and takes a longer delay for 1 ms: a longer
  // --timeout failed every command at once ("no answer within 1000000000 s")
  return { ms: Math.min(Math.round(seconds * 1000), MAX_TIMER_MS) }
}

/**
 * fetch, failing when the server has not answered (sent the response headers) within
 * `timeoutMs`: a server that accepts the connection and says nothing would otherwise hold a
 * command for undici's 300 s header timeout. The body is not limited: this is for an event
 * stream (`watch --sse`), whose body never ends; a request/response exchange wants
 * `exchangeWithin`. Without a timeout, fetch itself.
 */
export function answerWithin(
  timeoutMs: number | undefined,
  fetchImpl: typeof fetch = (input, init) => fetch(input, init),
): (input: string, init?: RequestInit) => Promise<Response> {
  if (timeoutMs === undefined) return fetchImpl
  return (input, init = {}) =>
    withDeadline(timeoutMs, init.signal, (signal) => fetchImpl(input, { ...init, signal }))
}

/**
 * fetch, failing when the whole exchange, the response's body included, has not ended within
 * `timeoutMs`: a server that sends its headers and then stalls (or trickles) the body would
 * otherwise hold a command for ever, as undici limits only the gap between body chunks (300 s).
 * The body is read here, within the deadline, and the Response handed on carries it in memory:
 * for the request/response commands (get, heartbeat, import, keys, webhooks), whose answers are
 * small. Without a timeout, fetch itself.
 */
export function exchangeWithin(
  timeoutMs: number | undefined,
  fetchImpl: typeof fetch = (input, init) => fetch(input, init),
): (input: string, init?: RequestInit) => Promise<Response> {
  if (timeoutMs === undefined) return fetchImpl
  return (input, init = {}) =>
    withDeadline(timeoutMs, init.signal, async (signal) => {
      const response = await fetchImpl(input, { ...init, signal })
      // the same signal aborts the body's read when the deadline passes
      const body = await response.arrayBuffer()
      const { status, statusText, headers } = response
      return new Response(NULL_BODY_STATUSES.has(status) ? null : body, {
        status,
        statusText,
        headers,
      })
    })
}

/** Statuses a Response may not be constructed with a body for. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304])

/**
 * Runs `work` with a signal aborted after `timeoutMs` (or with `outer`); a failure after the
 * deadline passed is reported as the deadline, `no answer within N s (--timeout)`.
 */
async function withDeadline<T>(
  timeoutMs: number,
  outer: AbortSignal | null | undefined,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const deadline = new AbortController()
  const timer = setTimeout(
    () => deadline.abort(new Error(`no answer within ${timeoutMs / 1000} s (--timeout)`)),
    timeoutMs,
  )
  const signal = outer ? AbortSignal.any([outer, deadline.signal]) : deadline.signal
  try {
    return await work(signal)
  } catch (error) {
    throw deadline.signal.aborted ? deadline.signal.reason : error
  } finally {
    clearTimeout(timer)
  }
}

/** The useful part of a fetch failure: undici puts the socket's error in `cause`. */
function failureReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause
  return cause?.code ?? cause?.message ?? (error as Error).message
}

/** A refusal or failure, with the exit code the command should end with. */
export class CliError extends Error {
  readonly exitCode: number
  readonly line: number | undefined
  constructor(message: string, exitCode: number, line?: number) {
    super(message)
    this.exitCode = exitCode
    this.line = line
  }
}

/**
 * Resolves --url (else PRESENCED_URL, else the default) and --admin-key (else
 * PRESENCED_ADMIN_KEY); a usage error when the key is missing or the URL is not http(s).
 */
export function adminTarget(
  values: {
    url?: string | undefined
    'admin-key'?: string | undefined
    timeout?: string | undefined
  },
  env: Record<string, string | undefined> = process.env,
): AdminTarget {
  const url = chosenUrl(values.url, env)
  const problem = urlProblem(url)
  if (problem !== undefined) throw new CliError(problem, 2)
  const adminKey = values['admin-key'] ?? env.PRESENCED_ADMIN_KEY
  if (!adminKey) {
    throw new CliError('no admin key: pass --admin-key or set PRESENCED_ADMIN_KEY', 2)
  }
  const timeout = parseTimeout(values.timeout)
  if (timeout.problem !== undefined) throw new CliError(timeout.problem, 2)
  return { url, adminKey, timeoutMs: timeout.ms }
}

/**
 * One admin API call; resolves with the parsed JSON (undefined for 204) or throws a CliError:
 * exit 2 for a 400 (the input was refused), 1 for anything else (auth, server, network).
 */
export async function adminRequest(
  target: AdminTarget,
  method: string,
  path: string,
  body?: { type: string; data: string },
): Promise<unknown> {
  let response: Response
  try {
    response = await exchangeWithin(target.timeoutMs)(target.url + path, {
      method,
      headers: {
        'x-api-key': target.adminKey,
        ...(body ? { 'content-type': body.type } : {}),
      },
      body: body?.data,
    })
  } catch (error) {
    throw new CliError(`cannot reach ${redactUrl(target.url)}: ${failureReason(error)}`, 1)
  }
  let text: string
  try {
    text = await response.text()
  } catch (error) {
    throw new CliError(
      `lost the connection to ${redactUrl(target.url)} while reading its answer: ${failureReason(error)}`,
      1,
    )
  }
  let parsed: unknown
  try {
    parsed = text === '' ? undefined : JSON.parse(text)
  } catch {
    parsed = undefined
  }
  if (response.ok) return parsed
  const error = (parsed as { error?: { code?: string; message?: string; line?: number } })?.error
  const detail = error
    ? `${error.code ?? ''}: ${error.message ?? ''}`
    : text.slice(0, 200) || response.statusText
  const hint =
    response.status === 404 && error?.code === 'ADMIN_OFF'
      ? ' (start the server with PRESENCED_ADMIN_KEY set)'
      : ''
  throw new CliError(
    `server answered ${response.status} ${detail}${hint}`,
    response.status === 400 ? 2 : 1,
    error?.line,
  )
}

/**
 * Runs an admin command: its failures become a `presenced <name>: …` line and an exit code
 * (usage mistakes 2, with the command's usage).
 */
export async function runAdminCommand(
  name: string,
  usage: string,
  command: () => Promise<number>,
): Promise<number> {
  try {
    return await command()
  } catch (error) {
    if (error instanceof CliError) {
      console.error(`presenced ${name}: ${error.message}`)
      return error.exitCode
    }
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`presenced ${name}: ${(error as Error).message}\n\n${usage}`)
      return 2
    }
    throw error
  }
}
