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

export { requireJsonBody } from '../shared/error-record.js'
