import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { mapErrorToRecord } from '../shared/error-record.js'

/** This protocol's error shape (the native one): `{"error":{"code","message"}}`. */
export function sendServersError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error: { code, message } })
}

/** Maps every error of a servers route to the shape; only the unexpected is a 500. */
export function serversErrorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  return mapErrorToRecord(error, request, reply, sendServersError)
}
