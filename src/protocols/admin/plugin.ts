import type { FastifyInstance } from 'fastify'
import { fail } from '../../core/errors.js'
import type { ProtocolContext } from '../context.js'
import { adminAuth } from './auth.js'
import { adminErrorHandler } from './errors.js'
import { importRoute } from './import-route.js'
import { keyRoutes } from './key-routes.js'
import { adminRoutes } from './routes.js'
import { selfSettingsRoutes } from './self-settings.js'
import { titleRoutes } from './title-routes.js'
import { webhookRoutes } from './webhook-routes.js'

/**
 * The admin API under /admin/v1 (admin key or an `admin`-scoped API key in `x-api-key`; off,
 * answering 404, while no admin key is configured), and users' own settings at
 * /v1/presence/settings.
 */
export async function adminProtocol(app: FastifyInstance, context: ProtocolContext): Promise<void> {
  const { service } = context
  await app.register(selfSettingsRoutes, { service })

  const enabled = service.auth.adminEnabled
  await app.register(
    async (admin) => {
      admin.setErrorHandler(adminErrorHandler)
      admin.setNotFoundHandler(async (request) => {
        throw enabled
          ? fail('NOT_FOUND', `No admin route for ${request.method} ${request.url.split('?')[0]}`)
          : fail('ADMIN_OFF', 'The admin API is off: set PRESENCED_ADMIN_KEY to turn it on.')
      })
      if (!enabled) return
      admin.addHook('onRequest', adminAuth(service))
      await admin.register(adminRoutes, { service })
      await admin.register(keyRoutes, { service })
      await admin.register(importRoute, { service })
      await admin.register(titleRoutes, { service })
      await admin.register(webhookRoutes, { service })
    },
    { prefix: '/admin/v1' },
  )
}
