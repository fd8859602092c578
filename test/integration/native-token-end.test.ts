import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { NativeClient } from './native-client.js'

/*
 * A WebSocket lives no longer than the token that opened it (docs/reference/native.md): once
 * the node knows the token is revoked or expired, the connection sends nothing more and the
 * presence its heartbeat frames set ends then, not when the socket's close completes (a peer
 * that does not read holds that off for 5 s).
 */

const A = '8101' as UserId
const B = '8102' as UserId

async function start(t: TestContext): Promise<StartedApp> {
  return startApp(t, { listen: true, config: { flapGraceMs: 0 } })
}

async function connect(t: TestContext, app: StartedApp, token: string): Promise<NativeClient> {
  const client = await NativeClient.connect(app.url, token)
  t.after(() => client.socket.terminate())
  return client
}

/** The client's TCP socket: paused, it reads nothing, so it never answers the server's close. */
function rawOf(client: NativeClient): { pause(): void } {
  return (client.socket as unknown as { _socket: { pause(): void } })._socket
}

/** `POST /v2/logout` with `token` as Bearer (its CSRF token fetched first): the token is revoked. */
async function logout(app: StartedApp, token: string): Promise<void> {
  const headers = { authorization: `Bearer ${token}` }
  const first = await fetch(`${app.url}/v2/logout`, { method: 'POST', headers })
  const csrf = first.headers.get('x-csrf-token') ?? ''
  const res = await fetch(`${app.url}/v2/logout`, {
    method: 'POST',
    headers: { ...headers, 'x-csrf-token': csrf },
  })
  assert.equal(res.status, 200, await res.text())
}

test('a revoked token’s connection presence ends at once, not at the socket’s close', async (t) => {
  const app = await start(t)
  const watcher = await connect(t, app, await app.tokens.issue(B))
  watcher.send({ type: 'subscribe', ids: [A] })
  assert.equal((await watcher.take()).type, 'snapshot')
  const token = await app.tokens.issue(A)
  const a = await connect(t, app, token)
  a.send({ type: 'heartbeat', activity: { kind: 'inGame', placeId: '1818' } })
  assert.equal((await watcher.take()).type, 'online')

  // A's client stops reading: the server's close is never answered (the socket ends after 5 s)
  rawOf(a).pause()
  const before = Date.now()
  await logout(app, token)
  const offline = await watcher.take(2000)
  assert.deepEqual([offline.type, offline.reason], ['offline', 'explicit'])
  assert.ok(Date.now() - before < 2000)
  const [after] = await app.service.rawPresences([A])
  assert.deepEqual(after!.sessions, [])
})

test('past its token’s expiry a connection sends no frame, even before the expiry timer runs', async (t) => {
  const app = await start(t)
  const token = await app.tokens.issue(A, { ttlSeconds: 3 })
  const expiresAt =
    (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp *
    1000
  const a = await connect(t, app, token)
  a.send({ type: 'subscribe', ids: [B] })
  assert.equal((await a.take()).type, 'snapshot')
  // just before the expiry, the loop is held past it (a loaded node runs its timers late), and a
  // change of a watched user comes before the connection's expiry timer has run
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now() - 200)))
  while (Date.now() <= expiresAt + 20) {
    // busy: the expiry passes while the loop is held
  }
  await app.service.heartbeat({
    userId: B,
    key: 'app',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online' },
  })
  assert.deepEqual(await a.closed, { code: 4001, reason: 'token expired' })
  assert.deepEqual(
    a.frames.map((f) => f.type),
    ['snapshot'],
    'no frame after the token expired',
  )
})
