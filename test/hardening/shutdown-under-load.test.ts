import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { WebSocket } from 'ws'
import type { UserId } from '../../src/core/user-id.js'
import { Tokens } from '../../src/service/tokens.js'
import { spawnServer } from '../helpers/spawn-server.js'

const ADMIN_KEY = 'shutdown-admin-key'
const SECRET = 'shutdown-token-secret-of-enough-length-0123'
const N = 30

/**
 * Complements test/integration/shutdown.test.ts (one in-flight request drained) and
 * durability.test.ts (writes made well before SIGTERM survive): here SIGTERM lands in the middle
 * of a burst of writes and with real-time subscribers connected.
 */
test('SIGTERM mid-burst: subscribers get 1001, exit 0, every acknowledged write survives', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-shutdown-load-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = {
    PRESENCED_DATA_DIR: dataDir,
    PRESENCED_ADMIN_KEY: ADMIN_KEY,
    PRESENCED_TOKEN_SECRET: SECRET,
  }
  const tokens = new Tokens(SECRET)
  const first = await spawnServer(t, env)

  // real-time subscribers, one of them present through its connection
  const sockets = await Promise.all(
    [1, 2, 3].map(async (i) => {
      const token = await tokens.issue(String(900 + i) as UserId)
      const socket = new WebSocket(
        `${first.url.replace('http', 'ws')}/api/v1/realtime?access_token=${token}`,
      )
      const closed = new Promise<number>((done) => socket.on('close', (code) => done(code)))
      await new Promise((done, fail) => {
        socket.once('message', done)
        socket.once('error', fail)
        socket.once('open', () =>
          socket.send(JSON.stringify({ type: 'subscribe', ids: ['1', '2', '901'] })),
        )
      })
      if (i === 1) {
        socket.send(JSON.stringify({ type: 'heartbeat', activity: { kind: 'online' } }))
      }
      return { socket, closed }
    }),
  )

  const call = async (method: string, path: string, body: unknown, headers = {}) => {
    try {
      const response = await fetch(first.url + path, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      })
      await response.arrayBuffer()
      return response.status
    } catch {
      return 0 // refused or reset: never acknowledged
    }
  }
  const admin = { 'x-api-key': ADMIN_KEY }
  const userTokens = await Promise.all(
    Array.from({ length: N }, (_, i) => tokens.issue(String(1000 + i) as UserId)),
  )
  const sentAt = Date.now()
  let acked = 0
  let signalled = false
  // N writers, each a stream of durable writes: SIGTERM lands once 40 were acknowledged
  const burst = Array.from({ length: N }, async (_, i) => {
    const id = String(1000 + i)
    const out = { id, settings: -1, place: -1, beat: -1 }
    for (const step of ['settings', 'place', 'beat'] as const) {
      out[step] =
        step === 'settings'
          ? await call('PUT', `/admin/v1/users/${id}/settings`, { visibility: 'nobody' }, admin)
          : step === 'place'
            ? await call('PUT', `/admin/v1/places/${id}`, { universeId: 7, name: `p${id}` }, admin)
            : await call(
                'POST',
                '/v1/presence/register-app-presence',
                { location: 'Website' },
                { authorization: `Bearer ${userTokens[i]}` },
              )
      if (out[step] === 200 && ++acked >= 40 && !signalled) {
        signalled = true
        first.child.kill('SIGTERM')
      }
    }
    return out
  })
  const results = await Promise.all(burst)
  assert.ok(signalled, 'SIGTERM was sent mid-burst')

  assert.deepEqual(
    await Promise.all(sockets.map((s) => s.closed)),
    [1001, 1001, 1001],
    'going away',
  )
  assert.equal(await first.exited, 0)
  const acknowledged = results
    .flatMap((r) => [r.settings, r.place, r.beat])
    .filter((s) => s === 200)
  t.diagnostic(`${acknowledged.length} of ${N * 3} writes acknowledged before the listener closed`)
  for (const r of results) {
    for (const status of [r.settings, r.place, r.beat]) {
      assert.ok([0, 200, 503].includes(status), `a write is acknowledged or refused: ${status}`)
    }
  }

  // second life on the same data dir: every acknowledged write is there
  const second = await spawnServer(t, env)
  t.after(() => second.stop())
  const get = async (path: string) => {
    const response = await fetch(second.url + path, { headers: admin })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }
  for (const r of results) {
    if (r.settings === 200) {
      const { body } = await get(`/admin/v1/users/${r.id}/settings`)
      assert.equal(body.visibility, 'nobody', `settings of ${r.id}`)
    }
    if (r.place === 200) {
      const { status, body } = await get(`/admin/v1/places/${r.id}`)
      assert.equal(status, 200, `place ${r.id}`)
      assert.equal(body.name, `p${r.id}`)
    }
    if (r.beat === 200) {
      const { body } = await get(`/admin/v1/users/${r.id}/presence`)
      assert.ok(
        typeof body.lastOnline === 'string' && Date.parse(body.lastOnline) >= sentAt - 1000,
        `lastOnline of ${r.id}: ${String(body.lastOnline)}`,
      )
    }
  }
  // the user present through a WebSocket: its lastOnline was flushed when the socket closed
  const { body } = await get('/admin/v1/users/901/presence')
  assert.ok(typeof body.lastOnline === 'string' && Date.parse(body.lastOnline) >= sentAt - 5000)
})
