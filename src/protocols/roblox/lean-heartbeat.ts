import type { RequestAdmission } from '../../service/admission.js'
import type { ProtocolContext } from '../context.js'
import {
  fixedReply,
  type LeanLogger,
  type LeanReply,
  type LeanRoute,
} from '../shared/lean-routes.js'
import { parseJsonBody } from '../shared/lossless-json.js'
import { warnFailure } from '../shared/warn-failure.js'
import { errorBody, renderError } from './errors.js'
import type { SplitAdmit } from './plugin.js'
import { HEARTBEAT_HEADER, JSON_TYPE, heartbeatAfter, registerPresence } from './routes.js'

const REGISTER = '/v1/presence/register-app-presence'

/**
 * The route's own hooks beside the app's (MIRRORED_HOOKS), each mirrored by `handle` below:
 * requireSignedIn refuses an anonymous caller before the body is read.
 */
export const HEARTBEAT_ROUTE_HOOKS: Readonly<Record<string, readonly string[]>> = {
  onRequest: ['requireSignedIn'],
}

/**
 * POST /v1/presence/register-app-presence on node:http (see shared/lean-routes.ts for when a
 * request comes here): the Fastify route's steps in its order, with its functions: admission
 * (auth, rate limit, CSRF), the signed-in check, then the JSON body parser and the route's
 * handler, errors rendered by the Roblox error handler's functions. Same status, headers and
 * bytes. The rate limit and CSRF go with the write (one Redis round trip in fleet mode; a refused
 * heartbeat writes nothing), and their refusal still wins over a later step's error, as in the
 * Fastify route's order. Measured: Fastify's routing, hooks and reply (compression's onSend
 * included) cost more than the heartbeat itself.
 */
export function leanHeartbeatRoute(context: ProtocolContext, admit: SplitAdmit): LeanRoute {
  const { service } = context
  const beat = fixedReply({
    status: 200,
    headers: { 'content-type': JSON_TYPE, [HEARTBEAT_HEADER]: heartbeatAfter(context.settings) },
    body: '{}',
  })
  const ended = fixedReply({ status: 200, headers: { 'content-type': JSON_TYPE }, body: '{}' })
  return {
    method: 'POST',
    path: REGISTER,
    route: REGISTER,
    internalError: {
      status: 500,
      headers: { 'content-type': JSON_TYPE },
      body: errorBody(0, 'An unexpected error occurred.'),
    },
    async handle(request, ip, body, log): Promise<LeanReply> {
      let admission: RequestAdmission | undefined
      try {
        const authenticated = await admit.authenticate(request.headers, ip)
        admission = admit.admission(authenticated, request.headers, ip, 'POST')
        const caller = service.auth.requireUser(authenticated)
        let parsed: unknown
        try {
          parsed = parseJsonBody(await body())
        } catch (error) {
          // as Fastify does after a body parser's error: the client may send more data
          throw Object.assign(error as Error, { closeConnection: true })
        }
        const beating = await registerPresence(
          service,
          caller,
          parsed,
          request.headers['user-agent'],
          admission,
        )
        return beating ? beat : ended
      } catch (error) {
        return leanRobloxError(admission ? await admission.refusalOr(error) : error, log)
      }
    },
  }
}

/** A Roblox error as the protocol's error handler renders it; anything else is rethrown. */
export function leanRobloxError(error: unknown, log: LeanLogger | undefined): LeanReply {
  const rendered = renderError(error)
  // not a Roblox error: lean-routes logs it and answers internalError, as the handler does
  if (!rendered) throw error
  if (rendered.status >= 500) warnFailure(log, error, 'Roblox API unavailable')
  const close = (error as { closeConnection?: boolean }).closeConnection === true
  return {
    status: rendered.status,
    headers: {
      ...rendered.headers,
      ...(close && { connection: 'close' }),
      'content-type': JSON_TYPE,
    },
    body: errorBody(rendered.code, rendered.message),
  }
}
