import type { FastifyInstance } from 'fastify'
import type { UserSettings } from '../../core/privacy.js'
import type { PresenceService } from '../../service/presence-service.js'
import { robloxCookieCredential } from '../roblox/auth.js'
import { CSRF_HEADER } from '../roblox/csrf-header.js'
import { installErrorHandler } from '../roblox/errors.js'
import {
  apiKeyCredential,
  authorizationCredential,
  headerValue,
  oneCredential,
} from '../shared/credentials.js'
import { requireJsonBody } from './errors.js'
import { publicSettings } from './routes.js'
import { settingsBody } from './schemas.js'

/**
 * GET/PUT /v1/presence/settings: users read and change their own privacy settings, with
 * `Authorization: Bearer <token>` or, as on the Roblox routes beside, the `.ROBLOSECURITY`
 * cookie (a PUT with it needs the `x-csrf-token` those routes hand out). Errors take the Roblox
 * shape, as the neighbouring routes do.
 */
export async function selfSettingsRoutes(
  app: FastifyInstance,
  { service }: { service: PresenceService },
): Promise<void> {
  const { auth } = service
  installErrorHandler(app)

  app.addHook('onRequest', async (request) => {
    // a key is read too, refused as no user (403) alone, and beside a token refused (400) rather
    // than ignored
    const sent = oneCredential([
      ['Authorization', authorizationCredential(request)],
      ['x-api-key', apiKeyCredential(request.headers)],
    ])
    // the cookie only without either: a browser sends it beside any token it is given, and the
    // Roblox routes prefer a token to it too
    const credential =
      sent.kind === 'none' ? (robloxCookieCredential(request.headers) ?? sent) : sent
    const caller = auth.requireUser(await auth.authenticate(credential, request.ip))
    request.caller = caller
    // the user's request budget, as on the Roblox routes beside (each PUT a durable write and a
    // privacy change for every watcher), before the body is read
    await service.limits.request(caller, request.ip)
    // a page on another site can make a browser send the cookie, not read the CSRF token
    if (caller.via === 'cookie' && request.method !== 'GET' && request.method !== 'HEAD') {
      auth.checkCsrf(caller, request.ip, headerValue(request.headers[CSRF_HEADER]), 'write')
    }
  })

  app.addHook('preValidation', requireJsonBody)

  app.get(
    '/v1/presence/settings',
    { schema: { tags: ['settings'], summary: 'Your own privacy settings' } },
    async (request) =>
      publicSettings(await service.getSettings(auth.requireUser(request.caller).userId)),
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
      const id = auth.requireUser(request.caller).userId
      return publicSettings(await service.putSettings(id, request.body))
    },
  )
}
