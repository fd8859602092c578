import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { NativeClient, type Frame } from './native-client.js'

/*
 * A session expires and its device heartbeats again before the sweep claimed it: a WebSocket
 * watcher sees what it would have seen had the sweep been on time, as the webhooks and the feeds
 * do. Without a flap grace that is `offline` (reason `timeout`) then `online`; with one, the
 * offline is held and dropped as the user came back (nothing). Either way the sweep that runs
 * later sends nothing. Embedded, and in fleet mode on Redis.
 */

const TTL_MS = 10_000
const VIEWER = '9201' as UserId
const WATCHED = '9202' as UserId

async function start(t: TestContext, fleet: boolean, config: Partial<Config>) {
  const clock = new ManualClock(Date.now())
  const prefix = uniquePrefix('native-expiry-beat')
  const app = await startApp(t, {
    listen: true,
    clock,
    config: {
      sessionTtlSeconds: TTL_MS / 1000,
      sweepIntervalMs: 3_600_000,
      ...(fleet && { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix, redisTimeoutMs: 5000 }),
      ...config,
    },
  })
  if (fleet) t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  return { app, clock }
}

function beat(app: StartedApp, location: string) {
  return app.service.heartbeat({
    userId: WATCHED,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online', location },
  })
}

/** The frames about WATCHED after the snapshot, up to the `update` a last beat makes. */
async function framesUntilLast(app: StartedApp, ws: NativeClient): Promise<string[]> {
  await beat(app, 'last')
  await ws.waitFor((f) => f.type === 'update' && JSON.stringify(f).includes('"last"'))
  return ws.frames
    .slice(1)
    .map((f: Frame) => `${f.type}${typeof f.reason === 'string' ? `:${f.reason}` : ''}`)
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'
  for (const flapGraceMs of [0, 3000]) {
    test(`${mode}, flap grace ${flapGraceMs} ms: a device beating after its session expired, before the sweep`, async (t) => {
      const { app, clock } = await start(t, fleet, { flapGraceMs })
      const token = await app.tokens.issue(VIEWER, { ttlSeconds: 3600 })
      const ws = await NativeClient.connect(app.url, token)
      t.after(() => ws.socket.terminate())
      ws.send({ type: 'subscribe', ids: [WATCHED] })
      assert.equal((await ws.take()).type, 'snapshot')
      await beat(app, 'here')
      assert.equal((await ws.take()).type, 'online')
      clock.advance(TTL_MS + 1000)
      await beat(app, 'here')
      clock.advance(1000)
      await app.service.sweepExpired()
      assert.deepEqual(
        await framesUntilLast(app, ws),
        flapGraceMs === 0
          ? ['online', 'offline:timeout', 'online', 'update']
          : ['online', 'update'],
      )
    })
  }
}
