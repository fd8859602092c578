import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'

/** How long a refused upgrade request's answer may take to flush before its socket is dropped. */
const FLUSH_MS = 5000

/**
 * Requests asking for an upgrade (`Connection: Upgrade` + `Upgrade`) leave Node's HTTP parser
 * (the app listens for upgrades: the WebSocket route): their socket has none of the server's
 * timeouts and no keep-alive, and nothing reads a next request on it. Only GET /api/v1/realtime
 * is upgraded (@fastify/websocket); every other such request is answered by its route (or the
 * not-found handler) in its protocol's format, `Connection: close`, and its socket is then closed.
 * A socket no route answers (a request Fastify refuses before its hooks) is dropped when idle for
 * the server's connection timeout. Call on the root instance, before any route.
 */
export function closeUpgradeRequests(app: FastifyInstance, idleMs: number): void {
  // before @fastify/websocket's listener; ws turns the timeout off on a socket it upgrades
  app.server.prependListener('upgrade', (_request, socket: Socket) => {
    socket.setTimeout(idleMs)
    socket.once('timeout', destroySocket)
  })
  // not async: one promise less on every request
  app.addHook('onRequest', (request, reply, done) => {
    if (asksUpgrade(request.raw)) {
      void reply.header('connection', 'close')
      // not an upgrade's 101 (hijacked, never finished): the one answer on this socket
      reply.raw.once('finish', closeAfterFlush)
    }
    done()
  })
}

function closeAfterFlush(this: { socket: Socket | null }): void {
  const socket = this.socket
  if (!socket || socket.destroyed) return
  // the server's sockets allow half-open: end alone would leave the reading side held
  socket.once('finish', destroySocket)
  socket.end()
  setTimeout(() => socket.destroy(), FLUSH_MS).unref()
}

function destroySocket(this: Socket): void {
  this.destroy()
}

/** Whether Node handed this request to the server's upgrade listeners (it asks for an upgrade). */
export function asksUpgrade(request: IncomingMessage): boolean {
  return (request as IncomingMessage & { upgrade?: boolean }).upgrade === true
}
