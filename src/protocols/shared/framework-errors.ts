import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { sendAdminError } from '../admin/errors.js'
import { errorBody } from '../roblox/errors.js'
import { XboxErrorCode, sendXboxError } from '../xbox/errors.js'

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
  const path = (request.raw.url ?? '/').split('?')[0]!
  if (path.startsWith('/admin/') || path.startsWith('/api/')) {
    return sendAdminError(reply, status, tooLong ? 'URI_TOO_LONG' : 'INVALID_URL', message)
  }
  if (path.startsWith('/users/')) {
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
  if (path.startsWith('/admin/') || path.startsWith('/api/')) {
    return sendAdminError(reply, 404, 'NOT_FOUND', message)
  }
  if (path === '/users' || path.startsWith('/users/')) {
    return sendXboxError(reply, 404, XboxErrorCode.NotFound, message)
  }
  return reply.code(404).type('application/json; charset=utf-8').send(errorBody(0, message))
}
