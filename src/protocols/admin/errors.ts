import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { fail, type PresenceError } from '../../core/errors.js'
import { mapErrorToRecord, sendErrorRecord } from '../shared/error-record.js'

/**
 * The admin API's error shape: `{"error":{"code","message"}}` with a stable upper-case code, plus
 * `line` for a refused import line.
 */
export interface AdminErrorBody {
  error: { code: string; message: string; line?: number }
}

export const sendAdminError = sendErrorRecord

/** Maps any error of an admin route to the admin shape; only the unexpected is a 500. */
export function adminErrorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  return mapErrorToRecord(error, request, reply)
}

export function badRequest(message: string): PresenceError {
  return fail('INVALID_REQUEST', message)
}

/**
 * A preValidation hook for JSON routes: a body in another type (text/plain has a default parser
 * in Fastify) is a 415, not a confusing schema error.
 */
export async function requireJsonBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined) return
  const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json' && type !== 'text/json') {
    throw fail('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.')
  }
}
