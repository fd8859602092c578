import type { ProtocolContext } from '../context.js'
import type { LeanReply, LeanRoute } from '../shared/lean-routes.js'
import { bodyText } from '../shared/body-text.js'
import { parseJsonBody } from '../shared/lossless-json.js'
import { renderXboxError, xboxInternalError } from './errors.js'
import { XBOX_BATCH_HEADERS, admitXbox, batchReply } from './routes.js'
import { parseBatchJson, parseBatchRequest } from './schemas.js'

/**
 * Every hook Fastify runs for POST /users/batch, with where the lean path does the same (see
 * MIRRORED_HOOKS in shared/lean-routes.ts, which test/integration/xbox-lean.test.ts holds this
 * list to for this route).
 */
export const BATCH_MIRRORED_HOOKS: Readonly<Record<string, readonly string[]>> = {
  // closeUpgradeRequest, readUpgradeBody: a request asking for an upgrade only, which never
  // reaches the lean path (see MIRRORED_HOOKS); admitXboxCaller: admitXbox (auth, contract
  // version, Accept); spendXboxRead: the read budget, both of which handle() calls; onRequest:
  // @fastify/compress's (lean answers uncompressed only); refuseWhileClosing: see MIRRORED_HOOKS
  onRequest: [
    'closeUpgradeRequest',
    'refuseWhileClosing',
    'admitXboxCaller',
    'spendXboxRead',
    'onRequest',
  ],
  // preParsing: @fastify/compress's (lean routes take no compressed request body)
  preParsing: ['readUpgradeBody', 'preParsing'],
  // connectionAfterReply: `close()` (a lean route answers no 413); onSend: @fastify/compress (nothing asked for it)
  onSend: ['connectionAfterReply', 'onSend'],
  // request metrics: `observe()`'s onResponse
  onResponse: ['observeResponse'],
}

/**
 * POST /users/batch on node:http (see shared/lean-routes.ts for when a request comes here): the
 * Fastify route's steps in its order, with its functions: admission and the read budget before
 * the body counts, then the body (the plain shape read in one pass, anything else parsed as the
 * Fastify route parses it), then the route's reply, errors rendered as the Xbox error handler
 * renders them. Same status, headers and bytes. An 1100-user batch is the heaviest read there
 * is; Fastify's share of it is small, its JSON.parse of 1100 strings was not.
 */
export function leanBatchRoute(context: ProtocolContext): LeanRoute {
  const { service } = context
  return {
    method: 'POST',
    path: '/users/batch',
    route: '/users/batch',
    internalError: xboxInternalError,
    async handle(request, ip, body): Promise<LeanReply> {
      try {
        const caller = await admitXbox(service, request.headers, ip)
        await service.limits.xboxRead(caller, ip)
        // the plain shape read from the bytes as they came (no UTF-8 check nor decoding: it is
        // ASCII); anything else as text, refused as the text path refuses it when not UTF-8
        const bytes = await body(true)
        let query = parseBatchJson(bytes)
        if (query === undefined) {
          const text = bodyText(bytes, 'INVALID_JSON')
          let parsed: unknown
          try {
            parsed = parseJsonBody(text)
          } catch (error) {
            // as Fastify does after a body parser's error: the client may send more data
            throw Object.assign(error as Error, { closeConnection: true })
          }
          query = parseBatchRequest(parsed)
        }
        const reply = await batchReply(context, caller, request.headers, query)
        return { status: 200, headers: XBOX_BATCH_HEADERS, body: reply }
      } catch (error) {
        const rendered = renderXboxError(error)
        // not an Xbox error: lean-routes logs it and answers internalError, as the handler does
        if (!rendered) throw error
        const close = (error as { closeConnection?: boolean }).closeConnection === true
        return close
          ? { ...rendered, headers: { ...rendered.headers, connection: 'close' } }
          : rendered
      }
    },
  }
}
