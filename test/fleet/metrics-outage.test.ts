import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { prometheusSamples } from '../helpers/prometheus.js'
import { privateRedis } from '../helpers/redis-cluster.js'
import { startApp } from '../helpers/start-app.js'
import { until } from './realtime-limits-kit.js'

/*
 * /metrics is what an operator reads during an outage: it answers 200 with the node's own series
 * while Redis is away or hangs, leaves out the gauges it reads from the store, and says so.
 */

const METRICS_KEY = 'metrics-key-of-the-outage-test'
const HEARTBEATS = 'presenced_heartbeats_total{source="app"}'
const REACHABLE = 'presenced_store_reachable'
const STORE_GAUGES = [
  'presenced_live_sessions',
  'presenced_live_users',
  'presenced_bus_nodes',
  'presenced_webhook_queued_events',
  'presenced_webhook_parked_events',
]

test('fleet: /metrics answers 200 while Redis is down or hangs, and the store gauges come back', async (t) => {
  // our own Redis, durable with AOF so the session outlives the restart: the machine's is never stopped
  const aof = ['--appendonly', 'yes', '--appendfsync', 'always']
  const redis = await privateRedis(t, 'metrics-outage', aof)
  const node = await startApp(t, {
    config: { redisUrl: redis.url, redisPrefix: 'metrics-outage:', metricsKey: METRICS_KEY },
  })
  const scrape = async () => {
    const started = performance.now()
    const response = await node.app.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${METRICS_KEY}` },
    })
    return {
      status: response.statusCode,
      ms: performance.now() - started,
      samples: prometheusSamples(response.body),
    }
  }
  const token = await node.tokens.issue('9223372036854775801' as UserId)
  const heartbeat = await node.app.inject({
    method: 'POST',
    url: '/v1/presence/register-app-presence',
    headers: { authorization: `Bearer ${token}` },
    payload: { location: 'Game', placeId: 1818, disconnect: false },
  })
  assert.equal(heartbeat.statusCode, 200)

  const before = await scrape()
  assert.equal(before.status, 200)
  assert.equal(before.samples.get(REACHABLE), 1)
  assert.equal(before.samples.get('presenced_live_sessions'), 1)
  assert.equal(before.samples.get(HEARTBEATS), 1)

  await redis.stop()
  const down = await scrape()
  t.diagnostic(`${down.status} in ${down.ms.toFixed(0)} ms while Redis is down`)
  assert.equal(down.status, 200)
  assert.ok(down.ms < 3000, `answered in ${down.ms} ms, must be under 3 s`)
  assert.equal(down.samples.get(REACHABLE), 0)
  for (const name of STORE_GAUGES) assert.equal(down.samples.get(name), undefined, name)
  // the node's own series: its counters, its real-time gauges, the process
  assert.equal(down.samples.get(HEARTBEATS), 1)
  assert.equal(down.samples.get('presenced_realtime_subscriptions'), 0)
  assert.ok(down.samples.has('process_cpu_user_seconds_total'))

  await redis.start()
  const { value: back, ms } = await until(
    async () => {
      const again = await scrape()
      return again.samples.get(REACHABLE) === 1 ? again : undefined
    },
    10_000,
    'the store gauges back',
  )
  t.diagnostic(`store gauges back ${ms.toFixed(0)} ms after Redis restarted`)
  assert.equal(back.status, 200)
  for (const name of STORE_GAUGES) assert.ok(back.samples.has(name), name)
  assert.equal(back.samples.get('presenced_live_sessions'), 1)

  // a Redis that hangs instead of closing (SIGSTOP): the scrape waits a bounded time, no more
  redis.process().kill('SIGSTOP')
  try {
    const hung = await scrape()
    t.diagnostic(`${hung.status} in ${hung.ms.toFixed(0)} ms while Redis hangs`)
    assert.equal(hung.status, 200)
    assert.ok(hung.ms < 3000, `answered in ${hung.ms} ms, must be under 3 s`)
    assert.equal(hung.samples.get(REACHABLE), 0)
    assert.equal(hung.samples.get('presenced_live_sessions'), undefined)
    assert.equal(hung.samples.get(HEARTBEATS), 1)
  } finally {
    redis.process().kill('SIGCONT')
  }
})
