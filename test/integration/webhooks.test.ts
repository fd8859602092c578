import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../src/app/config.js'
import { ManualClock } from '../../src/service/clock.js'
import { prometheusSamples } from '../helpers/prometheus.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { FAST_WEBHOOKS } from '../helpers/webhook-endpoint.js'
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js'
import { REGISTER, USERS, bearer, post } from './roblox-helpers.js'

const admin = { 'x-api-key': ADMIN_KEY }

async function call(app: FastifyInstance, method: string, url: string, body?: unknown) {
  const response = await app.inject({
    method: method as 'GET',
    url,
    headers: body === undefined ? admin : { ...admin, 'content-type': 'application/json' },
    ...(body !== undefined && { payload: JSON.stringify(body) }),
  })
  assert.ok(response.statusCode < 500, `no 5xx: ${response.statusCode} ${response.body}`)
  return response
}

async function createKey(
  app: FastifyInstance,
  scopes: string[],
): Promise<{ id: string; secret: string }> {
  const response = await call(app, 'POST', '/admin/v1/keys', { name: 'hook', scopes })
  assert.equal(response.statusCode, 201, response.body)
  return response.json()
}

interface Hook {
  id: string
  secret: string
}

async function createHook(
  app: FastifyInstance,
  receiver: WebhookReceiver,
  keyId: string,
  extra: Record<string, unknown> = {},
): Promise<Hook> {
  const response = await call(app, 'POST', '/admin/v1/webhooks', {
    url: receiver.url,
    keyId,
    ...extra,
  })
  assert.equal(response.statusCode, 201, response.body)
  const hook = response.json() as Hook
  receiver.secret = hook.secret
  return hook
}

async function setup(t: TestContext, config: Partial<Config> = {}) {
  const presenced = await startApp(t, { config: { ...FAST_WEBHOOKS, ...config } })
  const receiver = await startReceiver(t)
  return { presenced, receiver }
}

/** register-app-presence as user `id` (online, in `placeId` if given); disconnect ends it. */
async function register(
  presenced: StartedApp,
  id: string,
  body: { placeId?: number | string; location?: string; disconnect?: boolean } = {},
): Promise<void> {
  const response = await post(
    presenced.app,
    REGISTER,
    { location: 'Lobby', disconnect: false, ...body },
    await bearer(presenced.tokens, id),
  )
  assert.equal(response.statusCode, 200, response.body)
}

/** Waits until nothing is left in the webhook's queue (in flight included). */
async function drained(app: FastifyInstance, id: string): Promise<void> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const { queued } = (await call(app, 'GET', `/admin/v1/webhooks/${id}`)).json()
    if (queued === 0) return
    assert.ok(Date.now() < deadline, `${queued} events still queued`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function eventsOf(receiver: WebhookReceiver, userId: string) {
  return receiver.accepted.filter((r) => r.event.userId === userId).map((r) => r.event)
}

test('admin: create shows the secret once, list and get never; update, rotate, delete', async (t) => {
  const { presenced, receiver } = await setup(t)
  const { app } = presenced
  const key = await createKey(app, ['presence:read'])
  const created = await call(app, 'POST', '/admin/v1/webhooks', {
    url: receiver.url,
    keyId: key.id,
    events: ['online', 'offline', 'online'],
    filter: { universes: ['9007199254740993'], users: [12, '9223372036854775807'] },
    description: 'matchmaker',
  })
  assert.equal(created.statusCode, 201, created.body)
  const hook = created.json()
  assert.match(hook.id, /^[0-9a-f]{16}$/)
  assert.match(hook.secret, /^whsec_[A-Za-z0-9_-]{43}$/)
  assert.equal(hook.scope, 'presence:read')
  assert.deepEqual(hook.events, ['online', 'offline'])
  assert.deepEqual(hook.filter, {
    universes: ['9007199254740993'],
    titles: [],
    users: ['12', '9223372036854775807'],
  })
  assert.equal(hook.enabled, true)

  const list = await call(app, 'GET', '/admin/v1/webhooks')
  assert.equal(list.statusCode, 200)
  assert.ok(!list.body.includes(hook.secret), 'the secret is never listed')
  const { secret, ...listed } = hook
  void secret
  assert.deepEqual(list.json(), { webhooks: [listed] })

  const one = await call(app, 'GET', `/admin/v1/webhooks/${hook.id}`)
  assert.equal(one.statusCode, 200)
  assert.ok(!one.body.includes(hook.secret))
  assert.deepEqual(one.json(), { ...listed, queued: 0, parked: 0, delivering: true })

  const disabled = await call(app, 'PATCH', `/admin/v1/webhooks/${hook.id}`, {
    enabled: false,
    events: ['update'],
  })
  assert.equal(disabled.statusCode, 200, disabled.body)
  assert.equal(disabled.json().enabled, false)
  assert.deepEqual(disabled.json().events, ['update'])
  assert.equal(disabled.json().secret, undefined)

  const rotated = await call(app, 'PATCH', `/admin/v1/webhooks/${hook.id}`, { rotateSecret: true })
  assert.match(rotated.json().secret, /^whsec_/)
  assert.notEqual(rotated.json().secret, hook.secret)
  const chosen = await call(app, 'PATCH', `/admin/v1/webhooks/${hook.id}`, {
    secret: 'my-own-secret-of-20-chars',
  })
  assert.equal(chosen.statusCode, 200)
  assert.equal(chosen.json().secret, undefined, 'a secret the operator chose is not echoed')

  const deleted = await call(app, 'DELETE', `/admin/v1/webhooks/${hook.id}`)
  assert.equal(deleted.statusCode, 204)
  assert.equal((await call(app, 'GET', `/admin/v1/webhooks/${hook.id}`)).statusCode, 404)
  assert.equal((await call(app, 'DELETE', `/admin/v1/webhooks/${hook.id}`)).statusCode, 404)
})

test('admin: bad input is a 400 in the admin error shape, unknown ids a 404', async (t) => {
  const { presenced, receiver } = await setup(t)
  const { app } = presenced
  const reader = await createKey(app, ['presence:read'])
  const writer = await createKey(app, ['presence:write'])
  const revoked = await createKey(app, ['presence:read'])
  await call(app, 'DELETE', `/admin/v1/keys/${revoked.id}`)
  const ok = { url: receiver.url, keyId: reader.id }
  const cases: Array<[unknown, RegExp]> = [
    [{ ...ok, url: 'ftp://example.com/hook' }, /http or https/],
    [{ ...ok, url: 'file:///etc/passwd' }, /http or https/],
    [{ ...ok, url: 'gopher://127.0.0.1:6379/_FLUSHALL' }, /http or https/],
    [{ ...ok, url: 'not a url' }, /not a URL/],
    [{ ...ok, url: 'https://user:pw@example.com/' }, /credentials/],
    [{ ...ok, url: `https://example.com/${'a'.repeat(2100)}` }, /url/],
    [{ ...ok, keyId: 'nope' }, /names no API key/],
    [{ ...ok, keyId: '0123456789abcdef' }, /names no API key/],
    [{ ...ok, keyId: writer.id }, /cannot read presence/],
    [{ ...ok, keyId: revoked.id }, /revoked or expired/],
    [{ ...ok, events: ['joined'] }, /events/],
    [{ ...ok, events: [] }, /events/],
    [{ ...ok, filter: { users: [0] } }, /64-bit/],
    [{ ...ok, filter: { users: ['9223372036854775808'] } }, /64-bit/],
    [{ ...ok, filter: { titles: ['4294967296'] } }, /title id/],
    [{ ...ok, filter: { places: [1] } }, /must NOT have additional properties/],
    [{ ...ok, secret: 'short' }, /secret must be/],
    [{ ...ok, secret: 'has spaces in it, sixteen+' }, /secret must be/],
    [{ ...ok, enabled: 'yes' }, /boolean/],
    [{ ...ok, color: 'red' }, /additional properties/],
    [{ url: receiver.url }, /keyId/],
  ]
  for (const [body, message] of cases) {
    const response = await call(app, 'POST', '/admin/v1/webhooks', body)
    assert.equal(response.statusCode, 400, `${JSON.stringify(body).slice(0, 80)}: ${response.body}`)
    const { error } = response.json()
    assert.match(error.code, /^(INVALID_REQUEST|USER_ID_INVALID)$/, response.body)
    assert.match(error.message, message, JSON.stringify(body).slice(0, 80))
  }
  const notJson = await app.inject({
    method: 'POST',
    url: '/admin/v1/webhooks',
    headers: { ...admin, 'content-type': 'text/plain' },
    payload: 'url=x',
  })
  assert.equal(notJson.statusCode, 415)

  const hook = await createHook(app, receiver, reader.id)
  const base = `/admin/v1/webhooks/${hook.id}`
  for (const body of [
    {},
    { rotateSecret: true, secret: 'another-secret-of-20-chars' },
    { keyId: reader.id },
  ]) {
    const response = await call(app, 'PATCH', base, body)
    assert.equal(response.statusCode, 400, response.body)
    assert.equal(response.json().error.code, 'INVALID_REQUEST')
  }
  for (const query of ['state=lost', 'limit=0', 'limit=1001', 'limit=ten', 'page=2']) {
    const response = await call(app, 'GET', `${base}/deliveries?${query}`)
    assert.equal(response.statusCode, 400, query)
    assert.equal(response.json().error.code, 'INVALID_REQUEST')
  }
  const badReplay = await call(app, 'POST', `${base}/deliveries/replay`, { eventIds: 'all' })
  assert.equal(badReplay.statusCode, 400)
  for (const [method, url] of [
    ['GET', '/admin/v1/webhooks/0123456789abcdef'],
    ['GET', '/admin/v1/webhooks/..%2Fkeys'],
    ['PATCH', '/admin/v1/webhooks/0123456789abcdef'],
    ['GET', '/admin/v1/webhooks/0123456789abcdef/deliveries'],
    ['POST', '/admin/v1/webhooks/0123456789abcdef/deliveries/replay'],
  ] as const) {
    const response = await call(
      app,
      method,
      url,
      method === 'PATCH' ? { enabled: true } : undefined,
    )
    assert.equal(response.statusCode, 404, `${method} ${url}: ${response.body}`)
    assert.equal(response.json().error.code, 'NOT_FOUND')
  }
  const anonymous = await app.inject({ method: 'GET', url: '/admin/v1/webhooks' })
  assert.equal(anonymous.statusCode, 401)
  const asReader = await app.inject({
    method: 'GET',
    url: '/admin/v1/webhooks',
    headers: { 'x-api-key': reader.secret },
  })
  assert.equal(asReader.statusCode, 403)
})

test('each change arrives once, signed, in order and promptly; a refresh sends nothing', async (t) => {
  const { presenced, receiver } = await setup(t, { sessionTtlSeconds: 1, sweepIntervalMs: 50 })
  const { app } = presenced
  await call(app, 'PUT', '/admin/v1/places/1818', { universeId: '13058', name: 'Crossroads' })
  const key = await createKey(app, ['presence:read:private'])
  const hook = await createHook(app, receiver, key.id)
  const user = '9007199254740993'

  const started = Date.now()
  await register(presenced, user, { placeId: 1818 })
  await register(presenced, user, { placeId: 1818 }) // a refresh: nothing visible changed
  await register(presenced, user, { location: 'Menu' })
  await register(presenced, user, { disconnect: true })
  await register(presenced, '42')
  // '42' stops beating: its session expires after 1 s and the janitor makes it offline
  await receiver.until(() => receiver.accepted.length >= 5, 15_000, '5 events')

  const events = eventsOf(receiver, user)
  assert.deepEqual(
    events.map((e) => e.type),
    ['online', 'update', 'offline'],
  )
  const [online, update, offline] = events
  assert.equal(online!.webhookId, hook.id)
  assert.equal(online!.presence.userId, user)
  assert.equal(online!.presence.state, 'inGame')
  assert.deepEqual(online!.presence.sessions[0]!.activity, {
    kind: 'inGame',
    placeId: '1818',
    universeId: '13058',
    rootPlaceId: '1818',
    location: 'Crossroads',
  })
  assert.equal(update!.presence.state, 'online')
  assert.equal(offline!.presence.state, 'offline')
  assert.equal(offline!.reason, 'explicit')
  assert.equal(online!.reason, undefined)
  assert.deepEqual(
    eventsOf(receiver, '42').map((e) => [e.type, e.reason]),
    [
      ['online', undefined],
      ['offline', 'timeout'],
    ],
  )

  for (const request of receiver.requests) {
    assert.ok(request.signatureOk, 'every signature verifies')
    assert.equal(request.attempt, 1)
    assert.equal(request.event.id, request.eventId)
    assert.ok(Math.abs(request.timestamp - request.at / 1000) < 60, 'timestamp is now')
    // not before the change, and promptly after it (the bound is generous: the machine is busy)
    const occurred = Date.parse(request.event.occurredAt)
    assert.ok(occurred >= started - 1000 && request.at >= occurred - 5)
    assert.ok(request.at - occurred < 5000, `delivered ${request.at - occurred} ms after`)
  }
  assert.equal(new Set(receiver.requests.map((r) => r.eventId)).size, 5, 'each event once')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(receiver.requests.length, 5, 'and nothing more')
})

test('a presence:read webhook sees what its key reads: invisible is offline, friends-only has no place', async (t) => {
  const { presenced, receiver } = await setup(t)
  const { app } = presenced
  const reader = await createKey(app, ['presence:read'])
  const privateKey = await createKey(app, ['presence:read:private'])
  const publicHook = await createHook(app, receiver, reader.id)
  const privateReceiver = await startReceiver(t)
  await createHook(app, privateReceiver, privateKey.id)
  await call(app, 'PUT', '/admin/v1/places/1818', { universeId: '13058', name: 'Crossroads' })
  const [hidden, friendsOnly, turning, sentinel] = ['101', '102', '103', '104']
  await call(app, 'PUT', `/admin/v1/users/${hidden}/settings`, { invisible: true })
  await call(app, 'PUT', `/admin/v1/users/${friendsOnly}/settings`, { visibility: 'friends' })

  await register(presenced, hidden, { placeId: 1818 })
  await register(presenced, friendsOnly, { placeId: 1818 })
  await register(presenced, turning, { placeId: 1818 })
  await call(app, 'PUT', `/admin/v1/users/${turning}/settings`, { invisible: true })
  await register(presenced, hidden, { location: 'Menu' })
  await register(presenced, sentinel)

  await privateReceiver.until(() => privateReceiver.accepted.length >= 5, 15_000, 'private events')
  await receiver.until(() => eventsOf(receiver, sentinel).length === 1, 15_000, 'the sentinel')
  await presenced.service.webhooks.idle()
  await drained(app, publicHook.id)

  assert.deepEqual(eventsOf(receiver, hidden), [], 'an invisible user never comes online')
  const read = await post(app, USERS, { userIds: [hidden] }, { 'x-api-key': reader.secret })
  assert.equal(read.json().userPresences[0].userPresenceType, 0, 'as the HTTP read says')

  const [friends] = eventsOf(receiver, friendsOnly)
  assert.equal(friends!.type, 'online')
  assert.equal(friends!.presence.locationHidden, true)
  assert.deepEqual(friends!.presence.sessions[0]!.activity, { kind: 'inGame' })

  assert.deepEqual(
    eventsOf(receiver, turning).map((e) => [e.type, e.reason]),
    [
      ['online', undefined],
      ['offline', 'explicit'],
    ],
  )
  // the private key sees through privacy settings, as it does on the HTTP read
  assert.deepEqual(
    eventsOf(privateReceiver, hidden).map((e) => [e.type, e.presence.state]),
    [
      ['online', 'inGame'],
      ['update', 'online'],
    ],
  )
  assert.equal(eventsOf(privateReceiver, friendsOnly)[0]!.presence.locationHidden, false)
  assert.deepEqual(
    eventsOf(privateReceiver, turning).map((e) => e.type),
    ['online'],
  )
})

test('filters: events, universes and users', async (t) => {
  const { presenced, receiver } = await setup(t)
  const { app } = presenced
  await call(app, 'PUT', '/admin/v1/places/1818', { universeId: '13058', name: 'Crossroads' })
  await call(app, 'PUT', '/admin/v1/places/2020', { universeId: '777', name: 'Elsewhere' })
  const key = await createKey(app, ['presence:read'])
  await createHook(app, receiver, key.id, {
    events: ['online'],
    filter: { universes: ['13058'] },
  })
  const byUser = await startReceiver(t)
  await createHook(app, byUser, key.id, { filter: { users: ['202'] } })

  await register(presenced, '201', { placeId: 2020 })
  await register(presenced, '202', { placeId: 1818 })
  await register(presenced, '202', { disconnect: true })
  await register(presenced, '203', { placeId: 1818 })
  await receiver.until(() => receiver.accepted.length >= 2, 15_000, 'filtered events')
  await byUser.until(() => byUser.accepted.length >= 2, 15_000, 'user events')
  await presenced.service.webhooks.idle()
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(
    receiver.accepted.map((r) => [r.event.userId, r.event.type]),
    [
      ['202', 'online'],
      ['203', 'online'],
    ],
  )
  assert.deepEqual(
    byUser.accepted.map((r) => [r.event.userId, r.event.type]),
    [
      ['202', 'online'],
      ['202', 'offline'],
    ],
  )
})

test('a receiver failing its first tries gets every event later, in order per user', async (t) => {
  const { presenced, receiver } = await setup(t, { webhookAttempts: 10 })
  const key = await createKey(presenced.app, ['presence:read:private'])
  await createHook(presenced.app, receiver, key.id)
  const tries = new Map<string, number>()
  receiver.answer = (r) => {
    const n = (tries.get(r.eventId) ?? 0) + 1
    tries.set(r.eventId, n)
    return n <= 2 ? 503 : 200
  }
  const users = ['1', '2', '3']
  for (let round = 0; round < 4; round++) {
    for (const user of users) await register(presenced, user, { location: `room ${round}` })
  }
  for (const user of users) await register(presenced, user, { disconnect: true })
  await receiver.until(() => receiver.accepted.length === 15, 20_000, '15 deliveries')
  for (const user of users) {
    const events = eventsOf(receiver, user)
    assert.deepEqual(
      events.map((e) => e.type),
      ['online', 'update', 'update', 'update', 'offline'],
    )
    assert.deepEqual(
      events.map((e) => e.presence.sessions[0]?.activity.location ?? null),
      ['room 0', 'room 1', 'room 2', 'room 3', null],
    )
  }
  for (const accepted of receiver.accepted) assert.equal(accepted.attempt, 3)
  assert.equal(receiver.requests.length, 45)
  // a later event of a user never reached the receiver before an earlier one was accepted
  for (const user of users) {
    const seen = receiver.requests.filter((r) => r.event.userId === user)
    const order = [...new Set(seen.map((r) => r.eventId))]
    let done = 0
    for (const request of seen) {
      const index = order.indexOf(request.eventId)
      assert.ok(index <= done, 'no overtaking')
      if (request.status === 200) done = index + 1
    }
  }
})

test('after its last try an event is parked, listed, and delivered again on replay', async (t) => {
  const { presenced, receiver } = await setup(t, { webhookAttempts: 3 })
  const { app } = presenced
  const key = await createKey(app, ['presence:read:private'])
  const hook = await createHook(app, receiver, key.id)
  receiver.answer = () => 500
  await register(presenced, '7', { location: 'A' })
  await register(presenced, '8', { location: 'B' })
  const base = `/admin/v1/webhooks/${hook.id}`
  const deadline = Date.now() + 15_000
  let parked: Array<Record<string, unknown>> = []
  while (parked.length < 2 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    parked = (await call(app, 'GET', `${base}/deliveries?state=parked`)).json().deliveries
  }
  assert.equal(parked.length, 2)
  for (const delivery of parked) {
    assert.equal(delivery.state, 'parked')
    assert.equal(delivery.attempts, 3)
    assert.equal(delivery.lastError, 'HTTP 500')
    assert.equal(delivery.type, 'online')
    assert.equal((delivery.event as { id: string }).id, delivery.eventId)
  }
  assert.equal(receiver.requests.length, 6)
  const details = (await call(app, 'GET', base)).json()
  assert.equal(details.parked, 2)
  assert.equal(details.queued, 0)

  receiver.answer = () => 200
  const one = await call(app, 'POST', `${base}/deliveries/replay`, {
    eventIds: [parked[1]!.eventId],
  })
  assert.deepEqual(one.json(), { replayed: 1 })
  await receiver.until(() => receiver.accepted.length === 1, 10_000, 'the replayed event')
  assert.equal(receiver.accepted[0]!.eventId, parked[1]!.eventId)
  assert.equal(receiver.accepted[0]!.attempt, 1, 'a replay starts its tries afresh')
  const rest = await app.inject({
    method: 'POST',
    url: `${base}/deliveries/replay`,
    headers: admin,
  })
  assert.deepEqual(rest.json(), { replayed: 1 })
  await receiver.until(() => receiver.accepted.length === 2, 10_000, 'the rest')
  assert.equal(
    (await call(app, 'GET', `${base}/deliveries?state=parked`)).json().deliveries.length,
    0,
  )
})

test('revoking the key stops deliveries, queued ones included; disabling stops new events', async (t) => {
  const { presenced, receiver } = await setup(t, { webhookAttempts: 100 })
  const { app } = presenced
  const key = await createKey(app, ['presence:read:private'])
  const hook = await createHook(app, receiver, key.id)
  receiver.answer = () => 503
  await register(presenced, '5')
  await receiver.until(() => receiver.requests.length >= 2, 10_000, 'retries')
  await call(app, 'DELETE', `/admin/v1/keys/${key.id}`)
  // the revocation reaches the webhook registry within its refresh (1 s)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  receiver.answer = () => 200
  await register(presenced, '6')
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.deepEqual(receiver.accepted, [])
  const details = (await call(app, 'GET', `/admin/v1/webhooks/${hook.id}`)).json()
  assert.equal(details.scope, null)
  assert.equal(details.queued, 0, 'events made for the revoked key were dropped')

  const other = await createKey(app, ['presence:read'])
  const second = await startReceiver(t)
  const disabledHook = await createHook(app, second, other.id, { enabled: false })
  await register(presenced, '9')
  await presenced.service.webhooks.idle()
  const disabled = (await call(app, 'GET', `/admin/v1/webhooks/${disabledHook.id}`)).json()
  assert.equal(disabled.queued, 0)
  assert.equal(disabled.delivering, false)
})

test('what a revoked admin key made or redirected stops delivering, whatever key it is bound to', async (t) => {
  const { presenced, receiver: kept } = await setup(t)
  const { app } = presenced
  const as = (key: string, method: string, url: string, body?: unknown) =>
    app.inject({
      method: method as 'GET',
      url,
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      ...(body !== undefined && { payload: JSON.stringify(body) }),
    })
  const read = await createKey(app, ['presence:read'])
  const leaked = await createKey(app, ['admin'])
  const made = await startReceiver(t)
  const boundToChild = await startReceiver(t)
  const redirected = await startReceiver(t)
  // made by the leaked key, bound to the operator's key
  const own = await as(leaked.secret, 'POST', '/admin/v1/webhooks', {
    url: made.url,
    keyId: read.id,
  })
  assert.equal(own.statusCode, 201, own.body)
  made.secret = own.json().secret
  // the operator's, bound to a key the leaked key made
  const child = (
    await as(leaked.secret, 'POST', '/admin/v1/keys', { name: 'c', scopes: ['presence:read'] })
  ).json()
  await createHook(app, boundToChild, child.id)
  // the operator's, pointed elsewhere by the leaked key
  const operators = await createHook(app, redirected, read.id)
  const moved = await as(leaked.secret, 'PATCH', `/admin/v1/webhooks/${operators.id}`, {
    url: redirected.url,
    description: 'moved',
  })
  assert.equal(moved.statusCode, 200, moved.body)
  // another admin key's change does not take it over: it goes on standing on the leaked key too
  const other = await createKey(app, ['admin'])
  const touched = await as(other.secret, 'PATCH', `/admin/v1/webhooks/${own.json().id}`, {
    description: 'looked at',
  })
  assert.equal(touched.statusCode, 200, touched.body)
  await createHook(app, kept, read.id)
  const receivers = [made, boundToChild, redirected, kept]

  await register(presenced, '5')
  for (const r of receivers) await r.until(() => r.accepted.length === 1, 10_000, 'the first event')
  assert.equal((await call(app, 'DELETE', `/admin/v1/keys/${leaked.id}`)).statusCode, 200)
  // nor does a change made after the revocation revive one, by an API key or the operator
  for (const [key, id] of [
    [other.secret, own.json().id],
    [ADMIN_KEY, operators.id],
  ]) {
    const res = await as(key!, 'PATCH', `/admin/v1/webhooks/${id}`, { description: 'after' })
    assert.equal(res.statusCode, 200, res.body)
  }
  // the revocation reaches the webhook registry within its refresh (1 s)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await register(presenced, '6')
  await kept.until(() => kept.accepted.length === 2, 10_000, 'the event after the revocation')
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.deepEqual(
    receivers.map((r) => r.accepted.map((d) => d.event.userId)),
    [['5'], ['5'], ['5'], ['5', '6']],
  )
  const listed = (await call(app, 'GET', '/admin/v1/webhooks')).json().webhooks as {
    id: string
    scope: string | null
    changedBy: string[]
  }[]
  const byId = new Map(listed.map((w) => [w.id, w]))
  assert.deepEqual(byId.get(own.json().id)?.changedBy, [leaked.id, other.id])
  assert.equal(byId.get(own.json().id)?.scope, null)
  assert.deepEqual(byId.get(operators.id)?.changedBy, [leaked.id], 'the operator is not listed')
  assert.equal(byId.get(operators.id)?.scope, null)
})

test('metrics: attempts by outcome, the age of delivered events, queued and parked events', async (t) => {
  const metricsKey = 'metrics-key-of-the-webhook-test'
  const { presenced, receiver } = await setup(t, { webhookAttempts: 2, metricsKey })
  const { app } = presenced
  const scrape = async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${metricsKey}` },
    })
    assert.equal(response.statusCode, 200)
    return prometheusSamples(response.body)
  }
  const attempts = (samples: Map<string, number>, outcome: string) =>
    samples.get(`presenced_webhook_attempts_total{outcome="${outcome}"}`) ?? 0
  // an outcome is counted just after the store records it: scrape until both are in
  const scrapeWhen = async (done: (samples: Map<string, number>) => boolean) => {
    const deadline = Date.now() + 10_000
    let samples = await scrape()
    while (!done(samples) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      samples = await scrape()
    }
    return samples
  }

  const idle = await scrape()
  assert.equal(idle.get('presenced_webhook_queued_events'), 0)
  assert.equal(idle.get('presenced_webhook_parked_events'), 0)
  assert.equal(idle.get('presenced_webhook_delivery_age_seconds_count'), 0)

  const key = await createKey(app, ['presence:read:private'])
  const hook = await createHook(app, receiver, key.id)
  // user 7's event fails both of its tries and is parked; user 8's is delivered at once
  receiver.answer = (r) => (r.event.userId === '7' ? 500 : 200)
  await register(presenced, '7')
  await register(presenced, '8')
  await receiver.until(() => receiver.requests.length === 3, 10_000, 'three tries')
  await drained(app, hook.id)
  const settled = await scrapeWhen((x) => attempts(x, 'delivered') + attempts(x, 'parked') === 2)
  assert.equal(attempts(settled, 'delivered'), 1)
  assert.equal(attempts(settled, 'retrying'), 1)
  assert.equal(attempts(settled, 'parked'), 1)
  assert.equal(attempts(settled, 'dropped'), 0)
  assert.equal(settled.get('presenced_webhook_delivery_age_seconds_count'), 1)
  assert.equal(settled.get('presenced_webhook_queued_events'), 0)
  assert.equal(settled.get('presenced_webhook_parked_events'), 1)

  receiver.answer = () => 200
  await call(app, 'POST', `/admin/v1/webhooks/${hook.id}/deliveries/replay`, {})
  await receiver.until(() => receiver.accepted.length === 2, 10_000, 'the replayed event')
  await drained(app, hook.id)
  const replayed = await scrapeWhen((x) => attempts(x, 'delivered') === 2)
  assert.equal(attempts(replayed, 'delivered'), 2)
  assert.equal(replayed.get('presenced_webhook_delivery_age_seconds_count'), 2)
  assert.equal(replayed.get('presenced_webhook_parked_events'), 0)
})

test('a user who turns invisible once a session expired, before the sweep ran, goes offline', async (t) => {
  // the sweep runs when this test says: the session's expiry is seen by the settings change
  // first (a sweep running late, or within its interval), then by the sweep
  const clock = new ManualClock(Date.now())
  const presenced = await startApp(t, {
    clock,
    config: { ...FAST_WEBHOOKS, sessionTtlSeconds: 10, sweepIntervalMs: 3_600_000 },
  })
  const receiver = await startReceiver(t)
  const { app } = presenced
  const reader = await createKey(app, ['presence:read'])
  const hook = await createHook(app, receiver, reader.id)
  const [user, sentinel] = ['201', '202']

  await register(presenced, user)
  clock.advance(11_000)
  await call(app, 'PUT', `/admin/v1/users/${user}/settings`, { invisible: true })
  assert.equal(await presenced.service.sweepExpired(), 1)
  await register(presenced, sentinel)

  await receiver.until(() => eventsOf(receiver, sentinel).length === 1, 15_000, 'the sentinel')
  await presenced.service.webhooks.idle()
  await drained(app, hook.id)
  // the receiver was told the user is online: it must hear that the user is not any more
  assert.deepEqual(
    eventsOf(receiver, user).map((e) => [e.type, e.presence.state]),
    [
      ['online', 'online'],
      ['offline', 'offline'],
    ],
  )
})

test('a session that expired while its user was invisible says nothing when the sweep ends it', async (t) => {
  const clock = new ManualClock(Date.now())
  const presenced = await startApp(t, {
    clock,
    config: { ...FAST_WEBHOOKS, sessionTtlSeconds: 10, sweepIntervalMs: 3_600_000 },
  })
  const receiver = await startReceiver(t)
  const { app } = presenced
  const reader = await createKey(app, ['presence:read'])
  const hook = await createHook(app, receiver, reader.id)
  const [user, sentinel] = ['211', '212']

  await register(presenced, user)
  await call(app, 'PUT', `/admin/v1/users/${user}/settings`, { invisible: true })
  clock.advance(11_000)
  // visible again once the session expired, before the sweep ran: the user is offline to all
  await call(app, 'PUT', `/admin/v1/users/${user}/settings`, { invisible: false })
  // the settings write ended the expired session first, told as invisible: no sweep finds it
  assert.equal(await presenced.service.sweepExpired(), 0)
  await register(presenced, sentinel)

  await receiver.until(() => eventsOf(receiver, sentinel).length === 1, 15_000, 'the sentinel')
  await presenced.service.webhooks.idle()
  await drained(app, hook.id)
  // a second offline (a timeout) would tell that a session lived on while the user was hidden
  assert.deepEqual(
    eventsOf(receiver, user).map((e) => [e.type, e.reason]),
    [
      ['online', undefined],
      ['offline', 'explicit'],
    ],
  )
})

test('a visibility change between an expiry and its sweep leaves the offline to the sweep: one offline', async (t) => {
  const clock = new ManualClock(Date.now())
  const presenced = await startApp(t, {
    clock,
    config: { ...FAST_WEBHOOKS, sessionTtlSeconds: 10, sweepIntervalMs: 3_600_000 },
  })
  const receiver = await startReceiver(t)
  const { app } = presenced
  const reader = await createKey(app, ['presence:read'])
  const hook = await createHook(app, receiver, reader.id)
  const [user, sentinel] = ['211', '212']

  await register(presenced, user)
  clock.advance(11_000)
  await call(app, 'PUT', `/admin/v1/users/${user}/settings`, { visibility: 'friends' })
  assert.equal(await presenced.service.sweepExpired(), 1)
  await register(presenced, sentinel)

  await receiver.until(() => eventsOf(receiver, sentinel).length === 1, 15_000, 'the sentinel')
  await presenced.service.webhooks.idle()
  await drained(app, hook.id)
  // as for a user whose session expired after the change: the place goes, then one offline
  assert.deepEqual(
    eventsOf(receiver, user).map((e) => [e.type, e.presence.state]),
    [
      ['online', 'online'],
      ['update', 'online'],
      ['offline', 'offline'],
    ],
  )
})
