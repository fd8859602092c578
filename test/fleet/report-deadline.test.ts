import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEADLINE_MS_PER_USER } from '../../src/store/redis/redis-connection.js'
import { pauseBefore } from '../helpers/pause-redis.js'
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
 * Timing is made, not assumed. The test's own redis-server pauses (CLIENT PAUSE, ended by Redis
 * itself) for longer than the timeout just before the report's first script, so a fixed timeout
 * fails however fast or idle the machine (before, the report's own work had to outlast a 100 ms
 * timeout). The timeout is the default 500 ms, and a 503 counts as a failure only when it came
 * before the grown deadline (500 + 0.2 ms x 10,000 from the scripts' sending): a machine too
 * loaded to apply the report at 5,000 players a second says so and skips, instead of failing by
 * chance, and the deadline not growing still fails (a 503 ~500 ms after the scripts).
 */

const TIMEOUT_MS = 500
const PAUSE_MS = TIMEOUT_MS + 200
const PLAYERS = 10_000
/**
 * A 503 this close to the deadline (measured from the pause, sent just after the first command's
 * timer was set) is the deadline reached, not a deadline that did not grow (a 503 at the timeout).
 */
const SETTLED = 0.9
const GAME = '5e2d7c3b-1a0f-4e9d-8c7b-6a5f4e3d2c1b'

test('fleet: a first 10,000-player report is answered 200 even when Redis takes longer than PRESENCED_REDIS_TIMEOUT over it', async (t) => {
  const redis = await privateRedis(t, 'report-deadline')
  const { app } = await startApp(t, {
    config: { redisUrl: redis.url, redisPrefix: 'report-deadline', redisTimeoutMs: TIMEOUT_MS },
  })
  const created = await app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'servers', scopes: ['presence:write', 'presence:read'] }),
  })
  assert.equal(created.statusCode, 201, created.body)
  const key = (created.json() as { secret: string }).secret
  const players = Array.from({ length: PLAYERS }, (_, i) => String(7_000_000_000 + i))
  // the report's scripts (the roster swap first, its key the server's) wait behind the pause;
  // the key's check before them does not
  const paused = pauseBefore(
    t,
    Number(new URL(redis.url).port),
    (name, args) => name.startsWith('eval') && String(args[2]).endsWith(`{g:${GAME}}:srv`),
    PAUSE_MS,
  )
  const started = performance.now()
  const put = await app.inject({
    method: 'PUT',
    url: `/api/v1/servers/${GAME}`,
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    payload: JSON.stringify({ placeId: 1818, universeId: 13058, players }),
  })
  // from the scripts' sending (the pause is sent just before them) to the answer
  const ms = performance.now() - (paused.at ?? started)
  t.diagnostic(
    `first report: ${put.statusCode} ${ms.toFixed(0)} ms after ${paused.at === undefined ? 'the request (no script sent)' : 'its scripts'}`,
  )
  const deadline = TIMEOUT_MS + PLAYERS * DEADLINE_MS_PER_USER
  if (put.statusCode === 503 && paused.at !== undefined && ms >= deadline * SETTLED) {
    t.skip(`inconclusive: the machine took ${ms.toFixed(0)} ms, past the ${deadline} ms deadline`)
    return
  }
  assert.ok(paused.at !== undefined, 'the pause was sent before the report')
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
