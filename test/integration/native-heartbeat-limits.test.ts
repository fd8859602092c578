import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import {
  NativeClient,
  heartbeatFrame,
  heartbeatUntilRefused,
  isRateLimited,
  type Frame,
} from './native-client.js'
import { REGISTER, bearer, post } from './roblox-helpers.js'

/*
 * A WebSocket heartbeat frame is a request of the user's heartbeat budget, the one
 * register-app-presence spends (PRESENCED_RATE_LIMIT per PRESENCED_RATE_WINDOW): before, frames
 * were coalesced but never limited, and one connection made ~500 visible updates a second (each
 * one also reaching webhooks, history and the public feed). Real sockets, real service. The
 * clock stands still at the start of a window, so that no window ends during a test.
 */

const WINDOW_MS = 60_000

/** A clock standing at the start of the current rate-limit window (tokens stay valid). */
function windowStart(): ManualClock {
  return new ManualClock(Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS)
}

async function start(t: TestContext, rateLimitMax: number) {
  const clock = windowStart()
  const app = await startApp(t, {
    listen: true,
    clock,
    config: { flapGraceMs: 0, rateLimitMax, rateLimitWindowSeconds: WINDOW_MS / 1000 },
  })
  return { app, clock }
}

async function connect(t: TestContext, app: StartedApp, userId: string) {
  const client = await NativeClient.connect(app.url, await app.tokens.issue(userId as UserId))
  t.after(() => client.socket.terminate())
  return client
}

/** Frames about `userId`'s presence a watcher got: online, update, offline. */
function changesOf(client: NativeClient, userId: string): Frame[] {
  return client.frames.filter((frame) => frame.userId === userId && frame.type !== 'snapshot')
}

test('a flood of WebSocket heartbeats makes at most the budget’s visible updates; the flooder gets RATE_LIMITED and stays connected', async (t) => {
  const max = 20
  const { app, clock } = await start(t, max)
  const user = '8100'
  // the user watches itself from a second connection: a self-view shows every location
  const watcher = await connect(t, app, user)
  watcher.send({ type: 'subscribe', ids: [user] })
  assert.equal((await watcher.take()).type, 'snapshot')
  const flooder = await connect(t, app, user)
  // for 3 s, ten frames every 10 ms, each a new location
  let frames = 0
  for (const end = Date.now() + 3000; Date.now() < end;) {
    for (let i = 0; i < 10; i++) flooder.send(heartbeatFrame(`place ${frames++}`))
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  // let every frame be handled and every change reach the watcher
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const changes = changesOf(watcher, user)
  t.diagnostic(`${frames} frames: ${changes.length} changes seen, budget ${max}`)
  assert.ok(changes.length >= 1, 'the first heartbeats are written')
  assert.ok(changes.length <= max, `${changes.length} changes, at most ${max} allowed`)
  const refusal = await flooder.waitFor(isRateLimited)
  assert.equal(typeof refusal.retryAfterMs, 'number')
  assert.ok((refusal.retryAfterMs as number) > 0 && (refusal.retryAfterMs as number) <= WINDOW_MS)
  assert.match(refusal.message as string, /heartbeats/)
  // the connection stays open and usable
  flooder.send({ type: 'subscribe', ids: ['8101'] })
  assert.equal((await flooder.waitFor((frame) => frame.type === 'snapshot')).type, 'snapshot')
  // what the user shows is a frame that was admitted: the last change the watcher saw
  const last = changes.at(-1) as unknown as {
    presence: { sessions: { activity: { location: string } }[] }
  }
  const [stored] = await app.stores.presence.getMany([user as UserId], clock.now())
  assert.equal(stored?.sessions[0]?.activity.location, last.presence.sessions[0]?.activity.location)
})

test('HTTP and WebSocket heartbeats of one user share one budget, both ways', async (t) => {
  const max = 10
  const { app, clock } = await start(t, max)
  const user = '8200'
  const headers = await bearer(app.tokens, user)
  const beat = (location: string) =>
    post(app.app, REGISTER, { location, placeId: null }, headers).then((r) => r.statusCode)

  // HTTP spends the budget (the upgrade was one request of it): a WebSocket heartbeat is refused
  const client = await connect(t, app, user)
  for (let i = 1; i < max; i++) assert.equal(await beat(`http ${i}`), 200)
  client.send(heartbeatFrame('ws'))
  const refusal = await client.waitFor(isRateLimited)
  assert.ok((refusal.retryAfterMs as number) > 0)
  assert.equal(await beat('http over'), 429)

  // the next window: WebSocket heartbeats spend it, and then HTTP is refused
  clock.advance(WINDOW_MS)
  const other = await connect(t, app, user)
  await heartbeatUntilRefused(other, 10 * max)
  const refused = await post(app.app, REGISTER, { location: 'http' }, headers)
  assert.equal(refused.statusCode, 429)
  assert.ok(Number(refused.headers['retry-after']) >= 1)
})
