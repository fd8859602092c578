import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import { RedisConnection } from '../../src/store/redis/redis-connection.js'
import { RedisPresenceStore } from '../../src/store/redis/redis-presence-store.js'
import { NativeClient, type Frame } from '../integration/native-client.js'
import { Redis } from 'ioredis'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startRedisServer } from '../helpers/redis-cluster.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { appHeartbeat } from '../helpers/app-heartbeat.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { startNodePair } from '../helpers/start-node-pair.js'

const PLAYER = '9007199254740993'
const WATCHER = '4242'

function locations(frames: Frame[]): string[] {
  return frames.map((f) => {
    const presence = f.presence as { sessions: Array<{ activity: { location?: string } }> }
    return presence.sessions[0]?.activity.location ?? ''
  })
}

function heartbeat(node: StartedApp, location: string): Promise<void> {
  return appHeartbeat(node, PLAYER, location)
}

/** A native client of `node` watching PLAYER with positions, its snapshot read. */
async function watchPlayer(t: TestContext, node: StartedApp): Promise<NativeClient> {
  const watcher = await NativeClient.connect(node.url, await node.tokens.issue(WATCHER as UserId))
  t.after(() => watcher.close())
  watcher.send({ type: 'subscribe', ids: [PLAYER], positions: true })
  await watcher.waitFor((f) => f.type === 'snapshot')
  return watcher
}

/**
 * PLAYER moves to `location` in the history of the Redis at `url` under `prefix`, exactly as a
 * node records it, but through a store with the history and no channel: the script records the
 * change and publishes nothing.
 */
async function recordUnpublished(t: TestContext, url: string, prefix: string, location: string) {
  const connection = new RedisConnection({ url })
  assert.ok(await connection.waitReady())
  const silent = new RedisPresenceStore(connection, new RedisKeys(prefix), {
    history: { entries: 32, ageSeconds: 300 },
  })
  t.after(() => silent.close())
  return silent.heartbeat(
    {
      userId: PLAYER as UserId,
      key: 'app:PC',
      source: 'app',
      deviceType: 'PC',
      activity: { kind: 'inGame', placeId: '1818', location },
      ttlMs: 60_000,
    },
    Date.now(),
  )
}

test('a change whose bus message never arrived is found by the next one’s offset and filled from the history, in order', async (t) => {
  const { a, b, prefix } = await startNodePair(t, 'gaps')

  const watcher = await watchPlayer(t, b)

  await heartbeat(a, 'one')
  assert.deepEqual(locations([await watcher.take()]), ['one'])

  // a change recorded in the history exactly as a node makes it, whose pub/sub message is lost
  const lost = await recordUnpublished(t, LOCAL_REDIS_URL, prefix, 'lost')
  assert.equal(lost.position?.offset, 2)
  // nothing arrives: the message was never sent
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(watcher.pending(), [])

  // the next change (offset 3) shows the gap: B reads offset 2 from the history first
  await heartbeat(a, 'three')
  const [first, second] = [await watcher.take(), await watcher.take()]
  assert.deepEqual(locations([first, second]), ['lost', 'three'])
  assert.equal(second.seq, (first.seq as number) + 1)
  assert.notEqual(first.pos, second.pos)
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(watcher.pending(), [], 'each change once')
})

test('embedded: a stream this node no longer holds resumes from its positions (in-process history)', async (t) => {
  const app = await startApp(t, { config: { flapGraceMs: 0 }, listen: true })
  const token = await app.tokens.issue(WATCHER as UserId)
  const first = await NativeClient.connect(app.url, token)
  first.send({ type: 'subscribe', ids: [PLAYER, '77'], positions: true })
  const snapshot = await first.waitFor((f) => f.type === 'snapshot')
  const pos = snapshot.pos as string[]
  assert.equal(pos.length, 2)
  await heartbeat(app, 'one')
  const one = await first.take()
  assert.deepEqual(locations([one]), ['one'])
  await first.close()

  await heartbeat(app, 'two')
  await heartbeat(app, 'three')
  // a stream token this node does not know (another node's, or forgotten): the positions decide
  const second = await NativeClient.connect(app.url, token)
  t.after(() => second.close())
  second.send({
    type: 'resume',
    resume: 'unknown-token',
    since: 9,
    positions: { [PLAYER]: one.pos, '77': pos[1] },
  })
  const recovered = await second.take()
  assert.equal(recovered.type, 'recovered')
  assert.equal(typeof recovered.resume, 'string')
  const missed = [await second.take(), await second.take()]
  assert.deepEqual(locations(missed), ['two', 'three'])
  assert.deepEqual(
    missed.map((f) => [f.type, f.seq]),
    [
      ['update', (recovered.seq as number) + 1],
      ['update', (recovered.seq as number) + 2],
    ],
  )
  // live again after the replay, and nothing twice
  await heartbeat(app, 'four')
  assert.deepEqual(locations([await second.take()]), ['four'])
  assert.deepEqual(second.pending(), [])

  // a position that is not ours is refused with a reset, not an error
  const third = await NativeClient.connect(app.url, token)
  t.after(() => third.close())
  third.send({ type: 'resume', positions: { [PLAYER]: 'A'.repeat(22) } })
  assert.deepEqual(await third.take(), { type: 'reset', reason: 'too_old' })
})

for (const mode of ['embedded', 'redis'] as const) {
  test(`${mode}: a resume across a privacy change never replays what was hidden: the current state, once`, async (t) => {
    const prefix = uniquePrefix('marks')
    const config = {
      flapGraceMs: 0,
      ...(mode === 'redis' && { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix }),
    }
    const app = await startApp(t, { config, listen: true })
    if (mode === 'redis')
      t.after(async () => void (await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)))
    const token = await app.tokens.issue(WATCHER as UserId)
    const first = await NativeClient.connect(app.url, token)
    first.send({ type: 'subscribe', ids: [PLAYER], positions: true })
    await first.waitFor((f) => f.type === 'snapshot')
    await heartbeat(app, 'one')
    const one = await first.take()
    await first.close()

    // while the watcher is away the player blocks it, moves twice, unblocks it and moves on
    await app.service.setBlocked(PLAYER as UserId, WATCHER as UserId, true)
    await heartbeat(app, 'secret-1')
    await heartbeat(app, 'secret-2')
    await app.service.setBlocked(PLAYER as UserId, WATCHER as UserId, false)
    await heartbeat(app, 'public')

    const second = await NativeClient.connect(app.url, token)
    t.after(() => second.close())
    second.send({ type: 'resume', positions: { [PLAYER]: one.pos } })
    assert.equal((await second.take()).type, 'recovered')
    const got = await second.take()
    assert.deepEqual(locations([got]), ['public'])
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.deepEqual(second.pending(), [], 'nothing of the invisible period')

    // and when the user is still hidden, the client is told the user went offline, as live
    const third = await NativeClient.connect(app.url, token)
    t.after(() => third.close())
    await app.service.setBlocked(PLAYER as UserId, WATCHER as UserId, true)
    await heartbeat(app, 'secret-3')
    third.send({ type: 'resume', positions: { [PLAYER]: got.pos } })
    assert.equal((await third.take()).type, 'recovered')
    const hidden = await third.take()
    assert.equal(hidden.type, 'offline')
    assert.deepEqual((hidden.presence as { sessions: unknown[] }).sessions, [])
  })
}

test('a node that lost its bus connection catches up from the history when it is back, with no later change to show the gap', async (t) => {
  // our own Redis: its pub/sub clients are cut, never the machine's
  const dir = mkdtempSync(join(tmpdir(), 'presenced-gaps-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  const redis = await startRedisServer(port, dir)
  t.after(() => redis.kill())
  const url = `redis://127.0.0.1:${port}`
  const app = await startApp(t, { config: { redisUrl: url, flapGraceMs: 0 }, listen: true })
  const watcher = await watchPlayer(t, app)
  await heartbeat(app, 'one')
  assert.deepEqual(locations([await watcher.take()]), ['one'])

  // a change made while the node was away from the bus: recorded, its message never heard
  await recordUnpublished(t, url, 'presenced', 'missed')
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(watcher.pending(), [])
  const admin = new Redis(port, '127.0.0.1')
  t.after(() => admin.disconnect())
  assert.ok(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')) >= 1)
  assert.deepEqual(locations([await watcher.take(5000)]), ['missed'])
})
