import type { FastifyRequest } from 'fastify'
import type { Caller, KeyCaller } from '../../core/caller.js'
import { noCredential } from '../../service/authenticator.js'
import type { PresenceService } from '../../service/presence-service.js'
import { apiKeyCredential } from '../shared/credentials.js'

/**
 * An onRequest hook admitting the admin key or a scoped API key with the `admin` scope, both in
 * `x-api-key`. It runs before the body is read, so a refused import never gets parsed.
 */
export function adminAuth(service: PresenceService) {
  const { auth } = service
  return async (request: FastifyRequest): Promise<void> => {
    const credential = apiKeyCredential(request.headers) ?? noCredential
    request.caller = auth.requireScope(await auth.authenticate(credential, request.ip), 'admin')
  }
}

/**
 * The key behind an admin request, for the service to bound what it makes (keys, webhooks) by
 * the key's own expiry; adminAuth admits keys only (the operator's one has none).
 */
export function issuerOf(caller: Caller): KeyCaller | undefined {
  return caller.kind === 'key' ? caller : undefined
}
