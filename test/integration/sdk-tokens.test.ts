import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import {
  createClient,
  PresencedError,
  PresenceType,
  type PresenceEvent,
  type TokenRequest,
} from '@presenced/client'
import WebSocket from 'ws'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { PLAYER, settledWithin, WATCHER } from './sdk-kit.js'

/*
 * A token provider (`token: ({ forceRefresh }) => …`) against a real presenced whose clock is a
 * manual one: a token expires when the test moves the clock past its `exp`, so no test waits.
 * A call answered 401 is sent once more with a fresh token; a stream ended `token expired`
 * reconnects with a fresh one and resumes; `token revoked` ends the subscription.
 */

async function start(t: TestContext): Promise<{ app: StartedApp; clock: ManualClock }> {
  const clock = new ManualClock(Date.now())
  const app = await startApp(t, { listen: true, clock, config: { flapGraceMs: 0 } })
  return { app, clock }
}

/** The token's `exp`, in epoch ms. */
function expiryOf(token: string): number {
  const payload = Buffer.from(token.split('.')[1]!, 'base64url').toString()
  return (JSON.parse(payload) as { exp: number }).exp * 1000
}

/**
 * A provider that gives `first` until asked to refresh, then a token issued at that moment
 * (by the server's clock, so valid past the first's expiry); it records what it was asked.
 */
function provider(app: StartedApp, first: string) {
  const asked: TokenRequest[] = []
  const given: string[] = []
  let current = first
  const token = async (request: TokenRequest) => {
    asked.push(request)
    if (request.forceRefresh) current = await app.tokens.issue(WATCHER as UserId)
    given.push(current)
    return current
  }
  return { token, asked, given }
}

/** A provider whose every token is refused, fresh or not; it records `forceRefresh`. */
function refusedTokens() {
  const asked: boolean[] = []
  const token = ({ forceRefresh }: TokenRequest) => {
    asked.push(forceRefresh)
    return forceRefresh ? 'still-not-a-token' : 'not-a-token'
  }
  return { token, asked }
}

function beat(app: StartedApp, location: string) {
  return app.service.heartbeat({
    userId: PLAYER as UserId,
    key: 'app',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online', location },
  })
}

test('a call answered 401 asks the provider once for a fresh token and is sent once more', async (t) => {
  const { app } = await start(t)
  // expired a minute ago (HTTP requests check tokens by the real clock)
  const stale = await app.tokens.issue(WATCHER as UserId, { ttlSeconds: -60 })
  const tokens = provider(app, stale)
  const client = createClient({ baseUrl: app.url, token: tokens.token, retry: false })

  // a write needs the caller: an expired token is refused 401
  await client.registerAppPresence({ location: 'refreshed' })
  assert.deepEqual(
    tokens.asked.map((r) => r.forceRefresh),
    [false, true],
    'asked for the token, then once for a fresh one after the 401',
  )
  assert.notEqual(tokens.given[1], stale)
  // later calls use the fresh one: no 401, no refresh
  assert.equal((await client.getUserPresence(WATCHER)).lastLocation, 'refreshed')
  assert.deepEqual(
    tokens.asked.map((r) => r.forceRefresh),
    [false, true, false],
  )
})

test('a fresh token refused too fails the call with the 401: the provider is asked to refresh once', async (t) => {
  const { app } = await start(t)
  const { token, asked } = refusedTokens()
  const client = createClient({ baseUrl: app.url, token, retry: false })
  await assert.rejects(client.registerAppPresence({ location: 'x' }), (e: unknown) => {
    assert.ok(e instanceof PresencedError)
    assert.equal(e.status, 401)
    return true
  })
  assert.deepEqual(asked, [false, true])
})

test('a fixed token that expired fails with 401 as before: nothing to refresh it with', async (t) => {
  const { app } = await start(t)
  // expired a minute ago (HTTP requests check tokens by the real clock)
  const stale = await app.tokens.issue(WATCHER as UserId, { ttlSeconds: -60 })
  const client = createClient({ baseUrl: app.url, token: stale, retry: false })
  await assert.rejects(client.registerAppPresence({ location: 'x' }), { status: 401 })
})

for (const transport of ['websocket', 'sse'] as const) {
  test(`over ${transport}, a stream ended 'token expired' reconnects with a fresh token and resumes without a gap`, async (t) => {
    const { app, clock } = await start(t)
    const first = await app.tokens.issue(WATCHER as UserId, { ttlSeconds: 3600 })
    const tokens = provider(app, first)
    const client = createClient({ baseUrl: app.url, token: tokens.token, WebSocket })
    const sub = client.subscribe([PLAYER], { transport, reconnect: { minDelayMs: 50 } })
    t.after(() => sub.close())
    const events: PresenceEvent[] = []
    sub.on('event', (e) => events.push(e))
    const errors: unknown[] = []
    sub.on('error', (e) => errors.push(e))
    const reconnecting = new Promise<unknown>((resolve) =>
      sub.once('reconnecting', ({ error }) => resolve(error)),
    )
    await sub.ready

    // the token expires; the change that follows is not sent on the old stream
    clock.set(expiryOf(first))
    await beat(app, 'after expiry')
    const error = await reconnecting
    assert.ok(error instanceof PresencedError)
    assert.equal(error.message, 'token expired')

    const online = await settledWithin(
      new Promise<void>((resolve) => sub.on('online', () => resolve())),
    )
    assert.equal(online, 'resolved', 'the change arrived over the new connection')
    assert.deepEqual(
      events.map((e) => [e.type, e.seq]),
      [
        ['snapshot', events[0]!.seq],
        ['online', events[0]!.seq + 1],
      ],
      'resumed: the missed change, no fresh snapshot',
    )
    assert.equal(sub.presences.get(PLAYER)?.type, PresenceType.Online)
    assert.deepEqual(
      tokens.asked.map((r) => r.forceRefresh),
      [false, true],
      'the reconnect asked for a fresh token',
    )
    assert.notEqual(tokens.given[1], first)
    assert.deepEqual(errors, [])
  })
}

for (const transport of ['websocket', 'sse'] as const) {
  for (const kind of ['provider', 'fixed token'] as const) {
    test(`over ${transport}, with a ${kind}, a stream ended 'token revoked' fails the subscription at once`, async (t) => {
      const { app } = await start(t)
      const first = await app.tokens.issue(WATCHER as UserId)
      const tokens = provider(app, first)
      const client = createClient({
        baseUrl: app.url,
        token: kind === 'provider' ? tokens.token : first,
        WebSocket,
      })
      const sub = client.subscribe([PLAYER], { transport, reconnect: { minDelayMs: 50 } })
      t.after(() => sub.close())
      const reconnects: unknown[] = []
      sub.on('reconnecting', ({ error }) => reconnects.push(error))
      const failed = new Promise<unknown>((resolve) => {
        sub.on('error', resolve)
        setTimeout(() => resolve('not failed'), 5000).unref()
      })
      await sub.ready

      const caller = await app.service.auth.authenticate(
        { kind: 'token', token: first, via: 'bearer' },
        '::1',
      )
      await app.service.auth.logout(app.service.auth.requireUser(caller))
      const error = await failed
      assert.ok(error instanceof PresencedError, String(error))
      assert.equal(error.message, 'token revoked')
      assert.deepEqual(reconnects, [], 'not tried again')
      assert.deepEqual(
        tokens.asked.map((r) => r.forceRefresh),
        kind === 'provider' ? [false] : [],
        'no fresh token asked for',
      )
    })
  }
}

for (const transport of ['websocket', 'sse'] as const) {
  test(`over ${transport}, the limit of ids per stream is the one the server tells`, async (t) => {
    const { app } = await start(t)
    const token = await app.tokens.issue(WATCHER as UserId)
    const client = createClient({ baseUrl: app.url, token, WebSocket })
    const sub = client.subscribe([PLAYER], { transport })
    t.after(() => sub.close())
    await sub.ready
    assert.equal(sub.maxIds, 1000)
  })
}

test('the SSE response and the WebSocket upgrade tell x-presenced-max-ids', async (t) => {
  const { app } = await start(t)
  const token = await app.tokens.issue(WATCHER as UserId)
  const sse = await fetch(`${app.url}/api/v1/realtime/sse?ids=${PLAYER}`, {
    headers: { authorization: `Bearer ${token}` },
  })
  assert.equal(sse.status, 200)
  assert.equal(sse.headers.get('x-presenced-max-ids'), '1000')
  await sse.body?.cancel()

  const socket = new WebSocket(`${app.url.replace(/^http/, 'ws')}/api/v1/realtime`, {
    headers: { authorization: `Bearer ${token}` },
  })
  t.after(() => socket.terminate())
  const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    socket.once('upgrade', (response) => resolve(response.headers))
    socket.once('error', reject)
  })
  assert.equal(headers['x-presenced-max-ids'], '1000')
})

for (const transport of ['websocket', 'sse'] as const) {
  test(`over ${transport}, a connection refused 401 is tried once more with a fresh token`, async (t) => {
    const { app } = await start(t)
    // expired before the subscription opens (a token that ran out while the connection was down)
    const stale = await app.tokens.issue(WATCHER as UserId, { ttlSeconds: -60 })
    const tokens = provider(app, stale)
    const client = createClient({ baseUrl: app.url, token: tokens.token, WebSocket })
    const sub = client.subscribe([PLAYER], { transport, reconnect: { minDelayMs: 50 } })
    t.after(() => sub.close())
    assert.equal(await settledWithin(sub.ready), 'resolved')
    assert.deepEqual(
      tokens.asked.map((r) => r.forceRefresh),
      [false, true],
    )
  })

  test(`over ${transport}, a fresh token refused too fails the subscription: one refresh, no loop`, async (t) => {
    const { app } = await start(t)
    const { token, asked } = refusedTokens()
    const client = createClient({ baseUrl: app.url, token, WebSocket })
    const sub = client.subscribe([PLAYER], { transport, reconnect: { minDelayMs: 50 } })
    t.after(() => sub.close())
    const failure = await settledWithin(sub.ready)
    assert.ok(failure instanceof PresencedError, String(failure))
    assert.equal(failure.status, 401)
    assert.deepEqual(asked, [false, true])
  })
}

/*
 * Why a token was refused: presenced says `expired` or `invalid` (and no more) in a
 * `WWW-Authenticate: Bearer error="invalid_token"` header beside each protocol's own 401 body;
 * the SDK gives it as `PresencedError.reason` and tells the provider (`TokenRequest.reason`).
 */

const REFUSED_BODIES = {
  roblox: '{"errors":[{"code":0,"message":"Authorization has been denied for this request."}]}',
  native:
    '{"error":{"code":"UNAUTHENTICATED","message":"Authorization has been denied for this request."}}',
}

test('a refused token says why in WWW-Authenticate on every API, each 401 body as it was', async (t) => {
  const { app } = await start(t)
  const expired = await app.tokens.issue(WATCHER as UserId, { ttlSeconds: -60 })
  const revoked = await app.tokens.issue(WATCHER as UserId, { ttlSeconds: 3600 })
  const caller = await app.service.auth.authenticate(
    { kind: 'token', token: revoked, via: 'bearer' },
    '::1',
  )
  await app.service.auth.logout(app.service.auth.requireUser(caller))
  const cases = [
    [expired, 'expired'],
    [`${expired.slice(0, -4)}AAAA`, 'invalid'],
    ['not-a-token', 'invalid'],
    [revoked, 'invalid'],
  ] as const
  for (const [token, reason] of cases) {
    const challenge = `Bearer error="invalid_token", error_description="token ${reason}"`
    const roblox = await fetch(`${app.url}/v1/presence/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"userIds":[1]}',
    })
    assert.equal(roblox.status, 401)
    assert.equal(roblox.headers.get('www-authenticate'), challenge, reason)
    assert.equal(await roblox.text(), REFUSED_BODIES.roblox)
    const xbox = await fetch(`${app.url}/users/me`, {
      headers: { authorization: `XBL3.0 x=1;${token}`, 'x-xbl-contract-version': '3' },
    })
    assert.equal(xbox.status, 401)
    assert.equal(xbox.headers.get('www-authenticate'), challenge, reason)
    const sse = await fetch(`${app.url}/api/v1/realtime/sse?ids=1`, {
      headers: { authorization: `Bearer ${token}` },
    })
    assert.equal(sse.status, 401)
    assert.equal(sse.headers.get('www-authenticate'), challenge, reason)
    assert.equal(await sse.text(), REFUSED_BODIES.native)
  }
  // no token: nothing was refused, no challenge (the write needs a user: 401 all the same)
  const none = await fetch(`${app.url}/api/v1/realtime/sse?ids=1`)
  assert.equal(none.status, 401)
  assert.equal(none.headers.get('www-authenticate'), null)
})

test('a 401 refusing a token is a PresencedError whose reason is expired or invalid, for calls and subscriptions', async (t) => {
  const { app } = await start(t)
  const expired = await app.tokens.issue(WATCHER as UserId, { ttlSeconds: -60 })
  for (const [token, reason] of [
    [expired, 'expired'],
    ['not-a-token', 'invalid'],
  ] as const) {
    const client = createClient({ baseUrl: app.url, token, retry: false, WebSocket })
    await assert.rejects(client.registerAppPresence({ location: 'x' }), { status: 401, reason })
    await assert.rejects(client.xbox.me(), { status: 401, reason })
    for (const transport of ['websocket', 'sse'] as const) {
      const sub = client.subscribe([PLAYER], { transport })
      t.after(() => sub.close())
      await assert.rejects(sub.ready, { status: 401, reason }, transport)
    }
  }
  // a refusal without a token has no reason to give
  const anonymous = createClient({ baseUrl: app.url, retry: false })
  await assert.rejects(anonymous.registerAppPresence({ location: 'x' }), {
    status: 401,
    reason: undefined,
  })
})

test('the provider is told why it is asked to refresh: reason expired after a 401 of an expired token or a stream ended token expired', async (t) => {
  const { app, clock } = await start(t)
  const stale = await app.tokens.issue(WATCHER as UserId, { ttlSeconds: -60 })
  const tokens = provider(app, stale)
  const client = createClient({ baseUrl: app.url, token: tokens.token, retry: false, WebSocket })
  await client.registerAppPresence({ location: 'refreshed' })
  assert.deepEqual(tokens.asked, [
    { forceRefresh: false },
    { forceRefresh: true, reason: 'expired' },
  ])

  const sub = client.subscribe([PLAYER], { transport: 'websocket', reconnect: { minDelayMs: 50 } })
  t.after(() => sub.close())
  await sub.ready
  const reopened = new Promise<void>((resolve) =>
    sub.once('reconnecting', () => sub.once('open', () => resolve())),
  )
  // past the fresh token's expiry by the server's clock: the stream ends `token expired`
  clock.set(expiryOf(tokens.given.at(-1)!) + 1000)
  await beat(app, 'after expiry')
  assert.equal(await settledWithin(reopened, 20_000), 'resolved')
  assert.deepEqual(tokens.asked.at(-1), { forceRefresh: true, reason: 'expired' })
})
