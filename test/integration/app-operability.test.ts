import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseUserId, type UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import type { Stores } from '../../src/app/create-stores.js'
import { createStores } from '../../src/app/create-stores.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { startNodePair } from '../helpers/start-node-pair.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const uid = (s: string): UserId => parseUserId(s)!

/** The value of one sample line of the exposition text, or undefined when absent. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue
    const wanted = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))
    if (wanted) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

test('GET /healthz answers 200 while the process is up', async (t) => {
  const { app } = await startApp(t)
  const response = await app.inject('/healthz')
  assert.equal(response.statusCode, 200)
  assert.deepEqual(response.json(), { status: 'ok' })
})

test('GET / sends a browser to the dashboard, relative to where it asked', async (t) => {
  const { app } = await startApp(t)
  const response = await app.inject('/')
  assert.equal(response.statusCode, 302)
  assert.equal(response.headers.location, 'dashboard')
  const page = await app.inject(new URL(response.headers.location, 'http://host/').pathname)
  assert.equal(page.statusCode, 200)
  assert.match(String(page.headers['content-type']), /text\/html/)
  // only the root: other unknown paths stay 404
  assert.equal((await app.inject('/nothing-here')).statusCode, 404)
})

test('GET /readyz answers 200 with the store mode when the stores are ready', async (t) => {
  const { app } = await startApp(t)
  const response = await app.inject('/readyz')
  assert.equal(response.statusCode, 200)
  assert.deepEqual(response.json(), {
    status: 'ready',
    mode: 'embedded',
    presence: true,
    profiles: true,
  })
})

test('GET /readyz answers 503 JSON naming the store that is not ready', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-readyz-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const real = await createStores({ dataDir })
  // a presence store whose backend is down: ready() answers false (Redis would, when unreachable)
  const presence = Object.create(real.presence) as Stores['presence']
  presence.ready = () => Promise.resolve(false)
  presence.close = () => real.presence.close()
  const { app } = await startApp(t, { dataDir, stores: { ...real, presence } })
  const response = await app.inject('/readyz')
  assert.equal(response.statusCode, 503)
  assert.match(String(response.headers['content-type']), /application\/json/)
  assert.deepEqual(response.json(), {
    status: 'unavailable',
    mode: 'embedded',
    presence: false,
    profiles: true,
  })
})

test('an unknown route answers 404 in the error shape, without the query string', async (t) => {
  const { app } = await startApp(t)
  const response = await app.inject('/no/such/route?access_token=secret')
  assert.equal(response.statusCode, 404)
  assert.deepEqual(response.json(), {
    errors: [{ code: 0, message: 'No route for GET /no/such/route' }],
  })
})

test('GET /metrics reports requests, heartbeats, expiries, lateness and live counts', async (t) => {
  const clock = new ManualClock()
  const { app, service } = await startApp(t, { clock })
  // a route refusing with 429, as every rate limit does, to see the refusal counted
  app.get('/test/limited', async (_request, reply) => reply.code(429).send({ errors: [] }))

  for (let i = 0; i < 3; i++) assert.equal((await app.inject('/healthz')).statusCode, 200)
  assert.equal((await app.inject('/nope')).statusCode, 404)
  assert.equal((await app.inject('/test/limited')).statusCode, 429)

  const write = { source: 'app', deviceType: 'iOS', activity: { kind: 'online' } } as const
  await service.heartbeat({ ...write, userId: uid('1'), key: 'app:iOS', ttlMs: 1000 })
  await service.heartbeat({ ...write, userId: uid('1'), key: 'app:iOS', ttlMs: 1000 })
  await service.heartbeat({ ...write, userId: uid('2'), key: 'app:iOS', ttlMs: 60_000 })
  await service.heartbeat({ ...write, userId: uid('2'), key: 'app:PC', ttlMs: 60_000 })
  await service.endSession(uid('2'), 'app:PC')

  let text = (
    await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  ).body
  assert.equal(sample(text, 'presenced_live_sessions'), 2)
  assert.equal(sample(text, 'presenced_live_users'), 2)

  clock.advance(1500)
  assert.equal(await service.sweepExpired(), 1)

  const response = await app.inject({
    url: '/metrics',
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  })
  assert.equal(response.statusCode, 200)
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  text = response.body
  const http = 'presenced_http_request_duration_seconds_count'
  assert.equal(sample(text, http, { route: '/healthz', method: 'GET', status: '200' }), 3)
  assert.equal(sample(text, http, { route: 'unmatched', status: '404' }), 1)
  assert.equal(sample(text, http, { route: '/test/limited', status: '429' }), 1)
  assert.equal(sample(text, 'presenced_rate_limited_requests_total', { route: '/test/limited' }), 1)
  assert.equal(sample(text, 'presenced_heartbeats_total', { source: 'app' }), 4)
  assert.equal(sample(text, 'presenced_sessions_ended_total', { reason: 'explicit' }), 1)
  assert.equal(sample(text, 'presenced_expiries_total'), 1)
  assert.equal(sample(text, 'presenced_sweep_lateness_seconds_count'), 1)
  // the session expired at +1000 ms and was swept at +1500 ms
  assert.equal(sample(text, 'presenced_sweep_lateness_seconds_sum'), 0.5)
  assert.equal(sample(text, 'presenced_live_sessions'), 1)
  assert.equal(sample(text, 'presenced_live_users'), 1)
  // default process metrics are there too
  assert.ok(sample(text, 'process_resident_memory_bytes')! > 0)
  assert.ok(text.includes('nodejs_eventloop_lag_seconds'))
})

test('presenced_expiries_total counts an expiry a write ended before the sweep, once', async (t) => {
  const clock = new ManualClock()
  const { app, service } = await startApp(t, { clock })
  const write = { source: 'app', deviceType: 'iOS', activity: { kind: 'online' } } as const
  const metric = async (): Promise<number | undefined> =>
    sample(
      (await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_KEY}` } }))
        .body,
      'presenced_expiries_total',
    )
  await service.heartbeat({ ...write, userId: uid('1'), key: 'app:iOS', ttlMs: 1000 })
  await service.heartbeat({ ...write, userId: uid('2'), key: 'app:PC', ttlMs: 1000 })
  await service.heartbeat({ ...write, userId: uid('2'), key: 'app:iOS', ttlMs: 60_000 })
  await service.heartbeat({ ...write, userId: uid('3'), key: 'app:PC', ttlMs: 1000 })
  await service.heartbeat({ ...write, userId: uid('3'), key: 'app:iOS', ttlMs: 60_000 })
  clock.advance(1500)
  // expired, not swept: the same device beats again, another signs out, another refreshes
  await service.heartbeat({ ...write, userId: uid('1'), key: 'app:iOS', ttlMs: 1000 })
  await service.endSession(uid('2'), 'app:iOS')
  await service.heartbeat({ ...write, userId: uid('3'), key: 'app:iOS', ttlMs: 60_000 })
  assert.equal(await metric(), 3)
  // the sweep finds nothing of them: not counted again
  assert.equal(await service.sweepExpired(), 0)
  assert.equal(await metric(), 3)
  // one the sweep finds (user 1's new session) is counted as before
  clock.advance(1500)
  assert.equal(await service.sweepExpired(), 1)
  assert.equal(await metric(), 4)
  // a settings change that shows the user more ends the expired session first: counted once
  await service.putSettings(uid('4'), { visibility: 'nobody' })
  await service.heartbeat({ ...write, userId: uid('4'), key: 'app:PC', ttlMs: 1000 })
  clock.advance(1500)
  await service.putSettings(uid('4'), { visibility: 'everyone' })
  assert.equal(await metric(), 5)
  assert.equal(await service.sweepExpired(), 0)
  assert.equal(await metric(), 5)
})

test('presenced_expiries_total: an expiry a write ended counts on the node that wrote, not on one that heard it', async (t) => {
  const clock = new ManualClock(Date.now())
  const { a, b } = await startNodePair(t, 'expiries-metric', {}, { clock })
  const metric = async (
    node: StartedApp,
    name = 'presenced_expiries_total',
    labels: Record<string, string> = {},
  ): Promise<number | undefined> =>
    sample(
      (
        await node.app.inject({
          url: '/metrics',
          headers: { authorization: `Bearer ${ADMIN_KEY}` },
        })
      ).body,
      name,
      labels,
    )
  const write = { source: 'app', deviceType: 'iOS', activity: { kind: 'online' } } as const
  await a.service.heartbeat({ ...write, userId: uid('11'), key: 'app:iOS', ttlMs: 1000 })
  clock.advance(1500)
  // expired, not swept: the device beats again on a; b hears the change on the bus
  await a.service.heartbeat({ ...write, userId: uid('11'), key: 'app:iOS', ttlMs: 60_000 })
  const heard = async (): Promise<number> =>
    (await metric(b, 'presenced_bus_events_received_total', { type: 'presence' })) ?? 0
  const deadline = Date.now() + 10_000
  while ((await heard()) < 2) {
    assert.ok(Date.now() < deadline, 'b never heard both of a’s changes')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.equal(await metric(a), 1)
  assert.equal(await metric(b), 0)
  assert.equal(await b.service.sweepExpired(), 0)
  assert.equal(await a.service.sweepExpired(), 0)
  assert.equal(await metric(a), 1)
  assert.equal(await metric(b), 0)
})

test('each app has its own registry: metrics of one never show in another', async (t) => {
  const a = await startApp(t)
  const b = await startApp(t)
  await a.app.inject('/healthz')
  const text = (
    await b.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  ).body
  assert.equal(
    sample(text, 'presenced_http_request_duration_seconds_count', { route: '/healthz' }),
    undefined,
  )
})

test('GET /docs/json is an OpenAPI 3.1 document of the API routes, without ops routes', async (t) => {
  const { app } = await startApp(t)
  // a route as the protocols write them: int64 ids accepted as integer or string
  app.post(
    '/test/v1/things',
    {
      schema: {
        summary: 'A test route',
        body: {
          type: 'object',
          required: ['ids'],
          properties: { ids: { type: 'array', items: { type: ['integer', 'string'] } } },
        },
        response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } },
      },
    },
    async () => ({ ok: true }),
  )
  const response = await app.inject('/docs/json')
  assert.equal(response.statusCode, 200)
  const doc = response.json() as {
    openapi: string
    info: { title: string; version: string }
    paths: Record<string, Record<string, { requestBody?: unknown }>>
    components: { securitySchemes: Record<string, unknown> }
  }
  assert.equal(doc.openapi, '3.1.0')
  assert.equal(doc.info.title, 'presenced')
  assert.match(doc.info.version, /^\d+\.\d+\.\d+/)
  assert.ok(
    doc.paths['/test/v1/things']?.post?.requestBody,
    'the route and its body are documented',
  )
  assert.match(JSON.stringify(doc.paths['/test/v1/things']), /"type":\["integer","string"\]/)
  // the protocols' own routes are there
  assert.ok(doc.paths['/v1/presence/users']?.post, 'Roblox batch lookup')
  assert.ok(doc.paths['/v1/presence/register-app-presence']?.post, 'Roblox register')
  assert.ok(doc.paths['/admin/v1/places/{placeId}']?.put, 'admin places')
  for (const ops of ['/healthz', '/readyz', '/metrics', '/docs', '/docs/json']) {
    assert.equal(doc.paths[ops], undefined, `${ops} is not part of the API document`)
  }
  assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), [
    'apiKey',
    'bearerAuth',
    'robloxCookie',
    'xblAuth',
  ])
})

test('GET /docs serves the browsable UI and its assets', async (t) => {
  const { app } = await startApp(t)
  const page = await app.inject('/docs')
  assert.equal(page.statusCode, 200)
  assert.match(String(page.headers['content-type']), /text\/html/)
  assert.match(page.body, /swagger-ui/i)
  const script = await app.inject('/docs/static/swagger-ui-bundle.js')
  assert.equal(script.statusCode, 200)
  assert.ok(script.body.length > 10_000)
})
