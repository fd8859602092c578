import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, type PresenceEvent, type WebSocketLike } from '@presenced/client'
import type { UserId } from '../../src/core/user-id.js'
import { startApp } from '../helpers/start-app.js'
import { BrowserLikeWebSocket, settledWithin, WATCHER } from './sdk-kit.js'

// A browser's WebSocket cannot read the upgrade's x-presenced-max-ids: against a server whose
// PRESENCED_REALTIME_MAX_IDS is below 1000, the SDK's first subscribe of a stream is refused
// TOO_MANY_IDS. The refusal says the limit in band ("maxIds"), and the SDK re-splits its ids
// over streams of that size, as it does for the SSE refusal's header: the subscription works.

const idsFrom = (from: number, n: number) => Array.from({ length: n }, (_, i) => String(from + i))

for (const count of [800, 1500]) {
  test(
    `a browser's WebSocket (no upgrade headers), a server limit of 300, ${count} ids: every id gets its snapshot, and its events`,
    { timeout: 60_000 },
    async (t) => {
      const server = await startApp(t, {
        listen: true,
        config: { flapGraceMs: 0, realtimeMaxIds: 300 },
      })
      const client = createClient({
        baseUrl: server.url,
        token: await server.tokens.issue(WATCHER as never),
        WebSocket: BrowserLikeWebSocket as unknown as WebSocketLike,
      })
      const ids = idsFrom(1000, count)
      const openedBefore = BrowserLikeWebSocket.opened
      const sub = client.subscribe(ids, {
        transport: 'websocket',
        // a browser sends the token in the URL
        webSocketHeaders: false,
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      })
      t.after(() => sub.close())
      const errors: unknown[] = []
      sub.on('error', (e) => errors.push(e))
      const told = new Set<string>()
      sub.on('snapshot', (e) => e.presences.forEach((p) => told.add(p.userId)))
      const ready = await settledWithin(sub.ready, 20_000)
      assert.equal(ready, 'resolved', `ready: ${String(errors[0] ?? ready)}`)
      assert.deepEqual(errors, [])
      assert.equal(sub.maxIds, 300, 'the limit learned from the refusal')
      assert.equal(told.size, count, 'every id got its snapshot')
      assert.equal(sub.presences.size, count)
      assert.deepEqual(new Set(sub.ids), new Set(ids))
      t.diagnostic(`connections opened: ${BrowserLikeWebSocket.opened - openedBefore}`)

      // every user online: each one's event arrives, once, on whichever stream watches it
      const online = new Map<string, number>()
      const all = new Promise<void>((resolve) => {
        const off = sub.on('event', (e: PresenceEvent) => {
          if (e.type !== 'online') return
          online.set(e.presence.userId, (online.get(e.presence.userId) ?? 0) + 1)
          if (online.size === count) {
            off()
            resolve()
          }
        })
      })
      for (const id of ids) {
        await server.service.heartbeat({
          userId: id as UserId,
          key: 'app',
          source: 'app',
          deviceType: 'PC',
          activity: { kind: 'online' },
        })
      }
      assert.equal(await settledWithin(all, 20_000), 'resolved', `online: ${online.size}`)
      assert.ok(
        [...online.values()].every((n) => n === 1),
        'each told once',
      )
    },
  )
}
