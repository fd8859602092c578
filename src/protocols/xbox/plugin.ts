import type { FastifyInstance } from 'fastify'
import type { ProtocolContext } from '../context.js'
import { xboxErrorHandler } from './errors.js'
import { xboxPresenceRoutes } from './routes.js'
import { titleAdminRoutes } from './title-admin-routes.js'

/**
 * The Xbox Live presence API, and the titles catalogue of the admin API that its rich presence
 * strings come from. Not wrapped in fastify-plugin: its error handler and validator stay inside.
 */
export async function xboxProtocol(app: FastifyInstance, context: ProtocolContext): Promise<void> {
  app.setErrorHandler(xboxErrorHandler)
  // Bodies are validated by hand (schemas.ts): the app's Ajv coerces scalars into arrays, which
  // the Xbox API refuses. The route schemas remain, for the OpenAPI document.
  app.setValidatorCompiler(() => () => true)
  await app.register(xboxPresenceRoutes, context)
  await app.register(titleAdminRoutes, context)
}
