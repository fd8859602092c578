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
 *   once the answer is sent;
 * - `readUpgradeBody` (preParsing) reads its body from the socket (Content-Length only), within
 *   the server's request timeout as Node's parser would: too slow is a 408 in the route's format;
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
      // all in, or a body Fastify never reads (a GET's, a HEAD's)
      const method = request.raw.method
      if (bodyLength(request.raw) === 0 || method === 'GET' || method === 'HEAD') {
        incomplete.delete(request.raw.socket)
      }
    }
    done()
  })

  app.addHook('preParsing', function readUpgradeBody(request, _reply, payload, done) {
    const handover = asksUpgrade(request.raw) ? handovers.get(request.raw) : undefined
    const length = handover ? bodyLength(request.raw) : 0
    if (!handover || length === 0) {
      done(null, payload)
      return
    }
    const socket = request.raw.socket
    const deadline = handover.at + requestTimeoutMs
    done(
      null,
      socketBody(socket, handover.head, length, deadline, () => incomplete.delete(socket)),
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

/** The request's Content-Length (0 without one: no body, or a chunked one, which stays unread). */
function bodyLength(request: IncomingMessage): number {
  const length = request.headers['content-length']
  return length === undefined ? 0 : Number(length)
}

/** A body whose bytes took longer than the request timeout: a 408 in the route's format. */
function bodyTimedOut(): Error {
  return Object.assign(new Error('The request body took too long to arrive.'), { statusCode: 408 })
}

/**
 * The `length` bytes of body that follow the request's head on `socket`, `head` first; read when
 * Fastify reads the body (a GET's never is). Not all in by `deadline`: a 408 error.
 */
function socketBody(
  socket: Socket,
  head: Buffer,
  length: number,
  deadline: number,
  onEnd: () => void,
): Readable {
  let received = 0
  let timer: NodeJS.Timeout | undefined
  const stop = (): void => {
    clearTimeout(timer)
    socket.off('data', take)
    socket.off('close', closed)
  }
  const take = (chunk: Buffer): void => {
    const part = chunk.length > length - received ? chunk.subarray(0, length - received) : chunk
    received += part.length
    if (part.length > 0 && !body.push(part)) socket.pause()
    if (received === length) {
      // bytes past the body (a pipelined request) stay unread: the socket closes after the answer
      stop()
      socket.pause()
      onEnd()
      body.push(null)
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
      take(head)
      if (received < length) socket.on('data', take)
    },
    destroy(error, callback) {
      stop()
      callback(error)
    },
  })
  return body
}
