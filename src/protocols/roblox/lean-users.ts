import type { ProtocolContext } from '../context.js'
import type { LeanReply, LeanRoute } from '../shared/lean-routes.js'
import { parseJsonBody } from '../shared/lossless-json.js'
import { errorBody } from './errors.js'
import { leanRobloxError } from './lean-heartbeat.js'
import type { Admit } from './plugin.js'
import { parseUsersJson } from './requests.js'
import { JSON_TYPE, usersReply, usersReplyOf } from './routes.js'

const REPLY_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': JSON_TYPE })

/**
 * POST /v1/presence/users on node:http (see shared/lean-routes.ts for when a request comes
 * here): the Fastify route's steps in its order, with its functions: admission (auth, rate
 * limit, CSRF) before the body counts, then the JSON body parser, then the route's handler, and
 * errors rendered by the Roblox error handler's functions. Same status, headers and bytes.
 */
export function leanUsersRoute(context: ProtocolContext, admit: Admit): LeanRoute {
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
    async handle(request, ip, body, log): Promise<LeanReply> {
      try {
        const caller = await admit(request.headers, ip, 'POST')
        const text = await body()
        // the plain shape in one pass; anything else as the Fastify route parses it
        const ids = parseUsersJson(text)
        let reply: Buffer
        if (ids !== undefined) {
          reply = await usersReplyOf(context.service, viewOptions, caller, ids)
        } else {
          let parsed: unknown
          try {
            parsed = parseJsonBody(text)
          } catch (error) {
            // as Fastify does after a body parser's error: the client may send more data
            throw Object.assign(error as Error, { closeConnection: true })
          }
          reply = await usersReply(context.service, viewOptions, caller, parsed)
        }
        return { status: 200, headers: REPLY_HEADERS, body: reply }
      } catch (error) {
        return leanRobloxError(error, log)
      }
    },
  }
}
