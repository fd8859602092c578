import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'

const A = '2001' as UserId
const B = '2002' as UserId
const C = '2003' as UserId

interface SseEvent {
  id: string | undefined
  data: Record<string, unknown>
}

/** Reads a text/event-stream response event by event (comments and `retry:` skipped). */
class SseReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>
  readonly #decoder = new TextDecoder()
  #buffer = ''

  constructor(response: Response) {
    this.#reader = response.body!.getReader()
  }

  async next(timeoutMs = 3000): Promise<SseEvent | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const end = this.#buffer.indexOf('\n\n')
      if (end >= 0) {
        const block = this.#buffer.slice(0, end)
        this.#buffer = this.#buffer.slice(end + 2)
        const lines = block.split('\n')
        const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6))
        if (data.length === 0) continue
        const id = lines.find((l) => l.startsWith('id: '))?.slice(4)
        return { id, data: JSON.parse(data.join('\n')) as Record<string, unknown> }
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no SSE event within ${timeoutMs} ms`)
      let timer: NodeJS.Timeout | undefined
      const chunk = await Promise.race([
        this.#reader.read(),
        new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, left, 'timeout'))),
      ])
      clearTimeout(timer)
      if (chunk === 'timeout') continue
      if (chunk.done) return undefined
      this.#buffer += this.#decoder.decode(chunk.value, { stream: true })
    }
  }

  cancel(): Promise<void> {
    return this.#reader.cancel().catch(() => {})
  }
}

async function open(
  t: TestContext,
  app: StartedApp,
  query: string,
  headers: Record<string, string> = {},
): Promise<{ response: Response; events: SseReader }> {
  const response = await fetch(`${app.url}/api/v1/realtime/sse?${query}`, { headers })
  const events = new SseReader(response)
  t.after(() => events.cancel())
  return { response, events }
}

function beat(app: StartedApp, userId: UserId, kind: 'online' | 'inGame' = 'online') {
  return app.service.heartbeat({
    userId,
    key: 'app',
    source: 'app',
    deviceType: 'Web',
    activity: { kind },
  })
}

test('SSE refuses missing or bad tokens and bad ids with JSON errors', async (t) => {
  const app = await startApp(t, { listen: true, config: { flapGraceMs: 0 } })
  const none = await fetch(`${app.url}/api/v1/realtime/sse?ids=1`)
  assert.equal(none.status, 401)
  assert.match(none.headers.get('content-type') ?? '', /application\/json/)
  assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'UNAUTHENTICATED')
  const bad = await fetch(`${app.url}/api/v1/realtime/sse?ids=1&access_token=nope`)
  assert.equal(bad.status, 401)
  await bad.body?.cancel()
  const token = await app.tokens.issue(A)
  for (const ids of ['', 'abc', '1,-2', '1.5', '99999999999999999999']) {
    const response = await fetch(`${app.url}/api/v1/realtime/sse?ids=${ids}&access_token=${token}`)
    assert.equal(response.status, 400, ids)
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'IDS_INVALID')
  }
  // a resume point in the query is the caller's own: refused when malformed, as in the POST form
  for (const point of [
    'resume=abc',
    'resume=abc&since=x',
    'resume=abc&since=-1',
    'resume=abc&since=1.5',
    'resume=a.b&since=1',
    'resume=&since=1',
    'since=',
    'since=9999999999999999',
    'resume=abc&resume=def&since=1',
  ]) {
    const response = await fetch(
      `${app.url}/api/v1/realtime/sse?ids=1&${point}&access_token=${token}`,
    )
    assert.equal(response.status, 400, point)
    const { error } = (await response.json()) as { error: { code: string; message: string } }
    assert.equal(error.code, 'INVALID_REQUEST', point)
    assert.match(error.message, /"(resume|since)"/, point)
  }
  // a repeated parameter is refused, as a repeated resume or access_token is: `positions` was
  // read as false when given twice, the stream then carrying no positions it was asked for
  for (const query of ['positions=true&positions=true', 'positions=1&positions=0']) {
    const response = await fetch(
      `${app.url}/api/v1/realtime/sse?ids=1&${query}&access_token=${token}`,
    )
    assert.equal(response.status, 400, query)
    const { error } = (await response.json()) as { error: { code: string; message: string } }
    assert.equal(error.code, 'INVALID_REQUEST', query)
    assert.match(error.message, /"positions"/, query)
  }
  // a Last-Event-ID is EventSource's: one that is not ours (malformed included) resets the
  // stream, told first, never a fresh stream that looks resumed
  for (const lastId of ['not-ours', 'abc.1.2', 'abc.9999999999999999', '.5']) {
    const foreign = await fetch(`${app.url}/api/v1/realtime/sse?ids=1&access_token=${token}`, {
      headers: { 'last-event-id': lastId },
    })
    assert.equal(foreign.status, 200)
    const reader = new SseReader(foreign)
    assert.deepEqual((await reader.next())!.data, { type: 'reset', reason: 'unknown' }, lastId)
    assert.equal((await reader.next())!.data.type, 'snapshot', lastId)
    await reader.cancel()
  }
})

test('SSE: snapshot then events, each with a resumable id; Last-Event-ID resumes', async (t) => {
  const app = await startApp(t, { listen: true, config: { flapGraceMs: 0 } })
  const token = await app.tokens.issue(A)
  const first = await open(t, app, `ids=${B},${C}`, { authorization: `Bearer ${token}` })
  assert.equal(first.response.status, 200)
  assert.match(first.response.headers.get('content-type') ?? '', /^text\/event-stream/)
  const snapshot = await first.events.next()
  assert.equal(snapshot!.data.type, 'snapshot')
  assert.equal(snapshot!.id, `${String(snapshot!.data.resume)}.1`)
  assert.deepEqual(
    (snapshot!.data.presences as { userId: string }[]).map((p) => p.userId),
    [B, C],
  )
  await beat(app, B)
  const online = await first.events.next()
  assert.deepEqual([online!.data.type, online!.data.userId, online!.data.seq], ['online', B, 2])
  const lastId = online!.id!
  await first.events.cancel()

  // missed while disconnected, then resumed the way EventSource does it
  await beat(app, B, 'inGame')
  await beat(app, C)
  const second = await open(t, app, `ids=${B},${C}&access_token=${token}`, {
    'last-event-id': lastId,
  })
  const missed = [await second.events.next(), await second.events.next()]
  assert.deepEqual(
    missed.map((e) => [e!.data.type, e!.data.userId, e!.data.seq]),
    [
      ['update', B, 3],
      ['online', C, 4],
    ],
  )
  await app.service.endSession(B, 'app')
  const offline = await second.events.next()
  assert.deepEqual(
    [offline!.data.type, offline!.data.reason, offline!.data.seq],
    ['offline', 'explicit', 5],
  )

  // an unknown resume point: reset, then a fresh snapshot of the requested ids
  const third = await open(t, app, `ids=${C}&since=3&access_token=${token}`)
  assert.deepEqual((await third.events.next())!.data, { type: 'reset', reason: 'unknown' })
  const fresh = await third.events.next()
  assert.deepEqual([fresh!.data.type, fresh!.data.seq], ['snapshot', 1])
})

test('SSE applies the subscriber’s privacy like every other view', async (t) => {
  const app = await startApp(t, { listen: true, config: { flapGraceMs: 0 } })
  await app.service.putSettings(B, { visibility: 'nobody', invisible: false })
  await app.service.heartbeat({
    userId: B,
    key: 'app',
    source: 'app',
    deviceType: 'Web',
    activity: { kind: 'inGame', placeId: '1818', gameId: 'abc-123' },
  })
  const token = await app.tokens.issue(A)
  const { events } = await open(t, app, `ids=${B}&access_token=${token}`)
  const snapshot = await events.next()
  const [presence] = snapshot!.data.presences as Record<string, unknown>[]
  assert.equal(presence!.state, 'inGame')
  assert.equal(presence!.locationHidden, true)
  assert.doesNotMatch(JSON.stringify(presence), /1818|abc-123/)
  await app.service.putSettings(B, { visibility: 'nobody', invisible: true })
  // going invisible looks like signing out
  const hidden = await events.next()
  assert.deepEqual([hidden!.data.type, hidden!.data.reason], ['offline', 'explicit'])
})

test('a slow SSE consumer has its stream ended; others are unaffected', async (t) => {
  const app = await startApp(t, {
    listen: true,
    config: { flapGraceMs: 0, realtimeQueueBytes: 64 * 1024 },
  })
  const slow = await open(t, app, `ids=${B}&access_token=${await app.tokens.issue(A)}`)
  const healthy = await open(t, app, `ids=${B}&access_token=${await app.tokens.issue(C)}`)
  await slow.events.next()
  await healthy.events.next()
  // the slow reader stops reading: nothing more is pulled from its socket
  for (let i = 0; i < 400; i++) {
    await app.service.heartbeat({
      userId: B,
      key: 'app',
      source: 'app',
      deviceType: 'Web',
      activity: { kind: 'inGame', location: `${i} ${'x'.repeat(32_000)}` },
    })
    const event = await healthy.events.next()
    assert.equal(event!.data.type, i === 0 ? 'online' : 'update')
  }
  // the slow stream ends (after the frames already buffered, and an error frame)
  let last: SseEvent | undefined
  for (;;) {
    const event = await slow.events.next(10_000)
    if (!event) break
    last = event
  }
  assert.deepEqual(last!.data, { type: 'error', code: 'SLOW_CONSUMER', message: 'slow consumer' })
})

test('SSE: a stream resumed with fewer ids stops watching the others (its ids are the request’s)', async (t) => {
  // a watch limit of 2: the resumed stream may take C only once it no longer holds B
  const app = await startApp(t, {
    listen: true,
    config: { flapGraceMs: 0, realtimeWatchesPerUser: 2 },
  })
  const token = await app.tokens.issue(A)
  const first = await open(t, app, `ids=${B},${C}`, { authorization: `Bearer ${token}` })
  const snapshot = await first.events.next()
  assert.equal(snapshot!.data.type, 'snapshot')
  await first.events.cancel()

  // reopened (an SDK's remove() of B, then an add() of D) from the last event it saw
  const D = '2004' as UserId
  const second = await open(t, app, `ids=${C},${D}&access_token=${token}`, {
    'last-event-id': snapshot!.id!,
  })
  const added = await second.events.next()
  assert.equal(added!.data.type, 'snapshot', JSON.stringify(added!.data))
  assert.deepEqual(
    (added!.data.presences as { userId: string }[]).map((p) => p.userId),
    [D],
  )
  // B is no longer watched: its change reaches nobody, C's and D's do
  await beat(app, B)
  await beat(app, C)
  await beat(app, D)
  const next = [await second.events.next(), await second.events.next()]
  assert.deepEqual(
    next.map((e) => [e!.data.type, e!.data.userId]),
    [
      ['online', C],
      ['online', D],
    ],
  )
})
