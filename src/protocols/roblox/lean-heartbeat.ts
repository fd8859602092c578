import type { IncomingMessage } from 'node:http'
import type { Caller, UserCaller } from '../../core/caller.js'
import type { RequestAdmission } from '../../service/admission.js'
import type { ProtocolContext } from '../context.js'
import {
  fixedReply,
  type LeanBody,
  type LeanLogger,
  type LeanReply,
  type LeanRoute,
} from '../shared/lean-routes.js'
import { parseJsonBody } from '../shared/lossless-json.js'
import { warnFailure } from '../shared/warn-failure.js'
import { errorBody, renderError } from './errors.js'
import { quickRegisterBody } from './requests.js'
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
    // The steps at once where they can be (embedded mode, a remembered token, a body that came
    // with the head): answered in the request's own tick, with no async layer, promise or
    // microtask turn of its own (issue 19: ~9k instructions of a heartbeat); a step that must
    // wait goes on from its promise, in the same order, with the same errors.
    handle(request, ip, body, log): LeanReply | Promise<LeanReply> {
      return withCaller(admit, request, ip, body, log, admitted)
    },
  }

  /** The route's steps after authentication: its admission's refusal wins over a later error. */
  function admitted(
    authenticated: Caller,
    request: IncomingMessage,
    ip: string,
    body: LeanBody,
    log: LeanLogger | undefined,
  ): LeanReply | Promise<LeanReply> {
    let admission: RequestAdmission
    try {
      admission = admit.admission(authenticated, request.headers, ip, 'POST')
    } catch (error) {
      return leanRobloxError(error, log)
    }
    try {
      const caller = service.auth.requireUser(authenticated)
      let text: string | Promise<string>
      try {
        text = body()
      } catch (error) {
        throw closing(error)
      }
      if (text instanceof Promise) {
        return text.then(
          (read) => applied(caller, read, request, admission, log),
          (error: unknown) => refused(admission, closing(error), log),
        )
      }
      return applied(caller, text, request, admission, log)
    } catch (error) {
      return refused(admission, error, log)
    }
  }

  /** The body parsed and the heartbeat (or its end) applied, then its reply or its failure's. */
  function applied(
    caller: UserCaller,
    text: string,
    request: IncomingMessage,
    admission: RequestAdmission,
    log: LeanLogger | undefined,
  ): LeanReply | Promise<LeanReply> {
    let beating: boolean | Promise<boolean>
    try {
      let parsed: unknown
      try {
        // a body written as clients write one is read by hand, anything else as before
        parsed = quickRegisterBody(text) ?? parseJsonBody(text)
      } catch (error) {
        throw closing(error)
      }
      beating = registerPresence(service, caller, parsed, request.headers['user-agent'], admission)
    } catch (error) {
      return refused(admission, error, log)
    }
    if (beating instanceof Promise) {
      return beating.then(
        (beats) => (beats ? beat : ended),
        (error: unknown) => refused(admission, error, log),
      )
    }
    return beating ? beat : ended
  }
}

/** A body parser's error: as Fastify does after one, the client may send more data. */
function closing(error: unknown): Error {
  return Object.assign(error as Error, { closeConnection: true })
}

/** The reply to a failed step after admission: the admission's refusal when it refuses. */
function refused(
  admission: RequestAdmission,
  error: unknown,
  log: LeanLogger | undefined,
): Promise<LeanReply> {
  return admission.refusalOr(error).then((answered) => leanRobloxError(answered, log))
}

/** A lean Roblox route's steps once its caller is known. */
type AfterCaller = (
  caller: Caller,
  request: IncomingMessage,
  ip: string,
  body: LeanBody,
  log: LeanLogger | undefined,
) => LeanReply | Promise<LeanReply>

/**
 * Authenticates at once where it can (an anonymous caller, a remembered token), then runs `next`
 * in the same tick; a caller that must be waited for goes on from its promise. A refusal is
 * answered in Roblox's format. `next` is the route's own function, not a closure per request.
 */
export function withCaller(
  admit: SplitAdmit,
  request: IncomingMessage,
  ip: string,
  body: LeanBody,
  log: LeanLogger | undefined,
  next: AfterCaller,
): LeanReply | Promise<LeanReply> {
  let authenticated: Caller | Promise<Caller>
  try {
    authenticated = admit.authenticateNow(request.headers, ip)
  } catch (error) {
    return leanRobloxError(error, log)
  }
  if (authenticated instanceof Promise) {
    return authenticated.then(
      (caller) => next(caller, request, ip, body, log),
      (error: unknown) => leanRobloxError(error, log),
    )
  }
  return next(authenticated, request, ip, body, log)
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
