import type { FastifyInstance } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Caller } from '../../core/caller.js'
import type { RequestAdmission } from '../../service/admission.js'
import type { ProtocolContext } from '../context.js'
import { headerValue } from '../shared/credentials.js'
import { robloxCredential } from './auth.js'
import { CSRF_HEADER } from './csrf-header.js'
import { installErrorHandler } from './errors.js'
import { leanHeartbeatRoute } from './lean-heartbeat.js'
import { leanUsersRoute } from './lean-users.js'
import { robloxRoutes } from './routes.js'

export { CSRF_HEADER }

/** Every check a Roblox request passes before its body is read. */
export type Admit = (headers: IncomingHttpHeaders, ip: string, method: string) => Promise<Caller>

/**
 * The same checks in two steps, for the lean paths: `authenticate` (401, 403 for a key without
 * the scope), then `limit` (the rate limit's 429, then CSRF's 403), which those paths hand to
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

  const admission: SplitAdmit['admission'] = (caller, headers, ip, method) =>
    limits.admission(
      limits.requestHit(caller, ip),
      caller.kind === 'user' && caller.via === 'cookie' && method === 'POST'
        ? () => auth.checkCsrf(caller, ip, headerValue(headers[CSRF_HEADER]))
        : undefined,
    )
  const requireReader = (caller: Caller) => auth.requireReader(caller)
  const split: SplitAdmit = {
    // a reaction, not an async arrow awaiting: one promise and one generator fewer per request;
    // and only for an API key (requireReader checks a key's scope, and only #key makes a key
    // caller): a promise resolved with the caller, its `then` looked up, less (issue 19)
    authenticate: (headers, ip) => {
      const credential = robloxCredential(headers)
      const caller = auth.authenticate(credential, ip)
      return credential.kind === 'apiKey' ? caller.then(requireReader) : caller
    },
    authenticateNow: (headers, ip) => {
      const caller = auth.authenticateNow(robloxCredential(headers), ip)
      return caller instanceof Promise ? caller.then(requireReader) : requireReader(caller)
    },
    limit: (caller, headers, ip, method) => admission(caller, headers, ip, method).runNow(),
    admission,
  }
  /** Shared with the lean heartbeat path. */
  const admit: Admit = async (headers, ip, method) => {
    const caller = await split.authenticate(headers, ip)
    await split.limit(caller, headers, ip, method)
    return caller
  }

  app.addHook('onRequest', async function admitRobloxCaller(request) {
    request.caller = await admit(request.headers, request.ip, request.method)
  })
  context.lean?.add(leanUsersRoute(context, split))
  context.lean?.add(leanHeartbeatRoute(context, split))

  robloxRoutes(app, context)
}
