import type { FastifyReply } from 'fastify'

/** The native HTTP error shape: `{"error":{"code","message"}}`, with the status given. */
export function sendNativeError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error: { code, message } })
}

/** An in-band error frame; the connection stays open. */
export function errorFrame(code: string, message: string): string {
  return JSON.stringify({ type: 'error', code, message })
}
