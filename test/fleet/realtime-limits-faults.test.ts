import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import { prometheusSamples } from '../helpers/prometheus.js'
import { deleteKeys, LOCAL_REDIS_URL, uniquePrefix } from '../helpers/redis.js'
import { clusterForThisFile, privateRedis } from '../helpers/redis-cluster.js'
import { startApp } from '../helpers/start-app.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import { FLEET_TOKEN_SECRET, startFleetNode } from './fleet-node.js'
import {
  connect,
  connectWhenFree,
  connectionsAcrossNodes,
  refused,
  until,
} from './realtime-limits-kit.js'

/*
 * The fleet-wide real-time limits under faults: a node's share of a user's count lapses with its
 * lease, so a killed node's connections stop counting by themselves; Redis lost and back; and
 * the same count on a Redis Cluster.
 */

const clusterTarget = clusterForThisFile()

test('fleet: a node that dies stops counting once its lease lapses', async (t) => {
  const prefix = uniquePrefix('rt-crash')
  t.after(async () => {
    t.diagnostic(`deleted ${await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)} keys`)
  })
  const leaseMs = 3000
  const limits = { PRESENCED_REALTIME_STREAMS_PER_USER: '2' }
  // a real process, killed by its PID: no close, no cleanup of its share
  const doomed = await startFleetNode({
    PRESENCED_REDIS_URL: LOCAL_REDIS_URL,
    PRESENCED_REDIS_PREFIX: prefix,
    PRESENCED_REALTIME_LEASE: String(leaseMs),
    ...limits,
  })
  t.after(() => doomed.kill('SIGKILL'))
  const survivor = await startApp(t, {
    listen: true,
    config: {
      redisUrl: LOCAL_REDIS_URL,
      redisPrefix: prefix,
      tokenSecret: FLEET_TOKEN_SECRET,
      realtimeStreamsPerUser: 2,
      realtimeLeaseMs: leaseMs,
    } satisfies Partial<Config>,
  })
  const token = await survivor.tokens.issue('9223372036854775804' as UserId)
  await connect(t, doomed, token)
  await connect(t, doomed, token)
  assert.equal((await refused(survivor, token)).status, 429)
  // a live node renews its share: still counted well past one lease
  await new Promise((resolve) => setTimeout(resolve, leaseMs * 1.5))
  assert.equal((await refused(survivor, token)).status, 429, 'renewed past the lease')

  // its connections outlive the process for the client until it notices; not for the count
  assert.equal(await doomed.kill('SIGKILL'), 'SIGKILL')
  const killed = performance.now()
  assert.equal((await refused(survivor, token)).status, 429, 'counted within the lease')
  await connectWhenFree(t, survivor, token)
  const afterKill = performance.now() - killed
  t.diagnostic(
    `the dead node's connections stopped counting ${afterKill.toFixed(0)} ms after its kill`,
  )
  // the lease is renewed every third of it: it lapses within a lease of the kill, plus a poll
  assert.ok(afterKill < leaseMs + 1500, `${afterKill.toFixed(0)} ms`)
  await connect(t, survivor, token)
  assert.equal((await refused(survivor, token)).status, 429)
})

test('fleet: Redis lost and back: open streams live on, a new connection gets the outage’s 503, and the count comes back', async (t) => {
  // our own Redis, stopped and started again empty: the machine's Redis is never stopped
  const redis = await privateRedis(t, 'rt-outage')
  const leaseMs = 3000
  const { a, b, prefix } = await startNodePair(t, 'rt-outage', {
    redisUrl: redis.url,
    realtimeStreamsPerUser: 2,
    realtimeLeaseMs: leaseMs,
  })
  const user = '9223372036854775805' as UserId
  const token = await a.tokens.issue(user)
  const held = [await connect(t, a, token), await connect(t, a, token)]
  assert.equal((await refused(b, token)).status, 429)

  await redis.stop()
  // a new connection fails as every request does while Redis is away (503), not a 429
  const during = await refused(b, token)
  t.diagnostic(`a connection while Redis is down: ${during.status}`)
  assert.equal(during.status, 503)
  for (const client of held) {
    client.send({ type: 'subscribe', ids: ['1'] })
    assert.equal(((await client.take()) as { code?: string }).code, 'UNAVAILABLE')
  }

  // back, with nothing in it: A sets its share again within a third of its lease (watched in
  // Redis: a connection attempt would itself take a place while the count is missing)
  await redis.start()
  const reader = new Redis(redis.url)
  t.after(() => reader.disconnect())
  const key = new RedisKeys(prefix).streamHoldings(user)
  const { ms } = await until(
    async () => ((await reader.hlen(key)) > 0 ? true : undefined),
    leaseMs + 5000,
    'the count restored',
  )
  t.diagnostic(`A's share was back ${ms.toFixed(0)} ms after Redis restarted`)
  assert.equal((await refused(b, token)).status, 429)
  for (const client of held) {
    client.send({ type: 'subscribe', ids: ['1'] })
    assert.equal((await client.take()).type, 'snapshot')
  }
  await held[0]!.close()
  await connectWhenFree(t, b, token)
})

test('fleet: with Redis down, each failed update of the fleet-wide count is counted in /metrics', async (t) => {
  // our own Redis, stopped and started again: the machine's Redis is never stopped
  const redis = await privateRedis(t, 'rt-count-errors')
  const metricsKey = 'metrics-key-of-the-count-errors-test'
  const leaseMs = 1500
  const { a, b } = await startNodePair(t, 'rt-count-errors', {
    redisUrl: redis.url,
    realtimeStreamsPerUser: 2,
    realtimeLeaseMs: leaseMs,
    metricsKey,
  })
  const UPDATE = 'presenced_realtime_fleet_count_errors_total{operation="update"}'
  const scrape = async () => {
    const response = await fetch(`${a.url}/metrics`, {
      headers: { authorization: `Bearer ${metricsKey}` },
    })
    // the node's own counters are served while Redis is away too (the store's gauges left out)
    assert.equal(response.status, 200)
    return prometheusSamples(await response.text())
  }
  const token = await a.tokens.issue('9223372036854775803' as UserId)
  const held = [await connect(t, a, token), await connect(t, a, token)]
  assert.equal((await refused(b, token)).status, 429, 'counted across the nodes')
  assert.equal((await scrape()).get(UPDATE) ?? 0, 0, 'nothing failed while Redis answered')

  await redis.stop()
  // a change of A's share (a connection closed), then its renewals every third of the lease
  await held[0]!.close()
  const { value: failed, ms } = await until(
    async () => {
      const count = (await scrape()).get(UPDATE) ?? 0
      return count >= 2 ? count : undefined
    },
    leaseMs * 3,
    'failed updates counted',
  )
  t.diagnostic(`${failed} failed updates of A's share scraped within ${ms.toFixed(0)} ms`)
  assert.equal(
    (await scrape()).get('presenced_realtime_fleet_count_errors_total{operation="claim"}'),
    undefined,
    'no connection or subscribe was attempted meanwhile',
  )

  await redis.start()
  const { value: samples } = await until(
    async () => {
      const back = await scrape()
      return back.get('presenced_store_reachable') === 1 ? back : undefined
    },
    5000,
    'the store read again once Redis is back',
  )
  assert.ok(samples.get(UPDATE)! >= failed, `${UPDATE} ${samples.get(UPDATE)}`)
})

test('fleet on a Redis Cluster: connections are capped across the nodes', async (t) => {
  const target = await clusterTarget()
  const prefix = uniquePrefix('rt-cluster')
  t.after(async () => {
    t.diagnostic(`deleted ${await deleteKeys(target, prefix)} keys`)
  })
  assert.ok('cluster' in target)
  const config: Partial<Config> = {
    redisCluster: [...target.cluster],
    redisPrefix: prefix,
    flapGraceMs: 0,
    realtimeStreamsPerUser: 2,
  }
  const a = await startApp(t, { listen: true, config })
  const b = await startApp(t, { listen: true, config })
  await connectionsAcrossNodes(t, a, b)
})
