import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { createStores } from '../../src/app/create-stores.js'
import type { UserId } from '../../src/core/user-id.js'
import { LocalChangeBus } from '../../src/realtime/local-change-bus.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import { RedisConnection } from '../../src/store/redis/redis-connection.js'
import { RedisPresenceStore } from '../../src/store/redis/redis-presence-store.js'
import { NativeClient, type Frame } from '../integration/native-client.js'
import { privateRedis } from '../helpers/redis-cluster.js'
import { appHeartbeat } from '../helpers/app-heartbeat.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'

// A node that missed a settings or block change (its bus away, or one message lost) learns of it
// from the history it catches up from: what it streams from then on is what the new rules show,
// never the changes made meanwhile under the rules it held (issue: a hidden user streamed moving).

const PLAYER = '9007199254740993'
const WATCHER = '4242'
const LATECOMER = '5151'

function heartbeat(node: StartedApp, location: string): Promise<void> {
  return appHeartbeat(node, PLAYER, location)
}

/**
 * A node of the fleet on `url` whose changes are stored and recorded in the histories as any
 * node's, but heard by no other node: its bus is its own and its presence scripts publish nothing
 * (a node whose messages are lost, every one).
 */
async function unheardNode(t: TestContext, url: string): Promise<StartedApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-unheard-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const stores = await createStores({ dataDir, redisUrl: url })
  const connection = new RedisConnection({ url })
  assert.ok(await connection.waitReady())
  const heard = stores.presence
  const bus = stores.bus
  t.after(async () => {
    await heard.close()
    await bus.close()
  })
  const unheard = {
    ...stores,
    presence: new RedisPresenceStore(connection, new RedisKeys('presenced'), {
      history: { entries: 32, ageSeconds: 300 },
    }),
    bus: new LocalChangeBus(),
  }
  return startApp(t, {
    config: { redisUrl: url, flapGraceMs: 0 },
    dataDir,
    stores: unheard,
    listen: true,
  })
}

async function watch(t: TestContext, node: StartedApp, viewer: string): Promise<NativeClient> {
  const client = await NativeClient.connect(node.url, await node.tokens.issue(viewer as UserId))
  t.after(() => client.close())
  client.send({ type: 'subscribe', ids: [PLAYER] })
  return client
}

/** PLAYER's sessions as `frame` shows them (an event's presence, a snapshot's only one). */
function sessionsOf(frame: Frame): unknown[] {
  const presence = frame.type === 'snapshot' ? (frame.presences as unknown[])[0] : frame.presence
  return (presence as { sessions: unknown[] }).sessions
}

/** Waits a moment, then every frame `client` got that tells where PLAYER went meanwhile. */
async function leaks(client: NativeClient): Promise<string[]> {
  await new Promise((resolve) => setTimeout(resolve, 300))
  return client.frames.map((f) => JSON.stringify(f)).filter((text) => /secret|later/.test(text))
}

type Hide = (node: StartedApp) => Promise<void>

const HIDES: Array<[string, Hide]> = [
  [
    'goes invisible',
    async (node) => void (await node.service.putSettings(PLAYER as UserId, { invisible: true })),
  ],
  [
    'blocks the watcher',
    (node) => node.service.setBlocked(PLAYER as UserId, WATCHER as UserId, true),
  ],
]

for (const [how, hide] of HIDES) {
  test(`a node back on the bus catches up across a privacy change: the player who ${how} meanwhile is offline to it, not seen moving`, async (t) => {
    const redis = await privateRedis(t, 'privacy-catch-up')
    const node = await startApp(t, {
      config: { redisUrl: redis.url, flapGraceMs: 0 },
      listen: true,
    })
    const other = await unheardNode(t, redis.url)
    const watcher = await watch(t, node, WATCHER)
    assert.deepEqual(sessionsOf(await watcher.waitFor((f) => f.type === 'snapshot')), [])
    await heartbeat(node, 'public')
    assert.equal((await watcher.take()).type, 'online')

    // while this node is away from the bus, the player hides from the watcher and moves on
    await hide(other)
    await heartbeat(other, 'secret')
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.deepEqual(watcher.pending(), [], 'nothing heard yet: the messages were never sent')
    const admin = new Redis(redis.url)
    t.after(() => admin.disconnect())
    assert.ok(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) >= 1)

    const offline = await watcher.take(5000)
    assert.equal(offline.type, 'offline', JSON.stringify(offline))
    assert.deepEqual(sessionsOf(offline), [])
    assert.deepEqual(await leaks(watcher), [])

    // a stream opened on this node afterwards is shown what the rules now show (invisible:
    // offline to everyone; blocked: offline to the watcher only)
    const latecomer = await watch(t, node, how === 'goes invisible' ? LATECOMER : WATCHER)
    const snapshot = await latecomer.waitFor((f) => f.type === 'snapshot')
    assert.deepEqual(sessionsOf(snapshot), [], JSON.stringify(snapshot))
    // and the changes after the catch-up are shown under the same rules
    await heartbeat(node, 'later')
    assert.deepEqual(await leaks(watcher), [])
    assert.deepEqual(await leaks(latecomer), [])
  })

  test(`a lost settings or block message is found in the gap before the next change: the player who ${how} is never seen moving`, async (t) => {
    const redis = await privateRedis(t, 'privacy-gap')
    const node = await startApp(t, {
      config: { redisUrl: redis.url, flapGraceMs: 0 },
      listen: true,
    })
    const other = await unheardNode(t, redis.url)
    const watcher = await watch(t, node, WATCHER)
    await watcher.waitFor((f) => f.type === 'snapshot')
    await heartbeat(node, 'public')
    assert.equal((await watcher.take()).type, 'online')

    // the privacy change and a move whose messages are lost, then a change this node hears:
    // its offset shows the gap, which holds the mark
    await hide(other)
    await heartbeat(other, 'secret')
    await heartbeat(node, 'later')
    const offline = await watcher.take(5000)
    assert.equal(offline.type, 'offline', JSON.stringify(offline))
    assert.deepEqual(sessionsOf(offline), [])
    assert.deepEqual(await leaks(watcher), [])
  })
}

test('a stream opened while the node cannot hear the bus reads the settings again: a player who hid meanwhile is offline in its snapshot', async (t) => {
  const redis = await privateRedis(t, 'privacy-away')
  const node = await startApp(t, { config: { redisUrl: redis.url, flapGraceMs: 0 }, listen: true })
  const other = await unheardNode(t, redis.url)
  const watcher = await watch(t, node, WATCHER)
  await watcher.waitFor((f) => f.type === 'snapshot')
  await heartbeat(node, 'public')
  assert.equal((await watcher.take()).type, 'online')

  // the node's subscription is cut and cannot be made again: it hears nothing for now
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  await admin.call('ACL', 'SETUSER', 'default', '-subscribe')
  assert.ok(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) >= 1)
  await new Promise((resolve) => setTimeout(resolve, 300))
  await other.service.putSettings(PLAYER as UserId, { invisible: true })
  await heartbeat(other, 'secret')

  const latecomer = await watch(t, node, LATECOMER)
  const snapshot = await latecomer.waitFor((f) => f.type === 'snapshot')
  assert.deepEqual(sessionsOf(snapshot), [], JSON.stringify(snapshot))

  // once it hears the bus again, the catch-up tells the first watcher too
  await admin.call('ACL', 'SETUSER', 'default', '+subscribe')
  const offline = await watcher.take(8000)
  assert.equal(offline.type, 'offline', JSON.stringify(offline))
  assert.deepEqual(await leaks(watcher), [])
  assert.deepEqual(await leaks(latecomer), [])
})
