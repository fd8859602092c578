import type { FastifyInstance, HTTPMethods } from 'fastify'
import { fail } from '../../core/errors.js'
import type { ProtocolContext } from '../context.js'
import { installErrorHandler } from '../roblox/errors.js'
import { authRoutes } from './auth-routes.js'
import { userLookupRoutes } from './user-lookup-routes.js'
import { lenientCaller } from './strict-caller.js'
import { userRoutes } from './user-routes.js'

/** Every method a path may be called with, for the 405s below. */
const METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']

/** Roblox paths and the one method each serves (the presence ones are served by roblox/). */
const ROBLOX_PATHS: ReadonlyArray<readonly [string, HTTPMethods]> = [
  ['/v2/logout', 'POST'],
  ['/v2/login', 'POST'],
  ['/v1/users/authenticated', 'GET'],
  ['/v1/users', 'POST'],
  ['/v1/usernames/users', 'POST'],
  ['/v1/presence/users', 'POST'],
  ['/v1/presence/register-app-presence', 'POST'],
]

/**
 * The companion endpoints that Roblox clients call around the presence API (auth and users
 * hosts): CSRF tokens from `POST /v2/logout` and `/v2/login`, logout, `GET
 * /v1/users/authenticated`, `GET /v1/users/{id}`, and the batch lookups `POST /v1/users` and
 * `POST /v1/usernames/users`. Errors in Roblox's shape. Like every
 * protocol it routes by path only: whichever host name the client used reaches the same route.
 */
export async function companionProtocol(
  app: FastifyInstance,
  context: ProtocolContext,
): Promise<void> {
  const { auth, limits } = context.service

  installErrorHandler(app)
  // Logout and login bodies are never read: clients send none, `{}` as text/plain, or JSON.
  // Any content type is accepted and discarded (the body limit still applies: 413).
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => {
    done(null, undefined)
  })

  // Resolved leniently: an invalid or revoked credential reads as anonymous here, because
  // `POST /v2/logout` must still hand such a client a CSRF token (clients fetch it that way
  // before anything else); each route that needs a user asks strictCaller, which throws the
  // credential's refusal.
  app.addHook('onRequest', async (request) => {
    const caller = await lenientCaller(auth, request)
    request.caller = caller
    // the same budget as the presence routes: one per user, else per client address
    await limits.request(caller, request.ip)
  })

  authRoutes(app, context)
  userRoutes(app, context)
  await app.register(userLookupRoutes, context)

  // Clients JSON.parse every body: a wrong method gets a Roblox-shaped 405, not a bare 404.
  for (const [url, allowed] of ROBLOX_PATHS) {
    app.route({
      method: METHODS.filter((m) => m !== allowed),
      url,
      schema: { hide: true },
      handler: async (request) => {
        throw fail(
          'METHOD_NOT_ALLOWED',
          `The requested resource does not support http method '${request.method}'.`,
          { allow: allowed },
        )
      },
    })
  }
}
