import {
  createServer,
  OutgoingMessage,
  ServerResponse,
  STATUS_CODES,
  validateHeaderName,
  validateHeaderValue,
  type IncomingMessage,
  type RequestListener,
  type Server,
} from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { Writable } from 'node:stream'
import { bodyText } from './body-text.js'
import { refuseMissingHost } from './framework-errors.js'

/**
 * A hot read route answered on node:http directly, before Fastify sees the request. Measured:
 * Fastify alone (routing, hooks, reply, the request logger's child) cost more per 50-id Roblox
 * batch than the lookup itself, halving the throughput of the bare server. The route's own
 * module does the work with the same functions its Fastify route uses (auth, rate limit,
 * parsing, view, error rendering); the Fastify route stays for everything unusual, OpenAPI and
 * `inject`.
 */
export interface LeanRoute {
  method: 'POST'
  /** Exact path, no query string. */
  path: string
  /** Fastify's route pattern, for metrics. */
  route: string
  /**
   * Answers the request, errors included; `body` reads the body (see LeanBody; its size is
   * within the limit), so checks that refuse a request before its body is read come first. A
   * route whose work is all done at once may answer without a promise (sent in the same tick: no
   * microtask turns, issue 19); a throw is then as the promise's rejection.
   */
  handle(
    request: IncomingMessage,
    ip: string,
    body: LeanBody,
    log: LeanLogger | undefined,
  ): LeanReply | Promise<LeanReply>
  /** The reply to an error the route did not render (a bug): logged, then answered with this. */
  internalError: LeanReply
}

/**
 * Reads a lean request's whole body, once: `body()` as utf-8 text (bodyText:
 * a BOM skipped, bytes that are not UTF-8 a 400 INVALID_JSON), `body(true)` as the bytes that
 * came, for a route that parses bytes (the Roblox read: no string made of the body, nor the
 * utf-8 decoder's pass over it, issue 19). At once when it is all buffered already (most small
 * bodies), else its promise. A route reads the bytes; it neither keeps nor changes them (an
 * empty body's are shared).
 */
export interface LeanBody {
  (): string | Promise<string>
  (raw: true): Buffer | Promise<Buffer>
}

export interface LeanReply {
  status: number
  headers: Record<string, string>
  /** Text is sent utf-8 encoded; bytes are sent as they are (the route gives them up). */
  body: string | Buffer
  /**
   * Called with the bytes sent when the socket took them all in the write that sent them
   * (nothing holds them any more): a writer that reuses its buffers may write over them.
   */
  reclaim?: (body: Buffer) => void
}

/** The head and body of a reply sent as it is to many requests (see fixedReply). */
interface Prepared {
  head: Record<string, string | number>
  /** `head` as Node keeps headers it validated (OUT_HEADERS), when it can be given so. */
  validated: ValidatedHeaders | undefined
  body: string | Buffer
  /** The reply as one string, head and body, when it can be sent so (see OneWrite). */
  oneWrite: OneWrite | undefined
}

const prepared = new WeakMap<LeanReply, Prepared>()

/** Settled: its reactions are microtasks, queued in order (LeanRoutes' deferred requests). */
const RESOLVED = Promise.resolve()

/** Lower-case name → [name, value]: the map `setHeader` fills after validating each header. */
type ValidatedHeaders = Readonly<Record<string, readonly [string, string | number]>>

/**
 * The property of a response where Node keeps the headers `setHeader` validated (node:http's
 * internal `kOutHeaders`, found on a response by its name; undefined when this Node has none).
 * `writeHead(status)` with it set writes those headers without validating them again: a fixed
 * reply's headers are validated once, in fixedReply, where `writeHead(status, headers)` ran
 * Node's two header patterns and its checks on every header of every reply (~2k instructions
 * per heartbeat under callgrind, issue 19). Same head, same bytes.
 */
const OUT_HEADERS: symbol | undefined = Object.getOwnPropertySymbols(new OutgoingMessage()).find(
  (symbol) => symbol.description === 'kOutHeaders',
)

/** `head` validated as `setHeader` would, in Node's map of validated headers. */
function validatedHeaders(head: Record<string, string | number>): ValidatedHeaders | undefined {
  if (OUT_HEADERS === undefined) return undefined
  const map: Record<string, readonly [string, string | number]> = {}
  for (const [name, value] of Object.entries(head)) {
    validateHeaderName(name)
    validateHeaderValue(name, String(value))
    map[name.toLowerCase()] = Object.freeze([name, value] as const)
  }
  // no prototype, as Node's own map, but given one after its members: an object made without
  // one (Object.create(null), `{ __proto__: null }`) is a dictionary, whose `for…in` and reads
  // in Node's _storeHeader cost ~1.8k more instructions a reply (callgrind, 2026-12-03).
  // Frozen: Node changes no headers once they are sent, and a shared map changed by mistake
  // would throw (strict code) rather than change every later reply.
  return Object.freeze(Object.setPrototypeOf(map, null) as typeof map)
}

/** Printable ASCII only: the same bytes in latin1, which Node writes a head in, and in utf-8. */
const ASCII = /^[ -~]*$/

/**
 * `reply`, answered as it is to many requests (a heartbeat's `{}`): its length and head are made
 * here, once, where every other reply has its body encoded and its head assembled per request.
 * A printable ASCII body with such a head stays text: Node then sends head and body as one string in
 * one write, where bytes after the head are a second chunk of a vectored write (~0.8k fewer
 * instructions per heartbeat under callgrind). The same bytes and headers go out either way.
 */
export function fixedReply(reply: LeanReply): LeanReply {
  const fixed = Object.freeze({ ...reply, headers: Object.freeze({ ...reply.headers }) })
  const bytes = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body
  const head = Object.freeze({ ...fixed.headers, 'content-length': bytes.length })
  const text = typeof reply.body === 'string' && ASCII.test(reply.body) ? reply.body : undefined
  const asText = text !== undefined && Object.values(head).every((v) => ASCII.test(String(v)))
  prepared.set(fixed, {
    head,
    validated: validatedHeaders(head),
    body: asText ? text : bytes,
    oneWrite: asText && ONE_WRITE ? new OneWrite(reply.status, head, text) : undefined,
  })
  return fixed
}

/**
 * node:http's fields of a response (private but for a few) that Node's head depends on, or
 * where it keeps the head it made: what a fixed reply's one write reads and sets (see OneWrite).
 */
interface NodeResponse {
  statusCode: number
  statusMessage: string | undefined
  _header: string | null
  _headerSent: boolean
  shouldKeepAlive: boolean
  maxRequestsOnConnectionReached: boolean
  sendDate: boolean
  _expect_continue: boolean
  _removedConnection: boolean
  chunkedEncoding: boolean
  _hasBody: boolean
  /** server.keepAliveTimeout and server.maxRequestsPerSocket, copied to each response. */
  _keepAliveTimeout: number
  _maxRequestsPerSocket: number
}

/**
 * A ServerResponse on no connection, of a POST over HTTP/1.1, with `fields` set as Node's server
 * sets them on each response, writing into `writes` (each write's bytes as latin1 text): Node's
 * own head for those settings, read without a request.
 */
function detachedResponse(fields: Partial<NodeResponse>): {
  response: ServerResponse
  writes: string[]
} {
  const writes: string[] = []
  const socket = new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, encoding: BufferEncoding | 'buffer', done: () => void) {
      const bytes =
        typeof chunk === 'string' ? Buffer.from(chunk, encoding as BufferEncoding) : chunk
      writes.push(bytes.toString('latin1'))
      done()
    },
  })
  const request = { method: 'POST', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} }
  const response = new ServerResponse(request as IncomingMessage)
  Object.assign(response, fields)
  response.assignSocket(socket as unknown as Socket)
  return { response, writes }
}

/** What Node's ordinary path (writeHead, then end) sends for a reply, with `fields` set. */
function nodeSends(
  status: number,
  head: Record<string, string | number>,
  text: string,
  fields: Partial<NodeResponse>,
): string {
  const { response, writes } = detachedResponse(fields)
  response.writeHead(status, head)
  response.end(text)
  return writes.join('')
}

/** A response as Node's server makes it for a kept-alive HTTP/1.1 request. */
const KEPT_ALIVE: Partial<NodeResponse> = {
  shouldKeepAlive: true,
  _keepAliveTimeout: 5000,
  _maxRequestsPerSocket: 7,
}

/**
 * Whether this Node sends a head given as a response's `_header` as it is, with nothing built,
 * in one write, and whether the fields a one write checks (sendsAsNodeWould) still decide what
 * Node's own head would be: checked once, at load, on detached responses. False on a Node whose
 * private fields moved or changed meaning: then every reply goes Node's ordinary way.
 */
const ONE_WRITE: boolean = (() => {
  try {
    if (OUT_HEADERS === undefined) return false
    const fresh = detachedResponse({}).response
    const made = fresh as unknown as NodeResponse
    const asMade =
      made._header === null &&
      made._headerSent === false &&
      made.shouldKeepAlive === true &&
      made.maxRequestsOnConnectionReached === false &&
      made.sendDate === true &&
      made._expect_continue === false &&
      made._removedConnection === false &&
      made.chunkedEncoding === false &&
      made._hasBody === true &&
      made.statusMessage === undefined &&
      (fresh as unknown as Record<symbol, unknown>)[OUT_HEADERS] == null
    if (!asMade) return false
    const head = { 'content-type': 'application/json', 'content-length': 2 }
    const sends = (fields: Partial<NodeResponse>) => nodeSends(200, head, '{}', fields)
    const keptAlive = sends(KEPT_ALIVE)
    const meaning =
      keptAlive.startsWith('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n') &&
      keptAlive.includes('\r\nDate: ') &&
      keptAlive.endsWith('\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5, max=7\r\n\r\n{}') &&
      !sends({ ...KEPT_ALIVE, sendDate: false }).includes('\r\nDate: ') &&
      sends({ ...KEPT_ALIVE, shouldKeepAlive: false }).includes('\r\nConnection: close\r\n') &&
      sends({ ...KEPT_ALIVE, maxRequestsOnConnectionReached: true }).includes(
        '\r\nConnection: close\r\n',
      ) &&
      sends({ ...KEPT_ALIVE, _expect_continue: true }).includes('\r\nConnection: close\r\n') &&
      !sends({ ...KEPT_ALIVE, _removedConnection: true }).includes('\r\nConnection: ')
    if (!meaning) return false
    const { response, writes } = detachedResponse(KEPT_ALIVE)
    const given = response as unknown as NodeResponse
    given._header = keptAlive
    given._headerSent = false
    response.end()
    // (read again through the response: the compiler holds the field at what was set above)
    const after = response as unknown as NodeResponse
    return writes.length === 1 && writes[0] === keptAlive && after._headerSent
  } catch {
    return false
  }
})()

/**
 * Whether Node's ordinary path would send `response` a fixed reply's head as OneWrite has it: a
 * kept-alive HTTP/1.1 request that is not its connection's last (maxRequestsPerSocket), without
 * Expect: 100-continue, Date on, no header set or removed, no status message, no head yet.
 * Anything else (a request with Connection: close, HTTP/1.0, ...) is sent Node's way.
 */
function sendsAsNodeWould(request: IncomingMessage, response: NodeResponse): boolean {
  return (
    request.httpVersionMajor === 1 &&
    request.httpVersionMinor === 1 &&
    response.shouldKeepAlive &&
    !response.maxRequestsOnConnectionReached &&
    response.sendDate &&
    !response._expect_continue &&
    response._header === null &&
    response.statusMessage === undefined &&
    !response._removedConnection &&
    !response.chunkedEncoding &&
    response._hasBody &&
    (response as unknown as Record<symbol, unknown>)[OUT_HEADERS!] == null
  )
}

/** The Date header's value, made at most once a second, as Node's own (utcDate) is. */
let dateValue: string | undefined

const forgetDate = (): void => {
  dateValue = undefined
}

function httpDate(): string {
  if (dateValue === undefined) {
    const now = new Date()
    dateValue = now.toUTCString()
    // forgotten at the next second, by a timer that holds no process open (as Node's)
    setTimeout(forgetDate, 1000 - now.getMilliseconds()).unref()
  }
  return dateValue
}

/**
 * A fixed reply as one string, status line, headers and body: given to Node as the response's
 * head (`_header`), it is sent as it is, in one write of one string, where Node built the head
 * (status line, each header, Date, Connection and Keep-Alive) for every reply, then wrote head
 * and body corked, in a vectored write with an empty second chunk (issue 19). The string is
 * Node's own: what its ordinary path sends on a detached response with the server's keep-alive
 * settings (made once per settings), its Date put in at most once a second. Sent so only where
 * Node's ordinary path would send those very bytes (sendsAsNodeWould, ONE_WRITE).
 */
class OneWrite {
  readonly status: number
  readonly message: string
  readonly #head: Record<string, string | number>
  readonly #text: string
  /** One per keep-alive settings met (one per server), the last one met first. */
  readonly #forms: WireForm[] = []

  constructor(status: number, head: Record<string, string | number>, text: string) {
    this.status = status
    // what writeHead sets on a response it sends (the status line's own words are Node's)
    this.message = STATUS_CODES[status] ?? 'unknown'
    this.#head = head
    this.#text = text
  }

  /** The reply's bytes for a response with these settings, or undefined: send it Node's way. */
  bytes(keepAliveMs: number, maxRequests: number): string | undefined {
    const date = httpDate()
    const forms = this.#forms
    let form = forms[0]
    if (
      form === undefined ||
      form.keepAliveMs !== keepAliveMs ||
      form.maxRequests !== maxRequests
    ) {
      form = forms.find((f) => f.keepAliveMs === keepAliveMs && f.maxRequests === maxRequests)
      if (form === undefined) {
        // a handful of servers' settings at most (one app, one server); more go Node's way
        if (forms.length >= 4) return undefined
        form = {
          keepAliveMs,
          maxRequests,
          before: undefined,
          after: '',
          date: undefined,
          bytes: '',
          refused: undefined,
        }
      } else {
        forms.splice(forms.indexOf(form), 1)
      }
      forms.unshift(form)
    }
    if (date === form.date) return form.bytes
    if (form.before === undefined) return this.#make(form, date)
    // a concatenation, made flat by V8 in place at its first write (not copied here again)
    form.bytes = form.before + date + form.after
    form.date = date
    return form.bytes
  }

  /**
   * Node's bytes for `form`'s settings, split around its Date's value, which must be `date`: a
   * Date Node made in another second than ours (a reply at the turn of a second) is tried again
   * in the next one; bytes without a Date are never sent this way.
   */
  #make(form: WireForm, date: string): string | undefined {
    if (form.refused === date) return undefined
    form.refused = date
    const sent = nodeSends(this.status, this.#head, this.#text, {
      ...KEPT_ALIVE,
      _keepAliveTimeout: form.keepAliveMs,
      _maxRequestsPerSocket: form.maxRequests,
    })
    const at = sent.indexOf('\r\nDate: ')
    const end = at < 0 ? -1 : sent.indexOf('\r\n', at + 8)
    if (end < 0 || sent.slice(at + 8, end) !== date) return undefined
    form.before = sent.slice(0, at + 8)
    form.after = sent.slice(end)
    form.bytes = sent
    form.date = date
    return sent
  }
}

/** A fixed reply's bytes for one server's keep-alive settings (see OneWrite). */
interface WireForm {
  readonly keepAliveMs: number
  readonly maxRequests: number
  /** Node's bytes before and after its Date's value; undefined until made (see #make). */
  before: string | undefined
  after: string
  /** The Date value in `bytes`. */
  date: string | undefined
  bytes: string
  /** The date of a try whose Date was not ours (not tried again in that second). */
  refused: string | undefined
}

/** A reply's headers as Node keeps validated ones, and the entry its Content-Length goes in. */
interface SizedHead {
  map: ValidatedHeaders
  length: [string, number]
}

const sizedHeads = new WeakMap<object, SizedHead>()

/**
 * `headers` (frozen) for replies whose body changes from one to the next (the Roblox read): their
 * names and values are validated here, once, and each reply's head is given to Node as the map of
 * headers `setHeader` validated (OUT_HEADERS) with that reply's Content-Length in it, where
 * `writeHead(status, headers)` ran Node's two header patterns, its own-property checks and the
 * headers' spread into a new object on every reply (issue 19). Same head, same bytes: the headers
 * in their order, then Content-Length. Headers naming a Content-Length are kept as they are (the
 * reply's own length replaces it, as before).
 */
export function replyHeaders(headers: Record<string, string>): Readonly<Record<string, string>> {
  const frozen = Object.freeze({ ...headers })
  if (OUT_HEADERS === undefined) return frozen
  if (Object.keys(frozen).some((name) => name.toLowerCase() === 'content-length')) return frozen
  const map: Record<string, readonly [string, string | number]> = {}
  for (const [name, value] of Object.entries(frozen)) {
    validateHeaderName(name)
    validateHeaderValue(name, value)
    map[name.toLowerCase()] = Object.freeze([name, value] as const)
  }
  // not frozen: each reply writes its length here, just before Node reads it (see #write)
  const length: [string, number] = ['content-length', 0]
  map['content-length'] = length
  // as validatedHeaders: no prototype, given after its members (fast properties), frozen
  sizedHeads.set(frozen, {
    map: Object.freeze(Object.setPrototypeOf(map, null) as typeof map),
    length,
  })
  return frozen
}

export interface LeanObserver {
  /** Called once per answered request, like Fastify's onResponse hooks. */
  onResponse(method: string, route: string, status: number, seconds: number): void
}

export interface LeanLogger {
  /** pino's level name. */
  level: string
  /** pino's level number, when it has one: read instead of `level` until it changes. */
  readonly levelVal?: number
  /**
   * pino's events: 'level-change' after its level is set, with the logger whose level it was
   * last (a child's are heard on its parent too). A logger that has them is not asked per request.
   */
  on?(
    event: 'level-change',
    listener: (name: string, value: number, before: string, was: number, logger: unknown) => void,
  ): unknown
  info(object: object, message: string): void
  warn(object: object, message: string): void
  error(object: object, message: string): void
}

/**
 * Every hook Fastify runs for a lean route's request, by name, with where the lean path does the
 * same. A hook added to the app (a root hook reaches every route) must be mirrored here and in
 * `#serve`, or the two paths differ: test/integration/roblox-lean.test.ts compares this list with
 * the hooks Fastify has on each lean route and fails on any hook not listed.
 */
export const MIRRORED_HOOKS: Readonly<Record<string, readonly string[]>> = {
  // closeUpgradeRequest, readUpgradeBody: a request asking for an upgrade only (Connection:
  // Upgrade), which Node hands to the server's 'upgrade' listeners, never to the lean path's
  // 'request' listener (shared/upgrade-requests.ts); admitRobloxCaller: the protocol's admission
  // (auth, rate limit, CSRF), which handle() calls; onRequest: @fastify/compress's, which lean
  // routes need not (they answer uncompressed only); refuseWhileClosing: the app closing, when
  // the lean path takes nothing (close()) and Fastify answers, this hook included
  onRequest: ['closeUpgradeRequest', 'refuseWhileClosing', 'admitRobloxCaller', 'onRequest'],
  // preParsing: @fastify/compress's (lean routes take no compressed request body)
  preParsing: ['readUpgradeBody', 'preParsing'],
  // connectionAfterReply: `close()` (a lean route answers no 413); onSend: @fastify/compress (nothing asked for it)
  onSend: ['connectionAfterReply', 'onSend'],
  // request metrics: `observe()`'s onResponse
  onResponse: ['observeResponse'],
}

/** Levels at which Fastify logs each request, so the lean path does too. */
const VERBOSE = new Set(['info', 'debug', 'trace'])

/** `application/json`, optionally with `charset=utf-8`: the body shape every lean route takes. */
const PLAIN_JSON = /^application\/json\s*(?:;\s*charset="?utf-8"?\s*)?$/i
/** The type most clients send, which PLAIN_JSON takes. */
const JSON_TYPE = 'application/json'

/**
 * `Number(length)` of a Content-Length header: a short run of digits (what Node's parser lets
 * through) read here, anything else by Number. Number of a new string went through V8's
 * string-to-number conversion, ~0.3k instructions a request.
 */
export function contentLength(length: string): number {
  const n = length.length
  if (n === 0 || n > 15) return Number(length)
  let size = 0
  for (let i = 0; i < n; i++) {
    const digit = length.charCodeAt(i) - 48
    if (digit < 0 || digit > 9) return Number(length)
    size = size * 10 + digit
  }
  return size
}

/**
 * The lean routes of one app and the node:http server (Fastify's `serverFactory`) that tries
 * them first. A request is taken only when nothing about it needs Fastify: exact method and
 * path, a JSON body with a Content-Length within the body limit, no compression asked or sent,
 * the app not closing. Anything else goes to Fastify untouched (its body
 * unread), which answers it as it always did.
 */
export class LeanRoutes {
  readonly #routes: LeanRoute[] = []
  readonly #bodyLimit: number
  readonly #headersTimeoutMs: number | undefined
  #observer: LeanObserver | undefined
  #log: LeanLogger | undefined
  #requestIds = 0
  /** Off once the app closes. */
  enabled = true
  /** The client's address behind the proxies the app trusts (PRESENCED_TRUST_PROXY). */
  readonly #clientAddress: ((request: IncomingMessage) => string) | undefined
  /** Requests answered here, for tests and benches. */
  served = 0

  constructor(options: {
    bodyLimit: number
    headersTimeoutMs?: number
    clientAddress?: (request: IncomingMessage) => string
  }) {
    this.#bodyLimit = options.bodyLimit
    this.#headersTimeoutMs = options.headersTimeoutMs
    this.#clientAddress = options.clientAddress
  }

  #closing = false
  /** The server's connectionTimeout (0: none), armed by armIdle. */
  #idleMs = 0

  /**
   * The app is closing: new requests go to Fastify (which answers 503), and a reply to one in
   * flight says `Connection: close`, so its socket does not stay open, idle, holding the close.
   */
  close(): void {
    this.enabled = false
    this.#closing = true
  }

  add(route: LeanRoute): void {
    // one route per method and path: a later one replaces it
    const at = this.#routes.findIndex((r) => r.method === route.method && r.path === route.path)
    if (at >= 0) this.#routes[at] = route
    else this.#routes.push(route)
  }

  #find(method: string | undefined, url: string | undefined): LeanRoute | undefined {
    const routes = this.#routes
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!
      if (route.path === url && route.method === method) return route
    }
    return undefined
  }

  observe(observer: LeanObserver, log: LeanLogger): void {
    this.#observer = observer
    this.#log = log
    this.#levelVal = Number.NaN
    this.#levelTold = false
    if (typeof log.on === 'function' && log.levelVal !== undefined) {
      // judged now and again whenever this logger's level is set (pino's 'level-change'), not
      // per request: pino's `levelVal` is a getter on its prototype, which V8 keeps as a
      // dictionary, each read a load IC's slow path and a call (~0.36k instructions a heartbeat
      // under callgrind, issue 19)
      this.#isVerbose = VERBOSE.has(log.level)
      this.#levelTold = true
      log.on('level-change', (_name, _value, _before, _was, changed) => {
        // a child's change is heard here too: only this logger's own is its level
        if (this.#log === log && (changed === undefined || changed === log)) {
          this.#isVerbose = VERBOSE.has(log.level)
        }
      })
    }
  }

  /** pino's level number when #isVerbose was last judged (NaN: never, or not pino). */
  #levelVal = Number.NaN
  #isVerbose = false
  /** #isVerbose is kept by the logger's 'level-change' events (observe). */
  #levelTold = false

  /**
   * Whether requests are logged at the logger's level now. pino's `level` getter looks the name
   * up on every read (about 0.8k instructions per request under callgrind); its `levelVal` is one
   * field, so the name is read again only when that moves. A logger without `levelVal` is asked
   * every time; one with pino's events is not asked at all (observe).
   */
  #verbose(): boolean {
    if (this.#levelTold) return this.#isVerbose
    const log = this.#log
    if (log === undefined) return false
    const levelVal = log.levelVal
    if (levelVal === undefined || levelVal !== this.#levelVal) {
      this.#levelVal = levelVal ?? Number.NaN
      this.#isVerbose = VERBOSE.has(log.level)
    }
    return this.#isVerbose
  }

  /** Fastify's `serverFactory`: the HTTP/1 server Fastify would make, trying lean routes first. */
  serverFactory = (
    fastifyHandler: RequestListener,
    options: { keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number },
  ): Server => {
    const headersTimeout = this.#headersTimeoutMs
    const idleMs = options.connectionTimeout ?? 0
    this.#idleMs = idleMs
    const listener: RequestListener = (request, response) => {
      if (refuseMissingHost(request, response)) return
      if (this.#take(request, response)) return
      if (idleMs > 0) armIdle(request.socket, idleMs)
      fastifyHandler(request, response)
    }
    const server = createServer(
      {
        // Slow clients (slowloris): these timeouts are only enforced when Node checks its
        // connections, every 30 s by default; a check every second keeps the limits what they say.
        ...(headersTimeout !== undefined && { headersTimeout }),
        ...(options.requestTimeout !== undefined && { requestTimeout: options.requestTimeout }),
        connectionsCheckingInterval: 1000,
        // answered in the protocol's format instead (refuseMissingHost)
        requireHostHeader: false,
      },
      listener,
    )
    // An Expect other than 100-continue gets Node's own 417 with an empty body, in no protocol's
    // format. RFC 9110 lets a server ignore an expectation it does not know: the request is
    // answered as if it had none, errors in its protocol's format.
    server.on('checkExpectation', listener)
    // what Fastify sets on the server it makes itself
    if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout
    if (options.requestTimeout !== undefined) server.requestTimeout = options.requestTimeout
    // Fastify's connectionTimeout (a socket idle that long is closed), kept as Node keeps it
    // (`server.setTimeout`) but for lean requests: Node arms it again at every request on a
    // kept-alive connection, a timer made, refreshed on each write and replaced by the keep-alive
    // one at the reply's end (~2.5k instructions per heartbeat under callgrind). Here it is armed
    // as a connection opens (as Node does), again for each request Fastify answers, and for a lean
    // request only when its reply is not all taken by the socket (a client that does not read):
    // a lean route's own work is bounded by its stores' timeouts, its body by requestTimeout.
    if (idleMs > 0) server.on('connection', (socket: Socket) => armIdle(socket, idleMs))
    return server
  }

  #take(request: IncomingMessage, response: ServerResponse): boolean {
    if (!this.enabled || this.#routes.length === 0) return false
    // a scan of the few routes, not a Map: its key would be a string built and hashed per request
    const route = this.#find(request.method, request.url)
    if (!route) return false
    const headers = request.headers
    const type = headers['content-type']
    const length = headers['content-length']
    if (
      type === undefined ||
      length === undefined ||
      headers['transfer-encoding'] !== undefined ||
      headers['content-encoding'] !== undefined ||
      (headers['accept-encoding'] !== undefined && headers['accept-encoding'] !== 'identity') ||
      // the usual type compared as text first: the pattern was ~0.45k instructions a request
      (type !== JSON_TYPE && !PLAIN_JSON.test(type))
    ) {
      return false
    }
    const size = contentLength(length)
    if (!(size <= this.#bodyLimit)) return false
    this.served++
    if (size > 0 && request.readableLength < size) {
      // 'request' comes as the parser reads the head, before it pushes a body that came with it
      // (in the same read): served once that read is done, the body is there to be read at once
      // and a route whose steps are synchronous answers in that one turn (issue 19: reading it
      // now meant its listeners, a promise and the rest of the route in later turns). Queued
      // here and served from one microtask, a resolved promise's reaction: Node's
      // queueMicrotask made an AsyncResource, a bound function and an async scope per request
      // (issue 19, bench/heartbeat-costs.ts), and a closure held the request.
      const deferred = this.#deferred
      const at = this.#deferredLength
      this.#deferredLength = at + 4
      deferred[at] = route
      deferred[at + 1] = request
      deferred[at + 2] = response
      deferred[at + 3] = size
      if (at === 0) void RESOLVED.then(this.#serveDeferred)
    } else {
      this.#serveNow(route, request, response, size)
    }
    return true
  }

  /** Requests waiting for their body's read to end: route, request, response, size, ... */
  readonly #deferred: Array<LeanRoute | IncomingMessage | ServerResponse | number> = []
  /**
   * How much of #deferred is queued: the array keeps its length (its slots zeroed once served),
   * so that it is not grown again from empty for each read's requests (~0.17k a request).
   */
  #deferredLength = 0

  /** Serves the requests queued by #take, in their order (one microtask for all of them). */
  readonly #serveDeferred = (): void => {
    const deferred = this.#deferred
    // a request served here may not queue another (requests come from reads), but if one did it
    // is served in this loop too: the length is read at each step
    for (let i = 0; i < this.#deferredLength; i += 4) {
      this.#serveNow(
        deferred[i] as LeanRoute,
        deferred[i + 1] as IncomingMessage,
        deferred[i + 2] as ServerResponse,
        deferred[i + 3] as number,
      )
      // nothing kept alive once it is served
      deferred[i] = deferred[i + 1] = deferred[i + 2] = 0
    }
    this.#deferredLength = 0
  }

  /**
   * #serve, whose errors were its promise's rejection (unhandled, as a bug's): a throw here
   * must not skip the requests queued after this one, so it is made that rejection again.
   */
  #serveNow(route: LeanRoute, request: IncomingMessage, response: ServerResponse, size: number) {
    try {
      this.#serve(route, request, response, size)
    } catch (error) {
      void Promise.reject(error)
    }
  }

  /**
   * Answers a lean request: at once when the route answers at once (no async function, whose
   * promise and saved frame were ~0.6 KB allocated per heartbeat), else when its promise settles.
   */
  #serve(route: LeanRoute, request: IncomingMessage, response: ServerResponse, size: number): void {
    const started = monotonicNow()
    const log = this.#verbose() ? this.#log : undefined
    const reqId = log ? `lean-${++this.#requestIds}` : ''
    const ip = this.#clientAddress?.(request) ?? peerAddress(request.socket)
    if (log) {
      log.info(
        { reqId, req: { ...describe(request), ip, host: request.headers.host } },
        'incoming request',
      )
    }
    let answer: LeanReply | Promise<LeanReply>
    try {
      answer = route.handle(
        request,
        ip,
        ((raw?: true) => readBody(request, size, raw === true)) as LeanBody,
        this.#log,
      )
    } catch (error) {
      this.#failed(route, request, response, error, started, log, reqId)
      return
    }
    if (answer instanceof Promise) {
      answer.then(
        (reply) => this.#send(route, request, response, reply, started, log, reqId),
        (error: unknown) => this.#failed(route, request, response, error, started, log, reqId),
      )
      // as the async function this was: a throw in #send or #failed is an unhandled rejection
      return
    }
    this.#send(route, request, response, answer, started, log, reqId)
  }

  /** A route's error it did not render (a bug): logged, answered with its internalError. */
  #failed(
    route: LeanRoute,
    request: IncomingMessage,
    response: ServerResponse,
    error: unknown,
    started: number,
    log: LeanLogger | undefined,
    reqId: string,
  ): void {
    if (response.destroyed || request.destroyed) return
    this.#log?.error({ err: error }, 'unexpected error in a lean route')
    this.#send(route, request, response, route.internalError, started, log, reqId)
  }

  /**
   * Replies waiting for this turn of the event loop's reads to end: route, request, response,
   * reply, started, log, reqId, ... (kept as #deferred is).
   */
  readonly #replies: Array<
    | LeanRoute
    | IncomingMessage
    | ServerResponse
    | LeanReply
    | number
    | LeanLogger
    | string
    | undefined
  > = []
  #repliesLength = 0

  /**
   * Queues `reply`, written with the others of this turn once the turn's reads are done (Node's
   * check phase, `setImmediate`). Written as each was ready, every reply to a client on this
   * machine (a proxy in front, a load generator) woke that client's idle thread again, one
   * wake-up each, in the kernel's send path under this process's CPU: written together, the
   * client wakes once for them all. Measured (issue 19, `npm run bench`): CPU a read 60.5 ->
   * 42.3 µs, the load generator's own 28.9 -> 18.2, p50 2.85 -> 2.20 ms.
   */
  #send(
    route: LeanRoute,
    request: IncomingMessage,
    response: ServerResponse,
    reply: LeanReply,
    started: number,
    log: LeanLogger | undefined,
    reqId: string,
  ): void {
    const replies = this.#replies
    const at = this.#repliesLength
    this.#repliesLength = at + 7
    replies[at] = route
    replies[at + 1] = request
    replies[at + 2] = response
    replies[at + 3] = reply
    replies[at + 4] = started
    replies[at + 5] = log
    replies[at + 6] = reqId
    if (at === 0) setImmediate(this.#writeReplies)
  }

  /** Writes the replies queued by #send, in their order. */
  readonly #writeReplies = (): void => {
    const replies = this.#replies
    // a reply written here may not queue another, but if one did it is written in this loop too
    for (let i = 0; i < this.#repliesLength; i += 7) {
      try {
        this.#write(
          replies[i] as LeanRoute,
          replies[i + 1] as IncomingMessage,
          replies[i + 2] as ServerResponse,
          replies[i + 3] as LeanReply,
          replies[i + 4] as number,
          replies[i + 5] as LeanLogger | undefined,
          replies[i + 6] as string,
        )
      } catch (error) {
        // a bug's throw must not leave the replies queued after this one unwritten
        void Promise.reject(error)
      }
      // nothing kept alive once it is written
      replies[i] = replies[i + 1] = replies[i + 2] = replies[i + 3] = replies[i + 5] = undefined
    }
    this.#repliesLength = 0
  }

  /** Writes `reply`, then observes and logs the request as Fastify's hooks would. */
  #write(
    route: LeanRoute,
    request: IncomingMessage,
    response: ServerResponse,
    reply: LeanReply,
    started: number,
    log: LeanLogger | undefined,
    reqId: string,
  ): void {
    if (response.destroyed) return
    const fixed = this.#closing ? undefined : prepared.get(reply)
    if (fixed) {
      const out = response as unknown as NodeResponse
      const oneWrite = fixed.oneWrite
      const bytes =
        oneWrite !== undefined && sendsAsNodeWould(request, out)
          ? oneWrite.bytes(out._keepAliveTimeout, out._maxRequestsPerSocket)
          : undefined
      if (bytes !== undefined) {
        // as writeHead leaves a response, with the head Node would have made: end() sends it
        out.statusCode = reply.status
        out.statusMessage = oneWrite!.message
        out._header = bytes
        out._headerSent = false
        response.end()
      } else {
        if (
          fixed.validated !== undefined &&
          (response as unknown as Record<symbol, unknown>)[OUT_HEADERS!] == null
        ) {
          // nothing has set a header on this response: the map is all its headers (see OUT_HEADERS)
          ;(response as unknown as Record<symbol, unknown>)[OUT_HEADERS!] = fixed.validated
          response.writeHead(reply.status)
        } else {
          response.writeHead(reply.status, fixed.head)
        }
        response.end(fixed.body)
      }
      if (this.#idleMs > 0 && response.writableLength > 0) armIdle(request.socket, this.#idleMs)
    } else {
      // one encode, to bytes: measured cheaper than Node writing a long string after the head
      const bytes = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body
      const sized = this.#closing ? undefined : sizedHeads.get(reply.headers)
      const out = response as unknown as Record<symbol, unknown>
      if (sized !== undefined && out[OUT_HEADERS!] == null) {
        // nothing has set a header on this response: the map is all its headers, read by Node in
        // writeHead only, and taken off again after it, as `writeHead(status, headers)` leaves a
        // response (no later reply's length is seen through this one)
        sized.length[1] = bytes.length
        out[OUT_HEADERS!] = sized.map
        response.writeHead(reply.status)
        out[OUT_HEADERS!] = null
      } else {
        response.writeHead(reply.status, {
          ...reply.headers,
          ...(this.#closing && { connection: 'close' }),
          'content-length': bytes.length,
        })
      }
      response.end(bytes)
      // nothing left buffered in the response or its socket: the write took every byte
      const held = response.writableLength
      if (reply.reclaim !== undefined && held === 0) reply.reclaim(bytes)
      if (this.#idleMs > 0 && held > 0) armIdle(request.socket, this.#idleMs)
    }
    const seconds = (monotonicNow() - started) / 1000
    this.#observer?.onResponse(route.method, route.route, reply.status, seconds)
    if (log) {
      log.info(
        { reqId, res: { statusCode: reply.status }, responseTime: seconds * 1000 },
        'request completed',
      )
    }
  }
}

/**
 * Arms `socket`'s idle timeout (Node's own `socketOnTimeout` closes it when it fires), unless it
 * is armed with it already: a connection's first request keeps the timer armed as it opened.
 */
function armIdle(socket: Socket, ms: number): void {
  if (socket.timeout !== ms) socket.setTimeout(ms)
}

/** Each connection's remote address, once read (see peerAddress). */
const peers = new WeakMap<Socket, string>()

/**
 * `socket.remoteAddress`, read from Node once per connection: its getter goes through
 * `_getpeername` and its megamorphic loads on every request (~0.5k instructions a heartbeat
 * under callgrind) to answer the address it keeps from the first read; a connection's peer
 * does not change. '' while Node has none (a socket gone before it was read), not kept.
 */
function peerAddress(socket: Socket): string {
  let address = peers.get(socket)
  if (address === undefined) {
    address = socket.remoteAddress
    if (address === undefined) return ''
    peers.set(socket, address)
  }
  return address
}

/**
 * `performance.now()`, bound once: the global `performance` is an accessor Node runs on every
 * read, and `now` is found on a prototype V8 keeps as a dictionary (each a load IC's slow
 * path, ~0.17k instructions a read under callgrind; two reads a request).
 */
const monotonicNow: () => number = performance.now.bind(performance)

function describe(request: IncomingMessage): { method: string; url: string; socket: unknown } {
  return { method: request.method ?? '', url: request.url ?? '', socket: request.socket }
}

/** The body of a request without one, as bytes. */
const NO_BYTES = Buffer.alloc(0)

/**
 * The whole body as utf-8 text, or with `raw` as bytes (see LeanBody); `size` is its
 * Content-Length, checked against the limit.
 */
function readBody(
  request: IncomingMessage,
  size: number,
  raw: boolean,
): string | Buffer | Promise<string | Buffer> {
  if (request.readableLength === size && request.readableFlowing === null && !request.destroyed) {
    // All of it is buffered already (a body that came with the head: the parser pushes it in the
    // step that started this request): one read takes it, and the stream is resumed to end as a
    // body nobody reads does (the server's dump), without the listeners and the promise's
    // closures below, nor a promise at all (issue 19).
    const chunk = size === 0 ? null : (request.read() as Buffer | null)
    request.resume()
    if (raw) return chunk ?? NO_BYTES
    return chunk === null ? '' : bodyText(chunk, 'INVALID_JSON')
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let ended = false
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      ended = true
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      if (raw) resolve(bytes)
      else {
        try {
          resolve(bodyText(bytes, 'INVALID_JSON'))
        } catch (error) {
          reject(error as Error)
        }
      }
    })
    request.on('error', reject)
    // a client gone mid-body: nothing to answer
    request.on('close', () => {
      if (!ended) reject(new Error('request closed before its body ended'))
    })
  })
}
