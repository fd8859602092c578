import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { startRedisCluster, type RedisServerProcess } from '../../test/helpers/redis-cluster.js'
import { uniquePrefix } from '../../test/helpers/redis.js'
import type { UserId } from '../core/user-id.js'
import { RedisConnection } from '../store/redis/redis-connection.js'
import type { BusEvent } from './change-bus.js'
import { RedisChangeBus } from './redis-change-bus.js'

/** The ports of the cluster nodes where a client subscribes to `channel` (PUBSUB is per node). */
async function subscribedOn(ports: number[], channel: string): Promise<number[]> {
  const found: number[] = []
  for (const port of ports) {
    const client = new Redis(port, '127.0.0.1', {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    })
    client.on('error', () => {})
    try {
      const reply = (await client.pubsub('NUMSUB', channel)) as unknown[]
      if (Number(reply[1]) > 0) found.push(port)
    } catch {
      // a node down
    } finally {
      client.disconnect()
    }
  }
  return found
}

/**
 * A bus listening on a 3-master cluster (a replica each unless `replicas` says 0), another node's bus publishing, and
 * `fail` done to the node the listener's subscriber connection is on: the listener must hear
 * the other node again, and tell its watchers to catch up on what it missed meanwhile.
 */
async function hearsAgainAfter(
  t: TestContext,
  fail: (victim: RedisServerProcess) => Promise<void>,
  replicas = 1,
): Promise<void> {
  const cluster = await startRedisCluster({ masters: 3, replicas })
  t.after(() => cluster.stop())
  const channel = `${uniquePrefix('bus')}:bus`
  const listener = new RedisConnection({ cluster: cluster.nodes })
  assert.ok(await listener.waitReady())
  const errors: unknown[] = []
  const bus = new RedisChangeBus(listener, {
    channel,
    onError: (error) => errors.push(error),
    checkMs: 1000,
  })
  t.after(() => bus.close())
  await bus.subscribed
  let resubscribed = 0
  bus.onResubscribed(() => resubscribed++)
  // another node publishing (a client, not a bus: the listener's is the only subscriber)
  const other = new RedisConnection({ cluster: cluster.nodes })
  t.after(() => other.release())
  other.retain()
  assert.ok(await other.waitReady())
  const publish = (event: BusEvent) =>
    other.client.publish(channel, JSON.stringify({ n: 'another node', e: event })).catch(() => 0)

  const [port, ...more] = await subscribedOn(
    cluster.servers.map((s) => s.port),
    channel,
  )
  assert.ok(port !== undefined && more.length === 0, 'one subscriber connection, on one node')
  await fail(cluster.servers.find((s) => s.port === port)!)

  const heard: BusEvent[] = []
  bus.subscribe((event) => heard.push(event))
  // generous: a failover takes ~2 s (node timeout 1 s), a loaded machine more
  const deadline = Date.now() + 30_000
  let published = 0
  while (heard.length === 0 && Date.now() < deadline) {
    await publish({ type: 'settings', userId: String(++published) as UserId })
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.diagnostic(
    `heard after ${published} publishes (200 ms apart); catch-ups ${resubscribed}; errors ${errors.length}`,
  )
  assert.ok(heard.length > 0, 'the bus never heard the other node again')
  assert.ok(resubscribed > 0, 'the watchers were never told to catch up on the gap')
}

test('on a Redis Cluster, the node the subscriber is on killed: the bus hears again, and its watchers catch up', (t) =>
  hearsAgainAfter(t, (victim) => victim.kill()))

test('on a Redis Cluster, the node the subscriber is on hangs (SIGSTOP) and fails over: the bus hears again, and its watchers catch up', (t) =>
  hearsAgainAfter(t, async (victim) => {
    victim.process.kill('SIGSTOP')
    t.after(() => victim.process.kill('SIGCONT'))
  }))

test('on a Redis Cluster without replicas, the node the subscriber is on restarted: the bus hears again, and its watchers catch up', (t) =>
  hearsAgainAfter(
    t,
    async (victim) => {
      await victim.kill()
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const back = await victim.restart()
      t.after(() => back.kill())
    },
    0,
  ))
