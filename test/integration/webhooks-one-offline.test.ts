import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { FAST_WEBHOOKS, hookTo } from '../helpers/webhook-endpoint.js'
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js'

/*
 * A user's webhook stream never says `offline` twice in a row. The sweep tells an expiry late,
 * judged just before the session expired; when another session starts before the sweep ran, its
 * heartbeat ends the expired one and tells its expiry first (`offline`, then `online`), and when
 * that one ends too (`offline`), the sweep finds nothing left: no second `offline`. The same holds
 * for a settings change that hides the user after that end (hiding reads as going offline, and the
 * user is offline already). Embedded, and in fleet mode on Redis.
 */

const TTL_MS = 10_000

async function setup(t: TestContext, fleet: boolean, config: Partial<Config> = {}) {
  const clock = new ManualClock(Date.now())
  const prefix = uniquePrefix('one-offline')
  const app = await startApp(t, {
    clock,
    config: {
      ...FAST_WEBHOOKS,
      sessionTtlSeconds: TTL_MS / 1000,
      sweepIntervalMs: 3_600_000,
      ...(fleet && { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix, redisTimeoutMs: 5000 }),
      ...config,
    },
  })
  if (fleet) t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  const receiver = await startReceiver(t)
  await hookTo(app.app, receiver)
  return { app, clock, receiver }
}

const beat = (app: StartedApp, userId: string, device: string) =>
  app.service.heartbeat({
    userId: userId as UserId,
    key: `app:${device}`,
    source: 'app',
    deviceType: device,
    activity: { kind: 'online' },
  })

/** What the receiver was told of `userId`, once a later sentinel's event arrived. */
async function told(app: StartedApp, receiver: WebhookReceiver, userId: string) {
  const sentinel = '9999'
  await beat(app, sentinel, 'PC')
  await receiver.until(
    () => receiver.accepted.some((r) => r.event.userId === sentinel),
    15_000,
    'the sentinel',
  )
  await app.service.webhooks.idle()
  const deadline = Date.now() + 15_000
  for (;;) {
    const res = await app.app.inject({
      method: 'GET',
      url: '/admin/v1/webhooks',
      headers: { 'x-api-key': ADMIN_KEY },
    })
    const [hook] = (res.json() as { webhooks: { id: string }[] }).webhooks
    const details = await app.service.webhooks.get(hook!.id)
    if (details!.queued === 0) break
    assert.ok(Date.now() < deadline, 'events still queued')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return receiver.accepted
    .filter((r) => r.event.userId === userId)
    .map((r) => `${r.event.type}:${r.event.presence.state}`)
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'

  test(`${mode}: a session that expired, swept after another one started and ended, sends no second offline`, async (t) => {
    const { app, clock, receiver } = await setup(t, fleet)
    const user = '301'
    await beat(app, user, 'PC')
    clock.advance(TTL_MS + 1000)
    // the PC session expired, not swept yet: the phone comes and goes
    await beat(app, user, 'iOS')
    clock.advance(1000)
    await app.service.endSession(user as UserId, 'app:iOS')
    clock.advance(1000)
    // the phone's heartbeat ended the PC's expired session and told it: nothing is left to sweep
    assert.equal(await app.service.sweepExpired(), 0)
    assert.deepEqual(await told(app, receiver, user), [
      'online:online',
      'offline:offline',
      'online:online',
      'offline:offline',
    ])
  })

  test(`${mode}: going invisible after an expiry and a later sign-out, before the sweep, sends no second offline`, async (t) => {
    const { app, clock, receiver } = await setup(t, fleet)
    const user = '302'
    await beat(app, user, 'PC')
    clock.advance(TTL_MS + 1000)
    await beat(app, user, 'iOS')
    clock.advance(1000)
    await app.service.endSession(user as UserId, 'app:iOS')
    clock.advance(1000)
    await app.service.putSettings(user as UserId, { invisible: true })
    assert.equal(await app.service.sweepExpired(), 0)
    assert.deepEqual(await told(app, receiver, user), [
      'online:online',
      'offline:offline',
      'online:online',
      'offline:offline',
    ])
  })
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'

  test(`${mode}: at the session cap, a session ended to make room and the rest ending send one offline`, async (t) => {
    const { app, clock, receiver } = await setup(t, fleet, { maxSessionsPerUser: 1 })
    const user = '303'
    await beat(app, user, 'PC')
    clock.advance(1000)
    // the cap ends the PC's session for the phone's: the user stays online
    await beat(app, user, 'iOS')
    clock.advance(1000)
    await app.service.endSession(user as UserId, 'app:iOS')
    clock.advance(TTL_MS + 1000)
    // the PC's session was ended, not left to expire: nothing to sweep
    assert.equal(await app.service.sweepExpired(), 0)
    await beat(app, user, 'PC')
    clock.advance(TTL_MS + 1000)
    // and an expired one is no room taken: the phone's heartbeat ends it (told first), then the
    // phone ends, and the sweep finds nothing
    await beat(app, user, 'iOS')
    clock.advance(1000)
    await app.service.endSession(user as UserId, 'app:iOS')
    assert.equal(await app.service.sweepExpired(), 0)
    assert.deepEqual(await told(app, receiver, user), [
      'online:online',
      'update:online',
      'offline:offline',
      'online:online',
      'offline:offline',
      'online:online',
      'offline:offline',
    ])
  })
}
