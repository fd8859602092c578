import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import {
  createClient,
  InvalidIdError,
  PresencedError,
  PresenceType,
  type PresenceEvent,
  type Subscription,
} from '@presenced/client'
import WebSocket from 'ws'
import {
  assertServerWait,
  budgeted,
  PLAYER,
  proxiedSubscription,
  recordingClient,
  orAfter,
  settledWithin,
  setup,
  WATCHER,
} from './sdk-kit.js'

/** Events of a subscription, awaited one by one in order. */
function eventsOf(sub: Subscription) {
  const seen: PresenceEvent[] = []
  const waiters: (() => void)[] = []
  sub.on('event', (event) => {
    seen.push(event)
    for (const wake of waiters.splice(0)) wake()
  })
  let read = 0
  return {
    seen,
    async next(): Promise<PresenceEvent> {
      while (read >= seen.length) await new Promise<void>((resolve) => waiters.push(resolve))
      return seen[read++]!
    },
  }
}

for (const transport of ['websocket', 'sse'] as const) {
  test(`subscribe over ${transport}: snapshot, online, update, offline as typed events`, async (t) => {
    const { server, player, watcherToken } = await setup(t)
    const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
    const sub = client.subscribe([PLAYER, 42n], { transport })
    t.after(() => sub.close())
    const events = eventsOf(sub)

    const snapshot = await events.next()
    assert.equal(snapshot.type, 'snapshot')
    assert.deepEqual(
      snapshot.type === 'snapshot' && snapshot.presences.map((p) => [p.userId, p.type]),
      [
        [PLAYER, PresenceType.Offline],
        ['42', PresenceType.Offline],
      ],
    )

    await player.registerAppPresence({ placeId: 1818, location: 'Crossroads' })
    const online = await events.next()
    assert.equal(online.type, 'online')
    assert.ok(online.type === 'online')
    assert.equal(online.seq, snapshot.seq + 1)
    assert.equal(online.presence.userId, PLAYER, 'an id above 2^53, exact')
    assert.equal(online.presence.type, PresenceType.InGame)
    assert.deepEqual(online.presence.place, { id: '1818' })

    await player.registerAppPresence({ location: 'Lobby' })
    const update = await events.next()
    assert.equal(update.type, 'update')
    assert.equal(update.type === 'update' && update.presence.type, PresenceType.Online)
    assert.equal(update.type === 'update' && update.presence.lastLocation, 'Lobby')

    await player.registerAppPresence({ disconnect: true })
    const offline = await events.next()
    assert.equal(offline.type, 'offline')
    assert.equal(offline.type === 'offline' && offline.reason, 'explicit')
    assert.equal(offline.seq, snapshot.seq + 3)
  })
}

test('presences: the latest state of each watched user, for a reader that starts after ready', async (t) => {
  const { server, player, watcherToken } = await setup(t)
  const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
  await player.registerAppPresence({ location: 'Lobby' })
  const sub = client.subscribe([PLAYER, 42])
  t.after(() => sub.close())
  await sub.ready
  // the snapshot went out before this iterator existed: its state is here
  assert.deepEqual(
    [...sub.presences].map(([id, p]) => [id, p.userId, p.type]),
    [
      [PLAYER, PLAYER, PresenceType.Online],
      ['42', '42', PresenceType.Offline],
    ],
  )
  const iterator = sub[Symbol.asyncIterator]()
  await player.registerAppPresence({ placeId: 1818, location: 'Crossroads' })
  const update = (await iterator.next()).value as PresenceEvent
  assert.equal(update.type, 'update')
  assert.equal(sub.presences.get(PLAYER)?.type, PresenceType.InGame)
  assert.deepEqual(sub.presences.get(PLAYER)?.place, { id: '1818' })
  await player.registerAppPresence({ disconnect: true })
  assert.equal(((await iterator.next()).value as PresenceEvent).type, 'offline')
  assert.equal(sub.presences.get(PLAYER)?.type, PresenceType.Offline)
})

test('the async iterator yields the same ordered events; add() and remove() change the set', async (t) => {
  const { server, player, watcherToken } = await setup(t)
  const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
  const sub = client.subscribe([42])
  t.after(() => sub.close())
  const iterator = sub[Symbol.asyncIterator]()
  const first = (await iterator.next()).value as PresenceEvent
  assert.equal(first.type, 'snapshot')

  sub.add([PLAYER])
  const added = (await iterator.next()).value as PresenceEvent
  assert.equal(added.type, 'snapshot')
  assert.deepEqual(added.type === 'snapshot' && added.presences.map((p) => p.userId), [PLAYER])
  await player.registerAppPresence({ location: 'Lobby' })
  const online = (await iterator.next()).value as PresenceEvent
  assert.equal(online.type, 'online')

  sub.remove([PLAYER])
  assert.deepEqual([...sub.ids], ['42'])
  assert.deepEqual([...sub.presences.keys()], ['42'], 'a removed user is forgotten')
  sub.close()
  assert.equal((await iterator.next()).done, true, 'close() ends the iteration')
})

test('a dropped WebSocket reconnects and resumes without a gap', async (t) => {
  const { server, player, watcherToken } = await setup(t)
  const { recording, client } = recordingClient(server.url, watcherToken)
  const sub = client.subscribe([PLAYER], { reconnect: { minDelayMs: 50 } })
  t.after(() => sub.close())
  const events = eventsOf(sub)
  const snapshot = await events.next()
  await player.registerAppPresence({ location: 'Lobby' })
  assert.equal((await events.next()).type, 'online')

  const reopened = new Promise<void>((resolve) => sub.once('open', () => resolve()))
  recording.sockets[0]!.terminate()
  // a change while the connection is down is replayed after the resume
  await player.registerAppPresence({ placeId: 1818 })
  await reopened
  const update = await events.next()
  assert.equal(update.type, 'update', 'resumed: no fresh snapshot')
  assert.equal(update.seq, snapshot.seq + 2)
  assert.equal(recording.sockets.length, 2)
})

/**
 * A WebSocket subscription (ready) whose next resume gets a reset: the stream is dropped at once
 * and no change is kept in the history, so nothing to resume from. The resume goes out only once
 * a change of PLAYER (`changed`) is made: a reconnect quicker than the write (a loaded machine)
 * would otherwise find nothing missed and get the change live. `drop()` cuts the connection.
 */
async function resetOnResume(t: TestContext, ids: Array<string | number> = [PLAYER], config = {}) {
  const { server, player, watcherToken } = await setup(t, {
    realtimeResumeMs: 0,
    realtimeHistory: 0,
    ...config,
  })
  const { recording, client } = recordingClient(server.url, watcherToken)
  const sub = client.subscribe(ids, { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
  t.after(() => sub.close())
  const events = eventsOf(sub)
  await events.next()
  const changed = player.registerAppPresence({ placeId: 1818 })
  recording.gate.hold = changed
  return { sub, events, changed, drop: () => recording.sockets[0]!.terminate() }
}

test('when the stream cannot be resumed, a fresh snapshot arrives with reset: true', async (t) => {
  const { events, changed, drop } = await resetOnResume(t)
  drop()
  await changed
  const fresh = await events.next()
  assert.equal(fresh.type, 'snapshot')
  assert.ok(fresh.type === 'snapshot' && fresh.reset)
  assert.equal(fresh.type === 'snapshot' && fresh.presences[0]!.type, PresenceType.InGame)
})

for (const transport of ['websocket', 'sse'] as const) {
  test(`a refused token over ${transport} fails the subscription without retrying`, async (t) => {
    const { server } = await setup(t)
    const client = createClient({ baseUrl: server.url, token: 'not-a-token', WebSocket })
    const sub = client.subscribe([1], { transport })
    const reconnects: unknown[] = []
    await assert.rejects(sub.ready, { status: 401 })
    assert.deepEqual(reconnects, [])
  })
}

test('the connection can carry the caller presence', async (t) => {
  const { server, watcherToken } = await setup(t)
  const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
  const sub = client.subscribe([WATCHER])
  t.after(() => sub.close())
  const events = eventsOf(sub)
  await events.next()
  sub.setPresence({ activity: { kind: 'inGame', placeId: 1818n } })
  const online = await events.next()
  assert.equal(online.type, 'online')
  assert.equal(online.type === 'online' && online.presence.type, PresenceType.InGame)
  assert.equal((await client.getUserPresence(WATCHER)).type, PresenceType.InGame)
})

for (const transport of ['websocket', 'sse'] as const) {
  test(`add() and remove() over ${transport} take ids as subscribe() does: exact, or refused before anything is sent`, async (t) => {
    const { server, player, watcherToken } = await setup(t)
    const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
    const sub = client.subscribe([42], { transport })
    t.after(() => sub.close())
    const events = eventsOf(sub)
    await events.next()
    // 2^53 + 1 typed as a number has already been rounded to 2^53: refused, not watched wrong
    assert.throws(() => sub.add([Number(PLAYER)]), InvalidIdError)
    assert.throws(() => sub.add([7, 'seven']), InvalidIdError)
    assert.throws(() => sub.remove([-1]), InvalidIdError)
    assert.deepEqual([...sub.ids], ['42'], 'nothing of a refused call was taken')
    assert.throws(
      () => sub.setPresence({ activity: { kind: 'inGame', placeId: Number('9007199254740993') } }),
      InvalidIdError,
    )

    sub.add([BigInt(PLAYER), { id: ' 42 ' }])
    assert.deepEqual([...sub.ids], ['42', PLAYER])
    const added = await events.next()
    assert.equal(added.type, 'snapshot')
    assert.ok(added.type === 'snapshot' && added.presences.some((p) => p.userId === PLAYER))
    await player.registerAppPresence({ location: 'Lobby' })
    const online = await events.next()
    assert.equal(online.type === 'online' && online.presence.userId, PLAYER)

    sub.remove([{ id: BigInt(PLAYER) }])
    assert.deepEqual([...sub.ids], ['42'])
  })
}

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, a first subscribe of more ids than a stream takes is spread over two streams, without a refusal`,
    { timeout: 20_000 },
    async (t) => {
      const { server, watcherToken } = await setup(t)
      const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
      const ids = Array.from({ length: 1001 }, (_, i) => i + 1)
      const sub = client.subscribe(ids, { transport, reconnect: { minDelayMs: 50 } })
      t.after(() => sub.close())
      const reconnects: unknown[] = []
      sub.on('reconnecting', (r) => reconnects.push(r))
      const opens: unknown[] = []
      sub.on('open', (o) => opens.push(o))
      // (before streams were sharded, ready failed TOO_MANY_IDS)
      assert.equal(await settledWithin(sub.ready), 'resolved')
      assert.equal(sub.presences.size, 1001)
      assert.equal(opens.length, 2, 'two streams')
      assert.deepEqual(reconnects, [])
    },
  )

  test(
    `over ${transport}, a first subscribe beyond the user's watch limit is retried until the limit frees`,
    { timeout: 20_000 },
    async (t) => {
      // watches of a closed stream are freed at once with no resume window
      const { server, watcherToken } = await setup(t, {
        realtimeWatchesPerUser: 2,
        realtimeResumeMs: 0,
      })
      const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
      const first = client.subscribe([1, 2], { transport })
      t.after(() => first.close())
      await first.ready
      const second = client.subscribe([PLAYER], {
        transport,
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      })
      t.after(() => second.close())
      const refused = await new Promise<unknown>((resolve) =>
        second.once('reconnecting', ({ error }) => resolve(error)),
      )
      assert.ok(refused instanceof PresencedError)
      assert.equal(refused.code, 'WATCH_LIMIT')
      assert.equal(refused.status, 429)
      first.close()
      await second.ready
      assert.deepEqual([...second.presences.keys()], [PLAYER])
    },
  )
}

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, a connection that goes silent (no FIN) is dropped after idleTimeoutMs and resumed`,
    { timeout: 30_000 },
    async (t) => {
      // a 3 s session TTL makes the server's keepalive (ping, SSE comment) every second
      const { server, player, watcherToken } = await setup(t, { sessionTtlSeconds: 3 })
      const { proxy, sub } = await proxiedSubscription(t, server, watcherToken, [PLAYER], {
        transport,
        idleTimeoutMs: 3000,
      })
      const events = eventsOf(sub)
      const snapshot = await events.next()
      const reconnecting = new Promise<unknown>((resolve) =>
        sub.once('reconnecting', ({ error }) => resolve(error)),
      )
      proxy.freeze()
      // made while the connection is silent: only a new connection can tell it
      await player.registerAppPresence({ location: 'Lobby' })
      const next = await orAfter(events.next(), 12_000, 'silent' as const)
      assert.notEqual(next, 'silent', 'the change arrived over a new connection')
      assert.ok(
        next !== 'silent' && next.type === 'online',
        'resumed: the missed change, no snapshot',
      )
      assert.equal(next.seq, snapshot.seq + 1)
      const error = await reconnecting
      assert.ok(error instanceof PresencedError)
      assert.match(error.message, /no data .* 3000 ms/i)
    },
  )
}

for (const transport of ['websocket', 'sse'] as const) {
  test(`over ${transport}, a client with a cookie and no token is told that streams take a token`, async (t) => {
    const { server, watcherToken } = await setup(t)
    // the same credential works as a cookie on the Roblox API...
    const client = createClient({ baseUrl: server.url, cookie: watcherToken, WebSocket })
    await client.getUserPresences([1])
    // ...and the real-time API takes only a token (Authorization or ?access_token=)
    const sub = client.subscribe([1], { transport })
    const failure = await sub.ready.then(
      () => 'ready',
      (e: unknown) => e,
    )
    assert.ok(failure instanceof PresencedError)
    assert.equal(failure.status, 401)
    assert.match(failure.message, /takes a token, not a cookie: createClient\(\{ token \}\)/)
    assert.doesNotMatch(failure.message, new RegExp(watcherToken.slice(0, 20)))
  })
}

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, add() resolves with its snapshot, and rejects typed when the server refuses it, the ids no longer watched`,
    // the bound covers the server's start: 9-19 s of the 14-24 s this test took at load average
    // 20-25 (15 runs, 3 at a time beside a busy loop), the SDK's own steps 2-6 s; no step hung.
    // A hang still fails it, and the add's refusal keeps its own 5 s bound below
    { timeout: 60_000 },
    async (t) => {
      const { server, player, watcherToken } = await setup(t, { realtimeWatchesPerUser: 2 })
      const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
      const sub = client.subscribe([42], { transport, reconnect: { minDelayMs: 50 } })
      t.after(() => sub.close())
      await sub.ready
      const warnings: unknown[] = []
      sub.on('warning', (w) => warnings.push(w))

      await sub.add([PLAYER])
      assert.ok(sub.presences.has(PLAYER), 'resolved once the snapshot of the added user came')

      // a third user is beyond the watch limit of 2: refused whole
      const waited = new Promise((resolve) => setTimeout(() => resolve('still pending'), 5000))
      const outcome = await Promise.race([
        sub.add([7, 8]).then(
          () => 'resolved',
          (e: unknown) => e,
        ),
        waited,
      ])
      assert.ok(outcome instanceof PresencedError, `add() rejected, got ${String(outcome)}`)
      assert.equal(outcome.code, 'WATCH_LIMIT')
      assert.equal(outcome.status, 429)
      assert.deepEqual([...sub.ids], ['42', PLAYER], 'the refused ids are not watched')

      // the subscription goes on with what it watches
      await player.registerAppPresence({ location: 'Lobby' })
      const online = await new Promise<PresenceEvent>((resolve) => sub.once('online', resolve))
      assert.equal(online.type === 'online' && online.presence.userId, PLAYER)
      assert.equal(warnings.length, 1, 'a warning listener still hears of the refusal')

      // ignoring the promise of a refused add() is safe: no unhandled rejection
      void sub.add([9])
      sub.close()
      await assert.rejects(sub.add([10]), /closed/)
    },
  )
}

test('a refused heartbeat (RATE_LIMITED, for: heartbeat) is a warning: it does not refuse an add() waiting for its snapshot', async (t) => {
  const client = await budgeted(t, 4)
  const sub = client.subscribe([42])
  t.after(() => sub.close())
  await sub.ready
  const warnings: PresencedError[] = []
  sub.on('warning', (w) => warnings.push(w as PresencedError))
  // heartbeats over the connection until the budget refuses one
  for (let i = 0; i < 50 && warnings.length === 0; i++) {
    sub.setPresence({ activity: { kind: 'online' } })
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.equal(warnings[0]?.code, 'RATE_LIMITED', 'the budget refused a heartbeat')
  assert.equal((warnings[0]?.body as { for?: string }).for, 'heartbeat')

  // an add() sent, then a heartbeat refused before the add's snapshot comes
  const added = sub.add([PLAYER])
  sub.setPresence({ activity: { kind: 'online' } })
  const outcome = await Promise.race([
    added.then(
      () => 'resolved',
      (e: unknown) => e,
    ),
    new Promise((resolve) => setTimeout(() => resolve('still pending'), 5000)),
  ])
  assert.equal(outcome, 'resolved')
  assert.deepEqual([...sub.ids], ['42', PLAYER])
  assert.ok(warnings.length >= 2, 'the second refusal is still told as a warning')
})

/** A subscription to 42 (not ready yet), for a user who may watch 2 users at most. */
async function watching42(t: TestContext, transport: 'websocket' | 'sse'): Promise<Subscription> {
  return (await watching42Of(t, transport, 2)).sub
}

/** watching42, for a user who may watch `watches` users at most; with PLAYER's client. */
async function watching42Of(t: TestContext, transport: 'websocket' | 'sse', watches: number) {
  const { server, player, watcherToken } = await setup(t, { realtimeWatchesPerUser: watches })
  const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
  const sub = client.subscribe([42], { transport, reconnect: { minDelayMs: 50 } })
  t.after(() => sub.close())
  return { sub, player }
}

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, an add() made before the first snapshot that goes past the watch limit is refused, and the stream opens with the rest (no reconnect loop)`,
    { timeout: 20_000 },
    async (t) => {
      const sub = await watching42(t, transport)
      const reconnects: unknown[] = []
      sub.on('reconnecting', ({ error }) => reconnects.push(error))
      // before the connection is open: SSE reopens with no resume point, one request for 42, 7
      // and 8; the WebSocket's first frames are still to be sent
      const outcome = await settledWithin(sub.add([7, 8]))
      assert.ok(outcome instanceof PresencedError, `add() rejected, got ${String(outcome)}`)
      assert.equal(outcome.code, 'WATCH_LIMIT')
      assert.equal(outcome.status, 429)
      assert.deepEqual([...sub.ids], ['42'], 'the refused ids are not watched')
      assert.equal(await settledWithin(sub.ready), 'resolved', 'the stream opened with the rest')
      assert.deepEqual([...sub.presences.keys()], ['42'])
      assert.deepEqual(reconnects, [], 'no reconnect loop')
    },
  )
}

test(
  'an id added and removed while the WebSocket is down is not subscribed on the next connection (it would hold a place of the watch limit)',
  { timeout: 20_000 },
  async (t) => {
    const { server, watcherToken } = await setup(t, { realtimeWatchesPerUser: 2 })
    const { recording, client } = recordingClient(server.url, watcherToken)
    const sub = client.subscribe([42], { reconnect: { minDelayMs: 50 } })
    t.after(() => sub.close())
    await sub.ready
    const down = new Promise<{ added: Promise<void> }>((resolve) =>
      sub.once('reconnecting', () => {
        // no connection now: the add waits for the next one, and the remove takes it back
        const added = sub.add([7])
        sub.remove([7])
        resolve({ added })
      }),
    )
    const reopened = new Promise<void>((resolve) => sub.once('open', () => resolve()))
    recording.sockets[0]!.terminate()
    const { added } = await down
    assert.equal(await settledWithin(added, 1000), 'resolved', 'nothing left to wait for')
    await reopened
    // the stream watches 42 only: one place of the two is free
    assert.equal(await settledWithin(sub.add([8])), 'resolved')
    assert.deepEqual([...sub.ids], ['42', '8'])
  },
)

test(
  'a WebSocket resume the server refuses for the watch limit (for: resume) is tried again after a backoff, not left open and deaf',
  { timeout: 30_000 },
  async (t) => {
    // a dropped stream is gone at once: the resume goes by positions, and needs room again
    const { server, player, watcherToken } = await setup(t, {
      realtimeWatchesPerUser: 2,
      realtimeResumeMs: 0,
    })
    const { recording, client } = recordingClient(server.url, watcherToken)
    const sub = client.subscribe([PLAYER, 42], { reconnect: { minDelayMs: 50, maxDelayMs: 200 } })
    t.after(() => sub.close())
    await sub.ready
    const refusals: unknown[] = []
    sub.on('reconnecting', ({ error }) => refusals.push(error))
    sub.on('warning', (w) => refusals.push(w))

    // while it is down, another stream of the same user takes a place
    let release!: () => void
    recording.gate.hold = new Promise<void>((resolve) => (release = resolve))
    recording.sockets[0]!.terminate()
    const other = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
    const taking = other.subscribe([7])
    t.after(() => taking.close())
    await taking.ready
    release()
    const refused = await new Promise<unknown>((resolve) => {
      const check = () => {
        const found = refusals.find((e) => e instanceof PresencedError && e.code === 'WATCH_LIMIT')
        if (found) resolve(found)
        else setTimeout(check, 20)
      }
      check()
    })
    assert.equal((refused as PresencedError).status, 429)
    // the place frees: the subscription gets its stream back and hears the change
    taking.close()
    await player.registerAppPresence({ location: 'Lobby' })
    // (by an event, or a fresh snapshot if the history no longer reaches back)
    const heard = await orAfter(
      new Promise<void>((resolve) => {
        const check = () => {
          if (sub.presences.get(PLAYER)?.type === PresenceType.Online) resolve()
        }
        sub.on('event', check)
        check()
      }),
      10_000,
      'deaf' as const,
    )
    assert.notEqual(heard, 'deaf', 'the change reached the subscription')
    assert.deepEqual([...sub.ids], [PLAYER, '42'])
  },
)

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, an add() of ids another add() is still waiting for settles with it, not at once`,
    { timeout: 20_000 },
    async (t) => {
      const sub = await watching42(t, transport)
      await sub.ready
      const first = sub.add([7, 8])
      // 7 is in `ids` already, not watched yet: this call is answered by the first one's answer
      const again = sub.add([7])
      const [a, b] = await Promise.all([settledWithin(first), settledWithin(again)])
      assert.ok(a instanceof PresencedError && a.code === 'WATCH_LIMIT', String(a))
      assert.equal(b, a, 'refused with the same refusal: 7 is not watched')
      assert.deepEqual([...sub.ids], ['42'])
    },
  )
}

// over a WebSocket the add's subscribe is a frame of its own, judged by the server as any add
test(
  `over sse, an add() made before the first snapshot that takes the stream past 1000 ids is spread over a second stream and taken`,
  { timeout: 20_000 },
  async (t) => {
    const { server, watcherToken } = await setup(t)
    const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
    const ids = Array.from({ length: 999 }, (_, i) => i + 1)
    const sub = client.subscribe(ids, { transport: 'sse', reconnect: { minDelayMs: 50 } })
    t.after(() => sub.close())
    // (before streams were sharded, the add was refused TOO_MANY_IDS)
    assert.equal(await settledWithin(sub.add([5000, 5001])), 'resolved')
    assert.equal(await settledWithin(sub.ready), 'resolved', 'the 999 are watched')
    assert.equal(sub.ids.size, 1001)
    assert.equal(sub.presences.size, 1001)
  },
)

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, an add() refused after its ids were removed and added again does not take them out: the later add() is judged on its own`,
    { timeout: 20_000 },
    async (t) => {
      const { sub, player } = await watching42Of(t, transport, 2)
      await sub.ready
      // three users: past the limit of 2, refused whole (over a WebSocket, once its answer comes)
      const first = sub.add([PLAYER, 8])
      sub.remove([PLAYER, 8])
      // two users: within the limit
      const second = sub.add([PLAYER])
      const [a, b] = await Promise.all([settledWithin(first), settledWithin(second)])
      assert.equal(b, 'resolved', `the later add() is taken, got ${String(b)}`)
      assert.equal(
        a,
        'resolved',
        'the ids of the first add() were removed: nothing of it is wanted',
      )
      assert.deepEqual([...sub.ids], ['42', PLAYER])
      assert.ok(sub.presences.has(PLAYER), 'the later add() snapshot was delivered')
      // the stream watches it: a change of the user's is heard
      await player.registerAppPresence({ location: 'Lobby' })
      const online = await new Promise<PresenceEvent>((resolve) => sub.once('online', resolve))
      assert.equal(online.type === 'online' && online.presence.userId, PLAYER)
    },
  )
}

test(
  'after a WebSocket reset, only the snapshot of the fresh subscribe carries reset: true, not that of an add() answered before it',
  { timeout: 20_000 },
  async (t) => {
    const { sub, events, changed, drop } = await resetOnResume(t)
    // an add() while the connection is down: its subscribe follows the resume on the next one
    const down = new Promise<{ added: Promise<void> }>((resolve) =>
      sub.once('reconnecting', () => resolve({ added: sub.add([42]) })),
    )
    drop()
    await changed
    assert.equal(await settledWithin((await down).added), 'resolved')
    const snapshots: Extract<PresenceEvent, { type: 'snapshot' }>[] = []
    while (!snapshots.some((s) => s.presences.length === 2)) {
      const event = await events.next()
      if (event.type === 'snapshot') snapshots.push(event)
    }
    assert.deepEqual(
      snapshots.map((s) => [s.presences.map((p) => p.userId), s.reset]),
      [
        [['42'], false],
        [[PLAYER, '42'], true],
      ],
      'the add() snapshot first, then the fresh one of every id, which alone says reset',
    )
    assert.equal(sub.presences.get(PLAYER)?.type, PresenceType.InGame)
    assert.equal(sub.presences.get('42')?.type, PresenceType.Offline)
  },
)

test(
  'a WebSocket subscribe refused RATE_LIMITED with a retryAfterMs past reconnect.maxDelayMs: the reconnect waits as the server asks, and says so',
  { timeout: 30_000 },
  async (t) => {
    // 1 id a second per connection (a budget of 1000): a resume by 600 positions leaves 400, and
    // the subscribe of the 600 ids after its reset is refused for 200 s
    const ids = [PLAYER, ...Array.from({ length: 599 }, (_, i) => i + 1)]
    const { sub, drop } = await resetOnResume(t, ids, { realtimeSubscribeRate: 1 })
    const refused = new Promise<{ delayMs: number; error: unknown }>((resolve) =>
      sub.on('reconnecting', (r) => {
        if (r.error instanceof PresencedError && r.error.code === 'RATE_LIMITED') resolve(r)
      }),
    )
    drop()
    assertServerWait(await refused)
  },
)

test(
  'an SSE request refused 429 with Retry-After is tried again no sooner, as a WebSocket refusal with retryAfterMs is',
  { timeout: 20_000 },
  async (t) => {
    const client = await budgeted(t, 1)
    const sub = client.subscribe([42], {
      transport: 'sse',
      reconnect: { minDelayMs: 50, maxDelayMs: 200 },
    })
    t.after(() => sub.close())
    await sub.ready
    const refused = new Promise<{ delayMs: number; error: unknown }>((resolve) =>
      sub.once('reconnecting', resolve),
    )
    // the add reopens the stream: a second request, past the budget of one
    void sub.add([7])
    assertServerWait(await refused)
  },
)

test(
  'over websocket, an add() whose ids were removed waits for its own answer: an earlier add() snapshot does not settle it, so its refusal is not told to the next add()',
  { timeout: 20_000 },
  async (t) => {
    const { sub } = await watching42Of(t, 'websocket', 3)
    await sub.ready
    const fits = sub.add([5]) // 2 watches
    const refused = sub.add([7, 8]) // 4: refused
    sub.remove([7, 8])
    const later = sub.add([9]) // 3: taken
    const outcomes = await Promise.all([fits, refused, later].map((p) => settledWithin(p)))
    assert.deepEqual(
      outcomes,
      ['resolved', 'resolved', 'resolved'],
      outcomes.map(String).join('; '),
    )
    assert.deepEqual([...sub.ids], ['42', '5', '9'])
    assert.ok(sub.presences.has('9'), 'the later add() snapshot was delivered')
  },
)
