import assert from 'node:assert/strict'
import { test } from 'node:test'
import { privateRedis } from '../helpers/redis-cluster.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/*
 * A game server's report of N players is applied by Redis as scripts queued one behind the other
 * (a roster swap and one script per bucket, 64 of them): the last one's reply comes once Redis has
 * done the whole report. A new player costs Redis tens of µs (a join writes a value, an index
 * entry, a history entry and a message), so a first report of 10,000 players kept it busy
 * ~300 ms on this machine, more under load. A deadline of PRESENCED_REDIS_TIMEOUT a command
 * answered 503 to a report Redis then applied whole: the client was told it failed, it had not.
 * A report's commands are given the timeout plus a time per player.
 *
 * The timeout here is 100 ms so that the first report outlasts it on an idle machine as the
 * default 500 ms did on a loaded one (a 10k-player report is ~300 ms of Redis alone).
 */

const GAME = '5e2d7c3b-1a0f-4e9d-8c7b-6a5f4e3d2c1b'

test('fleet: a first 10,000-player report is answered 200 even when Redis takes longer than PRESENCED_REDIS_TIMEOUT over it', async (t) => {
  const redis = await privateRedis(t, 'report-deadline')
  const { app } = await startApp(t, {
    config: { redisUrl: redis.url, redisPrefix: 'report-deadline', redisTimeoutMs: 100 },
  })
  const created = await app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'servers', scopes: ['presence:write', 'presence:read'] }),
  })
  assert.equal(created.statusCode, 201, created.body)
  const key = (created.json() as { secret: string }).secret
  const players = Array.from({ length: 10_000 }, (_, i) => String(7_000_000_000 + i))
  const started = performance.now()
  const put = await app.inject({
    method: 'PUT',
    url: `/api/v1/servers/${GAME}`,
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    payload: JSON.stringify({ placeId: 1818, universeId: 13058, players }),
  })
  t.diagnostic(
    `first report: ${put.statusCode} after ${(performance.now() - started).toFixed(0)} ms`,
  )
  // what the server was told must be what happened: the report is applied (below) so 200
  assert.equal(put.statusCode, 200, put.body)
  assert.equal((put.json() as { joined: number }).joined, 10_000)
  const roster = await app.inject({
    method: 'GET',
    url: `/api/v1/servers/${GAME}`,
    headers: { 'x-api-key': key },
  })
  assert.equal(roster.statusCode, 200, roster.body)
  assert.equal((roster.json() as { players: string[] }).players.length, 10_000)
  // and the server's end (10,000 leaves, as heavy) is answered as it is done too
  const ended = await app.inject({
    method: 'DELETE',
    url: `/api/v1/servers/${GAME}`,
    headers: { 'x-api-key': key },
  })
  assert.ok(ended.statusCode < 300, `${ended.statusCode} ${ended.body}`)
})
