import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/app/config.js'
import { REGISTER, bearer, post } from '../integration/roblox-helpers.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import { ADMIN_KEY, type StartedApp } from '../helpers/start-app.js'
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js'

/**
 * A webhook's key revoked, or its URL changed, on one node of a fleet: the node delivering the
 * endpoint follows at once, not at its next registry refresh (1 s).
 */

const FAST: Partial<Config> = {
  webhookBackoffMs: 20,
  webhookBackoffMaxMs: 50,
  webhookPollMs: 20,
  webhookTimeoutMs: 1000,
  webhookLeaseMs: 3000,
  webhookAttempts: 1000,
}

async function call(app: FastifyInstance, method: string, url: string, body?: unknown) {
  const response = await app.inject({
    method: method as 'GET',
    url,
    headers: {
      'x-api-key': ADMIN_KEY,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { payload: JSON.stringify(body) }),
  })
  assert.ok(response.statusCode < 300, `${method} ${url}: ${response.statusCode} ${response.body}`)
  return response.json() as Record<string, unknown>
}

async function register(node: StartedApp, id: string, location: string): Promise<void> {
  const response = await post(
    node.app,
    REGISTER,
    { location, disconnect: false },
    await bearer(node.tokens, id),
  )
  assert.equal(response.statusCode, 200, response.body)
}

/**
 * Two nodes, a webhook whose receiver fails (so its first event is retried every few ms), and
 * which node delivers it: `writer` is the other one.
 */
async function failingHook(t: TestContext, label: string, receiver: WebhookReceiver) {
  const { a, b } = await startNodePair(t, label, FAST)
  const key = await call(a.app, 'POST', '/admin/v1/keys', {
    name: 'hook',
    scopes: ['presence:read:private'],
  })
  const hook = await call(a.app, 'POST', '/admin/v1/webhooks', { url: receiver.url, keyId: key.id })
  receiver.secret = hook.secret as string
  receiver.answer = () => 503
  await register(a, '7001', 'Lobby')
  await receiver.until(() => receiver.requests.length >= 3, 10_000, 'retries')
  const deliverer = [a, b].find((n) => n.service.webhooks.delivering.includes(hook.id as string))
  assert.ok(deliverer, 'one node delivers the endpoint')
  const writer = deliverer === a ? b : a
  return { key, hook, deliverer, writer }
}

test('fleet: a webhook key revoked on one node stops the other node’s deliveries at once', async (t) => {
  const receiver = await startReceiver(t)
  const { key, writer } = await failingHook(t, 'hook-revoke', receiver)
  await call(writer.app, 'DELETE', `/admin/v1/keys/${key.id as string}`)
  // a try that read the key before the revocation may still be on its way: it lands on a 503
  await new Promise((resolve) => setTimeout(resolve, 300))
  receiver.answer = () => 200
  // a try every 20-50 ms: the retrying event would be delivered by now, were it still allowed
  await new Promise((resolve) => setTimeout(resolve, 700))
  assert.deepEqual(
    receiver.accepted.map((r) => r.event.type),
    [],
    'nothing delivered after the key was revoked',
  )
})

test('fleet: a webhook URL changed on one node is where the other node’s next try goes', async (t) => {
  const receiver = await startReceiver(t)
  const moved = await startReceiver(t)
  const { hook, writer } = await failingHook(t, 'hook-move', receiver)
  await call(writer.app, 'PATCH', `/admin/v1/webhooks/${hook.id as string}`, { url: moved.url })
  const triedBefore = receiver.requests.length
  moved.secret = receiver.secret
  receiver.answer = () => 200
  // a delivery reads its endpoint before each try (every 20-50 ms here): a try with the old URL
  // would be accepted there, so no time bound is needed to tell (a loaded machine may be slow)
  await moved.until(() => moved.accepted.length >= 1, 10_000, 'the next try at the new URL')
  assert.equal(receiver.accepted.length, 0, 'nothing delivered to the old URL after the change')
  assert.ok(receiver.requests.length - triedBefore <= 1, 'at most a try already in flight')
})
