import type { FastifyInstance } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Caller } from '../../core/caller.js'
import type { RequestAdmission } from '../../service/admission.js'
import type { CsrfAction } from '../../service/authenticator.js'
import type { ProtocolContext } from '../context.js'
import { headerValue } from '../shared/credentials.js'
import { robloxCredential } from './auth.js'
import { CSRF_HEADER } from './csrf-header.js'
import { installErrorHandler } from './errors.js'
import { leanHeartbeatRoute } from './lean-heartbeat.js'
import { leanUsersRoute } from './lean-users.js'
import { robloxRoutes } from './routes.js'

export { CSRF_HEADER }

/**
 * The same checks in two steps, for the lean paths: `authenticate` (401; 403 for a key without
 * a read scope, or for any key on a route only a user may call), then `limit` (the rate limit's 429, then CSRF's 403), which those paths hand to
 * the service call so that, in fleet mode, the rate limit shares its Redis round trip: `limit`
 * runs it (beside a read), `admission` is the same as data (counted in a heartbeat's write).
 */
export interface SplitAdmit {
  authenticate(headers: IncomingHttpHeaders, ip: string): Promise<Caller>
  /** The same, without a promise when none is needed (Authenticator.authenticateNow). */
  authenticateNow(headers: IncomingHttpHeaders, ip: string): Caller | Promise<Caller>
  /** Nothing, or the refusal thrown, when done at once (RequestAdmission.runNow). */
  limit(
    caller: Caller,
    headers: IncomingHttpHeaders,
    ip: string,
    method: string,
  ): void | Promise<void>
  admission(
    caller: Caller,
    headers: IncomingHttpHeaders,
    ip: string,
    method: string,
  ): RequestAdmission
}

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
  const { auth, limits } = context.service

  installErrorHandler(app)
  // Roblox takes JSON and form bodies only; Fastify's default text/plain parser would let a
  // text body through to a 400 where clients expect 415.
  app.removeContentTypeParser('text/plain')
  // Bodies are validated and normalized in one pass by requests.ts, which the lean path shares:
  // Roblox's error codes (1, 2) and messages are part of the wire, form bodies have their own
  // spellings, and the hot path parses once. The route schemas document the same rules.
  app.setValidatorCompiler(() => () => true)

  /**
   * The two steps for a route whose callers `check` admits (auth.requireReader or requireNoKey)
   * and whose CSRF check is `action`'s (Authenticator.checkCsrf).
   */
  const splitAdmit = (check: (caller: Caller) => Caller, action: CsrfAction): SplitAdmit => {
    const admission: SplitAdmit['admission'] = (caller, headers, ip, method) =>
      limits.admission(
        limits.requestHit(caller, ip),
        caller.kind === 'user' && caller.via === 'cookie' && method === 'POST'
          ? () => auth.checkCsrf(caller, ip, headerValue(headers[CSRF_HEADER]), action)
          : undefined,
      )
    return {
      // a reaction, not an async arrow awaiting: one promise and one generator fewer per request;
      // and only for an API key (the checks differ for a key only, and only #key makes a key
      // caller): a promise resolved with the caller, its `then` looked up, less (issue 19)
      authenticate: (headers, ip) => {
        const credential = robloxCredential(headers)
        const caller = auth.authenticate(credential, ip)
        return credential.kind === 'apiKey' ? caller.then(check) : caller
      },
      authenticateNow: (headers, ip) => {
        const caller = auth.authenticateNow(robloxCredential(headers), ip)
        return caller instanceof Promise ? caller.then(check) : check(caller)
      },
      limit: (caller, headers, ip, method) => admission(caller, headers, ip, method).runNow(),
      admission,
    }
  }
  // The scope's routes are reads anyone may make (/v1/presence/users: a key needs a read scope,
  // a cookie caller no CSRF token) or writes only a user may make (register-app-presence: any
  // key is no user, a cookie caller needs the token), told apart by their config's userOnly.
  const readers = splitAdmit((caller) => auth.requireReader(caller), 'read')
  const users = splitAdmit((caller) => auth.requireNoKey(caller), 'write')

  app.addHook('onRequest', async function admitRobloxCaller(request) {
    const split = request.routeOptions.config.userOnly === true ? users : readers
    const caller = await split.authenticate(request.headers, request.ip)
    await split.limit(caller, request.headers, request.ip, request.method)
    request.caller = caller
  })
  context.lean?.add(leanUsersRoute(context, readers))
  context.lean?.add(leanHeartbeatRoute(context, users))

  robloxRoutes(app, context)
}
