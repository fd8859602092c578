import assert from 'node:assert/strict'
import { EventEmitter, once } from 'node:events'
import { after, before, test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import type { BusEvent } from '../../src/realtime/change-bus.js'
import { RedisChangeBus } from '../../src/realtime/redis-change-bus.js'
import { Tokens } from '../../src/service/tokens.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import { RedisConnection } from '../../src/store/redis/redis-connection.js'
import { RedisPresenceStore } from '../../src/store/redis/redis-presence-store.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import {
  FLEET_TOKEN_SECRET,
  post,
  presenceOf,
  startFleetNode,
  type FleetNode,
} from './fleet-node.js'

/**
 * Three presenced processes on the machine's Redis, under a prefix of their own. Sessions live
 * 2 s and nodes sweep every 100 ms, so expiry happens within the test's time.
 */
const TTL_MS = 2_000
const SWEEP_MS = 100
const prefix = uniquePrefix('fleet')
const tokens = new Tokens(FLEET_TOKEN_SECRET)
let nodes: FleetNode[] = []
let observer: { bus: RedisChangeBus; store: RedisPresenceStore; connection: RedisConnection }

before(async () => {
  const env = {
    PRESENCED_REDIS_URL: LOCAL_REDIS_URL,
    PRESENCED_REDIS_PREFIX: prefix,
    PRESENCED_SESSION_TTL: String(TTL_MS / 1000),
    PRESENCED_SWEEP_INTERVAL: String(SWEEP_MS),
  }
  nodes = await Promise.all([0, 1, 2].map(() => startFleetNode(env)))
  // a fourth "node" in the test process: it watches the bus and reads the store directly
  const connection = new RedisConnection({ url: LOCAL_REDIS_URL })
  await connection.waitReady()
  const keys = new RedisKeys(prefix)
  observer = {
    connection,
    store: new RedisPresenceStore(connection, keys),
    bus: new RedisChangeBus(connection, { channel: keys.channel() }),
  }
  await observer.bus.subscribed
})

after(async () => {
  await Promise.all(nodes.map((n) => n.kill('SIGTERM')))
  await observer?.bus.close()
  await observer?.store.close()
  await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)
})

async function register(node: FleetNode, userId: string, placeId?: number): Promise<void> {
  const token = await tokens.issue(userId as UserId)
  const response = await post(
    `${node.url}/v1/presence/register-app-presence`,
    { location: 'Game', placeId, disconnect: false },
    token,
  )
  assert.equal(response.status, 200, await response.text())
}

test('a write on node A is read on B and C at once', async () => {
  const [a, b, c] = nodes as [FleetNode, FleetNode, FleetNode]
  // Sessions live TTL_MS here: a machine that stalls longer than that between the write and the
  // reads expires the session, as it should. Such a try proves nothing, and is made again; a
  // stale read within the TTL fails at once.
  const within = async (write: () => Promise<void>, read: () => Promise<void>) => {
    for (let attempt = 1; ; attempt++) {
      const started = Date.now()
      await write()
      try {
        return await read()
      } catch (error) {
        if (Date.now() - started < TTL_MS || attempt === 3) throw error
      }
    }
  }
  await within(
    () => register(a, '9007199254740993', 1818),
    async () => {
      for (const node of [b, c]) {
        const [record] = await presenceOf(node, ['9007199254740993'])
        assert.equal(record!.userPresenceType, 2)
      }
    },
  )
  // the same session refreshed through B (left the game): C sees the update at once
  await within(
    () => register(b, '9007199254740993', undefined),
    async () => {
      const [record] = await presenceOf(c, ['9007199254740993'])
      assert.equal(record!.userPresenceType, 1)
    },
  )
})

test('kill -9 of a node: its users go offline on time, once, and nothing else is lost', async (t) => {
  const [a, b, c] = nodes as [FleetNode, FleetNode, FleetNode]
  const victims = ['7001', '7002', '7003']
  const survivor = '7100'
  const events: Array<{ userId: string; at: number }> = []
  const signal = new EventEmitter()
  observer.bus.subscribe((event: BusEvent) => {
    if (event.type !== 'presence' || event.change.reason !== 'timeout') return
    if (!victims.includes(event.change.userId)) return
    events.push({ userId: event.change.userId, at: Date.now() })
    signal.emit('offline')
  })

  for (const id of victims) await register(a, id, 1818)
  await register(b, survivor, 1818)
  const stored = await observer.store.getMany(victims as UserId[], Date.now())
  const expiresAt = Math.max(...stored.map((p) => p.sessions[0]!.expiresAt))
  const lastBeat = Math.max(...stored.map((p) => p.sessions[0]!.updatedAt))

  assert.equal(await a.kill('SIGKILL'), 'SIGKILL')
  // the survivor keeps beating through B while A's users expire
  const keepAlive = setInterval(() => void register(c, survivor, 1818).catch(() => {}), 500)
  try {
    while (events.length < victims.length) await once(signal, 'offline')
  } finally {
    clearInterval(keepAlive)
  }
  // bound: one sweep interval, plus time for the claim, the publish and this process to hear it
  const bound = SWEEP_MS + 400
  const lateness = Math.max(...events.map((e) => e.at)) - expiresAt
  t.diagnostic(`offline events at most ${lateness} ms after expiresAt (bound ${bound} ms)`)
  assert.ok(lateness <= bound, `offline events ${lateness} ms after expiry, bound ${bound} ms`)
  assert.deepEqual(events.map((e) => e.userId).sort(), victims)

  // the survivor's last beat, awaited: on a loaded machine the fire-and-forget beats above could
  // come more than its 2 s TTL apart, and the survivor expire for that alone
  await register(c, survivor, 1818)
  // two more sweep rounds of both surviving nodes: a second claim would show up by then
  await new Promise((resolve) => setTimeout(resolve, 3 * SWEEP_MS))
  assert.equal(events.length, victims.length, 'each offline event exactly once')

  const records = await presenceOf(b, [...victims, survivor])
  assert.deepEqual(
    records.map((r) => r.userPresenceType),
    [0, 0, 0, 2],
  )
  // lastOnline is the last heartbeat the dead node wrote, kept durably in Redis
  for (const record of records.slice(0, 3)) {
    assert.ok(Math.abs(Date.parse(record.lastOnline) - lastBeat) < 1000, record.lastOnline)
  }
})
