import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import type { Config } from '../../src/app/config.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { NativeClient, type Frame } from './native-client.js'

// Subscribes are applied asynchronously, one after another: a limit checked against what a
// stream watches now, when the frame arrives, would not count a subscribe still on its way.

const VIEWER = '1001' as UserId

async function start(t: TestContext, config: Partial<Config> = {}) {
  return startApp(t, { listen: true, config: { flapGraceMs: 0, ...config } })
}

async function connect(t: TestContext, app: StartedApp): Promise<NativeClient> {
  const client = await NativeClient.connect(app.url, await app.tokens.issue(VIEWER))
  t.after(() => client.socket.terminate())
  return client
}

/** `count` distinct user ids from `from`. */
function ids(count: number, from = 1): string[] {
  return Array.from({ length: count }, (_, i) => String(from + i))
}

/** The next `count` frames, sorted by type (their order between two answers is not fixed). */
async function answers(client: NativeClient, count: number): Promise<Frame[]> {
  const frames: Frame[] = []
  for (let i = 0; i < count; i++) frames.push(await client.take(15_000))
  return frames.sort((a, b) => String(a.type).localeCompare(String(b.type)))
}

/**
 * A subscribe of an id the connection watches already, answered by its snapshot: subscribes
 * are answered in order, so a snapshot of refused ids would have come before it.
 */
async function barrier(client: NativeClient, watched: string): Promise<void> {
  client.send({ type: 'subscribe', ids: [watched] })
  const next = await client.take(15_000)
  assert.equal(
    next.type,
    'snapshot',
    `the barrier's snapshot, got ${JSON.stringify(next).slice(0, 200)}`,
  )
  assert.deepEqual(
    (next.presences as { userId: string }[]).map((p) => p.userId),
    [watched],
  )
}

test('two quick subscribes (999 ids, then 2) cannot take a stream past 1000 ids: the second is refused TOO_MANY_IDS for: subscribe', async (t) => {
  const app = await start(t)
  const a = await connect(t, app)
  // in one write: the second frame arrives before the first has been applied
  a.send({ type: 'subscribe', ids: ids(999) })
  a.send({ type: 'subscribe', ids: ids(2, 5000) })
  const [error, snapshot] = await answers(a, 2)
  assert.equal(snapshot!.type, 'snapshot')
  assert.equal((snapshot!.presences as unknown[]).length, 999)
  assert.equal(error!.type, 'error')
  assert.equal(error!.code, 'TOO_MANY_IDS')
  assert.equal(error!.for, 'subscribe')
  // no snapshot of the refused ids (one more id fits, the stream watching 999)
  await barrier(a, '1')
  // an id of its own: now the stream holds 1000, and none more fits
  a.send({ type: 'subscribe', ids: ['7000'] })
  assert.equal((await a.take(15_000)).type, 'snapshot')
  a.send({ type: 'subscribe', ids: ['7001'] })
  const refused = await a.take(15_000)
  assert.deepEqual([refused.code, refused.for], ['TOO_MANY_IDS', 'subscribe'])
})

test('the ids of a refused subscribe (WATCH_LIMIT) are released: they do not count against the stream later', async (t) => {
  const app = await start(t, { realtimeWatchesPerUser: 1000 })
  const other = await connect(t, app)
  other.send({ type: 'subscribe', ids: ids(500, 10_000) })
  assert.equal((await other.take(15_000)).type, 'snapshot')
  const a = await connect(t, app)
  a.send({ type: 'subscribe', ids: ids(999) })
  const refused = await a.take(15_000)
  assert.deepEqual([refused.code, refused.for], ['WATCH_LIMIT', 'subscribe'])
  // 500 fit the user's limit, and the stream holds nothing of the refused 999
  a.send({ type: 'subscribe', ids: ids(500) })
  const snapshot = await a.take(15_000)
  assert.equal(snapshot.type, 'snapshot', JSON.stringify(snapshot).slice(0, 200))
  assert.equal((snapshot.presences as unknown[]).length, 500)
})

test('two quick subscribes from one connection cannot together pass the watch limit', async (t) => {
  const app = await start(t, { realtimeWatchesPerUser: 3 })
  const a = await connect(t, app)
  a.send({ type: 'subscribe', ids: ['1', '2'] })
  a.send({ type: 'subscribe', ids: ['3', '4'] })
  const [error, snapshot] = await answers(a, 2)
  assert.deepEqual(
    (snapshot!.presences as { userId: string }[]).map((p) => p.userId),
    ['1', '2'],
  )
  assert.deepEqual([error!.code, error!.for], ['WATCH_LIMIT', 'subscribe'])
  await barrier(a, '1')
})

test('quick subscribes from two connections of one user cannot together pass the watch limit', async (t) => {
  const app = await start(t, { realtimeWatchesPerUser: 3 })
  const a = await connect(t, app)
  const b = await connect(t, app)
  a.send({ type: 'subscribe', ids: ['1', '2'] })
  b.send({ type: 'subscribe', ids: ['3', '4'] })
  const frames = [await a.take(15_000), await b.take(15_000)]
  const types = frames.map((f) => (f.type === 'error' ? `${f.code} ${f.for}` : f.type)).sort()
  assert.deepEqual(types, ['WATCH_LIMIT subscribe', 'snapshot'])
  // nothing more came to the refused connection
  assert.deepEqual([...a.pending(), ...b.pending()], [])
})

test('a quick churn of subscribes and unsubscribes that never watches more than 1000 ids is not refused', async (t) => {
  // a budget for the churn's 3,400 ids at once
  const app = await start(t, { realtimeSubscribeRate: 100_000 })
  const a = await connect(t, app)
  // in one write: 600 watched, given back, 600 others watched, given back, 600 more
  a.send({ type: 'subscribe', ids: ids(600) })
  a.send({ type: 'unsubscribe', ids: ids(600) })
  a.send({ type: 'subscribe', ids: ids(600, 1000) })
  a.send({ type: 'unsubscribe', ids: ids(600, 1000) })
  a.send({ type: 'subscribe', ids: ids(600, 2000) })
  const frames = await answers(a, 3)
  assert.deepEqual(
    frames.map((f) => [f.type, (f.presences as unknown[] | undefined)?.length ?? f.code]),
    [
      ['snapshot', 600],
      ['snapshot', 600],
      ['snapshot', 600],
    ],
  )
  // the stream watches the last 600: 400 more fit, and no more
  a.send({ type: 'subscribe', ids: ids(400, 5000) })
  assert.equal((await a.take(15_000)).type, 'snapshot')
  a.send({ type: 'subscribe', ids: ['9000'] })
  const refused = await a.take(15_000)
  assert.deepEqual([refused.code, refused.for], ['TOO_MANY_IDS', 'subscribe'])
})
