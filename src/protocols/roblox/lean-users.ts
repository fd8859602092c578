import type { IncomingMessage } from 'node:http'
import type { Caller } from '../../core/caller.js'
import type { Admission } from '../../service/presence-service.js'
import type { ProtocolContext } from '../context.js'
import {
  replyHeaders,
  type LeanBody,
  type LeanLogger,
  type LeanReply,
  type LeanRoute,
} from '../shared/lean-routes.js'
import { bodyText } from '../shared/body-text.js'
import { parseJsonBody } from '../shared/lossless-json.js'
import { errorBody } from './errors.js'
import { leanRobloxError, withCaller } from './lean-heartbeat.js'
import type { SplitAdmit } from './plugin.js'
import { parseUsersJson } from './requests.js'
import { JSON_TYPE, usersReply } from './routes.js'
import { reclaimReply, writeSummariesReply } from './reply-writer.js'

const REPLY_HEADERS = replyHeaders({ 'content-type': JSON_TYPE })

/**
 * POST /v1/presence/users on node:http (see shared/lean-routes.ts for when a request comes
 * here): the Fastify route's steps with its functions: authentication, the JSON body parser,
 * the route's handler, and errors rendered by the Roblox error handler's functions. The rest of
 * admission (rate limit, CSRF) runs beside the read, and its refusal still wins over any later
 * step's error, as in the Fastify route's order. Same status, headers and bytes.
 */
export function leanUsersRoute(context: ProtocolContext, admit: SplitAdmit): LeanRoute {
  const viewOptions = { invisibleSelfView: context.settings.invisibleSelfView }
  return {
    method: 'POST',
    path: '/v1/presence/users',
    route: '/v1/presence/users',
    internalError: {
      status: 500,
      headers: { 'content-type': JSON_TYPE },
      body: errorBody(0, 'An unexpected error occurred.'),
    },
    // The steps at once where they can be (an anonymous caller or a remembered token, a body
    // that came with the head): no async layer, and no microtask turn for a step that has its
    // answer already (issue 19); a step that must wait goes on from its promise, in the same
    // order, with the same errors.
    handle(request, ip, body, log): LeanReply | Promise<LeanReply> {
      return withCaller(admit, request, ip, body, log, read)
    },
  }

  /**
   * The route's steps after authentication. The rate limit runs beside the read (one Redis round
   * trip in fleet mode); an error of a step before it ran waits for it, as its 429 comes first.
   */
  function read(
    caller: Caller,
    request: IncomingMessage,
    ip: string,
    body: LeanBody,
    log: LeanLogger | undefined,
  ): LeanReply | Promise<LeanReply> {
    // no closure held in a const or a variable: tsx (esbuild's keepNames) names each one made
    // per request with Object.defineProperty, ~3.9k instructions a closure (callgrind)
    const state: Admitting = { admitted: false, admission: undefined }
    const admission = admissionOf(state, caller, request, ip)
    try {
      const bytes = body(true)
      const reply =
        bytes instanceof Promise
          ? bytes.then((read) => replyOf(caller, read, admission))
          : replyOf(caller, bytes, admission)
      return reply instanceof Promise
        ? reply.then(answered, (error: unknown) => failed(state, error, log))
        : answered(reply)
    } catch (error) {
      return failed(state, error, log)
    }
  }

  /**
   * The read's admission (the rate limit, CSRF), noting in `state` that it ran. Made here as data
   * (its hit, and a CSRF check only for a cookie caller): the closure holds that, not the request.
   * Measured (issue 19, `--trace-gc-nvp` under read load): while it held the request (for its
   * headers), each scavenge kept ~0.5 MB alive and promoted it to the old generation, requests
   * and what they hold, ~700 B per read, where without it ~10 KB a scavenge survive.
   */
  function admissionOf(
    state: Admitting,
    caller: Caller,
    request: IncomingMessage,
    ip: string,
  ): Admission {
    const admission = admit.admission(caller, request.headers, ip, 'POST')
    return (state.admission = () => {
      state.admitted = true
      return admission.runNow()
    })
  }

  /**
   * The reply's body for the request's `bytes`: the plain shape read in one pass over them,
   * anything else decoded and parsed as Fastify parses it.
   */
  function replyOf(caller: Caller, bytes: Buffer, admission: Admission): Buffer | Promise<Buffer> {
    const parsed = parseUsersJson(bytes)
    if (parsed !== undefined) {
      // usersReplyOf's steps, at once where the stores answer at once (issue 19)
      const summaries = context.service.lookupSummariesNow(
        caller.viewer,
        parsed.ids,
        admission,
        parsed.values,
        false,
      )
      return summaries instanceof Promise
        ? summaries.then((found) => writeSummariesReply(found, viewOptions, parsed.values))
        : writeSummariesReply(summaries, viewOptions, parsed.values)
    }
    let body: unknown
    try {
      body = parseJsonBody(bodyText(bytes, 'INVALID_JSON'))
    } catch (error) {
      // as Fastify does after a body parser's error: the client may send more data
      throw Object.assign(error as Error, { closeConnection: true })
    }
    return usersReply(context.service, viewOptions, caller, body, admission)
  }
}

/** A read's admission and whether it ran. */
interface Admitting {
  admitted: boolean
  admission: Admission | undefined
}

/** The reply to a failed step: the admission's refusal when it refuses (run now if it did not). */
function failed(
  state: Admitting,
  error: unknown,
  log: LeanLogger | undefined,
): LeanReply | Promise<LeanReply> {
  if (state.admitted || state.admission === undefined) return leanRobloxError(error, log)
  let ran: void | Promise<void>
  try {
    ran = state.admission()
  } catch (refusal) {
    return leanRobloxError(refusal, log)
  }
  return ran instanceof Promise
    ? ran.then(
        () => leanRobloxError(error, log),
        (refusal: unknown) => leanRobloxError(refusal, log),
      )
    : leanRobloxError(error, log)
}

/** A 200 with `body`, given back to the reply slab once the socket took it. */
function answered(body: Buffer): LeanReply {
  return { status: 200, headers: REPLY_HEADERS, body, reclaim: reclaimReply }
}
