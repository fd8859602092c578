import type { FastifyInstance } from 'fastify'
import type { ProtocolContext } from '../context.js'
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
  await app.register(xboxPresenceRoutes, context)
}
