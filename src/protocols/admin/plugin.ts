import type { FastifyInstance } from 'fastify'
import { ApiKeys } from '../../service/api-keys.js'
import type { ProtocolContext } from '../context.js'
import { adminAuth } from './auth.js'
import { adminErrorHandler, sendAdminError } from './errors.js'
import { importRoute } from './import-route.js'
import { keyRoutes } from './key-routes.js'
import { adminRoutes } from './routes.js'
import { selfSettingsRoutes } from './self-settings.js'

/**
 * The admin API under /admin/v1 (admin key or an `admin`-scoped API key in `x-api-key`; off,
 * answering 404, while no admin key is configured), and users' own settings at
 * /v1/presence/settings.
 */
export async function adminProtocol(app: FastifyInstance, context: ProtocolContext): Promise<void> {
  const { service, tokens, settings } = context
  await app.register(selfSettingsRoutes, { service, tokens })

  const adminKey = settings.adminKey
  await app.register(
    async (admin) => {
      admin.setErrorHandler(adminErrorHandler)
      admin.setNotFoundHandler((request, reply) =>
        adminKey
          ? sendAdminError(
              reply,
              404,
              'NOT_FOUND',
              `No admin route for ${request.method} ${request.url.split('?')[0]}`,
            )
          : sendAdminError(
              reply,
              404,
              'ADMIN_OFF',
              'The admin API is off: set PRESENCED_ADMIN_KEY to turn it on.',
            ),
      )
      if (!adminKey) return
      const apiKeys = new ApiKeys(service.profiles, service.clock)
      admin.addHook('onRequest', adminAuth(adminKey, apiKeys))
      await admin.register(adminRoutes, { service })
      await admin.register(keyRoutes, { apiKeys, clock: service.clock })
      await admin.register(importRoute, { service })
    },
    { prefix: '/admin/v1' },
  )
}
