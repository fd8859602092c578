import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { PresenceError, statusOfKind } from '../../core/errors.js'

/** Writes one error in a protocol's own shape. */
export type SendError = (
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
) => FastifyReply

const codeOfFastifyError: Record<string, [number, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'INVALID_REQUEST'],
  INVALID_JSON: [400, 'INVALID_JSON'],
}

/**
 * Maps any error of a route with upper-case string codes (admin, servers) through `send`:
 * catalogue errors keep their code and status, Fastify's body and validation errors become
 * 4xx, and only the unexpected is a 500 (logged, its details kept out of the reply).
 */
export function mapErrorToRecord(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
  send: SendError,
): FastifyReply {
  if (error instanceof PresenceError) {
    if (error.retryAfter !== undefined) void reply.header('retry-after', String(error.retryAfter))
    return send(reply, statusOfKind[error.kind], error.code, error.message)
  }
  const fastifyError = error as FastifyError
  if (fastifyError.validation) {
    return send(reply, 400, 'INVALID_REQUEST', `Invalid request: ${error.message}.`)
  }
  const known = fastifyError.code ? codeOfFastifyError[fastifyError.code] : undefined
  if (known) return send(reply, known[0], known[1], error.message)
  const status = fastifyError.statusCode
  if (status !== undefined && status >= 400 && status < 500) {
    return send(reply, status, 'INVALID_REQUEST', error.message)
  }
  request.log.error({ err: error, url: request.routeOptions.url }, 'request failed')
  return send(reply, 500, 'INTERNAL', 'Internal error; see the server log.')
}
