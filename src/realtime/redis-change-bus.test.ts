import assert from 'node:assert/strict'
import { once } from 'node:events'
import { EventEmitter } from 'node:events'
import { after, test } from 'node:test'
import { startRedisCluster, type LocalRedisCluster } from '../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, uniquePrefix } from '../../test/helpers/redis.js'
import type { UserId } from '../core/user-id.js'
import { RedisConnection, type RedisTarget } from '../store/redis/redis-connection.js'
import type { BusEvent } from './change-bus.js'
import { RedisChangeBus } from './redis-change-bus.js'

let cluster: LocalRedisCluster | undefined
after(async () => cluster?.stop())

async function threeNodes(target: RedisTarget) {
  const channel = `${uniquePrefix('bus')}:bus`
  const buses = await Promise.all(
    [0, 1, 2].map(async () => {
      const connection = new RedisConnection(target)
      await connection.waitReady()
      const bus = new RedisChangeBus(connection, { channel })
      await bus.subscribed
      return bus
    }),
  )
  const received = buses.map(() => [] as BusEvent[])
  const signal = new EventEmitter()
  buses.forEach((bus, i) =>
    bus.subscribe((event) => {
      received[i]!.push(event)
      signal.emit('event')
    }),
  )
  return { buses, received, signal }
}

async function everyNodeHearsEachEventOnce(target: RedisTarget) {
  const { buses, received, signal } = await threeNodes(target)
  try {
    // each node's subscriber counts once, wherever on a cluster it connected
    for (const bus of buses) assert.equal(await bus.nodes(), 3)
    const events: BusEvent[] = [
      { type: 'settings', userId: '9007199254740993' as UserId },
      { type: 'relation', users: ['1' as UserId, '2' as UserId] },
    ]
    await buses[0]!.publish(events[0]!)
    // the publisher's own handlers ran synchronously, before any echo
    assert.deepEqual(received[0], [events[0]])
    await buses[2]!.publish(events[1]!)
    while (received.some((r) => r.length < 2)) await once(signal, 'event')
    // events of different publishers may arrive in either order (on a cluster, they enter at
    // different nodes); each arrives once
    const sorted = (list: BusEvent[]) => list.map((e) => JSON.stringify(e)).sort()
    for (const r of received) assert.deepEqual(sorted(r), sorted(events))
    // an echo arriving late would show up as a third event: publish a marker and wait for it
    await buses[1]!.publish({ type: 'settings', userId: '3' as UserId })
    while (received.some((r) => r.length < 3)) await once(signal, 'event')
    for (const r of received) assert.equal(r.length, 3)
  } finally {
    await Promise.all(buses.map((b) => b.close()))
  }
}

test('three nodes on one Redis: each hears every event exactly once', () =>
  everyNodeHearsEachEventOnce({ url: LOCAL_REDIS_URL }))

test('three nodes on a Redis Cluster: each hears every event exactly once', async () => {
  cluster = await startRedisCluster({ masters: 3 })
  await everyNodeHearsEachEventOnce({ cluster: cluster.nodes })
})
