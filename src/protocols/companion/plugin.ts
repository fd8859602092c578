import type { FastifyInstance, FastifyRequest, HTTPMethods } from 'fastify'
import type { ProtocolContext } from '../context.js'
import { CsrfTokens } from '../roblox/csrf.js'
import { RobloxError, installErrorHandler, messages } from '../roblox/errors.js'
import { authRoutes } from './auth-routes.js'
import { resolveCaller, type CompanionCaller } from './caller.js'
import { userRoutes } from './user-routes.js'

/** Every method a path may be called with, for the 405s below. */
const METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']

/** Roblox paths and the one method each serves (the presence ones are served by roblox/). */
const ROBLOX_PATHS: ReadonlyArray<readonly [string, HTTPMethods]> = [
  ['/v2/logout', 'POST'],
  ['/v2/login', 'POST'],
  ['/v1/users/authenticated', 'GET'],
  ['/v1/presence/users', 'POST'],
  ['/v1/presence/register-app-presence', 'POST'],
]

/**
 * The companion endpoints that Roblox clients call around the presence API (auth and users
 * hosts): CSRF tokens from `POST /v2/logout` and `/v2/login`, logout, `GET
 * /v1/users/authenticated` and `GET /v1/users/{id}`. Errors in Roblox's shape. Like every
 * protocol it routes by path only: whichever host name the client used reaches the same route.
 */
export async function companionProtocol(
  app: FastifyInstance,
  context: ProtocolContext,
): Promise<void> {
  const { tokens, rateLimiter, settings, service } = context
  const csrf = new CsrfTokens(tokens)
  const callers = new WeakMap<FastifyRequest, CompanionCaller>()
  const rule = {
    name: 'roblox',
    max: settings.rateLimitMax,
    windowMs: settings.rateLimitWindowSeconds * 1000,
  }

  installErrorHandler(app)
  // Logout and login bodies are never read: clients send none, `{}` as text/plain, or JSON.
  // Any content type is accepted and discarded (the body limit still applies: 413).
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => {
    done(null, undefined)
  })

  app.addHook('onRequest', async (request) => {
    const caller = await resolveCaller(request.headers, tokens)
    callers.set(request, caller)
    // the same budget as the presence routes: one per user, else per client address
    const userId = caller.claims?.userId
    const key = userId !== undefined ? `roblox:user:${userId}` : `roblox:ip:${request.ip}`
    const verdict = await rateLimiter.hit(key, [rule], service.clock.now())
    if (!verdict.allowed) {
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000))
      throw new RobloxError(429, 0, messages.tooManyRequests, { 'retry-after': String(seconds) })
    }
  })

  const callerOf = (request: FastifyRequest): CompanionCaller => {
    const caller = callers.get(request)
    if (!caller) throw new Error('companion caller not resolved: onRequest hook did not run')
    return caller
  }

  authRoutes(app, context, csrf, callerOf)
  userRoutes(app, context, callerOf)

  // Clients JSON.parse every body: a wrong method gets a Roblox-shaped 405, not a bare 404.
  for (const [url, allowed] of ROBLOX_PATHS) {
    app.route({
      method: METHODS.filter((m) => m !== allowed),
      url,
      schema: { hide: true },
      handler: async (request) => {
        throw new RobloxError(
          405,
          0,
          `The requested resource does not support http method '${request.method}'.`,
          { allow: allowed },
        )
      },
    })
  }
}
