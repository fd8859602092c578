import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { Activity } from '../../src/core/presence.js'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { NativeClient, type Frame } from './native-client.js'

const WATCHER = '1001' as UserId
const PLAYER = '2001' as UserId
const SENTINEL = '2002' as UserId
const SERVER_A = '0a000000-0000-4000-8000-00000000000a'
const SERVER_B = '0b000000-0000-4000-8000-00000000000b'
const SERVER_C = '0c000000-0000-4000-8000-00000000000c'

async function start(t: TestContext, config: Partial<Config>) {
  const app = await startApp(t, { listen: true, config })
  const res = await fetch(`${app.url}/admin/v1/keys`, {
    method: 'POST',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'fleet', scopes: ['presence:write'] }),
  })
  const { secret } = (await res.json()) as { secret: string }
  const watcher = await NativeClient.connect(app.url, await app.tokens.issue(WATCHER))
  t.after(() => watcher.socket.terminate())
  watcher.send({ type: 'subscribe', ids: [PLAYER, SENTINEL] })
  assert.equal((await watcher.take()).type, 'snapshot')
  return { app, watcher, secret }
}

async function report(app: StartedApp, key: string, gameId: string, players: string[]) {
  const res = await fetch(`${app.url}/api/v1/servers/${gameId}`, {
    method: 'PUT',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify({ placeId: 1818, universeId: 13058, players }),
  })
  assert.equal(res.status, 200, await res.text())
}

function gamesOf(frame: Frame): string[] {
  const sessions = (frame.presence as { sessions: { activity: Activity }[] }).sessions
  return sessions.map((s) => s.activity.gameId ?? '').sort()
}

/** A change of another user, then its frame: proves nothing else was sent in between. */
async function sentinel(app: StartedApp, watcher: NativeClient): Promise<Frame[]> {
  await app.service.heartbeat({
    userId: SENTINEL,
    key: `app:${Date.now()}`,
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online' },
  })
  const seen: Frame[] = []
  for (;;) {
    const frame = await watcher.take()
    if (frame.userId === SENTINEL) return seen
    seen.push(frame)
  }
}

test('teleport, old server first: watchers see one update, never an offline', async (t) => {
  const { app, watcher, secret } = await start(t, { flapGraceMs: 500 })
  await report(app, secret, SERVER_A, [PLAYER])
  const online = await watcher.take()
  assert.deepEqual([online.type, online.userId, gamesOf(online)], ['online', PLAYER, [SERVER_A]])

  // A reports the player gone, then B reports them: the offline in between is held
  await report(app, secret, SERVER_A, [])
  await report(app, secret, SERVER_B, [PLAYER])
  const frames = await sentinel(app, watcher)
  assert.deepEqual(
    frames.map((f) => [f.type, f.userId, gamesOf(f)]),
    [['update', PLAYER, [SERVER_B]]],
  )
  // the grace period passes with nothing more to tell
  await new Promise((resolve) => setTimeout(resolve, 700))
  assert.deepEqual(watcher.pending(), [])
})

test('teleport, new server first: the change stream never shows the player offline', async (t) => {
  const { app, watcher, secret } = await start(t, { flapGraceMs: 0 })
  const states: string[] = []
  app.stores.bus.subscribe((event) => {
    if (event.type === 'presence' && event.change.userId === PLAYER) {
      states.push(event.change.after.sessions.length > 0 ? 'on' : 'off')
    }
  })
  await report(app, secret, SERVER_A, [PLAYER])
  assert.equal((await watcher.take()).type, 'online')
  await report(app, secret, SERVER_B, [PLAYER])
  await report(app, secret, SERVER_A, [])
  const frames = await sentinel(app, watcher)
  // with no damping at all, still no offline: B's session was there before A's ended
  assert.deepEqual(states, ['on', 'on', 'on'])
  assert.ok(frames.every((f) => f.type === 'update' && f.userId === PLAYER))
  assert.deepEqual(gamesOf(frames.at(-1)!), [SERVER_B])

  // the server shuts down: a real offline, explicit
  const res = await fetch(`${app.url}/api/v1/servers/${SERVER_B}`, {
    method: 'DELETE',
    headers: { 'x-api-key': secret },
  })
  assert.equal(res.status, 200)
  const offline = await watcher.take()
  assert.deepEqual([offline.type, offline.userId, offline.reason], ['offline', PLAYER, 'explicit'])
})

test('a server that stops reporting: watchers get offline with reason server_lost', async (t) => {
  const { app, watcher, secret } = await start(t, {
    flapGraceMs: 0,
    sessionTtlSeconds: 1,
    sweepIntervalMs: 50,
  })
  // before the report: its session is written after this instant and lives a TTL from then
  // (taken after the online frame, a late frame on a loaded machine failed the bound below)
  const reported = Date.now()
  await report(app, secret, SERVER_C, [PLAYER])
  assert.equal((await watcher.take()).type, 'online')
  const offline = await watcher.take(5000)
  assert.deepEqual(
    [offline.type, offline.userId, offline.reason],
    ['offline', PLAYER, 'server_lost'],
  )
  assert.ok(Date.now() - reported >= 950, 'not before the TTL')
})
