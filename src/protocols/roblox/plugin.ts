import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { ApiKeys } from '../../service/api-keys.js'
import type { ProtocolContext } from '../context.js'
import { authenticate, type Caller } from './auth.js'
import { CsrfTokens } from './csrf.js'
import { RobloxError, installErrorHandler, messages } from './errors.js'
import { leanUsersRoute } from './lean-users.js'
import { robloxRoutes } from './routes.js'

export const CSRF_HEADER = 'x-csrf-token'

/**
 * The Roblox presence API v1: POST /v1/presence/users and /v1/presence/register-app-presence.
 * Registered without fastify-plugin on purpose, so its error handler, validator and hooks stay
 * inside this scope. Every request passes, in order: authentication (401 for a credential that
 * is present but invalid; a scoped API key in `x-api-key` for trusted services), the per-caller
 * rate limit (429), CSRF for cookie callers (403).
 */
export async function robloxProtocol(
  app: FastifyInstance,
  context: ProtocolContext,
): Promise<void> {
  const { tokens, rateLimiter, settings, service } = context
  const csrf = new CsrfTokens(tokens)
  const apiKeys = new ApiKeys(service.profiles, service.clock)
  const callers = new WeakMap<FastifyRequest, Caller>()
  const rule = {
    name: 'roblox',
    max: settings.rateLimitMax,
    windowMs: settings.rateLimitWindowSeconds * 1000,
  }

  installErrorHandler(app)
  // Roblox takes JSON and form bodies only; Fastify's default text/plain parser would let a
  // text body through to a 400 where clients expect 415.
  app.removeContentTypeParser('text/plain')
  // The shared Ajv coerces (`true` → 1, `null` → 0), which must never make a user id; bodies
  // are checked strictly by requests.ts, and the schemas serve the OpenAPI document.
  app.setValidatorCompiler(() => () => true)

  /** Every check a request passes before its body is read; shared with the lean /users path. */
  const admit = async (headers: IncomingHttpHeaders, ip: string, method: string) => {
    const caller = await authenticate(headers, tokens, apiKeys)

    const now = service.clock.now()
    const key =
      caller.userId !== undefined
        ? `roblox:user:${caller.userId}`
        : caller.via === 'apiKey'
          ? `roblox:key:${caller.keyId}`
          : `roblox:ip:${ip}`
    const verdict = await rateLimiter.hit(key, [rule], now)
    if (!verdict.allowed) {
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000))
      throw new RobloxError(429, 0, messages.tooManyRequests, { 'retry-after': String(seconds) })
    }

    // A cross-site page can make the browser send the cookie, never a header it cannot read.
    if (caller.via === 'cookie' && method === 'POST') {
      const given = headers[CSRF_HEADER]
      const token = Array.isArray(given) ? given[0] : given
      if (!csrf.accepts(caller.userId, ip, token, now)) {
        throw new RobloxError(403, 0, messages.csrf, {
          [CSRF_HEADER]: csrf.issue(caller.userId, now),
        })
      }
    }
    return caller
  }

  app.addHook('onRequest', async (request) => {
    callers.set(request, await admit(request.headers, request.ip, request.method))
  })
  context.lean?.add(leanUsersRoute(context, admit))

  robloxRoutes(app, context, (request) => {
    const caller = callers.get(request)
    if (!caller) throw new Error('Roblox caller not resolved: onRequest hook did not run')
    return caller
  })
}
