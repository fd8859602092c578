import assert from 'node:assert/strict'
import { once } from 'node:events'
import { EventEmitter } from 'node:events'
import { after, test } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  freePort,
  startRedisCluster,
  startRedisServer,
  type LocalRedisCluster,
} from '../../test/helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, uniquePrefix } from '../../test/helpers/redis.js'
import { pauseBefore } from '../../test/helpers/pause-redis.js'
import { startTcpProxy } from '../../test/helpers/tcp-proxy.js'
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

test('a first subscription that times out (Redis stalled at start) is retried until it holds', async (t) => {
  // our own Redis, stopped with SIGSTOP: the machine's Redis is never stopped
  const dir = mkdtempSync(join(tmpdir(), 'presenced-bus-stall-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const redis = await startRedisServer(await freePort(), dir)
  t.after(() => redis.kill())
  const url = `redis://127.0.0.1:${redis.port}`
  const connection = new RedisConnection({ url }, { commandTimeoutMs: 200 })
  assert.ok(await connection.waitReady())
  const channel = `${uniquePrefix('bus')}:bus`
  const errors: unknown[] = []

  redis.process.kill('SIGSTOP')
  let bus: RedisChangeBus
  try {
    bus = new RedisChangeBus(connection, { channel, onError: (error) => errors.push(error) })
    // the SUBSCRIBE times out (200 ms) at least once while Redis is stopped
    const deadline = Date.now() + 10_000
    while (errors.length === 0) {
      assert.ok(Date.now() < deadline, 'no subscription failure seen while Redis was stopped')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  } finally {
    redis.process.kill('SIGCONT')
  }
  t.after(() => bus.close())
  await bus.subscribed
  const heard = new Promise<BusEvent>((resolve) => bus.subscribe(resolve))
  const publisher = new RedisConnection({ url })
  await publisher.waitReady()
  const event: BusEvent = { type: 'settings', userId: '9007199254740993' as UserId }
  await publisher.client.publish(channel, JSON.stringify({ n: 'another node', e: event }))
  assert.deepEqual(await heard, event)
  publisher.client.disconnect()
})

test('a resubscription that times out after a reconnect is no unhandled rejection, and is retried until it holds', async (t) => {
  // ioredis resubscribed by itself on reconnect and left that SUBSCRIBE's promise to nobody: on
  // a Redis slow to answer (a loaded machine, one just restarted) its command timeout rejected
  // it unhandled, which ends a Node 20 process
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => void unhandled.push(reason)
  process.on('unhandledRejection', onUnhandled)
  t.after(() => process.off('unhandledRejection', onUnhandled))
  const dir = mkdtempSync(join(tmpdir(), 'presenced-bus-resubscribe-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const redis = await startRedisServer(await freePort(), dir)
  t.after(() => redis.kill())
  // the bus reaches Redis through a proxy that can hold a SUBSCRIBE unanswered
  const proxy = await startTcpProxy(t, redis.port)
  const connection = new RedisConnection(
    { url: `redis://127.0.0.1:${proxy.port}` },
    { commandTimeoutMs: 200 },
  )
  assert.ok(await connection.waitReady())
  const channel = `${uniquePrefix('bus')}:bus`
  const errors: unknown[] = []
  const bus = new RedisChangeBus(connection, { channel, onError: (error) => errors.push(error) })
  t.after(() => bus.close())
  await bus.subscribed
  const resubscribed = new Promise<void>((resolve) => bus.onResubscribed(resolve))

  // the connections drop and come back; the SUBSCRIBE sent again then gets no answer
  proxy.cut()
  const stalled = proxy.stallWhen((chunk) => /subscribe/i.test(chunk.toString('latin1')))
  await stalled
  const deadline = Date.now() + 10_000
  while (errors.length === 0 && unhandled.length === 0) {
    assert.ok(Date.now() < deadline, 'the held SUBSCRIBE never timed out')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  // let a rejection with no handler be reported (after the turn it happened in)
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.deepEqual(unhandled, [], 'a rejection no one handled')
  assert.match(String(errors[0]), /timed out/i, 'the bus says the subscription failed')

  // the held connection is dropped again: the bus subscribes once it is back, and hears
  proxy.cut()
  await resubscribed
  const heard = new Promise<BusEvent>((resolve) => bus.subscribe(resolve))
  const publisher = new RedisConnection({ url: `redis://127.0.0.1:${redis.port}` })
  t.after(() => publisher.release())
  publisher.retain()
  await publisher.waitReady()
  const event: BusEvent = { type: 'settings', userId: '9007199254740993' as UserId }
  await publisher.client.publish(channel, JSON.stringify({ n: 'another node', e: event }))
  assert.deepEqual(await heard, event)
})

test("events published as a batch get the batch's deadline, not one command's (an import's 10,000)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-bus-batch-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const redis = await startRedisServer(await freePort(), dir)
  t.after(() => redis.kill())
  const url = `redis://127.0.0.1:${redis.port}`
  const connection = new RedisConnection({ url }, { commandTimeoutMs: 100 })
  assert.ok(await connection.waitReady())
  const channel = `${uniquePrefix('bus')}:bus`
  const errors: unknown[] = []
  const bus = new RedisChangeBus(connection, { channel, onError: (error) => errors.push(error) })
  t.after(() => bus.close())
  await bus.subscribed
  const listener = new RedisChangeBus(new RedisConnection({ url }), { channel })
  t.after(() => listener.close())
  await listener.subscribed
  const events: BusEvent[] = Array.from({ length: 3 }, (_, i) => ({
    type: 'settings',
    userId: String(7_000_000_000 + i) as UserId,
  }))
  const heard: BusEvent[] = []
  const all = new Promise<void>((resolve) =>
    listener.subscribe((event) => {
      heard.push(event)
      if (heard.length === events.length) resolve()
    }),
  )
  // Redis takes longer over them than a command's timeout (100 ms), less than the deadline of a
  // batch of 10,000 (100 + 2,000 ms)
  const paused = pauseBefore(t, redis.port, (name) => name === 'publish', 300)
  await Promise.all(events.map((event) => bus.publish(event, 10_000)))
  assert.ok(paused.at !== undefined, 'the pause was sent before the first publish')
  assert.deepEqual(errors.map(String), [], 'no publish failed')
  await all
  assert.deepEqual(heard, events, 'every event, in order')
})
