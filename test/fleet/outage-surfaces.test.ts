import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import type { UserId } from '../../src/core/user-id.js'
import { privateRedis } from '../helpers/redis-cluster.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { SseClient, type SseEvent } from '../integration/sse-client.js'
import { until } from './realtime-limits-kit.js'

/*
 * Every write surface (and the reads beside them) while Redis is away or hangs: a 503 in the
 * protocol's own format within a bounded time, never a 500 and never a hang until the client's
 * timeout; and each serves again by itself once Redis is back. redis-outage.test.ts covers the
 * Roblox read and heartbeat of a fleet node; this covers the other surfaces, on an app in this
 * process (its stores are the fleet's: Redis only).
 */

type Format = 'roblox' | 'xbox' | 'record'

/** A durable Redis (AOF), as a fleet's runs: what was stored outlives a restart. */
const DURABLE = ['--appendonly', 'yes', '--appendfsync', 'always']

/** How often the dashboard's feeds send a keepalive (src/app/dashboard.ts). */
const FEED_KEEPALIVE_MS = 15_000

interface Surface {
  name: string
  format: Format
  /** The request, with the status it gets while Redis is up. */
  call: () => Promise<Response>
  ok: number
}

const USER = '9223372036854775800'
const FRIEND = '9223372036854775801'

async function surfacesOf(app: StartedApp): Promise<Surface[]> {
  const token = await app.tokens.issue(USER as UserId)
  const bearer = { authorization: `Bearer ${token}` }
  const xbl = {
    authorization: `XBL3.0 x=1;${token}`,
    'x-xbl-contract-version': '3',
    accept: 'application/json',
  }
  const admin = { 'x-api-key': ADMIN_KEY }
  const json = { 'content-type': 'application/json' }
  const { secret: writeKey } = await app.service.keys.create({
    name: 'servers',
    scopes: ['presence:write', 'presence:read'],
  })
  const { key: readKey } = await app.service.keys.create({
    name: 'reader',
    scopes: ['presence:read'],
  })
  const { webhook } = await app.service.webhooks.create({
    url: 'http://127.0.0.1:9/presence',
    keyId: readKey.id,
  })
  const server = { 'x-api-key': writeKey }
  const gameId = '00000000-0000-4000-8000-000000000001'
  const call =
    (method: string, path: string, headers: Record<string, string>, body?: unknown) => () =>
      fetch(app.url + path, {
        method,
        headers: body === undefined ? headers : { ...json, ...headers },
        body:
          body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      })
  const title = `/users/xuid(${USER})/devices/current/titles/current`
  return [
    // Xbox
    { name: 'Xbox title write', format: 'xbox', ok: 200, call: call('POST', title, xbl, {}) },
    { name: 'Xbox title DELETE', format: 'xbox', ok: 200, call: call('DELETE', title, xbl) },
    {
      name: 'Xbox cloak',
      format: 'xbox',
      ok: 200,
      call: call('PUT', `/users/xuid(${USER})/state`, xbl, { state: 'Active' }),
    },
    {
      name: 'Xbox batch',
      format: 'xbox',
      ok: 200,
      call: call('POST', '/users/batch', xbl, { users: [USER] }),
    },
    { name: 'Xbox me', format: 'xbox', ok: 200, call: call('GET', '/users/me', xbl) },
    // game servers
    {
      name: 'server report',
      format: 'record',
      ok: 200,
      call: call('PUT', `/api/v1/servers/${gameId}`, server, {
        placeId: '1818',
        players: [FRIEND],
      }),
    },
    {
      name: 'server read',
      format: 'record',
      ok: 200,
      call: call('GET', `/api/v1/servers/${gameId}`, server),
    },
    {
      name: 'server end',
      format: 'record',
      ok: 200,
      call: call('DELETE', `/api/v1/servers/${gameId}`, server),
    },
    // companion and the user's own settings
    {
      name: 'companion authenticated',
      format: 'roblox',
      ok: 200,
      call: call('GET', '/v1/users/authenticated', bearer),
    },
    {
      name: 'own settings write',
      format: 'roblox',
      ok: 200,
      call: call('PUT', '/v1/presence/settings', bearer, { visibility: 'friends' }),
    },
    // native
    {
      name: 'native SSE',
      format: 'record',
      ok: 200,
      call: call('GET', `/api/v1/realtime/sse?ids=${FRIEND}`, bearer),
    },
    // admin
    {
      name: 'admin place',
      format: 'record',
      ok: 200,
      call: call('PUT', '/admin/v1/places/1818', admin, { universeId: 99, name: 'Crossroads' }),
    },
    {
      name: 'admin title',
      format: 'record',
      ok: 200,
      call: call('PUT', '/admin/v1/titles/1717', admin, { name: 'Forza' }),
    },
    {
      name: 'admin settings',
      format: 'record',
      ok: 200,
      call: call('PUT', `/admin/v1/users/${USER}/settings`, admin, { invisible: false }),
    },
    {
      name: 'admin friends',
      format: 'record',
      ok: 204,
      call: call('PUT', `/admin/v1/users/${USER}/friends/${FRIEND}`, admin),
    },
    {
      name: 'admin unblock',
      format: 'record',
      ok: 204,
      call: call('DELETE', `/admin/v1/users/${USER}/blocks/${FRIEND}`, admin),
    },
    {
      name: 'admin user',
      format: 'record',
      ok: 200,
      call: call('PUT', `/admin/v1/users/${USER}`, admin, { name: 'ada' }),
    },
    {
      name: 'admin import',
      format: 'record',
      ok: 200,
      call: call(
        'POST',
        '/admin/v1/import',
        { ...admin, 'content-type': 'application/x-ndjson' },
        `{"type":"friends","a":"${USER}","b":"${FRIEND}"}\n`,
      ),
    },
    {
      name: 'admin key create',
      format: 'record',
      ok: 201,
      call: call('POST', '/admin/v1/keys', admin, { name: 'k', scopes: ['presence:read'] }),
    },
    {
      name: 'admin webhook create',
      format: 'record',
      ok: 201,
      call: call('POST', '/admin/v1/webhooks', admin, {
        url: 'http://127.0.0.1:9/other',
        keyId: readKey.id,
      }),
    },
    {
      name: 'admin webhook update',
      format: 'record',
      ok: 200,
      call: call('PATCH', `/admin/v1/webhooks/${webhook.id}`, admin, { description: 'x' }),
    },
    {
      name: 'admin webhook replay',
      format: 'record',
      ok: 200,
      call: call('POST', `/admin/v1/webhooks/${webhook.id}/deliveries/replay`, admin, {}),
    },
    {
      name: 'admin raw presence',
      format: 'record',
      ok: 200,
      call: call('GET', `/admin/v1/users/${USER}/presence`, admin),
    },
  ]
}

/**
 * Surfaces a full Redis serves: reads (their rate limits counted by the node itself meanwhile),
 * deletes, a replay of nothing.
 */
const FREES_OR_READS = new Set([
  'Xbox batch',
  'Xbox me',
  'server read',
  'server end',
  'companion authenticated',
  'admin webhook replay',
  'admin raw presence',
])

/** Asserts a 503 in `format`, answered within the bound. */
async function assertUnavailable(surface: Surface, t: TestContext): Promise<void> {
  const started = performance.now()
  const response = await surface.call()
  const text = await response.text()
  const ms = performance.now() - started
  t.diagnostic(`${surface.name}: ${response.status} in ${ms.toFixed(0)} ms`)
  assert.equal(response.status, 503, `${surface.name}: ${response.status} ${text.slice(0, 200)}`)
  // the 500 ms command timeout, not a TCP timeout; generous for a loaded machine
  assert.ok(ms < 3000, `${surface.name}: answered in ${ms.toFixed(0)} ms`)
  const body = JSON.parse(text) as Record<string, unknown>
  t.diagnostic(text.slice(0, 160))
  if (surface.format === 'roblox') {
    const errors = body.errors as Array<{ code: unknown; message: string }>
    assert.equal(errors.length, 1, surface.name)
    assert.equal(typeof errors[0]!.code, 'number', surface.name)
    assert.match(errors[0]!.message, /unavailable/i, surface.name)
  } else if (surface.format === 'xbox') {
    assert.equal(body.code, 1013, `${surface.name}: ${text}`)
    assert.match(String(body.description), /unavailable/i, surface.name)
  } else {
    const error = body.error as { code: string; message: string }
    assert.equal(error.code, 'STORE_UNAVAILABLE', `${surface.name}: ${text}`)
    assert.match(error.message, /unavailable/i, surface.name)
  }
}

/** Each surface's status while Redis is up (a stream's status is its answer: it is closed). */
async function statusOf(surface: Surface): Promise<number> {
  const response = await surface.call()
  if (response.headers.get('content-type')?.startsWith('text/event-stream')) {
    await response.body?.cancel()
  } else await response.arrayBuffer()
  return response.status
}

test('fleet: every surface answers 503 in its own format while Redis is away or hangs, and serves again', async (t) => {
  // durable (AOF), as a fleet's Redis runs: the keys and the webhook outlive the restart
  const redis = await privateRedis(t, 'outage-surfaces', DURABLE)
  const app = await startApp(t, {
    listen: true,
    config: {
      redisUrl: redis.url,
      redisPrefix: 'outage-surfaces:',
      xboxBurstMax: 10_000,
      xboxSustainMax: 10_000,
    },
  })
  const surfaces = await surfacesOf(app)
  for (const surface of surfaces) {
    assert.equal(await statusOf(surface), surface.ok, `${surface.name} with Redis up`)
  }

  await redis.stop()
  for (const surface of surfaces) await assertUnavailable(surface, t)

  await redis.start()
  await until(
    async () => ((await statusOf(surfaces[0]!)) === 200 ? true : undefined),
    10_000,
    'served again',
  )
  for (const surface of surfaces) {
    assert.equal(await statusOf(surface), surface.ok, `${surface.name} after Redis came back`)
  }

  // a Redis that is full (maxmemory reached, noeviction): it refuses writes with OOM, a 503 for
  // every write (not a 500); it still serves reads, and so do the nodes, each counting their rate
  // limits itself meanwhile
  const admin = new Redis(redis.url)
  admin.on('error', () => {})
  t.after(() => admin.disconnect())
  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  await admin.config('SET', 'maxmemory', '1')
  try {
    for (const surface of surfaces) {
      // what writes nothing, or only deletes (which Redis allows when full), is served as ever
      if (surface.name === 'native SSE') {
        const response = await surface.call()
        const reader = response.body!.getReader()
        const chunks: string[] = []
        const deadline = Date.now() + 3000
        while (Date.now() < deadline) {
          const next = await Promise.race([
            reader.read(),
            new Promise<undefined>((r) => setTimeout(r, 500)),
          ])
          if (next === undefined) continue
          if (next.done) break
          chunks.push(Buffer.from(next.value).toString())
        }
        await reader.cancel().catch(() => {})
        const text = chunks.join('')
        t.diagnostic(`SSE while full: ${response.status} ${JSON.stringify(text.slice(0, 120))}`)
        // a stream is reads: it opens with its snapshot (the fleet's count of it waits for room)
        assert.equal(response.status, 200, text)
        assert.match(text, /^retry: 2000\n\nid: [\w-]+\.1\ndata: \{"type":"snapshot"/, text)
        continue
      }
      if (FREES_OR_READS.has(surface.name)) {
        const status = await statusOf(surface)
        t.diagnostic(`${surface.name}: ${status} while full`)
        assert.ok(status < 500, `${surface.name}: ${status} while full`)
      } else await assertUnavailable(surface, t)
    }
    // a guessed credential is counted as well (by the node meanwhile): refused as it is, not a 503
    for (const authorization of ['Bearer not-a-token', 'XBL3.0 x=1;not-a-token']) {
      const guess = await fetch(`${app.url}/v1/presence/users`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ userIds: [USER] }),
        signal: AbortSignal.timeout(10_000),
      })
      const text = await guess.text()
      t.diagnostic(`guessed ${authorization.split(' ')[0]} while full: ${guess.status} ${text}`)
      assert.equal(guess.status, 401, text)
    }
  } finally {
    await admin.config('SET', 'maxmemory', '0')
  }
  for (const surface of surfaces) {
    assert.equal(await statusOf(surface), surface.ok, `${surface.name} once Redis has room`)
  }

  // a Redis that hangs instead of closing (SIGSTOP): each fails within the command timeout
  redis.process().kill('SIGSTOP')
  try {
    for (const surface of surfaces) await assertUnavailable(surface, t)
  } finally {
    redis.process().kill('SIGCONT')
  }
  await until(
    async () => ((await statusOf(surfaces[0]!)) === 200 ? true : undefined),
    10_000,
    'served again after SIGCONT',
  )
})

test('fleet: an admin feed opened with an admin-scoped key outlives a Redis outage and delivers after it', async (t) => {
  // durable (AOF): the key outlives the restart, as in a fleet's Redis
  const redis = await privateRedis(t, 'outage-feed', DURABLE)
  const app = await startApp(t, {
    listen: true,
    config: { redisUrl: redis.url, redisPrefix: 'outage-feed:' },
  })
  const { secret } = await app.service.keys.create({ name: 'ops', scopes: ['admin'] })
  const feed = await SseClient.get(`${app.url}/admin/v1/stats/feed`, { 'x-api-key': secret })
  t.after(() => feed.close())
  assert.equal(feed.status, 200)
  const beat = (userId: string) =>
    app.service.heartbeat({
      userId: userId as UserId,
      key: 'app:PC',
      source: 'app',
      deviceType: 'PC',
      activity: { kind: 'online' },
    })
  const about = (userId: string) => (event: SseEvent) =>
    JSON.stringify(event.data).includes(`"userId":"${userId}"`)
  await beat('7601')
  await feed.waitFor(about('7601'))

  // down for longer than the feed's keepalive, which checks the key again (the store can't tell)
  await redis.stop()
  await new Promise((resolve) => setTimeout(resolve, FEED_KEEPALIVE_MS + 1000))
  await redis.start()

  await until(
    async () => {
      try {
        await beat('7602')
        return true
      } catch {
        return undefined
      }
    },
    10_000,
    'a heartbeat once Redis is back',
  )
  const delivered = await feed.waitFor(about('7602'), 5000)
  assert.ok(delivered, 'the same stream delivers the change made after the outage')
  assert.deepEqual(
    feed.events.filter((e) => 'error' in e.data),
    [],
    'no error told: the key was never refused',
  )
})
