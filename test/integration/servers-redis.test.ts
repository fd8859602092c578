import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

const GAME = '5e2d7c3b-1a0f-4e9d-8c7b-6a5f4e3d2c1b'

/** Two nodes on the machine's Redis under a prefix of their own, sharing one manual clock. */
async function fleet(t: TestContext, settings: Partial<Config> = {}) {
  const prefix = uniquePrefix('servers')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  const clock = new ManualClock()
  const config = {
    redisUrl: LOCAL_REDIS_URL,
    redisPrefix: prefix,
    sessionTtlSeconds: 30,
    // not a test of timeouts: a 500-player report on a loaded machine may take longer than 500 ms
    redisTimeoutMs: 5000,
    ...settings,
  }
  const a = await startApp(t, { clock, config })
  const b = await startApp(t, { clock, config })
  const res = await a.app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'fleet', scopes: ['presence:write', 'presence:read'] }),
  })
  assert.equal(res.statusCode, 201, res.body)
  return { a, b, clock, prefix, key: (res.json() as { secret: string }).secret }
}

function put(app: FastifyInstance, key: string, players: unknown[], gameId = GAME) {
  return app.inject({
    method: 'PUT',
    url: `/api/v1/servers/${gameId}`,
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    payload: JSON.stringify({ placeId: 1818, universeId: 13058, players }),
  })
}

function roster(app: FastifyInstance, key: string) {
  return app.inject({
    method: 'GET',
    url: `/api/v1/servers/${GAME}`,
    headers: { 'x-api-key': key },
  })
}

test('fleet: a report on node A is the roster on node B; B applies the next one', async (t) => {
  const { a, b, key } = await fleet(t)
  const heard: string[] = []
  b.stores.bus.subscribe((event) => {
    if (event.type === 'presence')
      heard.push(`${event.change.userId}:${event.change.reason ?? '+'}`)
  })
  const players = Array.from({ length: 500 }, (_, i) => String(9_007_199_254_740_000 + i))
  const first = await put(a.app, key, players)
  assert.equal(first.statusCode, 200, first.body)
  assert.equal(first.json().joined, 500)
  const listed = await roster(b.app, key)
  assert.equal(listed.statusCode, 200)
  assert.deepEqual([...listed.json().players].sort(), [...players].sort())

  const next = await put(b.app, key, players.slice(0, 100))
  assert.deepEqual([next.json().joined, next.json().left], [0, 400])
  const presences = await a.service.rawPresences([players[0], players[499]] as UserId[])
  assert.deepEqual(
    presences.map((p) => p.sessions.length),
    [1, 0],
  )
  // node B's bus carried A's joins (from Redis) and its own leaves
  await waitFor(() => heard.length >= 900)
  assert.equal(heard.filter((h) => h.endsWith(':+')).length, 500)
  assert.equal(heard.filter((h) => h.endsWith(':explicit')).length, 400)
})

test('fleet: bad input leaves Redis untouched; a lost server expires as server_lost', async (t) => {
  const { a, b, clock, key } = await fleet(t)
  await put(a.app, key, ['1', '2', '3'])
  const snapshot = async () =>
    JSON.stringify([
      await a.service.rawPresences(['1', '2', '3', '4'] as UserId[]),
      await a.stores.presence.stats(clock.now()),
      (await roster(a.app, key)).json(),
    ])
  const before = await snapshot()
  for (const players of [['4', '0'], ['4', '4'], Array.from({ length: 10_001 }, (_, i) => i + 1)]) {
    assert.equal((await put(a.app, key, players)).statusCode, 400)
  }
  assert.equal(await snapshot(), before)

  const ended: string[] = []
  a.stores.bus.subscribe((event) => {
    if (event.type === 'presence') ended.push(`${event.change.userId}:${event.change.reason}`)
  })
  clock.advance(30_000)
  assert.equal((await roster(b.app, key)).statusCode, 404)
  // whichever node sweeps first (their timers run too) claims them, exactly once
  await b.service.sweepExpired()
  await waitFor(() => ended.length >= 3)
  assert.deepEqual(ended.sort(), ['1:server_lost', '2:server_lost', '3:server_lost'])
  assert.deepEqual(await a.stores.presence.stats(clock.now()), { sessions: 0, users: 0 })
})

async function waitFor(done: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

test('fleet: the request budget of a key and game server is shared by every node', async (t) => {
  const { a, b, key } = await fleet(t, { serverRateLimitMax: 2 })
  assert.equal((await put(a.app, key, ['1'])).statusCode, 200)
  assert.equal((await put(b.app, key, ['1', '2'])).statusCode, 200)
  const refused = await put(a.app, key, ['3'])
  assert.equal(refused.statusCode, 429, refused.body)
  assert.equal(refused.json().error.code, 'RATE_LIMITED')
  assert.ok(Number(refused.headers['retry-after']) >= 1)
  assert.equal((await put(b.app, key, ['3'])).statusCode, 429)
})

test('fleet: the budget of a key over all its game servers is shared by every node', async (t) => {
  const { a, b, key } = await fleet(t, { serverRateLimitMax: 2, serverKeyRateLimitMax: 3 })
  const other = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222']
  assert.equal((await put(a.app, key, ['1'])).statusCode, 200)
  assert.equal((await put(b.app, key, ['2'], other[0])).statusCode, 200)
  assert.equal((await put(a.app, key, ['3'], other[1])).statusCode, 200)
  // a fourth server, on either node: the key's 3 are spent fleet-wide
  const fourth = '33333333-3333-4333-8333-333333333333'
  const refused = await put(b.app, key, ['4'], fourth)
  assert.equal(refused.statusCode, 429, refused.body)
  assert.equal(refused.json().error.code, 'RATE_LIMITED')
  assert.ok(Number(refused.headers['retry-after']) >= 1)
  assert.equal((await put(a.app, key, ['4'], fourth)).statusCode, 429)
})
