import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createStores } from '../../src/app/create-stores.js'
import { errors, fail } from '../../src/core/errors.js'
import type { UserId } from '../../src/core/user-id.js'
import { RedisConnection } from '../../src/store/redis/redis-connection.js'
import { RedisPresenceStore } from '../../src/store/redis/redis-presence-store.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { startApp } from '../helpers/start-app.js'
import { NativeClient, heartbeatFrame } from './native-client.js'

/*
 * A heartbeat that fails for a reason that is not the store's (a refusal or bad input the
 * service or the store's step meets) is answered with that error, in the protocol's shape and
 * status; only the store unreachable or refusing is "The presence store is unavailable" (503,
 * UNAVAILABLE). Before, a failure met inside a Redis step was a 503 whatever it was, and a
 * WebSocket heartbeat frame answered UNAVAILABLE to any failure but RATE_LIMITED.
 */

const LATE = 'placeId 1818 is not a place this server may write.'

test('fleet mode: a catalogued failure met in a Redis step is its own error, an outage stays 503', async (t) => {
  const prefix = uniquePrefix('hb-failures')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  // the heartbeat's Redis step fails as told (each test file runs in its own process): the
  // store's heartbeat starts its step (RedisConnection.run) synchronously, which is marked here
  const heartbeat = RedisPresenceStore.prototype.heartbeat
  const run = RedisConnection.prototype.run
  let failure: Error | undefined
  let inHeartbeat = false
  RedisPresenceStore.prototype.heartbeat = function (this: RedisPresenceStore, ...args) {
    inHeartbeat = true
    try {
      return heartbeat.apply(this, args)
    } finally {
      inHeartbeat = false
    }
  }
  RedisConnection.prototype.run = function <T>(this: RedisConnection, work: () => Promise<T>) {
    const failing = inHeartbeat ? failure : undefined
    return run.call(
      this,
      failing === undefined ? work : () => Promise.reject(failing),
    ) as Promise<T>
  }
  t.after(() => {
    RedisPresenceStore.prototype.heartbeat = heartbeat
    RedisConnection.prototype.run = run
  })
  const app = await startApp(t, {
    listen: true,
    config: { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix },
  })
  const token = await app.tokens.issue('8201' as UserId)
  const beat = async () => {
    const res = await fetch(`${app.url}/v1/presence/register-app-presence`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ location: 'Game', placeId: 1818, disconnect: false }),
    })
    return {
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      body: await res.json(),
    }
  }
  assert.equal((await beat()).status, 200)

  failure = fail('PLACE_ID_INVALID', LATE)
  const refused = await beat()
  assert.equal(refused.status, 400, JSON.stringify(refused.body))
  assert.deepEqual(refused.body, { errors: [{ code: 0, message: LATE }] })
  assert.equal(refused.retryAfter, null)

  // Redis not there: as before, 503 with Retry-After
  failure = new Error('Connection is closed.')
  const outage = await beat()
  assert.equal(outage.status, 503, JSON.stringify(outage.body))
  assert.deepEqual(outage.body, {
    errors: [{ code: 0, message: 'The presence store is unavailable. Try again shortly.' }],
  })
  assert.equal(outage.retryAfter, '1')
})

test('a WebSocket heartbeat frame that fails otherwise than the store is told its own error', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-hb-failures-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const stores = await createStores({ dataDir })
  let failure: Error | undefined
  const presence = stores.presence
  const limited = presence.limitedHeartbeat!.bind(presence)
  presence.limitedHeartbeat = (...args) =>
    failure === undefined ? limited(...args) : Promise.reject(failure)
  const app = await startApp(t, { dataDir, listen: true, stores })
  const client = await NativeClient.connect(app.url, await app.tokens.issue('8202' as UserId))
  t.after(() => client.socket.terminate())

  failure = fail('PLACE_ID_INVALID', LATE)
  client.send(heartbeatFrame('refused late'))
  assert.deepEqual(await client.waitFor((frame) => frame.type === 'error'), {
    type: 'error',
    code: 'PLACE_ID_INVALID',
    message: LATE,
    for: 'heartbeat',
  })
  // the store's outage is UNAVAILABLE, as documented
  failure = errors.storeUnavailable()
  client.send(heartbeatFrame('store out'))
  assert.deepEqual(await client.waitFor((frame) => frame.type === 'error'), {
    type: 'error',
    code: 'UNAVAILABLE',
    message: 'The presence store is unavailable. Try again shortly.',
    for: 'heartbeat',
  })
  // and the connection stays open: a heartbeat that the store takes goes through
  failure = undefined
  client.send(heartbeatFrame('fine'))
  await new Promise((resolve) => setTimeout(resolve, 100))
  const [after] = await app.service.rawPresences(['8202' as UserId])
  assert.equal(after!.sessions[0]?.activity.location, 'fine')
})
