import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { prometheusSamples } from '../helpers/prometheus.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { NativeClient } from './native-client.js'

/*
 * Issue 17: /metrics shows what the real-time surfaces hold open (WebSocket and SSE
 * connections, streams, watches, dashboard feed streams) and what crosses the change bus.
 */

const METRICS_KEY = 'metrics-key-of-the-realtime-test'

/** The samples of one scrape, `name{labels}` → value. */
async function scrape(app: StartedApp): Promise<Map<string, number>> {
  const response = await fetch(`${app.url}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_KEY}` },
  })
  assert.equal(response.status, 200)
  return prometheusSamples(await response.text())
}

/** Scrapes until `check` passes (connections close asynchronously), or fails with the last. */
async function eventually(
  app: StartedApp,
  check: (samples: Map<string, number>) => void,
): Promise<Map<string, number>> {
  const deadline = Date.now() + 5000
  for (;;) {
    const samples = await scrape(app)
    try {
      check(samples)
      return samples
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }
}

const online = (app: StartedApp, userId: string) =>
  app.service.heartbeat({
    userId: userId as UserId,
    key: 'app',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online' },
  })

test('metrics: real-time connections, streams, watches and feed streams, opened and closed', async (t) => {
  const app = await startApp(t, { listen: true, config: { metricsKey: METRICS_KEY } })
  const idle = await scrape(app)
  for (const name of [
    'presenced_realtime_connections{transport="websocket"}',
    'presenced_realtime_connections{transport="sse"}',
    'presenced_realtime_streams{state="attached"}',
    'presenced_realtime_streams{state="detached"}',
    'presenced_realtime_subscriptions',
    'presenced_realtime_watched_users',
    'presenced_dashboard_feed_streams{view="public"}',
    'presenced_dashboard_feed_streams{view="admin"}',
  ]) {
    assert.equal(idle.get(name), 0, name)
  }
  assert.equal(idle.get('presenced_bus_nodes'), 1)

  // two WebSocket viewers watching 3 and 2 users (users 11 and 12 watched by both), one SSE
  // viewer watching 2, a public and an admin dashboard feed
  const [a, b] = await Promise.all([
    NativeClient.connect(app.url, await app.tokens.issue('501' as UserId)),
    NativeClient.connect(app.url, await app.tokens.issue('502' as UserId)),
  ])
  a.send({ type: 'subscribe', ids: ['11', '12', '13'] })
  b.send({ type: 'subscribe', ids: ['11', '12'] })
  await a.waitFor((frame) => frame.type === 'snapshot')
  await b.waitFor((frame) => frame.type === 'snapshot')
  const sseAbort = new AbortController()
  const sse = await fetch(
    `${app.url}/api/v1/realtime/sse?ids=13,14&access_token=${await app.tokens.issue('503' as UserId)}`,
    { signal: sseAbort.signal },
  )
  assert.equal(sse.status, 200)
  const feedAbort = new AbortController()
  const feeds = await Promise.all([
    fetch(`${app.url}/api/v1/stats/feed`, { signal: feedAbort.signal }),
    fetch(`${app.url}/admin/v1/stats/feed`, {
      headers: { 'x-api-key': ADMIN_KEY },
      signal: feedAbort.signal,
    }),
  ])
  assert.deepEqual(
    feeds.map((r) => r.status),
    [200, 200],
  )

  await eventually(app, (open) => {
    assert.equal(open.get('presenced_realtime_connections{transport="websocket"}'), 2)
    assert.equal(open.get('presenced_realtime_connections{transport="sse"}'), 1)
    assert.equal(open.get('presenced_realtime_streams{state="attached"}'), 3)
    assert.equal(open.get('presenced_realtime_subscriptions'), 7)
    assert.equal(open.get('presenced_realtime_watched_users'), 4)
    assert.equal(open.get('presenced_dashboard_feed_streams{view="public"}'), 1)
    assert.equal(open.get('presenced_dashboard_feed_streams{view="admin"}'), 1)
  })

  // every connection goes; the WebSocket streams stay resumable for a while (detached)
  await Promise.all([a.close(), b.close()])
  sseAbort.abort()
  feedAbort.abort()
  await eventually(app, (closed) => {
    assert.equal(closed.get('presenced_realtime_connections{transport="websocket"}'), 0)
    assert.equal(closed.get('presenced_realtime_connections{transport="sse"}'), 0)
    assert.equal(closed.get('presenced_realtime_streams{state="attached"}'), 0)
    // each stream has sent its snapshot, so each is kept for a resume
    assert.equal(closed.get('presenced_realtime_streams{state="detached"}'), 3)
    assert.equal(closed.get('presenced_realtime_subscriptions'), 7)
    assert.equal(closed.get('presenced_dashboard_feed_streams{view="public"}'), 0)
    assert.equal(closed.get('presenced_dashboard_feed_streams{view="admin"}'), 0)
  })
})

test('metrics: change bus events published and received by type; bus nodes in a fleet', async (t) => {
  const prefix = uniquePrefix('metrics-bus')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  const config = { metricsKey: METRICS_KEY, redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix }
  const nodeA = await startApp(t, { listen: true, config })
  const nodeB = await startApp(t, { listen: true, config })
  const published = 'presenced_bus_events_published_total{type="presence"}'
  const received = 'presenced_bus_events_received_total{type="presence"}'
  const before = { a: await scrape(nodeA), b: await scrape(nodeB) }

  await online(nodeA, '7001')
  await online(nodeA, '7002')
  await nodeA.service.setFriends('7001' as UserId, '7002' as UserId, true)

  const after = await eventually(nodeB, (b) => {
    // node B heard both presence changes and the relation, and published none of them
    assert.equal((b.get(received) ?? 0) - (before.b.get(received) ?? 0), 2)
    assert.equal(
      (b.get('presenced_bus_events_received_total{type="relation"}') ?? 0) -
        (before.b.get('presenced_bus_events_received_total{type="relation"}') ?? 0),
      1,
    )
    assert.equal(b.get(published) ?? 0, before.b.get(published) ?? 0)
    assert.equal(b.get('presenced_bus_nodes'), 2)
  })
  assert.ok(after)
  const a = await scrape(nodeA)
  assert.equal((a.get(published) ?? 0) - (before.a.get(published) ?? 0), 2)
  assert.equal((a.get(received) ?? 0) - (before.a.get(received) ?? 0), 2)
  assert.equal(
    (a.get('presenced_bus_events_published_total{type="relation"}') ?? 0) -
      (before.a.get('presenced_bus_events_published_total{type="relation"}') ?? 0),
    1,
  )
})
