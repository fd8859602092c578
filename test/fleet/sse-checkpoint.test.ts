import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { SseClient, type SseEvent } from '../integration/sse-client.js'
import { HIDDEN, IDS, P1, P2, sseFleet } from './sse-fleet.js'

/*
 * A browser's EventSource can only GET and reconnect with `Last-Event-ID`. When its node shuts
 * down gracefully, the node checkpoints the stream in Redis, and the node the browser reconnects
 * to continues it from there: the changes made meanwhile, no reset. Two nodes on the real Redis.
 */

const OTHER = '9007199254740999'

function fleet(t: TestContext, config: Partial<Config> = {}) {
  return sseFleet(t, 'sse-checkpoint', { realtimeHistory: 64, ...config })
}

const locationOf = (event: SseEvent): string =>
  (event.data.presence as { sessions: Array<{ activity: { location?: string } }> }).sessions[0]
    ?.activity.location ?? `(${event.data.type})`

/** Events until every user of `last` reached its location. */
async function eventsUntil(client: SseClient, last: Record<string, string>): Promise<SseEvent[]> {
  const seen: SseEvent[] = []
  const reached = new Set<string>()
  while (reached.size < Object.keys(last).length) {
    const event = await client.waitFor(() => true, 10_000)
    seen.push(event)
    const userId = event.data.userId as string | undefined
    if (userId !== undefined && last[userId] === locationOf(event)) reached.add(userId)
  }
  return seen
}

const stepsOf = (events: SseEvent[], userId: string): string[] =>
  events.filter((e) => e.data.userId === userId).map(locationOf)

/** What a reconnecting EventSource sends. */
const lastEventId = (id: string) => ({ 'last-event-id': id })

/** Today's answer to a token this node does not hold: reset `unknown`, then a fresh snapshot. */
async function assertUnknown(client: SseClient, ids: readonly string[]): Promise<SseEvent> {
  assert.equal(client.status, 200)
  assert.deepEqual((await client.waitFor(() => true)).data, { type: 'reset', reason: 'unknown' })
  const snapshot = await client.waitFor(() => true)
  assert.equal(snapshot.data.type, 'snapshot')
  assert.deepEqual(
    (snapshot.data.presences as Array<{ userId: string }>).map((p) => p.userId),
    ids,
  )
  return snapshot
}

test('SSE checkpoint: a GET stream of a node shut down continues on another node from Last-Event-ID', async (t) => {
  const { a, b, token, step } = await fleet(t)
  const first = await SseClient.open(a.url, token, IDS)
  t.after(() => first.close())
  assert.equal(first.status, 200)
  const snapshot = await first.waitFor((e) => e.data.type === 'snapshot')
  assert.equal(snapshot.data.pos, undefined, 'a plain GET: no positions asked for')
  await step('s1')
  const onA = await eventsUntil(first, { [P1]: 's1', [P2]: 's1' })
  assert.deepEqual(stepsOf(onA, HIDDEN), [])
  const lastId = onA.at(-1)!.id!
  assert.match(lastId, /^[A-Za-z0-9_-]+\.3$/)

  // a rolling deploy: A shuts down gracefully, ending the stream; changes go on through B
  let started = Date.now()
  await a.app.close()
  console.error('close', Date.now() - started)
  started = Date.now()
  await first.ended()
  console.error('ended', Date.now() - started)
  assert.deepEqual(first.pending(), [], 'nothing sent after the checkpoint')
  await step('s2')
  await step('s3')

  const second = await SseClient.open(b.url, token, IDS, '', lastEventId(lastId))
  t.after(() => second.close())
  assert.equal(second.status, 200)
  const recovered = await second.waitFor(() => true)
  assert.equal(recovered.data.type, 'recovered', JSON.stringify(recovered.data))
  assert.equal(recovered.data.seq, 1)
  const newToken = recovered.data.resume as string
  assert.notEqual(newToken, lastId.split('.')[0], 'a new stream, on B')
  const missed = await eventsUntil(second, { [P1]: 's3', [P2]: 's3' })
  assert.deepEqual(stepsOf(missed, P1), ['s2', 's3'])
  assert.deepEqual(stepsOf(missed, P2), ['s2', 's3'])
  assert.deepEqual(stepsOf(missed, HIDDEN), [], 'the hidden user stays hidden')
  assert.ok(
    missed.every((e) => e.data.type === 'update'),
    'online already: updates only',
  )
  assert.deepEqual(
    missed.map((e) => e.data.pos),
    missed.map(() => undefined),
    'the replayed frames carry no pos either: the stream never asked for positions',
  )

  // then live on B, with positions only if asked for
  await step('s4', [P1, HIDDEN])
  const live = await eventsUntil(second, { [P1]: 's4' })
  assert.deepEqual(
    live.map((e) => [e.data.userId, locationOf(e)]),
    [[P1, 's4']],
  )
  assert.equal(live[0]!.data.pos, undefined)
  const seqs = [recovered, ...missed, ...live].map((e) => e.data.seq)
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => i + 1),
    'numbered from the recovered frame, no gap, no duplicate',
  )
  assert.equal(live[0]!.id, `${newToken}.${seqs.length}`)
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(
    second.pending().map((e) => e.data),
    [],
    'nothing more (the hidden user above all)',
  )

  // a checkpoint is used once
  second.close()
  const third = await SseClient.open(b.url, token, IDS, '', lastEventId(lastId))
  t.after(() => third.close())
  await assertUnknown(third, IDS)
})

test('SSE checkpoint: a GET stream that asked for positions gets them in the replayed frames too', async (t) => {
  const { a, b, token, step } = await fleet(t)
  const first = await SseClient.open(a.url, token, [P1], '&positions=1')
  t.after(() => first.close())
  const snapshot = await first.waitFor((e) => e.data.type === 'snapshot')
  assert.equal((snapshot.data.pos as string[]).length, 1, 'positions asked for')
  await step('s1', [P1])
  const lastId = (await first.waitFor((e) => e.data.userId === P1)).id!
  await a.app.close()
  await first.ended()
  await step('s2', [P1])

  const second = await SseClient.open(b.url, token, [P1], '&positions=1', lastEventId(lastId))
  t.after(() => second.close())
  assert.equal((await second.waitFor(() => true)).data.type, 'recovered')
  const missed = await second.waitFor(() => true, 10_000)
  assert.deepEqual([missed.data.userId, locationOf(missed)], [P1, 's2'])
  assert.equal(typeof missed.data.pos, 'string')
})

test('SSE checkpoint: another seq or another viewer gets the unknown-token answer; another viewer does not use it up', async (t) => {
  const { a, b, token, step } = await fleet(t)
  const otherToken = await a.tokens.issue(OTHER as UserId)
  // two streams of the watcher on A, each checkpointed on its own
  const x = await SseClient.open(a.url, token, IDS)
  const y = await SseClient.open(a.url, token, [P1])
  t.after(() => x.close())
  t.after(() => y.close())
  await x.waitFor((e) => e.data.type === 'snapshot')
  await y.waitFor((e) => e.data.type === 'snapshot')
  await step('s1', [P1, HIDDEN])
  const xId = (await x.waitFor((e) => e.data.userId === P1)).id!
  const yId = (await y.waitFor((e) => e.data.userId === P1)).id!
  await a.app.close()
  await x.ended()
  await y.ended()
  await step('s2', [P1])

  const [xToken, xSeq] = xId.split('.') as [string, string]
  const open = async (bearer: string, ids: string[], id: string) => {
    const client = await SseClient.open(b.url, bearer, ids, '', lastEventId(id))
    t.after(() => client.close())
    return client
  }
  // another user presenting the watcher's event id: as unknown, and the watcher's stays
  const stranger = await assertUnknown(await open(otherToken, IDS, xId), IDS)
  const hidden = (stranger.data.presences as Array<{ state: string }>)[2]!
  assert.notEqual(hidden.state, 'offline', 'the stranger sees its own view, not the watcher’s')
  const stranger2 = await open(otherToken, [P1], yId)
  await assertUnknown(stranger2, [P1])

  // the watcher with a seq that is not the last one sent: as unknown (and the checkpoint is spent)
  await assertUnknown(await open(token, IDS, `${xToken}.${Number(xSeq) - 1}`), IDS)
  await assertUnknown(await open(token, IDS, xId), IDS)

  // the stream the stranger tried is still there for its viewer
  const resumed = await open(token, [P1], yId)
  assert.equal((await resumed.waitFor(() => true)).data.type, 'recovered')
  const missed = await resumed.waitFor(() => true)
  assert.deepEqual([missed.data.userId, locationOf(missed)], [P1, 's2'])
})

test('SSE checkpoint: an offline still held for the flap grace on A is sent by B', async (t) => {
  const { a, b, token } = await fleet(t, { flapGraceMs: 3000 })
  const beat = (userId: string, kind: 'online' | 'inGame') =>
    b.service.heartbeat({
      userId: userId as UserId,
      key: 'app',
      source: 'app',
      deviceType: 'Web',
      activity: { kind },
    })
  const first = await SseClient.open(a.url, token, [P1, P2])
  t.after(() => first.close())
  await first.waitFor((e) => e.data.type === 'snapshot')
  await beat(P1, 'online')
  const online = await first.waitFor((e) => e.data.userId === P1)
  assert.equal(online.data.type, 'online')
  await b.service.endSession(P1 as UserId, 'app')
  // P2's change comes after P1's end: once it arrived, A holds P1's offline back
  await beat(P2, 'inGame')
  const last = await first.waitFor((e) => e.data.userId === P2)
  assert.equal(last.data.type, 'online')
  await a.app.close()
  await first.ended()
  assert.deepEqual(first.pending(), [], 'the offline was still held when A shut down')

  const second = await SseClient.open(b.url, token, [P1, P2], '', lastEventId(last.id!))
  t.after(() => second.close())
  assert.equal((await second.waitFor(() => true)).data.type, 'recovered')
  const offline = await second.waitFor(() => true, 10_000)
  assert.deepEqual(
    [offline.data.type, offline.data.userId, offline.data.reason],
    ['offline', P1, 'explicit'],
  )
})
