import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import { testConfig, type Config } from '../../src/app/config.js'
import { createStores } from '../../src/app/create-stores.js'
import type { SqliteProfileStore } from '../../src/store/sqlite/sqlite-profile-store.js'
import { prometheusSamples } from '../helpers/prometheus.js'
import { startApp } from '../helpers/start-app.js'
import { FAST_WEBHOOKS, hookTo } from '../helpers/webhook-endpoint.js'
import { startReceiver } from '../helpers/webhook-receiver.js'
import { REGISTER, bearer, post } from './roblox-helpers.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'

/*
 * Embedded mode: the webhook store (SQLite) refuses writes while another connection holds the
 * database's write lock, a real SQLITE_BUSY. Presence lives in memory, so changes go on being
 * made: the outbox holds their events (at most PRESENCED_WEBHOOK_MAX_PENDING changes, the oldest
 * dropped and counted beyond), says so once, and stores them in order when the lock is gone.
 */

const METRICS_KEY = 'metrics-key-of-the-store-outage-test'
const FAST: Partial<Config> = {
  ...FAST_WEBHOOKS,
  webhookMaxPending: 2,
  metricsKey: METRICS_KEY,
}

test('embedded: the webhook store locked: changes are held (the oldest dropped beyond the bound, counted, said once) and delivered in order when it answers', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-test-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const stores = await createStores(testConfig({ dataDir, ...FAST }))
  // a locked database answers SQLITE_BUSY at once rather than after 5 s of a blocked process
  ;(stores.profiles as SqliteProfileStore).db.pragma('busy_timeout = 10')
  const presenced = await startApp(t, { config: FAST, dataDir, stores })
  const { app } = presenced
  const warnings: string[] = []
  const warn = app.log.warn.bind(app.log)
  app.log.warn = ((details: { err?: Error }, message: string) => {
    warnings.push(`${message}: ${details.err?.message}`)
    warn(details, message)
  }) as typeof app.log.warn

  const receiver = await startReceiver(t)
  await hookTo(app, receiver)
  const online = async (id: string) => {
    const response = await post(
      app,
      REGISTER,
      { location: 'Lobby' },
      await bearer(presenced.tokens, id),
    )
    assert.equal(response.statusCode, 200, response.body)
  }
  const onlineOf = () =>
    receiver.accepted.filter((r) => r.event.type === 'online').map((r) => r.event.userId)
  await online('101')
  await receiver.until(() => onlineOf().length === 1, 10_000, 'the first online')

  const locker = new Database(join(dataDir, 'presenced.sqlite'))
  t.after(() => locker.close())
  locker.exec('BEGIN IMMEDIATE')
  try {
    // answered at once: the changes stand, their events are the service's to store
    for (const id of ['102', '103', '104']) await online(id)
    const unstored = async () => {
      const response = await app.inject({
        url: '/metrics',
        headers: { authorization: `Bearer ${METRICS_KEY}` },
      })
      return prometheusSamples(response.body).get(
        'presenced_webhook_attempts_total{outcome="unstored"}',
      )
    }
    assert.equal(await unstored(), 1, 'the oldest change held, beyond the bound of 2, is counted')
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(onlineOf().length, 1, 'nothing stored while the lock is held')
  } finally {
    // released even when an assertion fails: the app could not close on a locked database
    locker.exec('COMMIT')
  }

  await receiver.until(() => onlineOf().length === 3, 10_000, 'the held events')
  assert.deepEqual(onlineOf(), ['101', '103', '104'])
  assert.ok(receiver.accepted.every((r) => r.signatureOk))
  assert.equal(new Set(receiver.accepted.map((r) => r.eventId)).size, 3)
  const enqueue = warnings.filter((w) => w.startsWith('webhook enqueue failed'))
  assert.equal(enqueue.length, 2, `once the failure, once the drops: ${enqueue.join('; ')}`)
  assert.match(enqueue[0]!, /database is locked/)
  assert.match(enqueue[1]!, /more than 2 changes wait: the oldest are dropped/)
})
