import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { sendAdminError } from '../admin/errors.js'
import { errorBody } from '../roblox/errors.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { XboxErrorCode, sendXboxError, xboxErrorBody } from '../xbox/errors.js'
import { asksUpgrade, closeAfterAnswer } from './upgrade-requests.js'

/**
 * The protocol whose error format a path outside every route gets: admin and native (`/admin/`,
 * `/api/`) the error record, `/users` Xbox's, everything else Roblox's (as the app's 404 does).
 */
function ownerOf(path: string): 'record' | 'xbox' | 'roblox' {
  if (path.startsWith('/admin/') || path.startsWith('/api/')) return 'record'
  if (path === '/users' || path.startsWith('/users/')) return 'xbox'
  return 'roblox'
}

/**
 * Fastify's `frameworkErrors`: a URL the router refuses before any route is chosen (malformed
 * percent-encoding, a path parameter over 100 characters) would otherwise get Fastify's own error
 * body, which no client of these protocols parses. It is answered in the format of the protocol
 * that owns the path instead: admin and native `{"error":{code,message}}`, Xbox's error record,
 * and Roblox's `{"errors":[...]}` for everything else (as the app's 404 does).
 */
export function frameworkErrors(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH'
  const status = tooLong ? 414 : 400
  const message = tooLong
    ? 'A path segment is too long.'
    : 'The URL is not valid: a path segment is not well-formed percent-encoding.'
  const owner = ownerOf((request.raw.url ?? '/').split('?')[0]!)
  // no hook runs before this answer: one asking for an upgrade is closed here
  if (asksUpgrade(request.raw)) closeAfterAnswer(request, reply)
  if (owner === 'record') {
    return sendAdminError(reply, status, tooLong ? 'URI_TOO_LONG' : 'INVALID_URL', message)
  }
  if (owner === 'xbox') {
    return sendXboxError(reply, status, XboxErrorCode.InvalidRequest, message)
  }
  return reply.code(status).type('application/json; charset=utf-8').send(errorBody(0, message))
}

/**
 * The app's 404, for a path no protocol serves: in the format of the protocol its prefix
 * belongs to (`/admin/` and `/api/` the error record, `/users` Xbox's), else Roblox's.
 */
export function unservedPath(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = (request.raw.url ?? '/').split('?')[0]!
  const message = `No route for ${request.method} ${path.slice(0, 200)}`
  const owner = ownerOf(path)
  if (owner === 'record') return sendAdminError(reply, 404, 'NOT_FOUND', message)
  if (owner === 'xbox') return sendXboxError(reply, 404, XboxErrorCode.NotFound, message)
  return reply.code(404).type('application/json; charset=utf-8').send(errorBody(0, message))
}

/** What Node's HTTP parser refuses, by the status it is answered with. */
const CLIENT_ERRORS: Record<number, { reason: string; code: string; message: string }> = {
  400: {
    reason: 'Bad Request',
    code: 'INVALID_REQUEST',
    message: 'The request is not valid HTTP/1.1 (its framing or a header cannot be parsed).',
  },
  408: {
    reason: 'Request Timeout',
    code: 'REQUEST_TIMEOUT',
    message: 'The request took too long.',
  },
  431: {
    reason: 'Request Header Fields Too Large',
    code: 'HEADERS_TOO_LARGE',
    message: 'The request headers are too large.',
  },
}

/**
 * Fastify's `clientErrorHandler`: a request Node's HTTP parser refuses before any route sees it
 * (a Content-Length beside Transfer-Encoding, two Content-Lengths, a malformed chunk, a negative
 * or non-decimal length, headers too large, too slow) would otherwise get Fastify's
 * `{"error":"Bad Request","message":"Client Error"}`, in no protocol's format. The path is read
 * from the bytes the parser got, and the error answered in its protocol's format as the router's
 * errors are (frameworkErrors); the connection is then closed, as its framing is lost.
 */
export function clientErrors(
  // Fastify types rawPacket as a JSON-ified buffer; Node passes the Buffer itself
  error: Error & { code?: string; rawPacket?: unknown },
  socket: Socket,
): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const status =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? 408
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? 431
        : 400
  const { reason, code, message } = CLIENT_ERRORS[status]!
  const raw = error.rawPacket
  const requestLine = Buffer.isBuffer(raw) ? raw.subarray(0, 2048).toString('latin1') : ''
  const path = /^[A-Za-z]+ (\/[^ ?\r\n]*)/.exec(requestLine)?.[1] ?? '/'
  const body = invalidRequestBody(path, code, message)
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy(error)
}

/** A 400-class refusal's body in the format of the protocol that owns `path`. */
function invalidRequestBody(path: string, code: string, message: string): string {
  const owner = ownerOf(path)
  return owner === 'record'
    ? JSON.stringify({ error: { code, message } })
    : owner === 'xbox'
      ? JSON.stringify(xboxErrorBody(XboxErrorCode.InvalidRequest, message))
      : errorBody(0, message)
}

/**
 * An HTTP/1.1 request without a Host header, which RFC 9112 has a server refuse with a 400: Node
 * sends that with an empty body (its requireHostHeader, turned off for this), in no protocol's
 * format; answered here in the path's, and the connection closed. Whether it was answered.
 */
export function refuseMissingHost(request: IncomingMessage, response: ServerResponse): boolean {
  if (request.headers.host !== undefined || request.httpVersion !== '1.1') return false
  const path = (request.url ?? '/').split('?')[0]!
  const body = invalidRequestBody(
    path,
    'INVALID_REQUEST',
    'An HTTP/1.1 request must have a Host header.',
  )
  response.shouldKeepAlive = false
  response.writeHead(400, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  })
  response.end(body)
  return true
}
