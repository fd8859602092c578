import assert from 'node:assert/strict'
import { createServer, type Socket } from 'node:net'
import { test } from 'node:test'
import { createClient, PresencedError, PresenceType } from '@presenced/client'
import { ManualClock } from '../../src/service/clock.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'
import { staggeredSleep } from '../helpers/staggered-sleep.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'

const BIG = '9223372036854775807'
const JOB = '4a3c6a1e-0000-4000-8000-000000000001'

test('SDK against presenced: register, look up typed presences in order, disconnect', async (t) => {
  const server = await startApp(t, { listen: true })
  await fetch(`${server.url}/admin/v1/places/1818`, {
    method: 'PUT',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    body: '{"universeId":9007199254740993,"rootPlaceId":1818,"name":"Crossroads"}',
  }).then((r) => assert.equal(r.status, 200))

  const token = await server.tokens.issue(BIG as never)
  const player = createClient({ baseUrl: server.url, token })
  const result = await player.registerAppPresence({ placeId: 1818, gameId: JOB })
  assert.equal(result.heartbeatAfterMs, 30_000, 'half the default 60 s TTL')

  const anonymous = createClient({ baseUrl: server.url })
  const ids = [5, BIG, 6n, { id: 5 }]
  const presences = await anonymous.getUserPresences(ids)
  assert.deepEqual(
    presences.map((p) => [p.userId, p.type]),
    [
      ['5', PresenceType.Offline],
      [BIG, PresenceType.InGame],
      ['6', PresenceType.Offline],
      ['5', PresenceType.Offline],
    ],
  )
  const me = presences[1]!
  assert.deepEqual(me.place, { id: '1818' })
  assert.deepEqual(me.rootPlace, { id: '1818' })
  assert.deepEqual(me.universe, { id: '9007199254740993' }, 'an id above 2^53 stays exact')
  assert.deepEqual(me.job, { id: JOB })
  assert.equal(me.lastLocation, 'Crossroads')
  assert.ok(me.lastOnline instanceof Date)

  await player.registerAppPresence({ disconnect: true })
  const after = await anonymous.getUserPresence(BIG)
  assert.equal(after.type, PresenceType.Offline)
  assert.ok(after.lastOnline.getTime() > 0)
})

test('SDK against presenced: 120 ids in batches of 50, order kept', async (t) => {
  const server = await startApp(t, { listen: true })
  const client = createClient({ baseUrl: server.url, maxConcurrency: 3 })
  const ids = Array.from({ length: 120 }, (_, i) => 120 - i)
  const presences = await client.getUserPresences(ids)
  assert.deepEqual(
    presences.map((p) => p.userId),
    ids.map(String),
  )
})

test('SDK against presenced: the cookie + x-csrf-token challenge is transparent', async (t) => {
  const server = await startApp(t, { listen: true, config: { logLevel: 'error' } })
  const cookie = await server.tokens.issue('77' as never)
  const client = createClient({ baseUrl: server.url, cookie })
  await client.registerAppPresence({ location: 'Studio' })
  const presence = await client.getUserPresence(77)
  assert.equal(presence.type, PresenceType.InStudio)
})

test('SDK against presenced: keepAlive keeps the user online and stop() disconnects', async (t) => {
  const server = await startApp(t, { listen: true })
  const token = await server.tokens.issue('42' as never)
  const client = createClient({ baseUrl: server.url, token })
  const alive = client.keepAlive({ location: 'Lobby' })
  t.after(() => alive.stop())
  await alive.ready
  assert.equal(alive.intervalMs, 30_000)
  assert.equal((await client.getUserPresence(42)).type, PresenceType.Online)
  await alive.stop()
  assert.equal((await client.getUserPresence(42)).type, PresenceType.Offline)
})

test('SDK against presenced: errors carry status and the Roblox code', async (t) => {
  const server = await startApp(t, { listen: true })
  const noAuth = createClient({ baseUrl: server.url })
  const denied = await noAuth.registerAppPresence({ location: 'x' }).catch((e: unknown) => e)
  assert.ok(denied instanceof PresencedError)
  assert.deepEqual(
    [denied.status, denied.code, denied.message],
    [401, 0, 'Authorization has been denied for this request.'],
  )
  const badToken = createClient({ baseUrl: server.url, token: 'not-a-token' })
  await assert.rejects(badToken.getUserPresences([1]), { status: 401, protocol: 'roblox' })
})

test('SDK against presenced: a 429 is retried after Retry-After', async (t) => {
  const server = await startApp(t, {
    listen: true,
    // a clock that stands still, so the window cannot roll over between the three requests (its
    // Retry-After within the SDK's 30 s cap on one wait); the SDK's sleep is a stub
    clock: new ManualClock(),
    config: { rateLimitMax: 2, rateLimitWindowSeconds: 20 },
  })
  const waits: number[] = []
  const client = createClient({
    baseUrl: server.url,
    retry: { maxAttempts: 2 },
    sleep: async (ms) => void waits.push(ms),
  })
  await client.getUserPresences([1])
  await client.getUserPresences([1])
  const error = await client.getUserPresences([1]).catch((e: unknown) => e)
  assert.ok(error instanceof PresencedError)
  assert.equal(error.status, 429)
  assert.equal(waits.length, 1, 'retried once, then gave up')
  assert.ok(waits[0]! >= 1000)
})

test('SDK: a baseUrl with user:password@ fails clearly and never echoes the password', async (t) => {
  const server = await startApp(t, { listen: true })
  const client = createClient({ baseUrl: server.url.replace('http://', 'http://me:s3cret-pw@') })
  const failure = await client.getUserPresences([1]).catch((e: unknown) => e)
  assert.ok(failure instanceof PresencedError)
  assert.equal(failure.status, 0)
  assert.equal(failure.protocol, 'network')
  assert.match(failure.message, /http:\/\/\*\*\*@127\.0\.0\.1/)
  assert.doesNotMatch(failure.message, /s3cret-pw/)

  assert.throws(
    () => createClient({ baseUrl: 'ftp://me:s3cret-pw@example.com' }),
    (e: unknown) =>
      e instanceof TypeError && /\*\*\*@/.test(e.message) && !/s3cret/.test(e.message),
  )
})

test('SDK: a signal ends a call to a server that never answers, and a 429 backoff wait', async (t) => {
  // a server that accepts connections and never answers
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => void sockets.add(socket))
  await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done))
  t.after(() => {
    for (const socket of sockets) socket.destroy()
    silent.close()
  })
  const { port } = silent.address() as { port: number }
  const hung = createClient({ baseUrl: `http://127.0.0.1:${port}`, token: 't' })
  const started = Date.now()
  await assert.rejects(
    hung.getUserPresences([1, 2], { signal: AbortSignal.timeout(200) }),
    (e: unknown) => (e as Error).name === 'TimeoutError',
  )
  await assert.rejects(
    hung.xbox.batch({ users: [1], signal: AbortSignal.timeout(100) }),
    (e: unknown) => (e as Error).name === 'TimeoutError',
  )
  assert.ok(Date.now() - started < 5000, 'the deadline, not the socket, ended the calls')

  // the real backoff timer (Retry-After of a long window) is cut short by the signal
  const server = await startApp(t, {
    listen: true,
    clock: new ManualClock(),
    config: { rateLimitMax: 1, rateLimitWindowSeconds: 20 },
  })
  const client = createClient({ baseUrl: server.url })
  await client.getUserPresence(1)
  const waitStarted = Date.now()
  const aborted = new AbortController()
  setTimeout(() => aborted.abort(new Error('gave up')), 200)
  await assert.rejects(client.getUserPresence(1, { signal: aborted.signal }), /gave up/)
  assert.ok(Date.now() - waitStarted < 5000, 'the wait for Retry-After was abandoned')
  await assert.rejects(
    client.registerAppPresence({}, { signal: AbortSignal.abort() }),
    (e: unknown) => (e as Error).name === 'AbortError',
  )
})

test(
  'SDK: timeoutMs bounds each attempt; a request the server never got is tried again and answered',
  { timeout: 30_000 },
  async (t) => {
    const server = await startApp(t, { listen: true })
    const proxy = await startTcpProxy(t, Number(new URL(server.url).port))
    const baseUrl = `http://127.0.0.1:${proxy.port}`

    // the first lookup is held on its way (a node that hangs, a dead path): no answer ever comes
    const stalled = proxy.stallWhen((chunk) => chunk.includes('POST /v1/presence/users'))
    const client = createClient({ baseUrl, timeoutMs: 1000, retry: { baseDelayMs: 50 } })
    const started = Date.now()
    const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 8000))
    const answer = await Promise.race([client.getUserPresences([BIG, 7]), hung])
    await stalled
    assert.notEqual(answer, 'hung', 'the stalled attempt was given up and the call tried again')
    assert.deepEqual(answer !== 'hung' && answer.map((p) => p.userId), [BIG, '7'])
    assert.ok(Date.now() - started >= 1000, 'after the attempt timed out')

    // without retries the timeout is the call's error: typed, status 0, saying what happened
    void proxy.stallWhen((chunk) => chunk.includes('POST /v1/presence/users'))
    const once = createClient({ baseUrl, timeoutMs: 500, retry: false })
    const failure = await Promise.race([once.getUserPresences([1]).catch((e: unknown) => e), hung])
    assert.ok(failure instanceof PresencedError, `a PresencedError, got ${String(failure)}`)
    assert.equal(failure.status, 0)
    assert.equal(failure.protocol, 'network')
    assert.match(failure.message, /within 500 ms/)

    // a caller's signal still wins over the timeout, and its reason is what the call rejects with
    void proxy.stallWhen((chunk) => chunk.includes('POST /v1/presence/users'))
    await assert.rejects(
      once.getUserPresences([1], { signal: AbortSignal.timeout(100) }),
      (e: unknown) => (e as Error).name === 'TimeoutError',
    )
  },
)

test(
  'SDK: when one batch of a split lookup fails, the others stop: no request after the rejection',
  { timeout: 30_000 },
  async (t) => {
    // one lookup a window, on a clock that stands still: every later request is answered 429
    const server = await startApp(t, {
      listen: true,
      clock: new ManualClock(),
      config: { rateLimitMax: 1, rateLimitWindowSeconds: 20 },
    })
    const proxy = await startTcpProxy(t, Number(new URL(server.url).port))
    const lookups = proxy.count((chunk) => chunk.includes('POST /v1/presence/users'))
    const client = createClient({
      baseUrl: `http://127.0.0.1:${proxy.port}`,
      maxConcurrency: 3,
      retry: { maxAttempts: 2 },
      sleep: staggeredSleep(20, 600),
    })
    // three batches at once: one answered, two refused; the first refused retries after 20 ms,
    // is refused again and fails the call while the other still waits its 600 ms
    const ids = Array.from({ length: 150 }, (_, i) => i + 1)
    const failure = await client.getUserPresences(ids).catch((e: unknown) => e)
    assert.ok(failure instanceof PresencedError, `a PresencedError, got ${String(failure)}`)
    assert.equal(failure.status, 429)
    const atRejection = lookups()
    assert.equal(atRejection, 4, 'three batches and one retry')
    await new Promise((resolve) => setTimeout(resolve, 1200))
    assert.equal(lookups(), atRejection, 'no batch went on asking after the call failed')

    // the caller's signal stops every batch as well, in flight or waiting
    const aborted = new AbortController()
    setTimeout(() => aborted.abort(new Error('gave up')), 100)
    await assert.rejects(client.getUserPresences(ids, { signal: aborted.signal }), /gave up/)
    const atAbort = lookups()
    await new Promise((resolve) => setTimeout(resolve, 1200))
    assert.equal(lookups(), atAbort, 'no batch went on asking after the abort')
  },
)
