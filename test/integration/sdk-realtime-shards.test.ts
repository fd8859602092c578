import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  createClient,
  PresencedError,
  PresenceType,
  type PresenceEvent,
  type Subscription,
} from '@presenced/client'
import WebSocket from 'ws'
import { prometheusSamples } from '../helpers/prometheus.js'
import { PLAYER, recordingClient, settledWithin, setup } from './sdk-kit.js'

// One subscribe of more users than a stream may watch (the server's x-presenced-max-ids, 1000)
// is spread over as many streams as it needs: one Subscription, one ordered event stream.

const within = (promise: Promise<unknown>) => settledWithin(promise, 20_000)

/** `n` distinct ids from `from` on, as strings. */
const idsFrom = (from: number, n: number) => Array.from({ length: n }, (_, i) => String(from + i))

/** Resolves with the first event of `sub` that `match` accepts. */
function eventWhere(sub: Subscription, match: (e: PresenceEvent) => boolean) {
  return new Promise<PresenceEvent>((resolve) => {
    const off = sub.on('event', (e) => {
      if (match(e)) {
        off()
        resolve(e)
      }
    })
  })
}

const about = (id: string) => (e: PresenceEvent) =>
  e.type !== 'snapshot' && e.presence.userId === id

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, 2500 ids in one subscribe are watched over three streams: every snapshot, then changes`,
    { timeout: 60_000 },
    async (t) => {
      const { server, player, watcherToken } = await setup(t)
      const { recording, client } = recordingClient(server.url, watcherToken)
      const ids = [...idsFrom(1, 1250), PLAYER, ...idsFrom(2000, 1249)]
      const sub = client.subscribe(ids, { transport })
      t.after(() => sub.close())
      const errors: unknown[] = []
      sub.on('error', (e) => errors.push(e))
      const snapshots: string[] = []
      sub.on('snapshot', (s) => snapshots.push(...s.presences.map((p) => p.userId)))
      assert.equal(await within(sub.ready), 'resolved')
      assert.equal(sub.ids.size, 2500)
      assert.deepEqual([...sub.ids], ids, 'in the order given')
      assert.equal(sub.presences.size, 2500)
      assert.deepEqual(new Set(snapshots), new Set(ids), 'a snapshot of every id')
      assert.equal(snapshots.length, 2500, 'each once')
      if (transport === 'websocket') assert.equal(recording.sockets.length, 3)

      const online = eventWhere(sub, about(PLAYER))
      await player.registerAppPresence({ location: 'Lobby' })
      const event = await online
      assert.equal(event.type, 'online')
      assert.equal(sub.presences.get(PLAYER)?.type, PresenceType.Online)
      const offline = eventWhere(sub, about(PLAYER))
      await player.registerAppPresence({ disconnect: true })
      assert.equal((await offline).type, 'offline', "a user's events in order")
      assert.deepEqual(errors, [])
    },
  )

  test(
    `over ${transport}, a server whose streams watch fewer than 1000 ids (PRESENCED_REALTIME_MAX_IDS 300): subscribe() and add() are spread over streams of its limit`,
    { timeout: 60_000 },
    async (t) => {
      const { server, player, watcherToken } = await setup(t, { realtimeMaxIds: 300 })
      const { recording, client } = recordingClient(server.url, watcherToken)
      const ids = [...idsFrom(1, 400), PLAYER, ...idsFrom(2000, 299)]
      const sub = client.subscribe(ids, { transport })
      t.after(() => sub.close())
      const errors: unknown[] = []
      sub.on('error', (e) => errors.push(e))
      const snapshots: string[] = []
      sub.on('snapshot', (s) => snapshots.push(...s.presences.map((p) => p.userId)))
      assert.equal(await within(sub.ready), 'resolved', errors.map(String).join(','))
      assert.equal(sub.maxIds, 300)
      assert.deepEqual([...sub.ids], ids, 'in the order given')
      assert.equal(sub.presences.size, 700)
      assert.deepEqual(new Set(snapshots), new Set(ids), 'a snapshot of every id')
      assert.equal(snapshots.length, 700, 'each once')
      // the first stream learned the limit from the upgrade: 300, 300 and 100 ids
      if (transport === 'websocket') assert.equal(recording.sockets.length, 3)

      // the third stream's room (200) first, then a stream of 300
      assert.equal(await within(sub.add(idsFrom(5000, 500))), 'resolved')
      assert.equal(sub.ids.size, 1200)
      if (transport === 'websocket') assert.equal(recording.sockets.length, 4)

      const online = eventWhere(sub, about(PLAYER))
      await player.registerAppPresence({ location: 'Lobby' })
      assert.equal((await online).type, 'online')
      assert.deepEqual(errors, [])
    },
  )

  test(
    `over ${transport}, 2500 ids from a server whose streams watch 300 take the 9 streams they need: the rest waits for the first stream to learn the limit`,
    { timeout: 60_000 },
    async (t) => {
      const metricsKey = 'metrics-key-of-the-shards-test'
      const { server, watcherToken } = await setup(t, { realtimeMaxIds: 300, metricsKey })
      const { client } = recordingClient(server.url, watcherToken)
      const ids = idsFrom(1, 2500)
      const sub = client.subscribe(ids, { transport })
      t.after(() => sub.close())
      assert.deepEqual([...sub.ids], ids, 'every id watched from the start')
      assert.equal(await within(sub.ready), 'resolved')
      assert.deepEqual([...sub.ids], ids, 'in the order given')
      assert.equal(sub.presences.size, 2500)
      const response = await fetch(`${server.url}/metrics`, {
        headers: { authorization: `Bearer ${metricsKey}` },
      })
      const samples = prometheusSamples(await response.text())
      assert.equal(samples.get(`presenced_realtime_connections{transport="${transport}"}`), 9)
    },
  )

  test(
    `over ${transport}, add() past a stream's limit opens another stream; remove() and close() reach every stream`,
    { timeout: 60_000 },
    async (t) => {
      // as many streams as this test holds at once: a stream close() did not end refuses the last
      const { server, player, watcherToken } = await setup(t, { realtimeStreamsPerUser: 3 })
      const { recording, client } = recordingClient(server.url, watcherToken)
      const sub = client.subscribe(idsFrom(1, 999), { transport })
      t.after(() => sub.close())
      await sub.ready
      const iterator = sub[Symbol.asyncIterator]()
      assert.equal(await within(sub.add([PLAYER, '5000', '5001'])), 'resolved')
      assert.equal(sub.ids.size, 1002)
      assert.ok(sub.presences.has(PLAYER) && sub.presences.has('5001'))
      if (transport === 'websocket') assert.equal(recording.sockets.length, 2)

      await player.registerAppPresence({ location: 'Lobby' })
      let next = (await iterator.next()).value as PresenceEvent
      while (next.type === 'snapshot') next = (await iterator.next()).value as PresenceEvent
      assert.equal(next.type, 'online')
      assert.equal(next.type === 'online' && next.presence.userId, PLAYER)

      // re-adding a watched id is no new watch
      assert.equal(await within(sub.add(['1', PLAYER])), 'resolved')
      assert.equal(sub.ids.size, 1002)

      sub.remove([PLAYER, '5000', '5001', '1'])
      assert.equal(sub.ids.size, 998)
      assert.ok(!sub.presences.has(PLAYER) && !sub.presences.has('1'))
      const told: PresenceEvent[] = []
      sub.on('event', (e) => told.push(e))
      // a change of a removed user is not delivered; one of a watched user still is
      const other = createClient({
        baseUrl: server.url,
        token: await server.tokens.issue('2' as never),
      })
      const two = eventWhere(sub, about('2'))
      await player.registerAppPresence({ placeId: 1818 })
      await other.registerAppPresence({ location: 'Lobby' })
      await two
      assert.deepEqual(
        told.flatMap((e) => (e.type === 'snapshot' ? [] : [e.presence.userId])),
        ['2'],
      )

      if (transport === 'websocket') {
        await new Promise((resolve) => setTimeout(resolve, 200))
        assert.ok(
          recording.sockets[1]!.readyState >= WebSocket.CLOSING,
          'the emptied stream closed',
        )
      }
      // add() fills the stream with room before opening another
      assert.equal(await within(sub.add(['6000', '6001'])), 'resolved')
      assert.equal(sub.ids.size, 1000)
      if (transport === 'websocket') assert.equal(recording.sockets.length, 2)

      const closed = new Promise<void>((resolve) => sub.once('close', () => resolve()))
      sub.close()
      await closed
      let rest = await iterator.next()
      while (!rest.done) rest = await iterator.next()
      assert.equal(rest.done, true, 'close() ends the iteration')
      if (transport === 'websocket') {
        await new Promise((resolve) => setTimeout(resolve, 200))
        for (const socket of recording.sockets) {
          assert.ok(socket.readyState >= WebSocket.CLOSING, 'every stream closed')
        }
      }
      // every place freed: a user allowed as many streams as were open gets them all again
      const again = client.subscribe(idsFrom(1, 2001), { transport })
      t.after(() => again.close())
      assert.equal(await within(again.ready), 'resolved')
    },
  )

  test(
    `over ${transport}, a shard past the user's watch limit: its add() is refused WATCH_LIMIT, and a first subscribe's shard waits for room`,
    { timeout: 60_000 },
    async (t) => {
      const { server, watcherToken } = await setup(t, {
        realtimeWatchesPerUser: 1500,
        realtimeResumeMs: 0,
      })
      const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
      const sub = client.subscribe(idsFrom(1, 1000), { transport })
      t.after(() => sub.close())
      await sub.ready
      const refused = await within(sub.add(idsFrom(5000, 600)))
      assert.ok(refused instanceof PresencedError, String(refused))
      assert.equal(refused.code, 'WATCH_LIMIT')
      assert.equal(refused.status, 429)
      assert.equal(sub.ids.size, 1000, 'the refused ids are taken out again')
      assert.equal(await within(sub.add(idsFrom(5000, 400))), 'resolved', 'the room left')
      assert.equal(sub.ids.size, 1400)
      sub.close()

      const big = client.subscribe(idsFrom(1, 1600), {
        transport,
        reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      })
      t.after(() => big.close())
      const told = await new Promise<unknown>((resolve) =>
        big.once('reconnecting', ({ error }) => resolve(error)),
      )
      assert.ok(told instanceof PresencedError, String(told))
      assert.equal(told.code, 'WATCH_LIMIT')
      assert.equal(
        await settledWithin(big.ready, 500),
        'still pending',
        'ready waits for every stream',
      )
      // either shard may be the one refused (they open together); over SSE a removal does not
      // reach the server's count of a request already open: 100 fewer in each fits either way
      big.remove([...idsFrom(1, 100), ...idsFrom(1001, 100)])
      assert.equal(await within(big.ready), 'resolved', 'once the shard fits')
      assert.equal(big.presences.size, 1400)
      assert.equal(big.ids.size, 1400)
    },
  )
}

test(
  'up to a stream of ids (1000) a subscription is one stream, as before sharding: one connection, one subscribe of every id',
  { timeout: 60_000 },
  async (t) => {
    const { server, watcherToken } = await setup(t)
    const { recording, client } = recordingClient(server.url, watcherToken)
    const ids = idsFrom(1, 1000)
    const sub = client.subscribe(ids)
    t.after(() => sub.close())
    const socket = recording.sockets[0]!
    const frames: unknown[] = []
    const send = socket.send.bind(socket) as (data: string) => void
    Object.defineProperty(socket, 'send', {
      value: (data: string) => {
        frames.push(JSON.parse(data))
        send(data)
      },
    })
    assert.equal(await within(sub.ready), 'resolved')
    assert.deepEqual(frames, [{ type: 'subscribe', ids, positions: true }])
    sub.remove(['1'])
    assert.equal(await within(sub.add(['5000'])), 'resolved', 'the room a remove left')
    assert.equal(recording.sockets.length, 1)
    assert.deepEqual(frames.slice(1), [
      { type: 'unsubscribe', ids: ['1'] },
      { type: 'subscribe', ids: ['5000'], positions: true },
    ])
    assert.equal(sub.ids.size, 1000)
  },
)

for (const transport of ['websocket', 'sse'] as const) {
  test(
    `over ${transport}, a fatal error of one stream (the token revoked) ends the whole subscription once: error, close, the iterators fail`,
    { timeout: 60_000 },
    async (t) => {
      const { server, watcherToken } = await setup(t)
      const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
      const sub = client.subscribe(idsFrom(1, 1500), { transport, reconnect: { minDelayMs: 50 } })
      t.after(() => sub.close())
      const errors: unknown[] = []
      sub.on('error', (e) => errors.push(e))
      const reconnects: unknown[] = []
      sub.on('reconnecting', (r) => reconnects.push(r))
      let closes = 0
      sub.on('close', () => closes++)
      await sub.ready
      const iterator = sub[Symbol.asyncIterator]()
      const ended = iterator.next().then(
        () => 'no failure',
        (e: unknown) => e,
      )
      const caller = await server.service.auth.authenticate(
        { kind: 'token', token: watcherToken, via: 'bearer' },
        '::1',
      )
      await server.service.auth.logout(server.service.auth.requireUser(caller))
      const failure = await ended
      assert.ok(failure instanceof PresencedError, String(failure))
      assert.equal(failure.message, 'token revoked')
      // the other stream's end, told after the first, changes nothing
      await new Promise((resolve) => setTimeout(resolve, 300))
      assert.equal(errors.length, 1)
      assert.equal(errors[0], failure)
      assert.equal(closes, 1)
      assert.deepEqual(reconnects, [])
      const late = await within(sub.add(['5000']))
      assert.ok(
        late instanceof PresencedError && late.message === 'Subscription closed',
        String(late),
      )
    },
  )
}
