import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { fail } from '../../core/errors.js'
import type { ProtocolContext } from '../context.js'
import { headerValue } from '../shared/credentials.js'
import { COOKIE_NAME } from '../roblox/auth.js'
import { CSRF_HEADER } from '../roblox/csrf-header.js'
import { clearCookieHeader } from './logout-cookie.js'
import { strictCaller } from './strict-caller.js'

const JSON_TYPE = 'application/json; charset=utf-8'

/**
 * `POST /v2/logout` and `POST /v2/login` of the auth host. Clients call them empty, without an
 * `x-csrf-token`, only to be refused with one: both answer exactly that (403, `Token Validation
 * Failed`, a fresh `x-csrf-token`), for anonymous callers too, before the body is even read.
 * With a valid token, logout really ends the caller's login, on every node and for good; login
 * is not offered.
 */
export function authRoutes(app: FastifyInstance, context: ProtocolContext): void {
  const { auth } = context.service

  const csrfFirst = {
    onRequest: async (request: FastifyRequest) =>
      auth.checkCsrf(request.caller, request.ip, headerValue(request.headers[CSRF_HEADER])),
  }

  app.post(
    '/v2/logout',
    { ...csrfFirst, schema: { tags: ['companion'], summary: 'CSRF token, or end this login' } },
    async (request, reply: FastifyReply) => {
      const caller = auth.requireUser(strictCaller(request))
      await auth.logout(caller)
      request.log.info({ userId: caller.userId }, 'login ended by logout')
      return reply
        .code(200)
        .header('set-cookie', clearCookieHeader(COOKIE_NAME, request.hostname, request.protocol))
        .type(JSON_TYPE)
        .send('{}')
    },
  )

  app.post(
    '/v2/login',
    { ...csrfFirst, schema: { tags: ['companion'], summary: 'CSRF token only' } },
    async () => {
      throw fail(
        'INVALID_REQUEST',
        'presenced does not sign users in with passwords: issue a token with `presenced token --user <id>` and send it as the .ROBLOSECURITY cookie or a Bearer token.',
      )
    },
  )
}
