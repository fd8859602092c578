import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { NativeClient } from './native-client.js'
import { SseClient } from './sse-client.js'

/*
 * The promise audit, black box over real HTTP: a user hidden from a viewer (invisible, or a
 * block either way) answers every read surface with the very bytes (status, headers, body, the
 * id aside) of a user who is offline, whichever way the hidden user is online: the app's
 * heartbeat, a game server's report, an Xbox title, a WebSocket carrying presence. Pairs: users
 * hidden from the start against a user never seen; a user seen, then signed out, then hidden and
 * back online against a user seen and signed out at the same instants. Streams opened before the
 * hidden users came online say nothing of them, and the next visible change is numbered as if
 * they had done nothing. In embedded mode and in fleet mode (Redis), whose reads take the
 * settings folded into each presence value.
 */

const T0 = Date.UTC(2026, 5, 1, 9, 0, 0)
const GAME = '5f2b7f3e-9c1d-4e0a-8b6f-1a2b3c4d5e6f'
const VIEWER = '8001'
const SEEN = '8200' // a user nobody hides
const NEVER = '8100' // never seen, nothing stored
const SIGNED_OUT = '8110' // seen T0 to T0+1s
const INVISIBLE = '8101' // invisible before ever seen
const BLOCKS_VIEWER = '8102'
const BLOCKED_BY_VIEWER = '8103'
const HIDDEN_LATER = '8111' // seen T0 to T0+1s, invisible at T0+2s, online again
const HIDDEN = [INVISIBLE, BLOCKS_VIEWER, BLOCKED_BY_VIEWER, HIDDEN_LATER]

interface Answer {
  status: number
  headers: Record<string, string>
  body: string
}

async function call(
  app: StartedApp,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<Answer> {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  const headersSeen: Record<string, string> = {}
  // the date and a request's own id differ between any two requests
  res.headers.forEach((value, name) => {
    if (name !== 'date' && name !== 'x-request-id') headersSeen[name] = value
  })
  return { status: res.status, headers: headersSeen, body: await res.text() }
}

async function ok(app: StartedApp, method: string, path: string, headers: object, body?: unknown) {
  const answer = await call(app, method, path, headers as Record<string, string>, body)
  assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${answer.body}`)
  return answer
}

const adminCall = (app: StartedApp, method: string, path: string, body?: unknown) =>
  ok(app, method, path, { 'x-api-key': ADMIN_KEY }, body)

async function beat(app: StartedApp, id: string, body: object = {}) {
  const token = await app.tokens.issue(id as UserId)
  await ok(
    app,
    'POST',
    '/v1/presence/register-app-presence',
    {
      authorization: `Bearer ${token}`,
    },
    { platform: 'PC', ...body },
  )
}

const ways = ['app', 'server', 'title', 'ws'] as const
type Way = (typeof ways)[number]

/** Brings `ids` online in game through `way`; what must stay open to keep them so. */
async function bringOnline(app: StartedApp, ids: string[], way: Way): Promise<NativeClient[]> {
  const open: NativeClient[] = []
  if (way === 'server') {
    const key = await adminCall(app, 'POST', '/admin/v1/keys', {
      name: 'server',
      scopes: ['presence:write'],
    })
    const { secret } = JSON.parse(key.body) as { secret: string }
    await ok(
      app,
      'PUT',
      `/api/v1/servers/${GAME}`,
      { 'x-api-key': secret },
      {
        placeId: 1818,
        players: ids,
      },
    )
  }
  for (const id of ids) {
    const token = await app.tokens.issue(id as UserId)
    if (way === 'app') await beat(app, id, { location: 'Game', placeId: 1818, gameId: GAME })
    if (way === 'title') {
      await ok(
        app,
        'POST',
        `/users/xuid(${id})/devices/current/titles/current`,
        {
          authorization: `XBL3.0 x=1;${token}`,
          'x-xbl-contract-version': '3',
          'x-xbl-device-type': 'XboxOne',
        },
        { id: '1', state: 'active' },
      )
    }
    if (way === 'ws') {
      const client = await NativeClient.connect(app.url, token)
      client.send({ type: 'heartbeat', activity: { kind: 'inGame', placeId: '1818' } })
      open.push(client)
    }
  }
  return open
}

/** Every read surface of `id` for one kind of caller, in a fixed order. */
async function surfaces(
  app: StartedApp,
  id: string,
  caller: 'anonymous' | 'bearer' | 'cookie' | 'key' | 'xbl' | 'xboxKey',
  credentials: Record<string, Record<string, string>>,
): Promise<Array<[string, Answer]>> {
  const headers = credentials[caller]!
  const out: Array<[string, Answer]> = []
  const add = async (label: string, answer: Promise<Answer>) => out.push([label, await answer])
  if (caller === 'xbl' || caller === 'xboxKey') {
    for (const level of ['user', 'device', 'title', 'all']) {
      const batch = (body: object) => call(app, 'POST', '/users/batch', headers, body)
      await add(`batch ${level}`, batch({ users: [id], level }))
      await add(`batch ${level} online`, batch({ users: [id, SEEN], level, onlineOnly: true }))
      await add(
        `batch ${level} devices`,
        batch({ users: [SEEN, id], level, deviceTypes: ['XboxOne', 'PC', 'Web'] }),
      )
      await add(`batch ${level} titles`, batch({ users: [id, SEEN], level, titles: ['1'] }))
      await add(`user ${level}`, call(app, 'GET', `/users/xuid(${id})?level=${level}`, headers))
    }
    return out
  }
  const users = (body: unknown, type?: string) =>
    call(
      app,
      'POST',
      '/v1/presence/users',
      type ? { ...headers, 'content-type': type } : headers,
      body,
    )
  await add('users', users({ userIds: [Number(id)] }))
  await add('users among others', users({ userIds: [SEEN, id, Number(SEEN)] }))
  await add('users as a form', users(`userIds=${id}`, 'application/x-www-form-urlencoded'))
  await add('user names', call(app, 'GET', `/v1/users/${id}`, headers))
  await add('users names', call(app, 'POST', '/v1/users', headers, { userIds: [id] }))
  return out
}

const modes = ['embedded', 'fleet'] as const

async function scenario(t: TestContext, mode: (typeof modes)[number]) {
  const clock = new ManualClock(T0)
  let fleet = {}
  if (mode === 'fleet') {
    const prefix = uniquePrefix('hidden-surfaces')
    t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
    // the stats node passes often: the public numbers below come from a pass after the writes
    fleet = { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix, statsIntervalMs: 100 }
  }
  const app = await startApp(t, { clock, listen: true, config: { flapGraceMs: 0, ...fleet } })
  await adminCall(app, 'PUT', '/admin/v1/places/1818', { universeId: 99, name: 'Crossroads' })
  await adminCall(app, 'PUT', `/admin/v1/users/${INVISIBLE}/settings`, { invisible: true })
  await adminCall(app, 'PUT', `/admin/v1/users/${BLOCKS_VIEWER}/blocks/${VIEWER}`)
  await adminCall(app, 'PUT', `/admin/v1/users/${VIEWER}/blocks/${BLOCKED_BY_VIEWER}`)
  for (const id of [SIGNED_OUT, HIDDEN_LATER]) await beat(app, id)
  clock.set(T0 + 1000)
  for (const id of [SIGNED_OUT, HIDDEN_LATER]) await beat(app, id, { disconnect: true })
  clock.set(T0 + 2000)
  await adminCall(app, 'PUT', `/admin/v1/users/${HIDDEN_LATER}/settings`, { invisible: true })
  clock.set(T0 + 3000)
  return { app, clock }
}

for (const [mode, way] of modes.flatMap((m) => ways.map((w) => [m, w] as const))) {
  test(`${mode}: hidden looks offline byte for byte on every read surface and stream (online through ${way})`, async (t) => {
    const { app, clock } = await scenario(t, mode)
    const token = await app.tokens.issue(VIEWER as UserId)
    const watched = [NEVER, SIGNED_OUT, ...HIDDEN, SEEN]
    const ws = await NativeClient.connect(app.url, token)
    t.after(() => ws.socket.close())
    ws.send({ type: 'subscribe', ids: watched })
    const wsSnapshot = await ws.waitFor((f) => f.type === 'snapshot')
    const sse = await SseClient.open(app.url, token, watched)
    t.after(() => sse.close())
    const sseSnapshot = await sse.waitFor((e) => e.data.type === 'snapshot')

    clock.set(T0 + 5000)
    const held = await bringOnline(app, HIDDEN, way)
    t.after(() => held.forEach((client) => client.socket.close()))
    // the hidden users are online now (as they see themselves), else this test proves nothing
    for (const id of HIDDEN) {
      const self = await call(
        app,
        'POST',
        '/v1/presence/users',
        {
          authorization: `Bearer ${await app.tokens.issue(id as UserId)}`,
        },
        { userIds: [id] },
      )
      const [record] = (JSON.parse(self.body) as { userPresences: { userPresenceType: number }[] })
        .userPresences
      assert.equal(
        record!.userPresenceType,
        way === 'title' ? 1 : 2,
        `${id} is online through ${way}`,
      )
    }
    await beat(app, SEEN, { location: 'Game', placeId: 1818 })

    // the streams tell of the visible user alone, numbered as if nobody else had done anything
    const wsNext = await ws.waitFor((f) => f.type !== 'snapshot')
    const sseNext = await sse.waitFor((e) => e.data.type !== 'snapshot')
    for (const next of [wsNext, sseNext.data]) {
      assert.deepEqual([next.type, next.seq, next.userId], ['online', 2, SEEN])
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(ws.frames.indexOf(wsNext), ws.frames.length - 1, 'no frame after the visible one')
    assert.equal(sse.events.at(-1)!.data, sseNext.data, 'no event after the visible one')
    assert.ok(wsSnapshot && sseSnapshot)

    const keyAnswer = await adminCall(app, 'POST', '/admin/v1/keys', {
      name: 'reader',
      scopes: ['presence:read'],
    })
    const key = (JSON.parse(keyAnswer.body) as { secret: string }).secret
    const challenge = await call(
      app,
      'POST',
      '/v1/presence/users',
      {
        cookie: `.ROBLOSECURITY=${token}`,
        // the read needs none; a wrong one is answered with a fresh one
        'x-csrf-token': 'none-yet',
      },
      { userIds: [1] },
    )
    assert.equal(challenge.status, 403)
    const credentials: Record<string, Record<string, string>> = {
      anonymous: {},
      bearer: { authorization: `Bearer ${token}` },
      cookie: {
        cookie: `.ROBLOSECURITY=${token}`,
        'x-csrf-token': challenge.headers['x-csrf-token']!,
      },
      key: { 'x-api-key': key },
      xbl: { authorization: `XBL3.0 x=1;${token}`, 'x-xbl-contract-version': '3' },
      xboxKey: { 'x-api-key': key, 'x-xbl-contract-version': '3' },
    }
    const everyone = ['anonymous', 'bearer', 'cookie', 'key', 'xbl', 'xboxKey'] as const
    const viewerOnly = ['bearer', 'cookie', 'xbl'] as const
    const pairs: Array<[string, string, readonly (typeof everyone)[number][]]> = [
      [INVISIBLE, NEVER, everyone],
      [BLOCKS_VIEWER, NEVER, viewerOnly],
      [BLOCKED_BY_VIEWER, NEVER, viewerOnly],
      [HIDDEN_LATER, SIGNED_OUT, everyone],
    ]
    const as = (answer: Answer, from: string, to: string) =>
      JSON.stringify({ ...answer, body: answer.body.split(from).join(to) })
    for (const [hidden, offline, callers] of pairs) {
      for (const caller of callers) {
        const seenHidden = await surfaces(app, hidden, caller, credentials)
        const seenOffline = await surfaces(app, offline, caller, credentials)
        seenHidden.forEach(([label, answer], i) => {
          assert.equal(
            as(answer, hidden, offline),
            as(seenOffline[i]![1], offline, offline),
            `${caller} ${label}: hidden ${hidden} against offline ${offline}`,
          )
        })
      }
      // snapshots of fresh streams, the stream's own numbers aside
      const socket = await NativeClient.connect(app.url, token)
      const snapshotOf = async (id: string) => {
        socket.send({ type: 'subscribe', ids: [id] })
        const frame = await socket.waitFor((f) => f.type === 'snapshot')
        return JSON.stringify(frame.presences)
      }
      const hiddenSnapshot = (await snapshotOf(hidden)).split(hidden).join(offline)
      assert.equal(hiddenSnapshot, await snapshotOf(offline), `WebSocket snapshot of ${hidden}`)
      socket.socket.close()
      const sseSnapshotOf = async (id: string) => {
        const stream = await SseClient.open(app.url, token, [id])
        try {
          const event = await stream.waitFor((e) => e.data.type === 'snapshot')
          return JSON.stringify(event.data.presences)
        } finally {
          stream.close()
        }
      }
      assert.equal(
        (await sseSnapshotOf(hidden)).split(hidden).join(offline),
        await sseSnapshotOf(offline),
        `SSE snapshot of ${hidden}`,
      )
    }

    // the public numbers count the invisible players nowhere: the two blocking players and SEEN
    // (a fleet serves its stats node's last pass: asked again until one came after the writes;
    // a first pass slowed by a cold start and a loaded machine stretches the interval to 20 times it)
    const deadline = Date.now() + 30_000
    let online: number
    do {
      const stats = JSON.parse((await call(app, 'GET', '/api/v1/stats', {})).body) as {
        totals: { online: number }
      }
      online = stats.totals.online
      if (mode === 'embedded' || online === 3) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    } while (Date.now() < deadline)
    assert.equal(online, 3)
  })
}
