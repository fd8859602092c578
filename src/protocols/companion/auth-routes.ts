import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ProtocolContext } from '../context.js'
import { COOKIE_NAME, unauthorized } from '../roblox/auth.js'
import { anonymousSubject, type CsrfTokens } from '../roblox/csrf.js'
import { RobloxError, messages } from '../roblox/errors.js'
import { CSRF_HEADER } from '../roblox/plugin.js'
import type { CompanionCaller } from './caller.js'
import { clearCookieHeader } from './logout-cookie.js'

const JSON_TYPE = 'application/json; charset=utf-8'

/**
 * `POST /v2/logout` and `POST /v2/login` of the auth host. Clients call them empty, without an
 * `x-csrf-token`, only to be refused with one: both answer exactly that (403, `Token Validation
 * Failed`, a fresh `x-csrf-token`), for anonymous callers too, before the body is even read.
 * With a valid token, logout really ends the caller's login; login is not offered.
 */
export function authRoutes(
  app: FastifyInstance,
  context: ProtocolContext,
  csrf: CsrfTokens,
  callerOf: (request: FastifyRequest) => CompanionCaller,
): void {
  const { service, tokens } = context

  /** Throws the 403 that hands out a token unless the request carries a usable one. */
  function requireCsrf(request: FastifyRequest): void {
    const caller = callerOf(request)
    const now = service.clock.now()
    const given = request.headers[CSRF_HEADER]
    const token = Array.isArray(given) ? given[0] : given
    const userId = caller.claims?.userId
    const valid =
      userId !== undefined
        ? csrf.accepts(userId, request.ip, token, now)
        : csrf.verify(anonymousSubject(request.ip), token, now)
    if (valid) return
    // bound to the user when the credential is valid, else to the client address
    const issued = csrf.issue(userId ?? anonymousSubject(request.ip), now)
    throw new RobloxError(403, 0, messages.csrf, { [CSRF_HEADER]: issued })
  }

  const csrfFirst = { onRequest: async (request: FastifyRequest) => requireCsrf(request) }

  app.post(
    '/v2/logout',
    { ...csrfFirst, schema: { tags: ['companion'], summary: 'CSRF token, or end this login' } },
    async (request, reply: FastifyReply) => {
      const { credential, claims } = callerOf(request)
      if (credential.via === 'none' || claims === undefined) throw unauthorized()
      if (claims.jti === undefined) {
        throw new RobloxError(400, 0, 'This token has no id (jti) and cannot be revoked.')
      }
      tokens.revoke(claims.jti)
      request.log.info({ userId: claims.userId }, 'login ended by logout')
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
      throw new RobloxError(
        400,
        0,
        'presenced does not sign users in with passwords: issue a token with `presenced token --user <id>` and send it as the .ROBLOSECURITY cookie or a Bearer token.',
      )
    },
  )
}
