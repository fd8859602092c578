import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { NativeClient } from './native-client.js'
import { bearer, call, continueFrom, heartbeat, positionedSnapshot } from './positions-steps.js'
import { SseClient } from './sse-client.js'

/*
 * The promise audit (hidden looks offline; a credential does only what it was issued for) on
 * the surfaces the privacy tables and auth tests do not reach: positions of the real-time
 * streams, and the streams' lives against their credential's expiry and revocation.
 */

const T0 = Date.UTC(2026, 5, 1, 9, 0, 0)

async function start(
  t: TestContext,
  config = {},
): Promise<{ app: StartedApp; clock: ManualClock }> {
  const clock = new ManualClock(T0)
  const app = await startApp(t, { clock, listen: true, config: { flapGraceMs: 0, ...config } })
  return { app, clock }
}

test('positions: a hidden user’s pos moves no more than an offline user’s when they act unseen', async (t) => {
  const { app, clock } = await start(t)
  const viewer = '7001'
  const offline = '7002'
  const invisible = '7003'
  const blocking = '7004' // blocks the viewer
  const nobody = '7005' // visibility nobody: the viewer may see whether, not where
  // all seen once, then offline, so that each has a history
  for (const id of [offline, invisible, blocking, nobody]) await heartbeat(app, id)
  clock.set(T0 + 1000)
  for (const id of [offline, invisible, blocking, nobody]) {
    await heartbeat(app, id, { disconnect: true })
  }
  await call(app, 'PUT', '/v1/presence/settings', await bearer(app, invisible), {
    invisible: true,
  })
  await call(app, 'PUT', `/admin/v1/users/${blocking}/blocks/${viewer}`, { 'x-api-key': ADMIN_KEY })
  await heartbeat(app, nobody, {})
  await call(app, 'PUT', '/v1/presence/settings', await bearer(app, nobody), {
    visibility: 'nobody',
  })
  const ids = [offline, invisible, blocking, nobody]
  const before = await positionedSnapshot(app, viewer, ids)
  const again = await positionedSnapshot(app, viewer, ids)

  // the hidden users come and go, the nobody-user moves between places: nothing the viewer sees
  clock.set(T0 + 2000)
  for (const id of [invisible, blocking]) {
    await heartbeat(app, id, { location: 'Game', placeId: 1818 })
    await heartbeat(app, id, { disconnect: true })
  }
  await heartbeat(app, nobody, { location: 'Game', placeId: 1818 })
  await heartbeat(app, nobody, { location: 'Game', placeId: 1819 })
  const after = await positionedSnapshot(app, viewer, ids)

  // whatever a pos says, it says the same of a user who did nothing and of one who acted unseen
  const moved = (id: string) => ({
    twice: before.get(id) !== again.get(id),
    afterActing: before.get(id) !== after.get(id),
  })
  for (const id of [invisible, blocking, nobody]) {
    assert.deepEqual(moved(id), moved(offline), `user ${id}'s pos against the offline user's`)
  }
})

test('an SSE stream ends when the token that opened it expires, as a WebSocket does (GET and POST)', async (t) => {
  const app = await startApp(t, { listen: true })
  const viewer = '7201' as UserId
  // `exp` is in whole seconds, so a token lives TTL - 1 to TTL s: enough for both snapshots to
  // arrive before it expires on a loaded machine (a 1 s token expired first once)
  const TTL = 4
  const streams = [
    await SseClient.open(app.url, await app.tokens.issue(viewer, { ttlSeconds: TTL }), ['7202']),
    await SseClient.post(app.url, await app.tokens.issue(viewer, { ttlSeconds: TTL }), {
      ids: ['7202'],
      positions: true,
    }),
  ]
  for (const sse of streams) {
    t.after(() => sse.close())
    assert.equal((await sse.waitFor(() => true)).data.type, 'snapshot')
  }
  for (const sse of streams) {
    const last = await sse.waitFor(() => true, (TTL + 5) * 1000)
    assert.deepEqual(last.data, {
      type: 'error',
      code: 'UNAUTHENTICATED',
      message: 'token expired',
    })
    // and nothing after it: the stream ended (waitFor fails at once on an ended stream)
    await assert.rejects(
      sse.waitFor(() => true, 5000),
      /no matching SSE event/,
    )
  }
})

/** `promise`, or a rejection after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms).unref(),
    ),
  ])
}

/** `POST /v2/logout` with `token` as Bearer (its CSRF token fetched first): the token is revoked. */
async function logout(app: StartedApp, token: string) {
  const headers = { authorization: `Bearer ${token}` }
  const first = await fetch(`${app.url}/v2/logout`, { method: 'POST', headers })
  const csrf = first.headers.get('x-csrf-token') ?? ''
  const res = await fetch(`${app.url}/v2/logout`, {
    method: 'POST',
    headers: { ...headers, 'x-csrf-token': csrf },
  })
  assert.equal(res.status, 200, await res.text())
}

test('a revoked token ends the WebSocket and SSE streams it opened, at once; others go on', async (t) => {
  const app = await startApp(t, { listen: true })
  const viewer = '7301' as UserId
  const token = await app.tokens.issue(viewer)
  const other = await app.tokens.issue(viewer)
  const ws = await NativeClient.connect(app.url, token)
  const otherWs = await NativeClient.connect(app.url, other)
  t.after(() => ws.socket.terminate())
  t.after(() => otherWs.socket.terminate())
  const sses = [
    await SseClient.open(app.url, token, ['7302']),
    await SseClient.post(app.url, token, { ids: ['7302'], positions: true }),
  ]
  for (const sse of sses) {
    t.after(() => sse.close())
    assert.equal((await sse.waitFor(() => true)).data.type, 'snapshot')
  }
  for (const client of [ws, otherWs]) {
    client.send({ type: 'subscribe', ids: ['7302'] })
    assert.equal((await client.take()).type, 'snapshot')
  }

  await logout(app, token)
  assert.deepEqual(await within(ws.closed, 3000), { code: 4001, reason: 'token revoked' })
  for (const sse of sses) {
    const last = await sse.waitFor(() => true, 3000)
    assert.deepEqual(last.data, {
      type: 'error',
      code: 'UNAUTHENTICATED',
      message: 'token revoked',
    })
    await assert.rejects(
      sse.waitFor(() => true, 3000),
      /no matching SSE event/,
    )
  }
  // the same user's other login is untouched
  await heartbeat(app, '7302')
  assert.equal((await otherWs.take()).type, 'online')
  assert.equal(otherWs.socket.readyState, otherWs.socket.OPEN)
})

test('fleet mode: a logout on one node ends the streams its token opened on another', async (t) => {
  const prefix = uniquePrefix('revoke')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  const config = { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix }
  const a = await startApp(t, { listen: true, config })
  const b = await startApp(t, { listen: true, config })
  const token = await a.tokens.issue('7401' as UserId)
  const ws = await NativeClient.connect(a.url, token)
  t.after(() => ws.socket.terminate())
  const sse = await SseClient.open(a.url, token, ['7402'])
  t.after(() => sse.close())
  assert.equal((await sse.waitFor(() => true)).data.type, 'snapshot')
  await logout(b, token)
  assert.deepEqual(await within(ws.closed, 3000), { code: 4001, reason: 'token revoked' })
  const last = await sse.waitFor(() => true, 3000)
  assert.deepEqual(last.data, { type: 'error', code: 'UNAUTHENTICATED', message: 'token revoked' })
})

test('a revoked token’s connection presence ends at once, not at the socket’s close', async (t) => {
  const app = await startApp(t, { listen: true, config: { flapGraceMs: 0 } })
  const [A, B] = ['8101', '8102'] as UserId[]
  const watcher = await NativeClient.connect(app.url, await app.tokens.issue(B!))
  t.after(() => watcher.socket.terminate())
  watcher.send({ type: 'subscribe', ids: [A!] })
  assert.equal((await watcher.take()).type, 'snapshot')
  const token = await app.tokens.issue(A!)
  const a = await NativeClient.connect(app.url, token)
  t.after(() => a.socket.terminate())
  a.send({ type: 'heartbeat', activity: { kind: 'inGame', placeId: '1818' } })
  assert.equal((await watcher.take()).type, 'online')
  // A's client stops reading: the server's close is never answered (the socket ends after 5 s)
  const raw = (a.socket as unknown as { _socket: { pause(): void } })._socket
  raw.pause()
  const before = Date.now()
  await logout(app, token)
  const offline = await watcher.take(2000)
  assert.deepEqual([offline.type, offline.reason], ['offline', 'explicit'])
  assert.ok(Date.now() - before < 2000)
  const [after] = await app.service.rawPresences([A!])
  assert.deepEqual(after!.sessions, [])
})

/** The `data:` lines of an SSE response, as they come, parsed. */
async function* sseData(response: Response): AsyncGenerator<Record<string, unknown>> {
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const data = buffer
        .slice(0, end)
        .split('\n')
        .filter((l) => l.startsWith('data: '))
      buffer = buffer.slice(end + 2)
      if (data.length > 0) yield JSON.parse(data.map((l) => l.slice(6)).join('\n'))
    }
  }
}

// 'issuer revoked': the key was made by another admin-scoped key, and that one is revoked
for (const ending of ['revoked', 'expired', 'issuer revoked'] as const) {
  test(`the admin feed ends once the admin-scoped key that opened it is ${ending}`, async (t) => {
    const app = await startApp(t, { listen: true })
    const make = async (by: string, body: object) =>
      (await (
        await fetch(`${app.url}/admin/v1/keys`, {
          method: 'POST',
          headers: { 'x-api-key': by, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'ops', scopes: ['admin'], ...body }),
        })
      ).json()) as { id: string; secret: string }
    const issuer = await make(ADMIN_KEY, {})
    const key = await make(ending === 'issuer revoked' ? issuer.secret : ADMIN_KEY, {
      ...(ending === 'expired' && { expiresIn: 2 }),
    })
    const abort = new AbortController()
    t.after(() => abort.abort())
    const response = await fetch(`${app.url}/admin/v1/stats/feed`, {
      headers: { 'x-api-key': key.secret },
      signal: abort.signal,
    })
    assert.equal(response.status, 200)
    const events = sseData(response)
    await heartbeat(app, '7501')
    const first = (await events.next()).value as { items: { userId: string }[] }
    assert.deepEqual(
      first.items.map((i) => i.userId),
      ['7501'],
    )

    if (ending !== 'expired') {
      const gone = ending === 'revoked' ? key : issuer
      const revoked = await fetch(`${app.url}/admin/v1/keys/${gone.id}`, {
        method: 'DELETE',
        headers: { 'x-api-key': ADMIN_KEY },
      })
      assert.equal(revoked.status, 200)
    } else {
      await new Promise((resolve) => setTimeout(resolve, 2100))
    }
    await heartbeat(app, '7502')
    const rest: unknown[] = []
    const drained = (async () => {
      for await (const data of events) rest.push(data)
    })()
    await within(drained, 3000)
    assert.deepEqual(rest, [
      {
        error: {
          code: 'API_KEY_INVALID',
          message: 'The x-api-key is unknown, expired or revoked.',
        },
      },
    ])
  })
}

/*
 * A hidden user (invisible, or blocking the subscriber) is one the subscriber sees offline: a
 * resume from its pos must end as one from an idle offline user's, however much it did unseen.
 * Its history is trimmed by those changes (PRESENCED_REALTIME_HISTORY, here 4), so the resume
 * goes by where who-may-see-what about the user last changed (a privacy mark, kept apart from the
 * trimmed changes): none since the pos, and hidden now, means hidden throughout. The fleet form
 * of these is in test/fleet/resume-hidden.test.ts.
 */
/**
 * `offline`, `invisible` and `blocking` are seen online, then offline at T0 + 1 s; then
 * `invisible` goes invisible and `blocking` blocks `viewer`: all three look alike to the viewer.
 */
async function lastSeenThenHidden(
  app: StartedApp,
  clock: ManualClock,
  viewer: string,
  [offline, invisible, blocking]: string[],
) {
  for (const id of [offline!, invisible!, blocking!]) await heartbeat(app, id)
  clock.set(T0 + 1000)
  for (const id of [offline!, invisible!, blocking!]) {
    await heartbeat(app, id, { disconnect: true })
  }
  await call(app, 'PUT', '/v1/presence/settings', await bearer(app, invisible!), {
    invisible: true,
  })
  await call(app, 'PUT', `/admin/v1/users/${blocking}/blocks/${viewer}`, { 'x-api-key': ADMIN_KEY })
}

for (const watched of [true, false]) {
  test(`positions: a resume from a hidden user’s pos ends as one from an offline user’s, however much they did unseen (${watched ? 'still watched by the dropped stream' : 'watched by nobody meanwhile'})`, async (t) => {
    // without a resume window, a dropped stream's watches end with it: the hidden users' changes
    // are made while nobody watches them, which an embedded history does not keep
    const { app, clock } = await start(t, {
      realtimeHistory: 4,
      ...(!watched && { realtimeResumeMs: 0 }),
    })
    const viewer = '7101'
    const offline = '7102'
    const invisible = '7103'
    const blocking = '7104' // blocks the viewer
    const users = [offline, invisible, blocking]
    await lastSeenThenHidden(app, clock, viewer, users)
    const held = await positionedSnapshot(app, viewer, users)
    // more unseen changes than the history keeps
    for (const id of [invisible, blocking]) {
      for (let i = 0; i < 6; i++) {
        clock.set(T0 + 2000 + i * 1000)
        await heartbeat(app, id, { location: 'Game', placeId: 1818 + i })
      }
      await heartbeat(app, id, { disconnect: true })
    }
    const alone = (id: string) => continueFrom(app, viewer, id, held.get(id)!)
    assert.equal(await alone(offline), 'recovered')
    assert.equal(await alone(invisible), 'recovered')
    assert.equal(await alone(blocking), 'recovered')
  })
}

test('positions: who may see a user changed since the pos: the resume shows the change, never nothing', async (t) => {
  const { app, clock } = await start(t, { realtimeHistory: 4 })
  const viewer = '7111'
  const revealed = '7112' // invisible at the pos, then visible and online
  const hid = '7113' // online at the pos, then invisible and busy
  const unblocked = '7114' // blocks the viewer at the pos, then not, and online
  for (const id of [revealed, unblocked]) await heartbeat(app, id)
  clock.set(T0 + 1000)
  for (const id of [revealed, unblocked]) await heartbeat(app, id, { disconnect: true })
  await call(app, 'PUT', '/v1/presence/settings', await bearer(app, revealed), {
    invisible: true,
  })
  const block = `/admin/v1/users/${unblocked}/blocks/${viewer}`
  await call(app, 'PUT', block, { 'x-api-key': ADMIN_KEY })
  await heartbeat(app, hid, { location: 'Game', placeId: 1818 })
  const held = await positionedSnapshot(app, viewer, [revealed, hid, unblocked])

  clock.set(T0 + 2000)
  await call(app, 'PUT', '/v1/presence/settings', await bearer(app, revealed), {
    invisible: false,
  })
  await heartbeat(app, revealed, { location: 'Game', placeId: 1818 })
  await call(app, 'DELETE', block, { 'x-api-key': ADMIN_KEY })
  await heartbeat(app, unblocked, { location: 'Game', placeId: 1818 })
  await call(app, 'PUT', '/v1/presence/settings', await bearer(app, hid), { invisible: true })
  for (let i = 0; i < 6; i++) {
    clock.set(T0 + 3000 + i * 1000)
    await heartbeat(app, hid, { location: 'Game', placeId: 1819 + i })
  }
  const alone = (id: string) => continueFrom(app, viewer, id, held.get(id)!)
  // seen offline at the pos, online now: the current state, under the current rules
  assert.equal(await alone(revealed), 'recovered online')
  assert.equal(await alone(unblocked), 'recovered online')
  // seen online at the pos and hidden since: it must not stay online for the viewer. Its history
  // no longer reaches back (trimmed by what it did hidden), but the marks kept beside it say who
  // may see it changed: its current state, as for a user who went invisible and stayed idle
  // (resume-rules-audit.test.ts), where `too_old` told how busy it was unseen
  assert.equal(await alone(hid), 'recovered offline')
})

/*
 * When who may see what about a user changed since a pos (a privacy mark), the resume sends the
 * user's current state instead of its changes. Which frame it sent depended on the sessions the
 * user had at the pos, even when those were hidden from the subscriber then: a user hidden and
 * online at the pos, offline now, came back as `offline` (an offline user: nothing), and one
 * hidden and online at the pos, visible now, as `update` (an offline user: `online`).
 */
for (const after of ['offline', 'online'] as const) {
  test(`positions: a resume across a privacy mark tells nothing of the sessions a hidden user had at the pos (${after} now)`, async (t) => {
    const { app, clock } = await start(t, { realtimeHistory: 16 })
    const viewer = '7151'
    const users = ['7152', '7153', '7154']
    const [offline, invisible, blocking] = users as [string, string, string]
    await lastSeenThenHidden(app, clock, viewer, users)
    clock.set(T0 + 2000)
    // online, unseen by the viewer, when it takes its positions
    for (const id of [invisible, blocking]) await heartbeat(app, id, { placeId: 1818 })
    const held = await positionedSnapshot(app, viewer, users)
    clock.set(T0 + 3000)
    // who may see what changes for each of them (a privacy mark), then each is offline or
    // visible and online
    for (const id of users) {
      const settings = after === 'offline' ? { visibility: 'friends' } : { invisible: false }
      await call(app, 'PUT', `/admin/v1/users/${id}/settings`, { 'x-api-key': ADMIN_KEY }, settings)
    }
    if (after === 'online') {
      await call(app, 'DELETE', `/admin/v1/users/${blocking}/blocks/${viewer}`, {
        'x-api-key': ADMIN_KEY,
      })
      await heartbeat(app, offline, { placeId: 1818 })
    } else {
      for (const id of [invisible, blocking]) await heartbeat(app, id, { disconnect: true })
    }
    const alone = (id: string) => continueFrom(app, viewer, id, held.get(id)!)
    const expected = `recovered ${after}`
    assert.equal(await alone(offline), expected)
    assert.equal(await alone(invisible), expected)
    assert.equal(await alone(blocking), expected)
  })
}

test('positions: a day on, a resume from a hidden user’s pos is forgotten as an offline user’s is, whatever they did unseen', async (t) => {
  const DAY = 86_400_000
  const HOUR = 3_600_000
  const { app, clock } = await start(t, { realtimeHistory: 4 })
  const viewer = '7121'
  const offline = '7122'
  const invisible = '7123'
  const blocking = '7124'
  const users = [offline, invisible, blocking]
  await lastSeenThenHidden(app, clock, viewer, users)
  clock.set(T0 + 2000)
  const held = await positionedSnapshot(app, viewer, users)
  const alone = (id: string, at: Map<string, string>) => continueFrom(app, viewer, id, at.get(id)!)

  // just before a day is over since they were last seen, the hidden users are busy, unseen, a
  // little (what the history keeps still reaches back to the pos); then the day is over: the
  // offline user's position is forgotten, and so must theirs be
  clock.set(T0 + DAY - 60_000)
  for (const id of [invisible, blocking]) {
    await heartbeat(app, id, { location: 'Game', placeId: 1818 })
    await heartbeat(app, id, { disconnect: true })
  }
  clock.set(T0 + DAY + 120_000)
  assert.equal(await alone(offline, held), 'reset too_old')
  assert.equal(await alone(invisible, held), 'reset too_old')
  assert.equal(await alone(blocking, held), 'reset too_old')

  // the other way round: positions issued more than a day after the users were last seen (an
  // offline user idle that long has no history of its own then), and the hidden users busy
  // since (more than the history keeps): they resume as the offline user does
  clock.set(T0 + DAY + HOUR + 1000)
  const later = await positionedSnapshot(app, viewer, users)
  for (const id of [invisible, blocking]) {
    for (let i = 0; i < 6; i++) {
      clock.set(T0 + DAY + HOUR + (i + 2) * 1000)
      await heartbeat(app, id, { location: 'Game', placeId: 1818 + i })
    }
    await heartbeat(app, id, { disconnect: true })
  }
  clock.set(T0 + DAY + 2 * HOUR)
  assert.equal(await alone(offline, later), 'recovered')
  assert.equal(await alone(invisible, later), 'recovered')
  assert.equal(await alone(blocking, later), 'recovered')
})

/** More unseen changes than the history keeps (4 here), from T0 + 3 s: each of `ids` busy, then gone. */
async function busyUnseen(app: StartedApp, clock: ManualClock, ids: string[], placeId = 1818) {
  for (const id of ids) {
    for (let i = 0; i < 6; i++) {
      clock.set(T0 + 3000 + i * 1000)
      await heartbeat(app, id, { location: 'Game', placeId: placeId + i })
    }
    await heartbeat(app, id, { disconnect: true })
  }
}

/** What a resume of `viewer` from `held` answers for each of `ids`, each alone. */
async function answersFor(
  app: StartedApp,
  viewer: string,
  ids: string[],
  held: Map<string, string>,
) {
  const answers = []
  for (const id of ids) answers.push(await continueFrom(app, viewer, id, held.get(id)!))
  return answers
}

/*
 * A privacy mark that does not concern the subscriber: a friendship or block with someone else,
 * or a settings change that would not change what it sees of a visible user (a non-friend sees
 * whether, not where, under `friends` and `nobody` alike). What the subscriber may see of the
 * user did not change, so the mark is none for it: a hidden user stays "hidden throughout" and
 * recovers with no frame however much it did unseen, as an offline user with the same mark does.
 */
const unrelatedMarks = {
  'a friendship with someone else': (id: string) =>
    [['PUT', `/admin/v1/users/${id}/friends/7198`]] as const,
  'a block of someone else': (id: string) =>
    [['PUT', `/admin/v1/users/${id}/blocks/7198`]] as const,
  'a settings change that keeps what a non-friend sees': (id: string) =>
    [['PUT', `/admin/v1/users/${id}/settings`, { visibility: 'nobody' }]] as const,
}
for (const [kind, marks] of Object.entries(unrelatedMarks)) {
  test(`positions: across ${kind}, a resume from a hidden user’s pos ends as one from an offline user’s with the same mark, however much they did unseen`, async (t) => {
    const { app, clock } = await start(t, { realtimeHistory: 4 })
    const viewer = '7161'
    const users = ['7162', '7163', '7164']
    const [, invisible, blocking] = users as [string, string, string]
    const admin = { 'x-api-key': ADMIN_KEY }
    // where the viewer (no friend of theirs) may know whether, not where, as with `nobody`
    for (const id of users) {
      await call(app, 'PUT', `/admin/v1/users/${id}/settings`, admin, { visibility: 'friends' })
    }
    await lastSeenThenHidden(app, clock, viewer, users)
    const held = await positionedSnapshot(app, viewer, users)
    clock.set(T0 + 2000)
    for (const id of users) {
      for (const [method, path, body] of marks(id)) await call(app, method, path, admin, body)
    }
    await busyUnseen(app, clock, [invisible, blocking])
    // offline, invisible, blocking
    const answers = await answersFor(app, viewer, users, held)
    assert.deepEqual(answers, ['recovered', 'recovered', 'recovered'])
  })
}

/*
 * A privacy mark that concerns the subscriber, on a user hidden from it throughout (a block with
 * it that the mark did not change, or invisibility it kept): what the subscriber may see of the
 * user was never more than offline, and an offline user with the same mark recovers with one
 * event of its current state, however long ago its history was trimmed. So does the hidden one.
 */
const concerningMarks = {
  'a settings change a non-friend would see of a visible user': {
    users: ['offline', 'invisible', 'blocking'],
    marks: (id: string) => [[`/admin/v1/users/${id}/settings`, { visibility: 'friends' }]] as const,
  },
  'a friendship with the subscriber': {
    users: ['offline', 'invisible'],
    marks: (id: string) => [[`/admin/v1/users/${id}/friends/7171`]] as const,
  },
}
for (const [kind, { users: kinds, marks }] of Object.entries(concerningMarks)) {
  test(`positions: across ${kind}, a resume from the pos of a user hidden throughout ends as one from an offline user’s with the same mark, however much they did unseen`, async (t) => {
    const { app, clock } = await start(t, { realtimeHistory: 4 })
    const viewer = '7171'
    const all = ['7172', '7173', '7174']
    const [, invisible, blocking] = all as [string, string, string]
    const admin = { 'x-api-key': ADMIN_KEY }
    await lastSeenThenHidden(app, clock, viewer, all)
    const held = await positionedSnapshot(app, viewer, all)
    clock.set(T0 + 2000)
    const users = all.filter((_, i) => kinds.includes(['offline', 'invisible', 'blocking'][i]!))
    for (const id of users) {
      for (const [path, body] of marks(id)) await call(app, 'PUT', path, admin, body)
    }
    await busyUnseen(
      app,
      clock,
      [invisible, blocking].filter((id) => users.includes(id)),
    )
    const answers = await answersFor(app, viewer, users, held)
    assert.deepEqual(
      answers,
      users.map(() => 'recovered offline'),
    )
  })
}

/*
 * The guard of the two above: a user hidden at the pos and now, but not throughout (visible to
 * the subscriber in between: invisibility ended and began again, a block lifted and made again)
 * had changes the subscriber could see; never "hidden throughout" silence: the marks that
 * concern the subscriber answer with the current state, however far the history was trimmed
 * (by unseen changes too: `too_old` would tell them), as for an offline user with those marks.
 */
test('positions: a user hidden at the pos and now but seen in between gets its current state', async (t) => {
  const { app, clock } = await start(t, { realtimeHistory: 4 })
  const viewer = '7181'
  const users = ['7182', '7183', '7184']
  const [, invisible, blocking] = users as [string, string, string]
  const admin = { 'x-api-key': ADMIN_KEY }
  await lastSeenThenHidden(app, clock, viewer, users)
  const held = await positionedSnapshot(app, viewer, users)
  clock.set(T0 + 2000)
  const settings = `/admin/v1/users/${invisible}/settings`
  const block = `/admin/v1/users/${blocking}/blocks/${viewer}`
  await call(app, 'PUT', settings, admin, { invisible: false })
  await call(app, 'DELETE', block, admin)
  for (const id of [invisible, blocking]) await heartbeat(app, id, { placeId: 1818 })
  await call(app, 'PUT', settings, admin, { invisible: true })
  await call(app, 'PUT', block, admin)
  await busyUnseen(app, clock, [invisible, blocking], 1819)
  const answers = await answersFor(app, viewer, [invisible, blocking], held)
  assert.deepEqual(answers, ['recovered offline', 'recovered offline'])
})
