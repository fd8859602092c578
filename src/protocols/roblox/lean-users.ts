import type { ProtocolContext } from '../context.js'
import type { LeanReply, LeanRoute } from '../shared/lean-routes.js'
import { parseJsonBody } from '../shared/lossless-json.js'
import { errorBody } from './errors.js'
import { leanRobloxError } from './lean-heartbeat.js'
import type { SplitAdmit } from './plugin.js'
import { parseUsersJson } from './requests.js'
import { JSON_TYPE, usersReply } from './routes.js'
import { reclaimReply, writeSummariesReply } from './reply-writer.js'

const REPLY_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': JSON_TYPE })

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
    async handle(request, ip, body, log): Promise<LeanReply> {
      // the rate limit runs beside the read (one Redis round trip in fleet mode); an error of a
      // step between them waits for it, as its 429 comes first
      let admission: (() => Promise<void>) | undefined
      let admitted = false
      try {
        const caller = await admit.authenticate(request.headers, ip)
        admission = () => {
          admitted = true
          return admit.limit(caller, request.headers, ip, 'POST')
        }
        const text = await body()
        // the plain shape in one pass; anything else as the Fastify route parses it
        const parsed = parseUsersJson(text)
        let reply: Buffer
        if (parsed !== undefined) {
          // usersReplyOf's steps, its await here: an async layer less per read (issue 19)
          reply = writeSummariesReply(
            await context.service.lookupSummaries(
              caller.viewer,
              parsed.ids,
              admission,
              parsed.values,
              false,
            ),
            viewOptions,
          )
        } else {
          let parsed: unknown
          try {
            parsed = parseJsonBody(text)
          } catch (error) {
            // as Fastify does after a body parser's error: the client may send more data
            throw Object.assign(error as Error, { closeConnection: true })
          }
          reply = await usersReply(context.service, viewOptions, caller, parsed, admission)
        }
        return { status: 200, headers: REPLY_HEADERS, body: reply, reclaim: reclaimReply }
      } catch (error) {
        const refused =
          admission && !admitted
            ? await admission().then(
                () => error,
                (e) => e,
              )
            : error
        return leanRobloxError(refused, log)
      }
    },
  }
}
