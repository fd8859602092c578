import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { NativeClient } from './native-client.js'
import { SseClient } from './sse-client.js'

/*
 * A real-time stream delivers only while the token that opened it is valid: no frame leaves
 * past the token's expiry or after its revocation, on the WebSocket (close 4001) and on SSE
 * (a last error event, then the end). The node's clock is a manual one set past the expiry, so
 * no test waits for a token to expire.
 */

const VIEWER = '9101' as UserId
const WATCHED = '9102' as UserId

async function start(t: TestContext): Promise<{ app: StartedApp; clock: ManualClock }> {
  const clock = new ManualClock(Date.now())
  const app = await startApp(t, { listen: true, clock, config: { flapGraceMs: 0 } })
  return { app, clock }
}

function beat(app: StartedApp, userId: UserId, location: string) {
  return app.service.heartbeat({
    userId,
    key: 'app',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online', location },
  })
}

/** The token's `exp`, in epoch ms. */
function expiryOf(token: string): number {
  const payload = Buffer.from(token.split('.')[1]!, 'base64url').toString()
  return (JSON.parse(payload) as { exp: number }).exp * 1000
}

/** `promise`, or a rejection after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms).unref(),
    ),
  ])
}

/** A WebSocket watching WATCHED, past its first snapshot. */
async function watchingSocket(t: TestContext, app: StartedApp, token: string) {
  const ws = await NativeClient.connect(app.url, token)
  t.after(() => ws.socket.terminate())
  ws.send({ type: 'subscribe', ids: [WATCHED] })
  assert.equal((await ws.take()).type, 'snapshot')
  return ws
}

/** SSE streams watching WATCHED (GET, and POST with positions), past their snapshots. */
async function watchingStreams(t: TestContext, app: StartedApp, token: string) {
  const streams = [
    await SseClient.open(app.url, token, [WATCHED]),
    await SseClient.post(app.url, token, { ids: [WATCHED], positions: true }),
  ]
  for (const sse of streams) {
    t.after(() => sse.close())
    assert.equal(sse.status, 200)
    assert.equal((await sse.waitFor(() => true)).data.type, 'snapshot')
  }
  return streams
}

/** The stream's last event is the error `message`, and the server ended the stream. */
async function endedWith(sse: SseClient, message: string) {
  const last = await sse.waitFor(() => true)
  assert.deepEqual(last.data, { type: 'error', code: 'UNAUTHENTICATED', message })
  await sse.ended()
  assert.deepEqual(sse.pending(), [], 'nothing after the error event')
}

test('past its token’s expiry a WebSocket sends no frame: the change closes it with 4001', async (t) => {
  const { app, clock } = await start(t)
  const token = await app.tokens.issue(VIEWER, { ttlSeconds: 3600 })
  const ws = await watchingSocket(t, app, token)
  await beat(app, WATCHED, 'before')
  assert.equal((await ws.take()).type, 'online')

  // the token expires: no timer of the node has run since (it is an hour away in real time)
  clock.set(expiryOf(token))
  await beat(app, WATCHED, 'after')
  assert.deepEqual(await within(ws.closed, 3000), { code: 4001, reason: 'token expired' })
  assert.deepEqual(
    ws.frames.map((f) => f.type),
    ['snapshot', 'online'],
    'no frame past the expiry',
  )
})

test('past its token’s expiry an SSE stream sends no frame: a last error event, then the end', async (t) => {
  const { app, clock } = await start(t)
  const token = await app.tokens.issue(VIEWER, { ttlSeconds: 3600 })
  const streams = await watchingStreams(t, app, token)
  clock.set(expiryOf(token))
  await beat(app, WATCHED, 'after')
  for (const sse of streams) {
    await endedWith(sse, 'token expired')
    assert.deepEqual(
      sse.events.map((e) => e.data.type),
      ['snapshot', 'error'],
      'no change past the expiry',
    )
  }
})

test('a stream whose token has a minute left goes on delivering', async (t) => {
  const { app, clock } = await start(t)
  const token = await app.tokens.issue(VIEWER, { ttlSeconds: 3600 })
  const ws = await watchingSocket(t, app, token)
  const [sse] = await watchingStreams(t, app, token)
  clock.set(expiryOf(token) - 60_000)
  await beat(app, WATCHED, 'still')
  assert.equal((await ws.take()).type, 'online')
  assert.equal((await sse!.waitFor(() => true)).data.type, 'online')
  assert.equal(ws.socket.readyState, ws.socket.OPEN)
})

test('a logout ends the WebSocket (4001 token revoked) and SSE streams of its token at once', async (t) => {
  const { app } = await start(t)
  const token = await app.tokens.issue(VIEWER)
  const other = await app.tokens.issue(VIEWER)
  const ws = await watchingSocket(t, app, token)
  const streams = await watchingStreams(t, app, token)
  const otherWs = await watchingSocket(t, app, other)

  const caller = await app.service.auth.authenticate({ kind: 'token', token, via: 'bearer' }, '::1')
  await app.service.auth.logout(app.service.auth.requireUser(caller))
  assert.deepEqual(await within(ws.closed, 3000), { code: 4001, reason: 'token revoked' })
  for (const sse of streams) await endedWith(sse, 'token revoked')

  // the same user's other login goes on
  await beat(app, WATCHED, 'after')
  assert.equal((await otherWs.take()).type, 'online')
  assert.deepEqual(
    ws.frames.map((f) => f.type),
    ['snapshot'],
    'no frame after the revocation',
  )
})
