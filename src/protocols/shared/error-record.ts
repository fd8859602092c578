import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { PresenceError, fail } from '../../core/errors.js'
import { AUTH_CHALLENGE_HEADER, authChallenge } from './auth-challenge.js'
import { validationError } from './int64-keyword.js'

/** The error shape of the native, admin and servers APIs. */
export interface ErrorRecordBody {
  /** `maxIds`: the native real-time API's TOO_MANY_IDS refusal says the limit. */
  error: { code: string; message: string; line?: number; maxIds?: number }
}

/** ErrorRecordBody as a response schema (`line` is admin's own, documented there). */
export const errorRecordSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const

/**
 * Writes `{"error":{code,message}}` (plus `line` for a refused import line, `maxIds` for a
 * real-time request of too many ids).
 */
export function sendErrorRecord(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  extra: { line?: number; maxIds?: number } = {},
): FastifyReply {
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .send({ error: { code, message, ...extra } } satisfies ErrorRecordBody)
}

const codeOfFastifyError: Record<string, [number, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  // @fastify/compress's, for a Content-Encoding it cannot decode: a media type all the same
  FST_CP_ERR_INVALID_CONTENT_ENCODING: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'INVALID_REQUEST'],
  INVALID_JSON: [400, 'INVALID_JSON'],
}

/**
 * Maps any error of a route speaking the error record (admin, servers, native HTTP): catalogue
 * errors keep their code and status, Fastify's body and validation errors become 4xx, and only
 * the unexpected is a 500 (logged, its details kept out of the reply).
 */
export function mapErrorToRecord(
  raw: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const error = validationError(raw) ?? raw
  if (error instanceof PresenceError) {
    const { retryAfter, allow, line } = error.details
    if (retryAfter !== undefined) void reply.header('retry-after', String(retryAfter))
    if (allow !== undefined) void reply.header('allow', allow)
    const challenge = authChallenge(error)
    if (challenge !== undefined) void reply.header(AUTH_CHALLENGE_HEADER, challenge)
    if (error.kind === 'internal') request.log.error({ err: error }, 'request failed')
    return sendErrorRecord(
      reply,
      error.status,
      error.code,
      error.message,
      line === undefined ? {} : { line },
    )
  }
  const fastifyError = error as FastifyError
  const known = fastifyError.code ? codeOfFastifyError[fastifyError.code] : undefined
  if (known) return sendErrorRecord(reply, known[0], known[1], error.message)
  const status = fastifyError.statusCode
  if (status !== undefined && status >= 400 && status < 500) {
    return sendErrorRecord(reply, status, 'INVALID_REQUEST', error.message)
  }
  request.log.error({ err: error, url: request.routeOptions.url }, 'request failed')
  return sendErrorRecord(reply, 500, 'INTERNAL', 'Internal error; see the server log.')
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
