import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import type { UserId } from '../../src/core/user-id.js'
import { privateRedis } from '../helpers/redis-cluster.js'
import { ManualClock } from '../../src/service/clock.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { until } from './realtime-limits-kit.js'

/*
 * A game server's report or end is more than one Redis step in fleet mode (the roster, then the
 * sessions of the players who left). Redis lost between the steps must leave nothing a retry of
 * the same request cannot finish: the request is refused (503), the client sends it again (a
 * report is idempotent), and the players who left are gone, not shown on the server until their
 * sessions expire. Redis is made to hang at the exact step by a proxy in front of it.
 */

const GAME = '00000000-0000-4000-8000-00000000beef'
const STAYS = '9223372036854770001'
const LEAVES = '9223372036854770002'

async function fleetBehindProxy(
  t: TestContext,
): Promise<{ app: StartedApp; proxy: TcpProxy; redisUrl: string }> {
  const redis = await privateRedis(t, 'server-midway')
  const proxy = await startTcpProxy(t, Number(new URL(redis.url).port))
  const app = await startApp(t, {
    config: {
      redisUrl: `redis://127.0.0.1:${proxy.port}`,
      redisPrefix: 'server-midway:',
      sessionTtlSeconds: 600,
    },
  })
  return { app, proxy, redisUrl: redis.url }
}

async function serverKey(app: StartedApp): Promise<string> {
  const response = await app.app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY },
    payload: { name: 'server', scopes: ['presence:write', 'presence:read'] },
  })
  assert.equal(response.statusCode, 201, response.body)
  return (response.json() as { secret: string }).secret
}

/** The game server sessions of `ids` (empty when none), as an operator sees them. */
async function onServer(app: StartedApp, ids: string[]): Promise<boolean[]> {
  const presences = await app.service.rawPresences(ids as UserId[])
  return presences.map((p) => p.sessions.some((s) => s.key === `server:${GAME}`))
}

/** Sends `call` until it is answered other than 503 (a client retrying), once Redis is back. */
async function retried(call: () => Promise<{ statusCode: number; body: string }>) {
  const { value } = await until(
    async () => {
      const response = await call()
      return response.statusCode === 503 ? undefined : response
    },
    10_000,
    'served again',
  )
  return value
}

/** True for a chunk that carries `id` (a Redis command naming that user). */
const naming = (id: string) => (chunk: Buffer) => chunk.includes(id)

test('fleet: Redis lost between a report’s steps: the retry ends the sessions of the players who left', async (t) => {
  const { app, proxy, redisUrl } = await fleetBehindProxy(t)
  const key = await serverKey(app)
  const report = (players: string[]) =>
    app.app.inject({
      method: 'PUT',
      url: `/api/v1/servers/${GAME}`,
      headers: { 'x-api-key': key },
      payload: { placeId: '1818', players },
    })
  assert.equal((await report([STAYS, LEAVES])).statusCode, 200)
  assert.deepEqual(await onServer(app, [STAYS, LEAVES]), [true, true])

  // the next report lists STAYS only: Redis hangs at the step that ends LEAVES's session
  const stalled = proxy.stallWhen(naming(LEAVES))
  const refused = await report([STAYS])
  await stalled
  assert.equal(refused.statusCode, 503, refused.body)
  proxy.cut()

  const again = await retried(() => report([STAYS]))
  assert.equal(again.statusCode, 200, again.body)
  assert.deepEqual(await onServer(app, [STAYS, LEAVES]), [true, false], 'LEAVES left the server')
  const { players } = JSON.parse(
    (await app.app.inject({ url: `/api/v1/servers/${GAME}`, headers: { 'x-api-key': key } })).body,
  ) as { players: string[] }
  assert.deepEqual(players, [STAYS])
  // once their sessions are ended, the last report no longer keeps the players who left
  const reader = new Redis(redisUrl)
  t.after(() => reader.disconnect())
  const [rosterKey] = await reader.keys(`*{g:${GAME}}:srv`)
  const stored = JSON.parse((await reader.get(rosterKey!))!) as { p: string[]; l?: string[] }
  assert.deepEqual(stored.p, [STAYS])
  assert.equal(stored.l, undefined)
})

test('fleet: Redis lost between a server end’s steps: the retry ends its players', async (t) => {
  const { app, proxy } = await fleetBehindProxy(t)
  const key = await serverKey(app)
  const put = await app.app.inject({
    method: 'PUT',
    url: `/api/v1/servers/${GAME}`,
    headers: { 'x-api-key': key },
    payload: { placeId: '1818', players: [STAYS, LEAVES] },
  })
  assert.equal(put.statusCode, 200, put.body)
  const end = () =>
    app.app.inject({
      method: 'DELETE',
      url: `/api/v1/servers/${GAME}`,
      headers: { 'x-api-key': key },
    })

  // Redis hangs at the step that ends the players' sessions
  const stalled = proxy.stallWhen(naming(LEAVES))
  const refused = await end()
  await stalled
  assert.equal(refused.statusCode, 503, refused.body)
  proxy.cut()

  const again = await retried(end)
  assert.equal(again.statusCode, 200, again.body)
  assert.deepEqual(
    await onServer(app, [STAYS, LEAVES]),
    [false, false],
    'both left with the server',
  )
})

test('fleet: Redis lost right after a webhook is stored: it is answered 201, and a retry cannot register it twice', async (t) => {
  const { app, proxy } = await fleetBehindProxy(t)
  const { key } = await app.service.keys.create({ name: 'reader', scopes: ['presence:read'] })
  const url = 'http://127.0.0.1:9/registered-once'
  const create = () =>
    app.app.inject({
      method: 'POST',
      url: '/admin/v1/webhooks',
      headers: { 'x-api-key': ADMIN_KEY },
      payload: { url, keyId: key.id },
    })
  // every command after the one that stores the endpoint hangs
  let stored = false
  const stalled = proxy.stallWhen((chunk) => {
    if (stored) return true
    stored = chunk.includes(url)
    return false
  })
  const first = await create()
  await stalled
  proxy.cut()
  // a client retries what was refused, as the CLI and any operator would
  const answered = first.statusCode === 503 ? await retried(create) : first
  assert.equal(answered.statusCode, 201, answered.body)
  assert.equal(first.statusCode, 201, `the stored endpoint was refused: ${first.body}`)
  const { value: listed } = await until(
    async () => {
      const response = await app.app.inject({
        url: '/admin/v1/webhooks',
        headers: { 'x-api-key': ADMIN_KEY },
      })
      return response.statusCode === 200
        ? (response.json() as { webhooks: Array<{ url: string; scope: string }> }).webhooks
        : undefined
    },
    10_000,
    'the webhooks listed',
  )
  assert.deepEqual(
    listed.map((w) => w.url),
    [url],
  )
  assert.equal((first.json() as { scope: string }).scope, 'presence:read')
})

test('fleet: Redis lost between an unblock’s steps: the retry keeps what each side saw through the block', async (t) => {
  const BLOCKER = '9223372036854770011' as UserId
  const BLOCKED = '9223372036854770012' as UserId
  // whichever step Redis is lost at: the one removing the block, or the one keeping the sights
  const steps: Array<[string, (text: string) => boolean]> = [
    ['the block removed', (text) => text.includes('srem') && text.includes(`}:b:${BLOCKER}`)],
    ['the sights kept', (text) => text.includes('hset') && text.includes(`}:bs:${BLOCKER}`)],
  ]
  for (const [step, matches] of steps) {
    const redis = await privateRedis(t, 'unblock-midway')
    const proxy = await startTcpProxy(t, Number(new URL(redis.url).port))
    const clock = new ManualClock(Date.UTC(2026, 0, 1))
    const app = await startApp(t, {
      clock,
      config: { redisUrl: `redis://127.0.0.1:${proxy.port}`, redisPrefix: 'unblock-midway:' },
    })
    const session = { userId: BLOCKED, key: 'app', source: 'app', deviceType: 'PC' } as const
    await app.service.heartbeat({ ...session, activity: { kind: 'online' } })
    const blocks = (method: string) =>
      app.app.inject({
        method,
        url: `/admin/v1/users/${BLOCKER}/blocks/${BLOCKED}`,
        headers: { 'x-api-key': ADMIN_KEY },
      })
    // the blocker last saw the other online at the block; what the other did next it never saw
    const blockedAt = clock.now()
    assert.equal((await blocks('PUT')).statusCode, 204)
    clock.advance(5_000)
    await app.service.heartbeat({ ...session, activity: { kind: 'online' } })
    clock.advance(1_000)
    await app.service.endSession(BLOCKED, 'app')
    clock.advance(4_000)

    const stalled = proxy.stallWhen((chunk) => matches(chunk.toString('latin1').toLowerCase()))
    const refused = await blocks('DELETE')
    await stalled
    assert.equal(refused.statusCode, 503, `${step}: ${refused.body}`)
    proxy.cut()
    const again = await retried(() => blocks('DELETE'))
    assert.equal(again.statusCode, 204, `${step}: ${again.body}`)

    const [seen] = await app.service.lookup({ kind: 'user', userId: BLOCKER }, [BLOCKED])
    assert.equal(seen!.lastOnline, blockedAt, `${step}: the blocker sees what it saw, no more`)
  }
})
