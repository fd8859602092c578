import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import type { Config } from '../../src/app/config.js'
import { startApp } from '../helpers/start-app.js'
import { SseClient, type SseEvent } from '../integration/sse-client.js'
import { HIDDEN, IDS, P1, P2, WATCHER, sseFleet } from './sse-fleet.js'

/*
 * Server-Sent Events resume on any node, as WebSocket streams do (resume-anywhere.test.ts): two
 * nodes on the real Redis; a stream on A asks for positions, A's connection drops, and the
 * client continues on B with `POST /api/v1/realtime/sse` and the positions it held.
 */

function fleet(t: TestContext, config: Partial<Config> = {}) {
  return sseFleet(t, 'sse-resume', config)
}

/** Where the stream stands on the client: what a resume needs. */
class Held {
  token = ''
  seq = 0
  readonly positions = new Map<string, string>()

  take(event: SseEvent): void {
    const frame = event.data
    if (typeof frame.seq === 'number') this.seq = frame.seq
    if (typeof frame.resume === 'string') this.token = frame.resume
    if (frame.type === 'snapshot') {
      const pos = frame.pos as string[]
      ;(frame.presences as Array<{ userId: string }>).forEach((p, i) =>
        this.positions.set(p.userId, pos[i]!),
      )
    } else if (typeof frame.pos === 'string') {
      this.positions.set(frame.userId as string, frame.pos)
    }
  }

  body(ids = IDS): object {
    return {
      ids,
      resume: this.token,
      since: this.seq,
      positions: Object.fromEntries(this.positions),
    }
  }
}

const locationOf = (event: SseEvent): string =>
  (event.data.presence as { sessions: Array<{ activity: { location?: string } }> }).sessions[0]
    ?.activity.location ?? `(${event.data.type})`

/** Events until every user of `last` reached its location, each applied to `held`. */
async function eventsUntil(
  client: SseClient,
  held: Held,
  last: Record<string, string>,
): Promise<SseEvent[]> {
  const seen: SseEvent[] = []
  const reached = new Set<string>()
  while (reached.size < Object.keys(last).length) {
    const event = await client.waitFor(() => true, 10_000)
    held.take(event)
    seen.push(event)
    const userId = event.data.userId as string | undefined
    if (userId !== undefined && last[userId] === locationOf(event)) reached.add(userId)
  }
  return seen
}

function stepsOf(events: SseEvent[], userId: string): string[] {
  return events.filter((e) => e.data.userId === userId).map(locationOf)
}

test('SSE: a stream of node A continues on node B from its positions, exactly the changes missed, then live', async (t) => {
  const { a, b, token, step } = await fleet(t, { realtimeHistory: 64 })
  const held = new Held()

  const first = await SseClient.post(a.url, token, { ids: IDS, positions: true })
  t.after(() => first.close())
  assert.equal(first.status, 200)
  const snapshot = await first.waitFor((e) => e.data.type === 'snapshot')
  held.take(snapshot)
  assert.equal((snapshot.data.pos as string[]).length, 3, 'a pos per presence')
  assert.match(snapshot.id!, /^[A-Za-z0-9_-]+\.1$/)
  const hidden = (snapshot.data.presences as Array<Record<string, unknown>>)[2]!
  assert.equal(hidden.state, 'offline')

  await step('s1')
  await step('s2')
  const onA = await eventsUntil(first, held, { [P1]: 's2', [P2]: 's2' })
  assert.deepEqual(stepsOf(onA, P1), ['s1', 's2'])
  assert.deepEqual(stepsOf(onA, P2), ['s1', 's2'])
  for (const event of onA) assert.equal(typeof event.data.pos, 'string')

  // the connection to A drops; changes go on meanwhile
  first.close()
  await step('s3')
  await step('s4')

  const second = await SseClient.post(b.url, token, held.body())
  t.after(() => second.close())
  assert.equal(second.status, 200)
  const recovered = await second.waitFor(() => true)
  assert.equal(recovered.data.type, 'recovered', JSON.stringify(recovered.data))
  assert.equal(recovered.data.seq, 1)
  assert.notEqual(recovered.data.resume, held.token, 'a new stream, on B')
  held.take(recovered)
  const missed = await eventsUntil(second, held, { [P1]: 's4', [P2]: 's4' })
  assert.deepEqual(stepsOf(missed, P1), ['s3', 's4'])
  assert.deepEqual(stepsOf(missed, P2), ['s3', 's4'])
  assert.deepEqual(stepsOf(missed, HIDDEN), [], 'the hidden user stays hidden')
  assert.ok(missed.every((e) => e.data.type !== 'snapshot' && e.data.type !== 'reset'))

  // then live on B
  await step('s5', [P1, HIDDEN])
  const live = await eventsUntil(second, held, { [P1]: 's5' })
  assert.deepEqual(
    live.map((e) => [e.data.userId, locationOf(e)]),
    [[P1, 's5']],
  )
  const seqs = [recovered, ...missed, ...live].map((e) => e.data.seq)
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => i + 1),
    'numbered from the recovered frame, no gap, no duplicate',
  )
  // each event's SSE id names the new stream, so Last-Event-ID resumes it on B
  assert.equal(live[0]!.id, `${held.token}.${held.seq}`)
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(
    second.pending().map((e) => e.data),
    [],
    'nothing more',
  )
})

test('SSE: positions whose history is gone get a too_old reset, then a fresh snapshot', async (t) => {
  const { a, b, token, step } = await fleet(t, { realtimeHistory: 2 })
  const held = new Held()
  const first = await SseClient.post(a.url, token, { ids: IDS, positions: true })
  t.after(() => first.close())
  held.take(await first.waitFor((e) => e.data.type === 'snapshot'))
  await step('s1')
  await eventsUntil(first, held, { [P1]: 's1', [P2]: 's1' })
  first.close()
  // more changes than each user's history keeps
  for (const location of ['s2', 's3', 's4', 's5']) await step(location)

  const second = await SseClient.post(b.url, token, held.body())
  t.after(() => second.close())
  const reset = await second.waitFor(() => true)
  assert.deepEqual(reset.data, { type: 'reset', reason: 'too_old' })
  assert.equal(reset.id, undefined, 'a reset is outside the sequence')
  const snapshot = await second.waitFor(() => true)
  assert.equal(snapshot.data.type, 'snapshot')
  const presences = snapshot.data.presences as Array<{
    userId: string
    state: string
    sessions: Array<{ activity: { location?: string } }>
  }>
  assert.deepEqual(
    presences.map((p) => p.userId),
    IDS,
  )
  assert.equal(presences[0]!.sessions[0]?.activity.location, 's5')
  assert.equal(presences[1]!.sessions[0]?.activity.location, 's5')
  assert.equal(presences[2]!.state, 'offline', 'the hidden user stays hidden')
  assert.equal((snapshot.data.pos as string[]).length, 3, 'the fresh snapshot carries positions')
})

test('SSE: a POST held by its own node resumes by token; new ids get a snapshot', async (t) => {
  const { a, token, step } = await fleet(t)
  const held = new Held()
  const first = await SseClient.post(a.url, token, { ids: [P1], positions: true })
  t.after(() => first.close())
  held.take(await first.waitFor((e) => e.data.type === 'snapshot'))
  first.close()
  await step('s1', [P1])
  const second = await SseClient.post(a.url, token, held.body([P1, P2]))
  t.after(() => second.close())
  const replayed = await second.waitFor(() => true)
  assert.equal(replayed.data.type, 'online')
  assert.equal(replayed.data.seq, 2, 'the same stream, continued')
  assert.equal(typeof replayed.data.pos, 'string')
  const added = await second.waitFor(() => true)
  assert.equal(added.data.type, 'snapshot')
  assert.deepEqual(
    (added.data.presences as Array<{ userId: string }>).map((p) => p.userId),
    [P2],
  )
})

test('SSE GET: ?positions=1 puts a pos in every frame', async (t) => {
  const { a, token, step } = await fleet(t)
  const client = await SseClient.open(a.url, token, [P1])
  t.after(() => client.close())
  const plain = await client.waitFor((e) => e.data.type === 'snapshot')
  assert.equal(plain.data.pos, undefined, 'not asked for')
  client.close()
  const positioned = await SseClient.open(a.url, token, [P1], '&positions=1')
  t.after(() => positioned.close())
  const snapshot = await positioned.waitFor((e) => e.data.type === 'snapshot')
  assert.match((snapshot.data.pos as string[])[0]!, /^[A-Za-z0-9_-]{32}$/)
  await step('s1', [P1])
  const online = await positioned.waitFor((e) => e.data.type === 'online')
  assert.match(online.data.pos as string, /^[A-Za-z0-9_-]{32}$/)
})

test('SSE POST: bad bodies are 4xx in the native error shape, never a 500', async (t) => {
  const app = await startApp(t, { listen: true })
  const token = await app.tokens.issue(WATCHER as UserId)
  const url = `${app.url}/api/v1/realtime/sse`
  const send = (body: string, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        ...headers,
      },
      body,
    })
  const pos = 'A'.repeat(22)
  const many = Array.from({ length: 1001 }, (_, i) => String(i + 1))
  const cases: Array<[string, string, Record<string, string>, number, string]> = [
    ['bad JSON', '{"ids":[1', {}, 400, 'INVALID_JSON'],
    ['not JSON', 'ids=1', { 'content-type': 'text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['no ids', '{}', {}, 400, 'INVALID_REQUEST'],
    ['ids not an array', '{"ids":"1,2"}', {}, 400, 'INVALID_REQUEST'],
    ['empty ids', '{"ids":[]}', {}, 400, 'IDS_INVALID'],
    ['a bad id', '{"ids":["1","x"]}', {}, 400, 'IDS_INVALID'],
    ['a fractional id', '{"ids":[1.5]}', {}, 400, 'IDS_INVALID'],
    ['too many ids', JSON.stringify({ ids: many }), {}, 400, 'TOO_MANY_IDS'],
    ['an unknown member', '{"ids":[1],"extra":1}', {}, 400, 'INVALID_REQUEST'],
    ['resume without since', '{"ids":[1],"resume":"abc"}', {}, 400, 'INVALID_REQUEST'],
    ['a bad since', '{"ids":[1],"resume":"abc","since":-1}', {}, 400, 'INVALID_REQUEST'],
    ['positions a string', '{"ids":[1],"positions":"yes"}', {}, 400, 'INVALID_REQUEST'],
    ['a bad pos', '{"ids":[1],"positions":{"1":"short"}}', {}, 400, 'INVALID_REQUEST'],
    ['a bad position id', `{"ids":[1],"positions":{"x":"${pos}"}}`, {}, 400, 'IDS_INVALID'],
    [
      'too many positions',
      JSON.stringify({ ids: [1], positions: Object.fromEntries(many.map((id) => [id, pos])) }),
      {},
      400,
      'TOO_MANY_IDS',
    ],
    ['no token', '{"ids":[1', { authorization: '' }, 401, 'UNAUTHENTICATED'],
  ]
  for (const [what, body, headers, status, code] of cases) {
    const res = await send(body, headers)
    assert.equal(res.status, status, what)
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, what)
    const error = ((await res.json()) as { error: { code: string; message: string } }).error
    assert.equal(error.code, code, `${what}: ${error.message}`)
    assert.ok(error.message.length > 0, what)
  }

  // a well-formed position that is not one of ours: the stream starts over, as on WebSocket
  const client = await SseClient.post(app.url, token, { ids: [P1], positions: { [P1]: pos } })
  t.after(() => client.close())
  assert.equal(client.status, 200)
  assert.deepEqual((await client.waitFor(() => true)).data, { type: 'reset', reason: 'too_old' })
  assert.equal((await client.waitFor(() => true)).data.type, 'snapshot')
})
