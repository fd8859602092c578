import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, type PresenceEvent, type WebSocketLike } from '@presenced/client'
import WebSocket from 'ws'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { deleteKeys, LOCAL_REDIS_URL, uniquePrefix } from '../helpers/redis.js'
import { freePort } from '../helpers/redis-cluster.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { until } from '../helpers/until.js'

// A node restarted with a lower PRESENCED_REALTIME_MAX_IDS cannot take back a stream of more ids
// than its new limit (SSE: 400 TOO_MANY_IDS; WebSocket: the upgrade says the limit). The SDK
// re-splits the stream, and the ids it moves to new streams keep their positions: those streams
// continue from them, so the changes made while the node was down arrive for every user, once.

const WATCHER = '500'
const IDS = Array.from({ length: 350 }, (_, i) => String(1000 + i))

const beat = (node: StartedApp, userId: string) =>
  node.service.heartbeat({
    userId: userId as UserId,
    key: 'app',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online' },
  })

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `SDK (${transport}): a stream resumed on a node restarted with a lower limit (400 -> 150 ids) is re-split, each user's missed change told once`,
    { timeout: 90_000 },
    async (t) => {
      // the restarted server listens where the first did: where the subscription reconnects
      const port = await freePort()
      const prefix = uniquePrefix('sdk-restart-limit')
      t.after(async () =>
        t.diagnostic(`deleted ${await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)} keys`),
      )
      const fleet: Partial<Config> = {
        redisUrl: LOCAL_REDIS_URL,
        redisPrefix: prefix,
        flapGraceMs: 0,
        redisTimeoutMs: 5000,
      }
      // the subscriber's node, restarted on its port
      const before = await startApp(t, {
        listen: true,
        port,
        config: { ...fleet, realtimeMaxIds: 400 },
      })
      // the node the users write through while the first is down
      const other = await startApp(t, { listen: true, config: fleet })
      const client = createClient({
        baseUrl: before.url,
        token: await before.tokens.issue(WATCHER as UserId),
        WebSocket: WebSocket as unknown as WebSocketLike,
      })
      const sub = client.subscribe(IDS, {
        transport,
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      })
      t.after(() => sub.close())
      const errors: unknown[] = []
      sub.on('error', (e) => errors.push(e))
      await sub.ready
      assert.equal(sub.maxIds, 400)

      await before.app.close()
      const online = new Map<string, number>()
      const snapshots: string[] = []
      sub.on('event', (e: PresenceEvent) => {
        if (e.type === 'online')
          online.set(e.presence.userId, (online.get(e.presence.userId) ?? 0) + 1)
        if (e.type === 'snapshot')
          snapshots.push(...e.presences.map((p) => `${p.userId}${e.reset ? ' reset' : ''}`))
      })
      // every user comes online while the subscriber's node is down
      for (const id of IDS) await beat(other, id)
      await startApp(t, {
        listen: true,
        port,
        dataDir: before.dataDir,
        config: { ...fleet, realtimeMaxIds: 150 },
      })
      await until(() => online.size === IDS.length || errors.length > 0, 20_000, 'online').catch(
        () => {},
      )
      assert.deepEqual(errors.map(String), [])
      const missed = IDS.filter((id) => !online.has(id))
      assert.deepEqual(
        missed.length === 0 ? [] : [`${missed.length} users' online missed, ${missed[0]} first`],
        [],
        `snapshots after the restart: ${snapshots.length} (${snapshots.slice(0, 3).join(', ')}…)`,
      )
      assert.deepEqual(
        [...online].filter(([, n]) => n !== 1),
        [],
        'each once',
      )
      assert.equal(sub.maxIds, 150)
      assert.deepEqual(new Set(sub.ids), new Set(IDS))
      assert.equal(sub.presences.size, IDS.length)

      // and live from here: a change of the last user (in the last stream)
      const last = IDS.at(-1)!
      const offline = new Promise<void>((resolve) =>
        sub.on('offline', (e) => {
          if (e.presence.userId === last) resolve()
        }),
      )
      await other.service.endSession(last as UserId, 'app')
      await offline
      // before the servers close (their hooks wait for the streams to end)
      sub.close()
    },
  )
}
