import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/** The WebSocket route: the one route whose GET is upgraded. */
export const REALTIME_URL = '/api/v1/realtime'

/** How long an answer may take to flush once its socket is ended before the socket is dropped. */
const FLUSH_MS = 5000

/** What the upgrade listener knows of a request that only its socket can give. */
interface Handover {
  /** The bytes Node read past the request's head (the start of its body). */
  head: Buffer
  /** When Node handed the request over (performance.now()). */
  at: number
}

/**
 * Requests asking for an upgrade (`Connection: Upgrade` + `Upgrade: websocket`, `h2c`, …) leave
 * Node's HTTP parser once their head is read, as the app listens for upgrades (the WebSocket
 * route): their socket has none of the server's timeouts, no keep-alive and no next request, and
 * their body is left unread on the socket. @fastify/websocket routes each through Fastify, and
 * closed the socket only in its own scope (the native routes): any other route answered, then held
 * the socket for ever, and a body was lost (refused as a body of the wrong length). Only
 * `GET /api/v1/realtime` is an upgrade; every other such request is served here as a request that
 * closes its connection:
 *
 * - `closeUpgradeRequest` (onRequest) answers it with `Connection: close` and closes the socket
 *   once the answer is sent; it first sends `100 Continue` to an `Expect: 100-continue`, as
 *   Node's server does for any other request;
 * - `readUpgradeBody` (preParsing) reads its body from the socket (by its Content-Length, or
 *   chunked), within the server's request timeout as Node's parser would: too slow is a 408 in
 *   the route's format, a malformed chunked body a 400, a body past the route's limit a 413
 *   (Fastify's count of what it reads);
 * - the socket is dropped when idle for `idleMs` (the server's connection timeout; `ws` turns it
 *   off on a socket it upgrades), and as the app closes while its request is not all in.
 *
 * Neither hook sees a lean route's request: a request asking for an upgrade never reaches the
 * server's 'request' listener (both are listed in MIRRORED_HOOKS). Call on the root instance,
 * before any route and before `@fastify/websocket` listens for upgrades.
 */
export function closeUpgradeRequests(
  app: FastifyInstance,
  { idleMs, requestTimeoutMs }: { idleMs: number; requestTimeoutMs: number },
): void {
  const handovers = new WeakMap<IncomingMessage, Handover>()
  /** Sockets whose request is not all in: no hook has seen it yet, or its body is being read. */
  const incomplete = new Set<Socket>()
  let closing = false
  // one function for every socket: a closure each would stay with every WebSocket's socket
  function forgetSocket(this: Socket): void {
    incomplete.delete(this)
  }

  // before @fastify/websocket's listener, which routes the request through Fastify
  app.server.prependListener(
    'upgrade',
    (request: IncomingMessage, socket: Socket, head: Buffer) => {
      if (closing) {
        // nothing will close it once @fastify/websocket stops listening, nor Fastify's 503 before
        socket.destroy()
        return
      }
      // a GET's or a HEAD's body is never read: no handover kept for the life of a WebSocket
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        handovers.set(request, { head, at: performance.now() })
      }
      // (@fastify/websocket's injectWS hands over a stream with no timeout of its own)
      if (idleMs > 0 && typeof socket.setTimeout === 'function') {
        socket.setTimeout(idleMs)
        socket.once('timeout', destroySocket)
      }
      incomplete.add(socket)
      socket.once('close', forgetSocket)
    },
  )

  // not async: one promise less on every request (this hook runs on every route)
  app.addHook('onRequest', function closeUpgradeRequest(request, reply, done) {
    if (asksUpgrade(request.raw)) {
      if (request.routeOptions.url === REALTIME_URL && request.raw.method === 'GET') {
        // upgraded, or refused by @fastify/websocket, which closes the socket itself; nothing of
        // ours stays with a WebSocket's socket for its life (0.7 KiB of heap per connection)
        const socket = request.raw.socket
        incomplete.delete(socket)
        socket.off('close', forgetSocket)
        socket.off('timeout', destroySocket)
        done()
        return
      }
      closeAfterAnswer(request, reply)
      // as Node's server does for any other request (its 'checkContinue' default): a client
      // waiting for it would send its body only at the request timeout (a 408)
      if (expectsContinue(request.raw)) reply.raw.writeContinue()
      // all in, or a body Fastify never reads (a GET's, a HEAD's)
      const method = request.raw.method
      if (bodyDecoder(request.raw) === undefined || method === 'GET' || method === 'HEAD') {
        incomplete.delete(request.raw.socket)
      }
    }
    done()
  })

  app.addHook('preParsing', function readUpgradeBody(request, _reply, payload, done) {
    const handover = asksUpgrade(request.raw) ? handovers.get(request.raw) : undefined
    const decoder = handover ? bodyDecoder(request.raw) : undefined
    if (!handover || !decoder) {
      done(null, payload)
      return
    }
    const socket = request.raw.socket
    const deadline = handover.at + requestTimeoutMs
    done(
      null,
      socketBody(socket, handover.head, decoder, deadline, () => incomplete.delete(socket)),
    )
  })

  // a root hook: it runs before the protocols' (and @fastify/websocket's) own
  app.addHook('preClose', function dropIncompleteUpgrades(done) {
    closing = true
    for (const socket of incomplete) socket.destroy()
    incomplete.clear()
    done()
  })
}

/** Whether Node handed this request to the server's upgrade listeners (it asks for an upgrade). */
export function asksUpgrade(request: IncomingMessage): boolean {
  return (request as IncomingMessage & { upgrade?: boolean }).upgrade === true
}

/**
 * An answer to a request asking for an upgrade, on a route that does not upgrade it: it says
 * `Connection: close`, and its socket (out of Node's HTTP server, which would close it) is closed
 * once it is sent. Also for an answer no hook sees (the router's own errors).
 */
export function closeAfterAnswer(request: FastifyRequest, reply: FastifyReply): void {
  void reply.header('connection', 'close')
  const socket = request.raw.socket
  // not an upgrade's 101 (hijacked, never finished): the one answer on this socket
  reply.raw.once('finish', () => endSocket(socket))
}

function endSocket(socket: Socket): void {
  if (socket.destroyed) return
  // the server's sockets allow half-open: ending alone would leave the reading side held
  socket.once('finish', destroySocket)
  socket.end()
  setTimeout(() => socket.destroy(), FLUSH_MS).unref()
}

function destroySocket(this: Socket): void {
  this.destroy()
}

/** Node's own test of an `Expect` header (node:_http_server), on an HTTP/1.1 request. */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i

function expectsContinue(request: IncomingMessage): boolean {
  const expect = request.headers.expect
  return (
    expect !== undefined &&
    request.httpVersionMajor === 1 &&
    request.httpVersionMinor === 1 &&
    CONTINUE.test(expect)
  )
}

/**
 * What reads the request's body off its socket: by its Content-Length, or chunked (Node's parser
 * refuses a request with both before any listener sees it); none when it has no body.
 */
function bodyDecoder(request: IncomingMessage): BodyDecoder | undefined {
  const codings = request.headers['transfer-encoding']
  if (codings !== undefined) {
    // a request whose last transfer coding is not chunked has no length (RFC 9112 6.3): Node's
    // parser refuses it, but not on a request asking for an upgrade
    return CHUNKED_LAST.test(codings) ? new ChunkedDecoder() : UNFRAMED
  }
  const length = request.headers['content-length']
  return length === undefined || Number(length) === 0
    ? undefined
    : new LengthDecoder(Number(length))
}

/** Takes a body's bytes from what its socket reads, in order. */
interface BodyDecoder {
  /**
   * Puts the body's bytes in `chunk` (views of it) into `out`; true once the body ended (the
   * bytes after it, a pipelined request's, are left). Throws a 400 error on a malformed body.
   */
  take(chunk: Buffer, out: Buffer[]): boolean
}

/** A body of Content-Length bytes. */
class LengthDecoder implements BodyDecoder {
  #left: number

  constructor(length: number) {
    this.#left = length
  }

  take(chunk: Buffer, out: Buffer[]): boolean {
    const part = chunk.length > this.#left ? chunk.subarray(0, this.#left) : chunk
    this.#left -= part.length
    if (part.length > 0) out.push(part)
    return this.#left === 0
  }
}

const CHUNKED_LAST = /(?:^|,)[ \t]*chunked[ \t]*$/i

/** A body of no length: refused (400) before a byte of it is read. */
const UNFRAMED: BodyDecoder = {
  take() {
    throw badBody('The request body has no length: its last Transfer-Encoding is not chunked.')
  },
}

/** Longest chunk-size line (with its extensions) and trailer section read: Node's own bound. */
const FRAMING_BYTES = 16 * 1024
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,13})[ \t]*(?:;[\t\x20-\x7e]*)?$/
const TRAILER = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*$/

/**
 * A chunked body (RFC 9112 7.1), decoded as Node's parser would: hex sizes, extensions ignored,
 * CRLF line ends, trailers read and dropped. Its size is bounded by the route's body limit
 * (Fastify counts the decoded bytes, a 413 once past it), its framing lines by FRAMING_BYTES.
 */
class ChunkedDecoder implements BodyDecoder {
  /** What is being read: a size line, a chunk's data, the CRLF after it, trailer lines. */
  #state: 'size' | 'data' | 'crlf' | 'trailers' = 'size'
  /** The line read so far (latin1), in 'size', 'crlf' and 'trailers'. */
  #line = ''
  /** Data bytes left in the chunk being read. */
  #left = 0
  /** Bytes of trailer section read. */
  #trailerBytes = 0

  take(chunk: Buffer, out: Buffer[]): boolean {
    let at = 0
    while (at < chunk.length) {
      if (this.#state === 'data') {
        const end = Math.min(chunk.length, at + this.#left)
        out.push(chunk.subarray(at, end))
        this.#left -= end - at
        at = end
        if (this.#left === 0) this.#state = 'crlf'
        continue
      }
      const newline = chunk.indexOf(10, at)
      const end = newline === -1 ? chunk.length : newline + 1
      this.#line += chunk.toString('latin1', at, end)
      if (this.#state === 'trailers') this.#trailerBytes += end - at
      at = end
      if (this.#line.length > FRAMING_BYTES || this.#trailerBytes > FRAMING_BYTES) {
        throw malformed('a chunk-size line or the trailers are too long')
      }
      if (newline === -1) break
      if (!this.#line.endsWith('\r\n')) throw malformed('a line does not end with CRLF')
      const line = this.#line.slice(0, -2)
      this.#line = ''
      if (this.#state === 'crlf') {
        if (line !== '') throw malformed("a chunk's data is longer than its size")
        this.#state = 'size'
      } else if (this.#state === 'size') {
        const size = CHUNK_SIZE.exec(line)
        if (!size) throw malformed('a chunk size is not hexadecimal')
        this.#left = parseInt(size[1]!, 16)
        this.#state = this.#left === 0 ? 'trailers' : 'data'
      } else if (line === '') {
        // the end of the body: what follows (a pipelined request) is left on the socket
        return true
      } else if (!TRAILER.test(line)) {
        throw malformed('a trailer is not a header field')
      }
    }
    return false
  }
}

/** A chunked body that does not follow RFC 9112: a 400 in the route's format. */
function malformed(why: string): Error {
  return badBody(`The chunked request body is malformed: ${why}.`)
}

function badBody(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 })
}

/** A body whose bytes took longer than the request timeout: a 408 in the route's format. */
function bodyTimedOut(): Error {
  return Object.assign(new Error('The request body took too long to arrive.'), { statusCode: 408 })
}

/** An 'error' listener for a body Fastify stopped reading (past its limit): nothing to tell. */
function ignore(): void {}

/**
 * The body that follows the request's head on `socket`, `head` first, as `decoder` reads it;
 * read when Fastify reads the body (a GET's never is). Not all in by `deadline`: a 408 error.
 */
function socketBody(
  socket: Socket,
  head: Buffer,
  decoder: BodyDecoder,
  deadline: number,
  onEnd: () => void,
): Readable {
  let timer: NodeJS.Timeout | undefined
  const parts: Buffer[] = []
  const stop = (): void => {
    clearTimeout(timer)
    socket.off('data', take)
    socket.off('close', closed)
  }
  const take = (chunk: Buffer): void => {
    let ended: boolean
    try {
      ended = decoder.take(chunk, parts)
    } catch (error) {
      stop()
      socket.pause()
      onEnd()
      body.destroy(error as Error)
      return
    }
    let full = false
    for (const part of parts) if (part.length > 0 && !body.push(part)) full = true
    parts.length = 0
    if (ended) {
      // bytes past the body (a pipelined request) stay unread: the socket closes after the answer
      stop()
      socket.pause()
      onEnd()
      body.push(null)
    } else if (full) {
      socket.pause()
    }
  }
  const closed = (): void => {
    stop()
    body.destroy(new Error('The connection closed before the request body ended.'))
  }
  let started = false
  const body = new Readable({
    read() {
      if (started) {
        socket.resume()
        return
      }
      started = true
      timer = setTimeout(() => {
        stop()
        body.destroy(bodyTimedOut())
      }, deadline - performance.now())
      socket.on('close', closed)
      socket.on('data', take)
      take(head)
    },
    destroy(error, callback) {
      stop()
      callback(error)
    },
  })
  // Fastify stops listening once a body passes the route's limit (its 413); the socket's close
  // after that answer must not be an 'error' no one hears (the end of the process)
  body.on('error', ignore)
  return body
}
