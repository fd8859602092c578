import { errorCodes, type FastifyInstance } from 'fastify'
import type { ProtocolContext } from '../context.js'
import { bodyText } from '../shared/body-text.js'
import { parseJsonBody } from '../shared/lossless-json.js'
import { xboxErrorHandler } from './errors.js'
import { xboxPresenceRoutes } from './routes.js'

/**
 * The Xbox Live presence API. Not wrapped in fastify-plugin: its error handler and validator
 * stay inside. (The titles its rich presence strings come from are in the admin API.)
 */
export async function xboxProtocol(app: FastifyInstance, context: ProtocolContext): Promise<void> {
  app.setErrorHandler(xboxErrorHandler)
  // Bodies are validated and normalized in one pass by schemas.ts: Xbox's error codes
  // (prohibited members, too many users, invalid XUIDs) are part of the wire, and a batch of 1100
  // ids is read once. The route schemas document the same rules.
  app.setValidatorCompiler(() => () => true)
  // The app-wide form parser and Fastify's text/plain one would hand these routes bodies Xbox
  // Live refuses: removed here, those types reach the catch-all below and are 415 like any other.
  app.removeContentTypeParser(['application/x-www-form-urlencoded', 'text/plain'])
  // A body sent with no Content-Type at all is JSON here: xbox-webapi (Node) posts its JSON
  // bodies without one, as Xbox Live's services accept. Any other unknown type is still 415.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    if (request.headers['content-type'] !== undefined) {
      done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(), undefined)
      return
    }
    try {
      done(null, parseJsonBody(bodyText(body as Buffer, 'INVALID_JSON')))
    } catch (error) {
      done(error as Error, undefined)
    }
  })
  await app.register(xboxPresenceRoutes, context)
}
