import type { FastifyInstance } from 'fastify'
import { errors } from '../../core/errors.js'
import type { PresenceService } from '../../service/presence-service.js'
import type {
  CreateWebhookInput,
  Delivery,
  DeliveryState,
  UpdateWebhookInput,
  WebhookInfo,
} from '../../service/webhooks/webhooks.js'
import { int64 } from '../shared/int64-keyword.js'
import { issuerOf } from './auth.js'
import { badRequest, requireJsonBody } from './errors.js'
import { tags } from './schemas.js'

const eventsSchema = {
  type: 'array',
  minItems: 1,
  maxItems: 3,
  items: { type: 'string', enum: ['online', 'update', 'offline'] },
} as const

const filterSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    universes: { type: 'array', maxItems: 1000, items: int64('UNIVERSE_ID_INVALID') },
    titles: { type: 'array', maxItems: 1000, items: { type: ['integer', 'string'] } },
    users: { type: 'array', maxItems: 10_000, items: int64('USER_ID_INVALID') },
  },
} as const

const common = {
  url: { type: 'string', minLength: 1, maxLength: 2048 },
  events: eventsSchema,
  filter: filterSchema,
  enabled: { type: 'boolean' },
  secret: { type: 'string', maxLength: 200 },
  description: { type: 'string', maxLength: 200 },
} as const

const createBody = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'keyId'],
  properties: { ...common, keyId: { type: 'string', maxLength: 40 } },
} as const

const updateBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { ...common, rotateSecret: { type: 'boolean' } },
} as const

const replayBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    eventIds: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string' } },
  },
} as const

interface IdParams {
  id: string
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())

function webhookView(webhook: WebhookInfo) {
  return {
    id: webhook.id,
    url: webhook.url,
    keyId: webhook.keyId,
    scope: webhook.scope,
    changedBy: webhook.changedBy ?? [],
    events: webhook.events,
    filter: webhook.filter,
    enabled: webhook.enabled,
    description: webhook.description,
    createdAt: iso(webhook.createdAt),
    updatedAt: iso(webhook.updatedAt),
  }
}

function deliveryView(delivery: Delivery) {
  return {
    eventId: delivery.eventId,
    type: delivery.type,
    userId: delivery.userId,
    state: delivery.parkedAt === undefined ? 'queued' : 'parked',
    attempts: delivery.attempts,
    lastError: delivery.lastError ?? null,
    lastAttemptAt: iso(delivery.lastAttemptAt),
    parkedAt: iso(delivery.parkedAt),
    createdAt: iso(delivery.createdAt),
    event: JSON.parse(delivery.body) as unknown,
  }
}

const notFound = (id: string) =>
  errors.notFound(`No webhook has the id ${JSON.stringify(id.slice(0, 40))}.`)

/** Webhook ids are 16 hex digits; anything else names no webhook. */
function webhookId(id: string): string {
  if (!/^[0-9a-f]{16}$/.test(id)) throw notFound(id)
  return id
}

function deliveryQuery(query: Record<string, unknown>): { state: DeliveryState; limit: number } {
  const { state = 'parked', limit = '100', ...rest } = query
  const unknown = Object.keys(rest)[0]
  if (unknown !== undefined) throw badRequest(`Unknown query parameter ${JSON.stringify(unknown)}.`)
  if (state !== 'parked' && state !== 'queued') {
    throw badRequest(`state must be parked or queued, got ${JSON.stringify(String(state))}.`)
  }
  if (typeof limit !== 'string' || !/^[1-9][0-9]{0,3}$/.test(limit) || Number(limit) > 1000) {
    throw badRequest(`limit must be an integer from 1 to 1000, got ${JSON.stringify(limit)}.`)
  }
  return { state, limit: Number(limit) }
}

/**
 * Webhooks under /admin/v1/webhooks: endpoints (create, list, get, update, delete), their queued
 * and parked deliveries, and replay. Secrets appear in the answer that creates (or rotates) them
 * only. Behaviour: docs/reference/webhooks.md.
 */
export async function webhookRoutes(
  app: FastifyInstance,
  { service }: { service: PresenceService },
): Promise<void> {
  const { webhooks } = service
  app.addHook('preValidation', requireJsonBody)

  app.post<{ Body: CreateWebhookInput }>(
    '/webhooks',
    {
      schema: {
        tags,
        summary: 'Creates a webhook bound to an API key; its secret is in this answer only',
        body: createBody,
      },
    },
    async (request, reply) => {
      const { webhook, secret } = await webhooks.create(request.body, issuerOf(request.caller))
      return reply.code(201).send({ ...webhookView(webhook), secret })
    },
  )

  app.get(
    '/webhooks',
    { schema: { tags, summary: 'Lists webhooks (never their secrets)' } },
    async () => ({
      webhooks: (await webhooks.list()).map(webhookView),
    }),
  )

  app.get<{ Params: IdParams }>(
    '/webhooks/:id',
    { schema: { tags, summary: 'One webhook, with how many events are queued and parked' } },
    async (request) => {
      const id = webhookId(request.params.id)
      const webhook = await webhooks.get(id)
      if (!webhook) throw notFound(id)
      const { queued, parked, delivering } = webhook
      return { ...webhookView(webhook), queued, parked, delivering }
    },
  )

  app.patch<{ Params: IdParams; Body: UpdateWebhookInput }>(
    '/webhooks/:id',
    {
      schema: {
        tags,
        summary: 'Changes a webhook; members left out keep their value',
        body: updateBody,
      },
    },
    async (request) => {
      const id = webhookId(request.params.id)
      const updated = await webhooks.update(id, request.body, issuerOf(request.caller))
      if (!updated) throw notFound(id)
      return {
        ...webhookView(updated.webhook),
        ...(updated.secret !== undefined && { secret: updated.secret }),
      }
    },
  )

  app.delete<{ Params: IdParams }>(
    '/webhooks/:id',
    { schema: { tags, summary: 'Deletes a webhook with its queued and parked events' } },
    async (request, reply) => {
      const id = webhookId(request.params.id)
      if (!(await webhooks.delete(id, issuerOf(request.caller)))) throw notFound(id)
      return reply.code(204).send()
    },
  )

  app.get<{ Params: IdParams; Querystring: Record<string, unknown> }>(
    '/webhooks/:id/deliveries',
    {
      schema: {
        tags,
        summary: 'Parked (default) or queued deliveries of a webhook, oldest first',
      },
    },
    async (request) => {
      const id = webhookId(request.params.id)
      const { state, limit } = deliveryQuery(request.query)
      const deliveries = await webhooks.deliveries(id, state, limit)
      if (!deliveries) throw notFound(id)
      return { deliveries: deliveries.map(deliveryView) }
    },
  )

  app.post<{ Params: IdParams; Body: { eventIds?: string[] } | undefined }>(
    '/webhooks/:id/deliveries/replay',
    {
      schema: {
        tags,
        summary: 'Puts parked deliveries (these, or all) back at the end of the queue',
        body: replayBody,
      },
      // no body at all means "replay them all"
      preValidation: async (request) => {
        request.body ??= {}
      },
    },
    async (request) => {
      const id = webhookId(request.params.id)
      const replayed = await webhooks.replay(id, request.body?.eventIds)
      if (replayed === undefined) throw notFound(id)
      return { replayed }
    },
  )
}
