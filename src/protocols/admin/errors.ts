import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { PresenceError } from '../../core/errors.js'
import { mapErrorToRecord } from '../shared/error-record.js'
import { ApiKeyInputError } from '../../service/api-keys.js'
import { ImportRefused } from './importer.js'

/**
 * The admin API's error shape: `{"error":{"code","message"}}` with a stable upper-case code, plus
 * `line` for a refused import line.
 */
export interface AdminErrorBody {
  error: { code: string; message: string; line?: number }
}

export function sendAdminError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  extra: { line?: number } = {},
): FastifyReply {
  return reply.code(status).send({ error: { code, message, ...extra } } satisfies AdminErrorBody)
}

/** Maps any error of an admin route to the admin shape; only the unexpected is a 500. */
export function adminErrorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error instanceof ImportRefused) {
    return sendAdminError(reply, 400, 'IMPORT_LINE_INVALID', error.message, { line: error.line })
  }
  if (error instanceof ApiKeyInputError) {
    return sendAdminError(reply, 400, 'INVALID_REQUEST', error.message)
  }
  return mapErrorToRecord(error, request, reply, sendAdminError)
}

export function badRequest(message: string): PresenceError {
  return new PresenceError('bad_request', 'INVALID_REQUEST', message)
}

/**
 * A preValidation hook for JSON routes: a body in another type (text/plain has a default parser
 * in Fastify) is a 415, not a confusing schema error.
 */
export async function requireJsonBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined) return
  const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json' && type !== 'text/json') {
    throw new PresenceError(
      'unsupported_media_type',
      'UNSUPPORTED_MEDIA_TYPE',
      'Send the body as application/json.',
    )
  }
  refuseCoercibleMembers(request.body)
}

const ID_MEMBERS = ['universeId', 'rootPlaceId']

/**
 * The app's Ajv coerces scalars (`true` → 1, `null` → 0, `[5]` → 5): an id must never be made
 * that way, nor a flag out of `null` or `0`. Checked before validation, on the body as sent.
 */
function refuseCoercibleMembers(body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return
  const o = body as Record<string, unknown>
  const isId = (v: unknown) => typeof v === 'number' || typeof v === 'string'
  for (const name of ID_MEMBERS) {
    if (o[name] !== undefined && !isId(o[name])) {
      throw badRequest(`${name} must be a positive 64-bit integer (a JSON number or string).`)
    }
  }
  if (Array.isArray(o.universes) && !o.universes.every(isId)) {
    throw badRequest('universes must hold positive 64-bit integers (JSON numbers or strings).')
  }
  if (o.invisible !== undefined && typeof o.invisible !== 'boolean') {
    throw badRequest('invisible must be true or false.')
  }
}
