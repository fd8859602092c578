import type { FastifyInstance } from 'fastify'
import type { ApiKeyInfo } from '../../core/api-key.js'
import { errors } from '../../core/errors.js'
import type { Scope } from '../../core/privacy.js'
import type { PresenceService } from '../../service/presence-service.js'
import { parseIsoInstant } from '../shared/iso-date.js'
import { issuerOf } from './auth.js'
import { badRequest, requireJsonBody } from './errors.js'
import { createKeyBody, tags } from './schemas.js'

interface CreateKeyBody {
  name: string
  scopes: Scope[]
  expiresAt?: string
  expiresIn?: number
  universes?: unknown[]
}

/** Instants as ISO-8601, plus whether the key is usable now. */
function keyView(key: ApiKeyInfo, active: boolean) {
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())
  return {
    id: key.id,
    name: key.name,
    scopes: key.scopes,
    universes: key.universes,
    createdAt: iso(key.createdAt),
    expiresAt: iso(key.expiresAt),
    revokedAt: iso(key.revokedAt),
    issuedBy: key.issuedBy ?? null,
    active,
  }
}

/** Scoped API keys: POST/GET /admin/v1/keys, DELETE /admin/v1/keys/{id}. */
export async function keyRoutes(
  app: FastifyInstance,
  { service }: { service: PresenceService },
): Promise<void> {
  const apiKeys = service.keys
  const view = (key: ApiKeyInfo) => keyView(key, apiKeys.isActive(key))
  app.addHook('preValidation', requireJsonBody)

  app.post<{ Body: CreateKeyBody }>(
    '/keys',
    {
      schema: {
        tags,
        summary: 'Creates a scoped API key; its secret is in this response only',
        body: createKeyBody,
      },
    },
    async (request, reply) => {
      const { name, scopes, expiresAt, expiresIn, universes } = request.body
      let expiry: number | undefined
      if (expiresAt !== undefined) {
        expiry = parseIsoInstant(expiresAt)
        if (expiry === undefined) {
          throw badRequest(
            `expiresAt must be an ISO-8601 instant, got ${JSON.stringify(expiresAt)}.`,
          )
        }
      }
      const created = await apiKeys.create({
        name,
        scopes,
        expiresAt: expiry,
        expiresInSeconds: expiresIn,
        universes: universes as string[],
        issuer: issuerOf(request.caller),
      })
      return reply.code(201).send({ ...view(created.key), secret: created.secret })
    },
  )

  app.get(
    '/keys',
    { schema: { tags, summary: 'Lists API keys (never their secrets)' } },
    async () => ({ keys: (await apiKeys.list()).map(view) }),
  )

  app.delete<{ Params: { id: string } }>(
    '/keys/:id',
    { schema: { tags, summary: 'Revokes an API key at once' } },
    async (request) => {
      const id = request.params.id
      const revoked = /^[0-9a-f]{16}$/.test(id)
        ? await apiKeys.revoke(id, issuerOf(request.caller))
        : undefined
      if (!revoked)
        throw errors.notFound(`No API key has the id ${JSON.stringify(id.slice(0, 40))}.`)
      return view(revoked)
    },
  )
}
