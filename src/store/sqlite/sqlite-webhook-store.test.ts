import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import type { UserId } from '../../core/user-id.js'
import { webhookStoreContract } from '../contract/webhook-store.contract.js'
import { SqliteProfileStore } from './sqlite-profile-store.js'
import { SqliteWebhookStore } from './sqlite-webhook-store.js'

webhookStoreContract('sqlite', async () => {
  const db = new Database(':memory:')
  const store = new SqliteWebhookStore(db)
  return {
    store,
    cleanup: async () => {
      await store.close()
      db.close()
    },
  }
})

test('queues outlive the process: what it had claimed is claimed again first, in order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-sqlite-wh-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const record = {
    id: 'w1',
    url: 'http://127.0.0.1:9/h',
    secret: 'whsec_0123456789abcdef',
    keyId: '0123456789abcdef',
    events: ['online' as const],
    filter: { universes: [], titles: [], users: [] },
    enabled: true,
    description: '',
    createdAt: 1,
    updatedAt: 1,
  }
  const first = new SqliteProfileStore(dir)
  const before = new SqliteWebhookStore(first.db)
  await before.putWebhook(record)
  await before.enqueue(
    [1, 2, 3].map((n) => ({
      webhookId: 'w1',
      eventId: `evt_${n}`,
      userId: String(n) as UserId,
      type: 'online' as const,
      body: '{}',
      createdAt: n,
    })),
    100,
  )
  assert.equal((await before.claim('w1', 'killed-process', 2)).length, 2)
  await first.close()

  const second = new SqliteProfileStore(dir)
  t.after(() => second.close())
  const after = new SqliteWebhookStore(second.db)
  assert.deepEqual(await after.getWebhook('w1'), record)
  // as a worker takes a queue over: reclaim, then claim
  const reclaimed = await after.reclaim('w1', 'new-process', '0', 10)
  const claimed = await after.claim('w1', 'new-process', 10)
  assert.deepEqual(
    [...reclaimed.deliveries, ...claimed].map((d) => d.eventId),
    ['evt_1', 'evt_2', 'evt_3'],
  )
})
