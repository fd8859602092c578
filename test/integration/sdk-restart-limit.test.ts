import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  createClient,
  PresenceType,
  type PresenceEvent,
  type WebSocketLike,
} from '@presenced/client'
import WebSocket from 'ws'
import type { PresencedApp } from '../../src/app/build-app.js'
import type { UserId } from '../../src/core/user-id.js'
import { freePort } from '../helpers/redis-cluster.js'
import { startApp } from '../helpers/start-app.js'
import { BrowserLikeWebSocket, settledWithin, WATCHER } from './sdk-kit.js'

// A server restarted with a lower PRESENCED_REALTIME_MAX_IDS refuses a resumed stream of more ids
// than its new limit (TOO_MANY_IDS): the SDK learns the limit and re-splits the stream, so that
// the subscription goes on watching every user. An embedded server keeps no history across a
// restart: every stream, the new ones too, tells its users' state again as a reset.
// (test/fleet/sdk-restart-limit.test.ts: on a fleet the new streams continue from positions.)

const within = (promise: Promise<unknown>, ms = 20_000) => settledWithin(promise, ms)

/** `n` distinct ids from `from` on, as strings. */
const idsFrom = (from: number, n: number) => Array.from({ length: n }, (_, i) => String(from + i))

const beat = (server: PresencedApp, userId: string) =>
  server.service.heartbeat({
    userId: userId as UserId,
    key: 'app',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online' },
  })

// 'browser': a WebSocket that shows no upgrade header (sdk-kit's BrowserLikeWebSocket): the
// limits are learned from the refusals' maxIds alone
for (const variant of ['websocket', 'sse', 'browser'] as const) {
  const transport = variant === 'sse' ? 'sse' : 'websocket'
  test(
    `over ${variant === 'browser' ? "a browser's WebSocket" : transport}, a stream resumed on a server restarted with a lower limit (400 -> 150 ids) is re-split: every user told again as a reset, then every user's events`,
    { timeout: 90_000 },
    async (t) => {
      // the restarted server listens where the first did: where the subscription reconnects
      const port = await freePort()
      const config = { flapGraceMs: 0, realtimeMaxIds: 400 }
      const before = await startApp(t, { listen: true, port, config })
      const client = createClient({
        baseUrl: before.url,
        token: await before.tokens.issue(WATCHER as never),
        WebSocket: (variant === 'browser'
          ? BrowserLikeWebSocket
          : WebSocket) as unknown as WebSocketLike,
      })
      const ids = idsFrom(1000, 350)
      const sub = client.subscribe(ids, {
        transport,
        // a browser sends the token in the URL
        webSocketHeaders: variant !== 'browser',
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      })
      t.after(() => sub.close())
      const errors: unknown[] = []
      sub.on('error', (e) => errors.push(e))
      assert.equal(await within(sub.ready), 'resolved')
      // 350 ids fit a stream: a browser's WebSocket is told no limit (no upgrade header, no refusal)
      assert.equal(sub.maxIds, variant === 'browser' ? 1000 : 400)

      // every user online on the first server: each one's event arrives
      let online = new Set<string>()
      const onlineAll = () =>
        new Promise<void>((resolve) => {
          const off = sub.on('event', (e: PresenceEvent) => {
            if (e.type === 'online') online.add(e.presence.userId)
            if (online.size === ids.length) {
              off()
              resolve()
            }
          })
        })
      let done = onlineAll()
      for (const id of ids) await beat(before, id)
      assert.equal(await within(done), 'resolved', `online: ${online.size} of ${ids.length}`)

      await before.app.close()
      // the restarted server lost every user's history: each one's snapshot says the gap
      const snapshots = new Set<string>()
      const unreset: string[] = []
      sub.on('snapshot', (s) => {
        for (const p of s.presences) snapshots.add(p.userId)
        if (!s.reset) unreset.push(...s.presences.map((p) => p.userId))
      })
      const after = await startApp(t, {
        listen: true,
        port,
        dataDir: before.dataDir,
        config: { ...config, realtimeMaxIds: 150 },
      })
      // the restarted server has no user online: each one's snapshot tells it again
      const deadline = Date.now() + 20_000
      while (snapshots.size < ids.length && Date.now() < deadline && errors.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      assert.deepEqual(errors.map(String), [])
      assert.equal(snapshots.size, ids.length, 'a snapshot of every user from the new server')
      assert.equal(unreset.length, 0, `snapshots not told as a reset: ${unreset.length}`)
      assert.ok([...sub.presences.values()].every((p) => p.type === PresenceType.Offline))
      assert.equal(sub.maxIds, 150)
      assert.deepEqual(new Set(sub.ids), new Set(ids))

      online = new Set()
      done = onlineAll()
      for (const id of ids) await beat(after, id)
      assert.equal(await within(done), 'resolved', `online: ${online.size} of ${ids.length}`)
      assert.deepEqual(errors.map(String), [])
      // before the servers close (their hooks wait for the streams to end)
      sub.close()
    },
  )
}
