import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { test, type TestContext } from 'node:test'
import { createClient, PresencedError, PresenceType, type Subscription } from '@presenced/client'
import WebSocket from 'ws'
import type { UserId } from '../../src/core/user-id.js'
import { Fanout } from '../../src/realtime/fanout.js'
import type { Stream } from '../../src/realtime/stream.js'
import {
  assertServerWait,
  budgeted,
  PLAYER,
  proxiedSubscription,
  recordingClient,
  recordingWebSocket,
  orAfter,
  settledWithin,
  setup,
} from './sdk-kit.js'

// How the SDK's subscriptions take the server's refusals of a whole connection: a refused
// upgrade (429 with Retry-After and an error body), a place lost in band after the upgrade
// (STREAM_LIMIT), and an SSE subscription watching nobody (a request would be a 400).

/** settledWithin, 10 s: these waits include a Retry-After and a reconnect. */
// generous: the CI runs this beside benchmarks at load average ~20, where a reconnect's backoff,
// admission and replay have taken several seconds
const within = (promise: Promise<unknown>) => settledWithin(promise, 20_000)

type Reconnecting = { attempt: number; delayMs: number; error: unknown }

/** The first `reconnecting` whose error is a PresencedError of `code`, or 'none' after `ms`. */
function reconnectingFor(sub: Subscription, code: string, ms = 20_000) {
  return orAfter(
    new Promise<Reconnecting>((resolve) =>
      sub.on('reconnecting', (r) => {
        if (r.error instanceof PresencedError && r.error.code === code) resolve(r)
      }),
    ),
    ms,
    'none' as const,
  )
}

/** Resolves once `sub` tells PLAYER online (by an event, or a fresh snapshot). */
function playerOnline(sub: Subscription): Promise<void> {
  return new Promise<void>((resolve) =>
    sub.on('event', () => {
      if (sub.presences.get(PLAYER)?.type === PresenceType.Online) resolve()
    }),
  )
}

/** Fatal errors a subscription reports (it is closed after one). */
function errorsOf(sub: Subscription): unknown[] {
  const errors: unknown[] = []
  sub.on('error', (e) => errors.push(e))
  return errors
}

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, a connection refused 429 STREAM_LIMIT is read: reconnecting tells its code and waits its Retry-After; the subscription opens once a place frees`,
    { timeout: 60_000 },
    async (t) => {
      const { server, watcherToken } = await setup(t, { realtimeStreamsPerUser: 1 })
      const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
      const first = client.subscribe([42], { transport })
      t.after(() => first.close())
      await first.ready
      const second = client.subscribe([PLAYER], {
        transport,
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      })
      t.after(() => second.close())
      const errors = errorsOf(second)
      const refused = await reconnectingFor(second, 'STREAM_LIMIT')
      assert.notEqual(refused, 'none', 'a reconnecting event with the refusal code')
      const { error, delayMs } = refused as Reconnecting
      assert.ok(error instanceof PresencedError)
      assert.equal(error.status, 429)
      assert.equal(error.retryAfterMs, 1000, 'Retry-After: 1')
      assert.match(error.message, /At most 1 real-time connections per user/)
      assert.ok(delayMs >= 1000, `waits ${delayMs} ms, the server asks 1000`)

      first.close()
      assert.equal(await within(second.ready), 'resolved')
      assert.deepEqual([...second.presences.keys()], [PLAYER])
      assert.deepEqual(errors, [])
    },
  )
}

/**
 * A server that refuses every upgrade and SSE request 429 with Retry-After: 3 and sends the
 * head of its body, never the rest: the SDK must not wait for it.
 */
async function hangingRefusals(t: TestContext): Promise<string> {
  const head =
    'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n' +
    'Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"error":'
  const sockets = new Set<Socket>()
  const server: Server = createServer((request, response) => {
    sockets.add(request.socket)
    response.socket?.write(head)
  })
  server.on('upgrade', (_request, socket: Socket) => {
    sockets.add(socket)
    socket.write(head)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, a refusal whose body never ends is read for a bounded time: the subscription reconnects after its Retry-After`,
    { timeout: 60_000 },
    async (t) => {
      const baseUrl = await hangingRefusals(t)
      const client = createClient({ baseUrl, token: 'a-token', WebSocket })
      const sub = client.subscribe([42], { transport, reconnect: { minDelayMs: 50 } })
      t.after(() => sub.close())
      const errors = errorsOf(sub)
      const refused = await orAfter(
        new Promise<Reconnecting>((resolve) => sub.once('reconnecting', resolve)),
        10_000,
        'hung' as const,
      )
      assert.notEqual(refused, 'hung', 'the unfinished body did not hold the subscription up')
      const { error, delayMs } = refused as Reconnecting
      assert.ok(error instanceof PresencedError)
      assert.equal(error.status, 429)
      assert.equal(error.retryAfterMs, 3000)
      assert.ok(delayMs >= 3000, `waits ${delayMs} ms, the server asks 3000`)
      assert.deepEqual(errors, [])
    },
  )
}

test(
  'over sse, a subscription watching nobody holds no request: created empty it is ready at once; add() opens a request, removing the last id closes it',
  { timeout: 60_000 },
  async (t) => {
    // one place per user: a request held by the empty subscription would refuse the others
    const { server, watcherToken } = await setup(t, { realtimeStreamsPerUser: 1 })
    const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
    const empty = client.subscribe([], { transport: 'sse', reconnect: { minDelayMs: 50 } })
    t.after(() => empty.close())
    const errors = errorsOf(empty)
    const opens: unknown[] = []
    empty.on('open', (o) => opens.push(o))
    assert.equal(await within(empty.ready), 'resolved', 'not refused IDS_INVALID')

    const other = client.subscribe([42], { transport: 'sse' })
    assert.equal(await within(other.ready), 'resolved', 'the empty one holds no place')
    other.close()

    assert.equal(await within(empty.add([PLAYER])), 'resolved')
    assert.deepEqual([...empty.presences.keys()], [PLAYER])
    assert.equal(opens.length, 1, 'one request, opened by the add')

    empty.remove([PLAYER])
    const again = client.subscribe([42], { transport: 'sse' })
    t.after(() => again.close())
    assert.equal(await within(again.ready), 'resolved', 'the request was closed')
    assert.deepEqual(errors, [])
    assert.equal(opens.length, 1, 'no request reopened for nobody')
  },
)

/**
 * Makes the next stream admitted after `arm()` lose its place in band: right after its admission
 * another stream of the same user opens in the last place (what another connection of the user
 * does when it opens between this one's admission and its open), so the admitted one is told
 * STREAM_LIMIT after its upgrade (WebSocket) or its 200 (SSE). `release()` closes that stream.
 */
function stealNextPlace(t: TestContext) {
  const admit = Fanout.prototype.admit
  let armed = false
  let stolen: { fanout: Fanout; stream: Stream } | undefined
  Fanout.prototype.admit = async function (this: Fanout, viewer: UserId) {
    const admission = await admit.call(this, viewer)
    if (armed && admission) {
      armed = false
      const stream = this.open(viewer, { send() {}, replaced() {} })
      assert.ok(stream, 'the place was free to take')
      stolen = { fanout: this, stream }
    }
    return admission
  }
  t.after(() => {
    Fanout.prototype.admit = admit
  })
  return {
    arm: () => (armed = true),
    release: () => stolen?.fanout.close(stolen.stream),
  }
}

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, a reconnect told STREAM_LIMIT in band (after the upgrade) is tried again after a backoff, and resumes once a place frees`,
    { timeout: 60_000 },
    async (t) => {
      const { server, player, watcherToken } = await setup(t, { realtimeStreamsPerUser: 1 })
      const steal = stealNextPlace(t)
      const { proxy, sub } = await proxiedSubscription(t, server, watcherToken, [PLAYER], {
        transport,
      })
      const errors = errorsOf(sub)
      await sub.ready
      const refused = reconnectingFor(sub, 'STREAM_LIMIT')
      steal.arm()
      proxy.cut()
      const told = await refused
      assert.notEqual(told, 'none', 'the in-band refusal led to a reconnect')
      const { error } = told as Reconnecting
      assert.ok(error instanceof PresencedError)
      assert.equal(error.status, 429)
      assert.equal(error.retryAfterMs, undefined, 'told in band: no Retry-After')
      assert.deepEqual(errors, [], 'not a dead subscription')

      steal.release()
      await player.registerAppPresence({ location: 'Lobby' })
      // (by an event, or a fresh snapshot if the stream could not be resumed)
      const online = await within(playerOnline(sub))
      assert.equal(online, 'resolved', 'the change reached the subscription')
      assert.deepEqual(errors, [])
    },
  )
}

test(
  'over websocket, a reset while an add() that takes the stream past 1000 ids is in flight: the add is spread over a second stream and taken, the reset stream catches up',
  { timeout: 60_000 },
  async (t) => {
    // a dropped stream is gone at once, and no history: the resume gets a reset
    const { server, player, watcherToken } = await setup(t, {
      realtimeResumeMs: 0,
      realtimeHistory: 0,
      realtimeSubscribeRate: 100_000,
    })
    const { recording: gated, client } = recordingClient(server.url, watcherToken)
    const watched = [PLAYER, ...Array.from({ length: 899 }, (_, i) => String(i + 1))]
    const sub = client.subscribe(watched, { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
    t.after(() => sub.close())
    const errors = errorsOf(sub)
    await sub.ready
    // the resume goes out once PLAYER changed: nothing to resume from, a reset
    const changed = player.registerAppPresence({ placeId: 1818 })
    gated.gate.hold = changed
    const down = new Promise<{ added: Promise<void> }>((resolve) =>
      sub.once('reconnecting', () =>
        resolve({ added: sub.add(Array.from({ length: 200 }, (_, i) => String(5000 + i))) }),
      ),
    )
    gated.sockets[0]!.terminate()
    const added = await within((await down).added)
    // (before streams were sharded, the add was refused TOO_MANY_IDS)
    assert.equal(added, 'resolved', `the add is taken, got ${String(added)}`)
    assert.deepEqual(errors, [], 'the subscription goes on')
    assert.equal(sub.ids.size, 1100)
    const caughtUp = await within(
      new Promise<void>((resolve) => {
        const check = () => {
          if (sub.presences.get(PLAYER)?.type === PresenceType.InGame) resolve()
        }
        sub.on('event', check)
        check()
      }),
    )
    assert.equal(caughtUp, 'resolved', 'the fresh snapshot tells the change')
    assert.equal(sub.presences.size, 1100)
  },
)

test(
  'over websocket, a reconnect whose upgrade is refused 429 RATE_LIMITED waits its Retry-After, even past reconnect.maxDelayMs, and says so',
  { timeout: 60_000 },
  async (t) => {
    // a budget of one request, not renewed during the test: the reconnect's upgrade is refused
    const gated = recordingWebSocket()
    const client = await budgeted(t, 1, gated.WebSocket)
    const sub = client.subscribe([42], { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
    t.after(() => sub.close())
    const errors = errorsOf(sub)
    await sub.ready
    const refused = reconnectingFor(sub, 'RATE_LIMITED')
    gated.sockets[0]!.terminate()
    const told = await refused
    assert.notEqual(told, 'none', 'the refused upgrade was read')
    assertServerWait(told as Reconnecting)
    assert.equal((told as Reconnecting & { error: PresencedError }).error.status, 429)
    assert.deepEqual(errors, [])
  },
)

test(
  'over websocket, add()s made while the connection is down are subscribed one frame each on the next: one past the watch limit does not take the other with it',
  { timeout: 60_000 },
  async (t) => {
    const { server, watcherToken } = await setup(t, { realtimeWatchesPerUser: 3 })
    const { recording: gated, client } = recordingClient(server.url, watcherToken)
    const sub = client.subscribe([42], { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
    t.after(() => sub.close())
    await sub.ready
    const down = new Promise<{ fits: Promise<void>; past: Promise<void> }>((resolve) =>
      sub.once('reconnecting', () => resolve({ fits: sub.add([7]), past: sub.add([8, 9]) })),
    )
    gated.sockets[0]!.terminate()
    const { fits, past } = await down
    const [a, b] = await Promise.all([within(fits), within(past)])
    assert.equal(a, 'resolved', `the add that fits is taken, got ${String(a)}`)
    assert.ok(b instanceof PresencedError && b.code === 'WATCH_LIMIT', String(b))
    assert.deepEqual([...sub.ids], ['42', '7'])
    assert.ok(sub.presences.has('7'))
  },
)

/** The next `reconnecting` or `error` of `sub`, whichever comes first ('none' after 20 s). */
function nextEnd(sub: Subscription) {
  return orAfter(
    Promise.race([
      new Promise<{ reconnecting: Reconnecting }>((resolve) =>
        sub.once('reconnecting', (reconnecting) => resolve({ reconnecting })),
      ),
      new Promise<{ error: unknown }>((resolve) =>
        sub.once('error', (error) => resolve({ error })),
      ),
    ]),
    20_000,
    'none' as const,
  )
}

test(
  'over websocket, a connection closed for subscribing too fast (1008) is not fatal: the subscription waits the retryAfterMs the server gives, reconnects and resumes without losing a change',
  { timeout: 60_000 },
  async (t) => {
    // the default budget: 1000 ids/s per connection, bursts of 2000
    const { server, player, watcherToken } = await setup(t)
    const { recording, client } = recordingClient(server.url, watcherToken)
    const sub = client.subscribe([PLAYER], { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
    t.after(() => sub.close())
    const errors = errorsOf(sub)
    const events: string[] = []
    sub.on('event', (e) => events.push(e.type === 'snapshot' && e.reset ? 'reset' : e.type))
    await sub.ready
    const socket = recording.sockets[0]!
    const closed = new Promise<[number, string]>((resolve) =>
      socket.on('close', (code, reason) => resolve([code, reason.toString()])),
    )
    const ended = nextEnd(sub)
    // an app churning 999 users in and out faster than its connection's budget
    const churn = Array.from({ length: 999 }, (_, i) => String(10_000 + i))
    for (let i = 0; i < 40; i++) {
      void sub.add(churn)
      sub.remove(churn)
    }
    const end = await ended
    if (end === 'none') assert.fail('neither reconnecting nor error within 20 s')
    assert.ok(!('error' in end), `not fatal, got ${'error' in end ? String(end.error) : ''}`)
    assert.deepEqual(await closed, [1008, 'subscribing too fast'])
    const { error, delayMs } = end.reconnecting
    assert.ok(error instanceof PresencedError)
    assert.equal(error.code, 'RATE_LIMITED')
    assert.equal(error.status, 429)
    assert.match(error.message, /^Subscribing too fast/)
    const wait = error.retryAfterMs
    assert.ok(wait !== undefined && wait > 0 && wait <= 2000, `the server's wait: ${wait} ms`)
    assert.ok(delayMs >= wait, `waits ${delayMs} ms, the server asks ${wait}`)

    // a change while the connection is down arrives once it resumes, as an event, not a reset
    const reopened = new Promise<number>((resolve) => {
      const at = Date.now()
      sub.once('open', () => resolve(Date.now() - at))
    })
    await player.registerAppPresence({ location: 'Lobby' })
    const online = await within(playerOnline(sub))
    assert.equal(online, 'resolved', 'the change reached the subscription')
    assert.ok((await reopened) >= wait - 50, 'not reconnected before the server said')
    assert.ok(!events.includes('reset'), `resumed, not reset: ${events.join(',')}`)
    assert.equal(recording.sockets.length, 2)
    assert.deepEqual([...sub.ids], [PLAYER])
    assert.deepEqual(errors, [])
  },
)

test(
  'over websocket, a connection closed for too many malformed frames (1008) stays fatal: the frames were the client’s own, and would be sent again',
  { timeout: 60_000 },
  async (t) => {
    const { server, watcherToken } = await setup(t)
    const { recording, client } = recordingClient(server.url, watcherToken)
    const sub = client.subscribe([PLAYER], { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
    t.after(() => sub.close())
    const warnings: PresencedError[] = []
    sub.on('warning', (w) => warnings.push(w))
    await sub.ready
    const ended = nextEnd(sub)
    // a presence the server refuses (HEARTBEAT_INVALID), set over and over
    for (let i = 0; i < 25; i++) sub.setPresence({ deviceType: 'not a device type' })
    const end = await ended
    if (end === 'none') assert.fail('neither reconnecting nor error within 20 s')
    assert.ok('error' in end, 'fatal: no reconnect')
    assert.ok(end.error instanceof PresencedError)
    assert.equal(end.error.code, 1008)
    assert.equal(end.error.message, 'too many malformed frames')
    assert.equal(warnings.length, 20, 'each refusal before the close was told')
    assert.ok(warnings.every((w) => w.code === 'HEARTBEAT_INVALID'))
    assert.equal(recording.sockets.length, 1)
  },
)

/**
 * A subscription of WATCHER's to 1000 users (its watch limit) on a server that lets a
 * connection subscribe and unsubscribe 500 ids/s, bursts of 1000 (a frame's worth): its first
 * subscribe spends the whole budget.
 */
async function budgetSpent(t: TestContext) {
  const { server, watcherToken } = await setup(t, {
    realtimeWatchesPerUser: 1000,
    realtimeSubscribeRate: 500,
  })
  const { recording, client } = recordingClient(server.url, watcherToken)
  const first = Array.from({ length: 1000 }, (_, i) => String(10_000 + i))
  const sub = client.subscribe(first, { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
  t.after(() => sub.close())
  return { recording, sub, first, errors: errorsOf(sub) }
}

/** `sub.add(ids)`, tried again after the server's wait while it is refused `RATE_LIMITED`. */
async function addPaced(sub: Subscription, ids: string[]): Promise<unknown> {
  for (;;) {
    const outcome = await within(sub.add(ids))
    if (!(outcome instanceof PresencedError) || outcome.code !== 'RATE_LIMITED') return outcome
    await new Promise((resolve) => setTimeout(resolve, outcome.retryAfterMs ?? 1000))
  }
}

test(
  'over websocket, a remove() whose unsubscribe the server refuses RATE_LIMITED is sent again after its wait: the removed ids stop counting against the watch limit',
  { timeout: 60_000 },
  async (t) => {
    const { recording, sub, first, errors } = await budgetSpent(t)
    const warnings: PresencedError[] = []
    sub.on('warning', (w) => warnings.push(w))
    await sub.ready
    // the unsubscribe frames the SDK sends, and when
    const socket = recording.sockets[0]!
    const send = socket.send.bind(socket) as (data: string) => void
    const unsubscribes: Array<{ at: number; ids: string[] }> = []
    Object.defineProperty(socket, 'send', {
      value: (data: string) => {
        const frame = JSON.parse(data) as { type: string; ids: string[] }
        if (frame.type === 'unsubscribe') unsubscribes.push({ at: Date.now(), ids: frame.ids })
        send(data)
      },
    })
    const refused = new Promise<PresencedError>((resolve) => sub.once('warning', resolve))
    const removed = first.slice(0, 500)
    sub.remove(removed)
    const refusal = await refused
    const refusedAt = Date.now()
    assert.equal(refusal.code, 'RATE_LIMITED', 'the unsubscribe went past the budget')
    assert.equal(refusal.body && (refusal.body as { for?: unknown }).for, 'unsubscribe')

    // the SDK sends it again on its own (waited for here, 5 s at most)
    const deadline = Date.now() + 5_000
    while (unsubscribes.length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }

    // the app watches 500 users of its 1000: 500 more fit, once the server stopped watching
    const fresh = Array.from({ length: 500 }, (_, i) => String(20_000 + i))
    const added = await addPaced(sub, fresh)
    assert.equal(added, 'resolved', `the add fits the watch limit, got ${String(added)}`)
    assert.equal(sub.ids.size, 1000)
    // sent again once, no sooner than the server said; taken, then not sent again
    assert.equal(unsubscribes.length, 2, JSON.stringify(unsubscribes.map((u) => u.ids.length)))
    assert.deepEqual(unsubscribes[1]!.ids, removed)
    const waited = unsubscribes[1]!.at - refusedAt
    assert.ok(
      waited >= refusal.retryAfterMs! - 20,
      `${waited} ms, the server asks ${refusal.retryAfterMs}`,
    )
    assert.deepEqual(errors, [])
    assert.ok(
      warnings.every((w) => w.code === 'RATE_LIMITED'),
      warnings.map((w) => w.code).join(','),
    )
  },
)

test(
  'over websocket, a remove() made while the connection is down reaches the resumed stream: the removed id stops counting against the watch limit',
  { timeout: 60_000 },
  async (t) => {
    const { server, watcherToken } = await setup(t, { realtimeWatchesPerUser: 2 })
    const { recording, client } = recordingClient(server.url, watcherToken)
    const sub = client.subscribe([42, PLAYER], { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
    t.after(() => sub.close())
    const errors = errorsOf(sub)
    const events: string[] = []
    sub.on('event', (e) => events.push(e.type === 'snapshot' && e.reset ? 'reset' : e.type))
    await sub.ready
    const down = new Promise<void>((resolve) =>
      sub.once('reconnecting', () => {
        sub.remove([42])
        resolve()
      }),
    )
    recording.sockets[0]!.terminate()
    await down
    const reopened = new Promise<void>((resolve) => sub.once('open', () => resolve()))
    assert.equal(await within(reopened), 'resolved')
    const added = await within(sub.add([7]))
    assert.equal(added, 'resolved', `the add fits the watch limit, got ${String(added)}`)
    assert.deepEqual([...sub.ids], [PLAYER, '7'])
    assert.ok(!events.includes('reset'), `resumed, not reset: ${events.join(',')}`)
    assert.equal(recording.sockets.length, 2)
    assert.deepEqual(errors, [])
  },
)

test(
  'over websocket, remove()s whose unsubscribes the server refused and then closed the connection for (1008 subscribing too fast) reach the resumed stream: the removed ids stop counting against the watch limit',
  { timeout: 60_000 },
  async (t) => {
    const { recording, sub, first, errors } = await budgetSpent(t)
    await sub.ready
    const ended = nextEnd(sub)
    // 21 removes at once: 20 refused RATE_LIMITED, the 21st closes the connection unanswered
    const removed = first.slice(0, 21 * 40)
    for (let i = 0; i < 21; i++) sub.remove(removed.slice(i * 40, (i + 1) * 40))
    const end = await ended
    if (end === 'none') assert.fail('neither reconnecting nor error within 20 s')
    assert.ok('reconnecting' in end, 'not fatal')
    assert.match(String(end.reconnecting.error), /Subscribing too fast/)
    const reopened = new Promise<void>((resolve) => sub.once('open', () => resolve()))
    assert.equal(await within(reopened), 'resolved')

    // the app watches 160 users of its 1000: 840 more fit, once the server stopped watching
    const fresh = Array.from({ length: removed.length }, (_, i) => String(20_000 + i))
    const added = await addPaced(sub, fresh)
    assert.equal(added, 'resolved', `the add fits the watch limit, got ${String(added)}`)
    assert.equal(sub.ids.size, 1000)
    assert.equal(recording.sockets.length, 2)
    assert.deepEqual(errors, [])
  },
)

test(
  'over websocket, an error frame that says the close to follow (INTERNAL, "close":1011) reconnects at once with that error, resumes, and sends the unanswered add() again',
  { timeout: 60_000 },
  async (t) => {
    const { server, player, watcherToken } = await setup(t)
    // a subscribe of the server's meets a defect (a throw) while `defects` > 0: INTERNAL, then
    // close 1011
    const subscribe = Fanout.prototype.subscribe
    let defects = 0
    Fanout.prototype.subscribe = function (this: Fanout, ...args: Parameters<Fanout['subscribe']>) {
      if (defects-- > 0) throw new Error('a defect in subscribe')
      return subscribe.apply(this, args)
    }
    t.after(() => {
      Fanout.prototype.subscribe = subscribe
    })
    const { recording, client } = recordingClient(server.url, watcherToken)
    const sub = client.subscribe([PLAYER], { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
    t.after(() => sub.close())
    const errors = errorsOf(sub)
    const warnings: PresencedError[] = []
    sub.on('warning', (w) => warnings.push(w))
    await sub.ready
    defects = 1
    const told = reconnectingFor(sub, 'INTERNAL')
    const added = sub.add([7])
    const reconnecting = await told
    assert.notEqual(reconnecting, 'none', 'reconnecting told the INTERNAL error')
    const { error } = reconnecting as Reconnecting
    assert.ok(error instanceof PresencedError)
    assert.equal(error.message, 'An unexpected error occurred; reconnect and resume.')
    assert.equal(await within(added), 'resolved', 'the add() was sent again and taken')
    await player.registerAppPresence({ location: 'Lobby' })
    assert.equal(await within(playerOnline(sub)), 'resolved', 'the stream goes on')
    assert.deepEqual(warnings, [], 'the end of a connection, not a refused frame')
    assert.deepEqual(errors, [])
    assert.equal(recording.sockets.length, 2)
  },
)
