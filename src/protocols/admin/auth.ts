import type { FastifyRequest } from 'fastify'
import type { PresenceService } from '../../service/presence-service.js'
import { apiKeyCredential, authorizationCredential, oneCredential } from '../shared/credentials.js'

/**
 * An onRequest hook admitting the admin key or a scoped API key with the `admin` scope, both in
 * `x-api-key`. It runs before the body is read, so a refused import never gets parsed. A user's
 * token is read too, so that one sent beside a key is refused (400) rather than ignored, and one
 * sent alone is refused as no key.
 */
export function adminAuth(service: PresenceService) {
  const { auth } = service
  return async (request: FastifyRequest): Promise<void> => {
    const credential = oneCredential([
      ['Authorization', authorizationCredential(request)],
      ['x-api-key', apiKeyCredential(request.headers)],
    ])
    request.caller = auth.requireScope(await auth.authenticate(credential, request.ip), 'admin')
  }
}

/**
 * The API key behind an admin request (undefined for the operator's admin key), for the service
 * to record as the issuer of what it makes (keys, webhooks) and bound it by the key's expiry.
 */
export { issuerOf } from '../../core/caller.js'
