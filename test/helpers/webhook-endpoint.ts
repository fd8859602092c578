import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/app/config.js'
import { ADMIN_KEY } from './start-app.js'
import type { WebhookReceiver } from './webhook-receiver.js'

/** Fast retries and short leases, so that a failing receiver or store is retried within a test. */
export const FAST_WEBHOOKS: Partial<Config> = {
  webhookBackoffMs: 20,
  webhookBackoffMaxMs: 100,
  webhookPollMs: 20,
  webhookTimeoutMs: 1000,
  webhookLeaseMs: 3000,
}

/** A webhook to `receiver` bound to a new presence:read key; the receiver gets its secret. */
export async function hookTo(app: FastifyInstance, receiver: WebhookReceiver): Promise<void> {
  const admin = { 'x-api-key': ADMIN_KEY }
  const key = await app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: admin,
    payload: { name: 'hook', scopes: ['presence:read'] },
  })
  assert.equal(key.statusCode, 201, key.body)
  const hook = await app.inject({
    method: 'POST',
    url: '/admin/v1/webhooks',
    headers: admin,
    payload: { url: receiver.url, keyId: (key.json() as { id: string }).id },
  })
  assert.equal(hook.statusCode, 201, hook.body)
  receiver.secret = (hook.json() as { secret: string }).secret
}
