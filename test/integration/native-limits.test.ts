import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import WebSocket from 'ws'
import { NativeClient, refusedUpgrade } from './native-client.js'

/*
 * Issue 15, items 9 and 13: what one user's real-time connections may hold and ask for is
 * bounded (connections, watched users, dropped streams kept for resume, subscribe work per
 * second), each limit answered with a clear HTTP error or error frame; real sockets throughout.
 */

async function start(t: TestContext, config: Partial<Config>) {
  return startApp(t, { listen: true, config: { flapGraceMs: 0, ...config } })
}

async function connect(t: TestContext, app: StartedApp, userId: string) {
  const client = await NativeClient.connect(app.url, await app.tokens.issue(userId as UserId))
  t.after(() => client.socket.terminate())
  return client
}

/** `count` user ids from `first` on, as strings. */
function ids(first: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(first + i))
}

async function sse(app: StartedApp, userId: string, watched: string[]) {
  const token = await app.tokens.issue(userId as UserId)
  const controller = new AbortController()
  const response = await fetch(
    `${app.url}/api/v1/realtime/sse?ids=${watched.join(',')}&access_token=${token}`,
    { signal: controller.signal },
  )
  return { response, close: () => controller.abort() }
}

test('connections per user are capped: one more gets 429 STREAM_LIMIT before any upgrade', async (t) => {
  const app = await start(t, { realtimeStreamsPerUser: 3 })
  const user = '7001'
  const open = [
    await connect(t, app, user),
    await connect(t, app, user),
    await connect(t, app, user),
  ]
  const token = await app.tokens.issue(user as UserId)
  const refused = await refusedUpgrade(`${app.url}/api/v1/realtime`, {
    authorization: `Bearer ${token}`,
  })
  assert.equal(refused.status, 429)
  assert.deepEqual(JSON.parse(refused.body), {
    error: {
      code: 'STREAM_LIMIT',
      message: 'At most 3 real-time connections per user: close one, or reuse one for more ids.',
    },
  })
  const bySse = await sse(app, user, ['1'])
  assert.equal(bySse.response.status, 429)
  assert.equal(bySse.response.headers.get('retry-after'), '1')
  assert.equal(
    ((await bySse.response.json()) as { error: { code: string } }).error.code,
    'STREAM_LIMIT',
  )
  // the POST form (positions) is refused the same way, before its body is read
  const byPost = await fetch(`${app.url}/api/v1/realtime/sse`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ids: ['1'], positions: true }),
  })
  assert.equal(byPost.status, 429)
  assert.equal(byPost.headers.get('retry-after'), '1')
  assert.equal(((await byPost.json()) as { error: { code: string } }).error.code, 'STREAM_LIMIT')
  // another user is not affected, and a closed connection frees its place
  await connect(t, app, '7002')
  await open[0]!.close()
  const again = await connect(t, app, user)
  again.send({ type: 'subscribe', ids: ['1'] })
  assert.equal((await again.take()).type, 'snapshot')
})

test('watched users are capped per user: WATCH_LIMIT, and the user’s dropped streams give way first', async (t) => {
  const app = await start(t, { realtimeWatchesPerUser: 150 })
  const user = '7101'
  const first = await connect(t, app, user)
  first.send({ type: 'subscribe', ids: ids(100, 100) })
  const snapshot = await first.take()
  assert.equal(snapshot.type, 'snapshot')

  const second = await connect(t, app, user)
  second.send({ type: 'subscribe', ids: ids(300, 100) })
  assert.deepEqual(await second.take(), {
    type: 'error',
    code: 'WATCH_LIMIT',
    message: 'At most 150 users watched across your real-time streams: unsubscribe some first.',
    for: 'subscribe',
  })
  // within the limit is fine, the connection stays usable
  second.send({ type: 'subscribe', ids: ids(300, 50) })
  assert.equal((await second.take()).type, 'snapshot')
  const bySse = await sse(app, user, ids(500, 10))
  assert.equal(bySse.response.status, 429)
  assert.equal(
    ((await bySse.response.json()) as { error: { code: string } }).error.code,
    'WATCH_LIMIT',
  )

  // the first connection drops: its stream stays resumable, until the user needs its room
  first.socket.terminate()
  await first.closed
  const third = await connect(t, app, user)
  third.send({ type: 'subscribe', ids: ids(600, 100) })
  assert.equal((await third.take()).type, 'snapshot')
  const late = await connect(t, app, user)
  late.send({ type: 'resume', resume: snapshot.resume, since: 1 })
  assert.deepEqual(await late.take(), { type: 'reset', reason: 'unknown' })
})

test('dropped streams are bounded per node: beyond the budget the oldest are forgotten', async (t) => {
  const app = await start(t, { realtimeDetachedWatches: 250 })
  // five users each watch 100 and drop: 500 watches kept, were there no budget
  const dropped: { user: string; resume: string }[] = []
  for (let n = 0; n < 5; n++) {
    const user = String(7200 + n)
    const client = await connect(t, app, user)
    client.send({ type: 'subscribe', ids: ids(1000 + n * 100, 100) })
    const snapshot = await client.take()
    dropped.push({ user, resume: String(snapshot.resume) })
    client.socket.terminate()
    await client.closed
  }
  const resumed: string[] = []
  for (const { user, resume } of dropped) {
    const client = await connect(t, app, user)
    client.send({ type: 'resume', resume, since: 1 })
    client.send({ type: 'subscribe', ids: ['1'] })
    const frame = await client.take()
    resumed.push(frame.type === 'reset' ? 'forgotten' : 'resumed')
  }
  // the newest two fit the budget of 250; the three oldest were dropped, oldest first
  assert.deepEqual(resumed, ['forgotten', 'forgotten', 'forgotten', 'resumed', 'resumed'])
})

test('subscribe work per connection is bounded: a flood gets RATE_LIMITED, others stay prompt', async (t) => {
  const app = await start(t, { realtimeSubscribeRate: 1000 })
  const target = '7301' as UserId
  const watcher = await connect(t, app, '7302')
  watcher.send({ type: 'subscribe', ids: [target] })
  await watcher.take()
  const latencyOfOneChange = async (n: number): Promise<number> => {
    const changed = performance.now()
    await app.service.heartbeat({
      userId: target,
      key: 'app',
      source: 'app',
      deviceType: 'PC',
      activity: { kind: 'inGame', location: `round ${n}` },
    })
    const frame = await watcher.waitFor((f) => f.type !== 'snapshot', 10_000)
    return watcher.arrivals[watcher.frames.indexOf(frame)]! - changed
  }
  const quiet: number[] = []
  for (let n = 0; n < 5; n++) quiet.push(await latencyOfOneChange(n))

  // a client re-subscribing 500 ids in a loop, without waiting for anything; it takes its
  // frames without parsing the big ones, so that it costs this process little
  const flooder = new WebSocket(app.url.replace('http', 'ws') + '/api/v1/realtime', {
    headers: { authorization: `Bearer ${await app.tokens.issue('7303' as UserId)}` },
  })
  t.after(() => flooder.terminate())
  const small: Record<string, unknown>[] = []
  let snapshots = 0
  flooder.on('message', (data: Buffer) => {
    if (data.length > 2000) snapshots++
    else small.push(JSON.parse(data.toString()) as Record<string, unknown>)
  })
  const closed = new Promise<[number, string]>((resolve) =>
    flooder.on('close', (code, reason) => resolve([code, reason.toString()])),
  )
  await new Promise((resolve) => flooder.once('open', resolve))
  const watched = ids(10_000, 500)
  const subscribe = JSON.stringify({ type: 'subscribe', ids: watched })
  const unsubscribe = JSON.stringify({ type: 'unsubscribe', ids: watched })
  for (let i = 0; i < 1000; i++) {
    flooder.send(subscribe)
    flooder.send(unsubscribe)
  }
  const flooded: number[] = []
  for (let n = 5; n < 15; n++) flooded.push(await latencyOfOneChange(n))

  // its budget (2 s of 1000 ids/s) took 4 frames; the next were refused with when to retry,
  // and a client that keeps going after 20 refusals within 10 s is closed
  assert.deepEqual(await closed, [1008, 'subscribing too fast'])
  const refusals = small.filter((f) => f.type === 'error' && f.close === undefined)
  // the close is told first, in the native error format, with when to reconnect: when the
  // connection's budget (2 s of 1000 ids/s) would be full again, as a new connection's is
  const ending = small.filter((f) => f.close !== undefined)
  assert.equal(ending.length, 1)
  assert.equal(ending[0]!.code, 'RATE_LIMITED')
  assert.equal(ending[0]!.close, 1008)
  assert.equal(ending[0]!.for, undefined, 'it answers no frame: it ends the connection')
  assert.match(String(ending[0]!.message), /^Subscribing too fast: more than 20 frames refused/)
  assert.ok(Number(ending[0]!.retryAfterMs) > 0 && Number(ending[0]!.retryAfterMs) <= 2000)
  assert.equal(small.at(-1), ending[0], 'the last frame before the close')
  // (a slow machine may refill the budget for one more frame meanwhile)
  assert.ok(snapshots === 2 || snapshots === 3, `${snapshots} snapshots`)
  assert.equal(refusals.length, 20)
  assert.equal(refusals[0]!.code, 'RATE_LIMITED')
  assert.equal(
    refusals[0]!.message,
    'At most 1000 ids per second subscribed or unsubscribed per connection: slow down.',
  )
  assert.ok(Number(refusals[0]!.retryAfterMs) > 0 && Number(refusals[0]!.retryAfterMs) <= 500)

  // others' events stayed prompt (generous bounds: the machine is shared)
  const worst = Math.max(...flooded)
  assert.ok(
    worst < 2000,
    `latency under flood ${flooded.map(Math.round)} ms (quiet: ${quiet.map(Math.round)})`,
  )
  t.diagnostic(
    `latency quiet ${quiet.map(Math.round)} ms, under flood ${flooded.map(Math.round)} ms`,
  )
})
