import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { PresenceError, statusOfKind } from '../../core/errors.js'
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

const codeOfFastifyError: Record<string, [number, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'INVALID_REQUEST'],
  INVALID_JSON: [400, 'INVALID_JSON'],
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
  if (error instanceof PresenceError) {
    if (error.retryAfter !== undefined) void reply.header('retry-after', String(error.retryAfter))
    return sendAdminError(reply, statusOfKind[error.kind], error.code, error.message)
  }
  if (error instanceof ApiKeyInputError) {
    return sendAdminError(reply, 400, 'INVALID_REQUEST', error.message)
  }
  const fastifyError = error as FastifyError
  if (fastifyError.validation) {
    return sendAdminError(reply, 400, 'INVALID_REQUEST', `Invalid request: ${error.message}.`)
  }
  const known = fastifyError.code ? codeOfFastifyError[fastifyError.code] : undefined
  if (known) return sendAdminError(reply, known[0], known[1], error.message)
  const status = fastifyError.statusCode
  if (status !== undefined && status >= 400 && status < 500) {
    return sendAdminError(reply, status, 'INVALID_REQUEST', error.message)
  }
  request.log.error({ err: error }, 'admin request failed')
  return sendAdminError(reply, 500, 'INTERNAL', 'Internal error; see the server log.')
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
