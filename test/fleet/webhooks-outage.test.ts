import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import { REGISTER, bearer, post } from '../integration/roblox-helpers.js'
import { privateRedis } from '../helpers/redis-cluster.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { FAST_WEBHOOKS, hookTo } from '../helpers/webhook-endpoint.js'
import {
  startReceiver,
  type WebhookEvent,
  type WebhookReceiver,
} from '../helpers/webhook-receiver.js'

/*
 * A change is stored, then Redis stops answering before its effects are done: the bus publish
 * or the storing of its webhook events fails. Its webhook event must still be delivered, signed
 * and shaped as any other, once Redis answers again (at least once: the event id tells copies).
 * Redis is made to hang at the exact command by a proxy in front of a Redis of the test's own.
 */

const FAST: Partial<Config> = { ...FAST_WEBHOOKS, redisTimeoutMs: 300 }

const REFERENCE = '9223372036854770101'
const USER = '9223372036854770102'

async function fleetBehindProxy(t: TestContext, label: string) {
  const redis = await privateRedis(t, label)
  const proxy = await startTcpProxy(t, Number(new URL(redis.url).port))
  const app = await startApp(t, {
    config: { ...FAST, redisUrl: `redis://127.0.0.1:${proxy.port}`, redisPrefix: `${label}:` },
  })
  const receiver = await startReceiver(t)
  await hookTo(app.app, receiver)
  return { app, proxy, receiver }
}

async function register(app: StartedApp, id: string) {
  return post(
    app.app,
    REGISTER,
    { location: 'Lobby', disconnect: false },
    await bearer(app.tokens, id),
  )
}

function hide(app: StartedApp, id: string) {
  return app.app.inject({
    method: 'PUT',
    url: `/admin/v1/users/${id}/settings`,
    headers: { 'x-api-key': ADMIN_KEY },
    payload: { invisible: true },
  })
}

/** The events of `type` for `userId` the receiver accepted, one per event id. */
function delivered(receiver: WebhookReceiver, userId: string, type: WebhookEvent['type']) {
  const byId = new Map<string, { event: WebhookEvent; signed: boolean }>()
  for (const r of receiver.accepted) {
    if (r.event.userId !== userId || r.event.type !== type) continue
    byId.set(r.eventId, { event: r.event, signed: r.signatureOk })
  }
  return [...byId.values()]
}

async function deliveredOnce(
  receiver: WebhookReceiver,
  userId: string,
  type: WebhookEvent['type'],
) {
  await receiver.until(
    () => delivered(receiver, userId, type).length > 0,
    15_000,
    `${type} of ${userId}`,
  )
  const events = delivered(receiver, userId, type)
  assert.equal(events.length, 1, `one ${type} event of ${userId}`)
  assert.ok(events[0]!.signed, 'signed with the endpoint secret')
  return events[0]!.event
}

/** An event without what differs between two users' same change (ids, instants). */
function shape(event: WebhookEvent, userId: string) {
  const { id, occurredAt, presence, ...rest } = event
  assert.match(id, /^evt_[0-9a-f]{32}$/)
  assert.ok(!Number.isNaN(Date.parse(occurredAt)))
  return {
    ...rest,
    userId: rest.userId === userId ? 'USER' : rest.userId,
    presence: { ...presence, userId: 'USER', lastOnline: presence.lastOnline === null },
  }
}

/**
 * True for the first chunk naming `id` after the one storing its hidden settings: the mark of the
 * change in the user's history, the first effect of the stored change.
 */
function afterHiding(id: string) {
  let stored = false
  return (chunk: Buffer) => {
    if (!chunk.includes(id)) return false
    if (stored) return true
    stored = chunk.includes('"invisible":true')
    return false
  }
}

/**
 * `ids` and REFERENCE online, then REFERENCE hidden as normal: its offline event, the one to
 * compare with.
 */
async function hiddenReference(app: StartedApp, receiver: WebhookReceiver, ids: string[]) {
  for (const id of [REFERENCE, ...ids]) {
    assert.equal((await register(app, id)).statusCode, 200)
    await deliveredOnce(receiver, id, 'online')
  }
  const hidden = await hide(app, REFERENCE)
  assert.equal(hidden.statusCode, 200, hidden.body)
  return deliveredOnce(receiver, REFERENCE, 'offline')
}

/**
 * Makes `call` with Redis hanging from the first chunk that `matches` on, then lets Redis answer
 * again (the proxy drops the hung connection; the client connects anew): what `call` answered.
 */
async function whileRedisHangs<T>(
  proxy: TcpProxy,
  matches: (chunk: Buffer) => boolean,
  call: () => Promise<T>,
): Promise<T> {
  const stalled = proxy.stallWhen(matches)
  const answered = await call()
  await stalled
  proxy.cut()
  return answered
}

/** True for the chunk storing webhook events of `id`. */
const enqueuing = (id: string) => (chunk: Buffer) => chunk.includes('evt_') && chunk.includes(id)

test('fleet: Redis out of reach right after a settings change is stored (its history mark and bus publish fail): its webhook event is still delivered, signed, once Redis answers', async (t) => {
  const { app, proxy, receiver } = await fleetBehindProxy(t, 'hook-bus-outage')
  const reference = await hiddenReference(app, receiver, [USER])

  // the settings are stored; Redis hangs at the change's history mark (and all after it)
  const refused = await whileRedisHangs(proxy, afterHiding(USER), () => hide(app, USER))
  // the caller learns of the failure as before: the change is stored, a retry changes nothing
  assert.equal(refused.statusCode, 503, refused.body)

  const event = await deliveredOnce(receiver, USER, 'offline')
  assert.deepEqual(shape(event, USER), shape(reference, REFERENCE))
})

test('fleet: the webhook store out of reach when a change’s events are stored: they are held, and delivered, signed, once Redis answers', async (t) => {
  const { app, proxy, receiver } = await fleetBehindProxy(t, 'hook-store-outage')
  assert.equal((await register(app, REFERENCE)).statusCode, 200)
  const reference = await deliveredOnce(receiver, REFERENCE, 'online')

  // the heartbeat is stored and published; Redis hangs when its webhook events are stored
  const answered = await whileRedisHangs(proxy, enqueuing(USER), () => register(app, USER))
  // the change stands: its webhook events are the service's to deliver, not the client's
  assert.equal(answered.statusCode, 200, answered.body)

  const event = await deliveredOnce(receiver, USER, 'online')
  assert.deepEqual(shape(event, USER), shape(reference, REFERENCE))
})

test('fleet: Redis out of reach right after an import stored two users’ settings: both webhook events are delivered once Redis answers', async (t) => {
  const { app, proxy, receiver } = await fleetBehindProxy(t, 'hook-import-outage')
  const SECOND = '9223372036854770103'
  const reference = await hiddenReference(app, receiver, [USER, SECOND])

  // both records are stored; Redis hangs at the first record's history mark (and all after it)
  const refused = await whileRedisHangs(proxy, afterHiding(USER), () =>
    app.app.inject({
      method: 'POST',
      url: '/admin/v1/import',
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
      payload: [USER, SECOND]
        .map((id) => JSON.stringify({ type: 'settings', userId: id, invisible: true }))
        .join('\n'),
    }),
  )
  assert.equal(refused.statusCode, 503, refused.body)

  for (const id of [USER, SECOND]) {
    const event = await deliveredOnce(receiver, id, 'offline')
    assert.deepEqual(shape(event, id), shape(reference, REFERENCE))
  }
})
