import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { PresenceError, statusOfKind } from '../../core/errors.js'

/** This protocol's error shape (the native one): `{"error":{"code","message"}}`. */
export function sendServersError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error: { code, message } })
}

const codeOfFastifyError: Record<string, [number, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'INVALID_REQUEST'],
  INVALID_JSON: [400, 'INVALID_JSON'],
}

/** Maps every error of a servers route to the shape; only the unexpected is a 500. */
export function serversErrorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error instanceof PresenceError) {
    if (error.retryAfter !== undefined) void reply.header('retry-after', String(error.retryAfter))
    return sendServersError(reply, statusOfKind[error.kind], error.code, error.message)
  }
  const fastifyError = error as FastifyError
  if (fastifyError.validation) {
    return sendServersError(reply, 400, 'INVALID_REQUEST', `Invalid request: ${error.message}.`)
  }
  const known = fastifyError.code ? codeOfFastifyError[fastifyError.code] : undefined
  if (known) return sendServersError(reply, known[0], known[1], error.message)
  const status = fastifyError.statusCode
  if (status !== undefined && status >= 400 && status < 500) {
    return sendServersError(reply, status, 'INVALID_REQUEST', error.message)
  }
  request.log.error({ err: error }, 'servers request failed')
  return sendServersError(reply, 500, 'INTERNAL', 'Internal error; see the server log.')
}
