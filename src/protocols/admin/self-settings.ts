import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { PresenceError, statusOfKind } from '../../core/errors.js'
import type { UserSettings } from '../../core/privacy.js'
import type { UserId } from '../../core/user-id.js'
import type { PresenceService } from '../../service/presence-service.js'
import type { Tokens } from '../../service/tokens.js'
import { requireJsonBody } from './errors.js'
import { publicSettings } from './routes.js'
import { settingsBody } from './schemas.js'

const DENIED = 'Authorization has been denied for this request.'

function robloxError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).send({ errors: [{ code: 0, message }] })
}

/**
 * GET/PUT /v1/presence/settings: users read and change their own privacy settings, with
 * `Authorization: Bearer <token>`. Errors take the Roblox shape, as the neighbouring routes do.
 */
export async function selfSettingsRoutes(
  app: FastifyInstance,
  options: { service: PresenceService; tokens: Tokens },
): Promise<void> {
  const { service, tokens } = options
  const userOf = new WeakMap<FastifyRequest, UserId>()

  app.addHook('onRequest', async (request, reply) => {
    const header = request.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null
    const claims = match ? await tokens.verify(match[1]!) : undefined
    if (!claims) return robloxError(reply, 401, DENIED)
    userOf.set(request, claims.userId)
    return undefined
  })

  app.addHook('preValidation', requireJsonBody)

  app.setErrorHandler((error: FastifyError | PresenceError, request, reply) => {
    if (error instanceof PresenceError) {
      return robloxError(reply, statusOfKind[error.kind], error.message)
    }
    const status = error.statusCode ?? 500
    if (status >= 400 && status < 500) {
      return robloxError(
        reply,
        status,
        error.validation ? `Invalid request: ${error.message}.` : error.message,
      )
    }
    request.log.error({ err: error }, 'settings request failed')
    return robloxError(reply, 500, 'An unknown error occurred.')
  })

  app.get(
    '/v1/presence/settings',
    { schema: { tags: ['settings'], summary: 'Your own privacy settings' } },
    async (request) => publicSettings(await service.getSettings(userOf.get(request)!)),
  )

  app.put<{ Body: Partial<Pick<UserSettings, 'visibility' | 'invisible'>> }>(
    '/v1/presence/settings',
    {
      schema: {
        tags: ['settings'],
        summary: 'Changes your own privacy settings (fields left out keep their value)',
        body: settingsBody,
      },
    },
    async (request) => {
      const id = userOf.get(request)!
      const current = await service.getSettings(id)
      const next = await service.putSettings(id, {
        visibility: request.body.visibility ?? current.visibility,
        invisible: request.body.invisible ?? current.invisible,
      })
      return publicSettings(next)
    },
  )
}
