import assert from 'node:assert/strict'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import type { UserId } from '../../core/user-id.js'
import { SqliteWebhookStore } from '../../store/sqlite/sqlite-webhook-store.js'
import type { WebhookRecord } from '../../store/webhook-store.js'
import { ManualClock } from '../clock.js'
import { EndpointWorker, type CurrentEndpoint } from './endpoint-worker.js'
import type { OutgoingRequest } from './http-sender.js'

const T = Date.UTC(2026, 0, 1)

const webhook: WebhookRecord = {
  id: '0123456789abcdef',
  url: 'http://127.0.0.1:9/hook',
  secret: 'whsec_0123456789abcdef',
  keyId: 'fedcba9876543210',
  events: ['online', 'update', 'offline'],
  filter: { universes: [], titles: [], users: [] },
  enabled: true,
  description: '',
  createdAt: T,
  updatedAt: T,
}

const settings = {
  maxAttempts: 3,
  backoffMs: 10,
  backoffMaxMs: 20,
  timeoutMs: 1000,
  concurrency: 2,
  pollMs: 10,
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!condition()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('an endpoint disabled on any node is not tried; its event waits and goes once enabled', async (t) => {
  const db = new Database(':memory:')
  t.after(() => db.close())
  const store = new SqliteWebhookStore(db)
  await store.putWebhook(webhook)
  await store.enqueue(
    [
      {
        webhookId: webhook.id,
        eventId: 'evt_1',
        userId: '7' as UserId,
        type: 'online',
        createdAt: T,
        body: '{"id":"evt_1"}',
      },
    ],
    100,
  )
  // as the store has it now: disabled by another node, which this node's registry has not
  // reloaded yet (its dispatcher still runs this worker)
  let current: CurrentEndpoint = { webhook: { ...webhook, enabled: false }, keyActive: true }
  const sent: OutgoingRequest[] = []
  const worker = new EndpointWorker(webhook.id, {
    store,
    clock: new ManualClock(T),
    settings,
    owner: 'node-a',
    current: () => Promise.resolve(current),
    send: (request) => {
      sent.push(request)
      return Promise.resolve({ ok: true, status: 200 })
    },
    random: () => 0.5,
    onError: (error) => assert.fail(String(error)),
  })
  worker.extendLease(performance.now() + 60_000)
  worker.start()
  t.after(() => worker.stop())

  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.equal(sent.length, 0, 'a disabled endpoint was tried')
  assert.deepEqual(await store.counts(webhook.id), { queued: 1, parked: 0 }, 'the event waits')

  current = { webhook, keyActive: true }
  await until(() => sent.length === 1, 'the delivery once enabled')
  await until(() => sent.length === 1, 'nothing more')
  await worker.stop()
  assert.deepEqual(await store.counts(webhook.id), { queued: 0, parked: 0 })
})
