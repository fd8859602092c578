import assert from 'node:assert/strict'
import { connect as connectTcp } from 'node:net'
import { test, type TestContext } from 'node:test'
import type { Activity } from '../../src/core/presence.js'
import type { UserId } from '../../src/core/user-id.js'
import type { Config } from '../../src/app/config.js'
import { ManualClock } from '../../src/service/clock.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import { NativeClient, refusedUpgrade, type Frame } from './native-client.js'

const A = '1001' as UserId
const B = '1002' as UserId
const C = '1003' as UserId

async function start(t: TestContext, config: Partial<Config> = {}, clock?: ManualClock) {
  return startApp(t, {
    listen: true,
    config: { flapGraceMs: 0, ...config },
    ...(clock ? { clock } : {}),
  })
}

async function connect(t: TestContext, app: StartedApp, userId: UserId): Promise<NativeClient> {
  const client = await NativeClient.connect(app.url, await app.tokens.issue(userId))
  t.after(() => client.socket.terminate())
  return client
}

function beat(
  app: StartedApp,
  userId: UserId,
  activity: Activity = { kind: 'online' },
  key = 'app',
) {
  return app.service.heartbeat({ userId, key, source: 'app', deviceType: 'PC', activity })
}

function locationOf(frame: Frame): string {
  const sessions = (frame.presence as { sessions?: { activity: Activity }[] } | undefined)?.sessions
  return sessions?.[0]?.activity.location ?? ''
}

function presenceOf(frame: Frame): Record<string, unknown> {
  return frame.presence as Record<string, unknown>
}

test('auth: no token, a bad token and a plain GET are refused before any upgrade', async (t) => {
  const app = await start(t)
  const url = `${app.url}/api/v1/realtime`
  const none = await refusedUpgrade(url)
  assert.equal(none.status, 401)
  assert.equal(JSON.parse(none.body).error.code, 'UNAUTHENTICATED')
  const bad = await refusedUpgrade(url, { authorization: 'Bearer not-a-token' })
  assert.equal(bad.status, 401)
  const badQuery = await refusedUpgrade(`${url}?access_token=abc.def.ghi`)
  assert.equal(badQuery.status, 401)
  const token = await app.tokens.issue(A)
  const plain = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(plain.status, 426)
  assert.equal(((await plain.json()) as { error: { code: string } }).error.code, 'UPGRADE_REQUIRED')
  // the query form is accepted (browsers cannot set headers on a WebSocket)
  const client = await NativeClient.connect(app.url, token).catch(() => undefined)
  assert.ok(client)
  client.socket.terminate()
  const viaQuery = await new Promise<number>((resolve) => {
    import('ws').then(({ default: WebSocket }) => {
      const socket = new WebSocket(`${url.replace('http', 'ws')}?access_token=${token}`)
      socket.on('open', () => {
        socket.close()
        resolve(101)
      })
      socket.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0))
    })
  })
  assert.equal(viaQuery, 101)
})

test('a malformed WebSocket handshake is a 400 in the native error shape, not an HTML page', async (t) => {
  const app = await start(t)
  const token = await app.tokens.issue(A)
  const { port } = new URL(app.url)
  const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
  const handshake = (headers: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = connectTcp(Number(port), '127.0.0.1', () =>
        socket.write(
          `GET /api/v1/realtime HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
            `Connection: Upgrade\r\n${headers}\r\n`,
        ),
      )
      let answer = ''
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()))
      socket.on('close', () => resolve(answer))
      socket.on('error', reject)
      socket.setTimeout(3000, () => socket.destroy(new Error(`no answer: ${answer}`)))
    })
  for (const [headers, named] of [
    [`Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n`, /Sec-WebSocket-Key/],
    [
      `Upgrade: websocket\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n`,
      /Sec-WebSocket-Key/,
    ],
    [
      `Upgrade: websocket\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 7\r\n`,
      /Sec-WebSocket-Version/,
    ],
    [`Upgrade: h2c\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`, /Upgrade/],
    [
      `Upgrade: websocket\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a,,b\r\n`,
      /Sec-WebSocket-Protocol/,
    ],
  ] as const) {
    const answer = await handshake(headers)
    const [head = '', body = ''] = answer.split('\r\n\r\n')
    assert.match(head, /^HTTP\/1\.1 400 /, answer)
    assert.match(head, /\r\ncontent-type: application\/json/i, answer)
    const error = (JSON.parse(body) as { error: { code: string; message: string } }).error
    assert.equal(error.code, 'INVALID_REQUEST')
    assert.match(error.message, named)
  }
  // the node is unaffected
  const client = await connect(t, app, A)
  client.send({ type: 'subscribe', ids: [B] })
  assert.equal((await client.take()).type, 'snapshot')
})

test('HEAD asking for the upgrade is 405 with Allow: GET; a plain HEAD answers as its GET (426)', async (t) => {
  const app = await start(t)
  const token = await app.tokens.issue(A)
  const { port } = new URL(app.url)
  const head = (upgrade: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = connectTcp(Number(port), '127.0.0.1', () =>
        socket.write(
          `HEAD /api/v1/realtime HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
            `${upgrade}\r\n`,
        ),
      )
      let answer = ''
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString()
        // a HEAD answer has no body: the headers are all of it
        if (answer.includes('\r\n\r\n')) socket.destroy()
      })
      socket.on('close', () => resolve(answer))
      socket.on('error', reject)
      socket.setTimeout(3000, () => socket.destroy(new Error(`no answer: ${answer}`)))
    })
  const upgrade = await head(
    'Connection: Upgrade\r\nUpgrade: websocket\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n',
  )
  assert.match(upgrade, /^HTTP\/1\.1 405 /, upgrade)
  assert.match(upgrade, /\r\nallow: GET\r\n/i, upgrade)
  assert.match(upgrade, /\r\ncontent-type: application\/json/i, upgrade)
  const plain = await head('')
  assert.match(plain, /^HTTP\/1\.1 426 /, plain)
  // the HEADs held no place: the user's connections still open
  const client = await connect(t, app, A)
  client.send({ type: 'subscribe', ids: [B] })
  assert.equal((await client.take()).type, 'snapshot')
})

test('a method ws refuses (405) is answered 405 with Allow: GET in the native shape, as a HEAD upgrade is', async () => {
  const { PassThrough } = await import('node:stream')
  const { refuseHandshake } = await import('../../src/protocols/native/ws.js')
  const socket = new PassThrough()
  let written = ''
  socket.on('data', (chunk: Buffer) => (written += chunk.toString()))
  const ended = new Promise((resolve) => socket.on('end', resolve))
  refuseHandshake(new Error('Invalid HTTP method'), socket)
  await ended
  const [head = '', body = ''] = written.split('\r\n\r\n')
  assert.match(head, /^HTTP\/1\.1 405 Method Not Allowed\r\n/, written)
  assert.match(head, /\r\nAllow: GET(\r\n|$)/, written)
  assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, 'METHOD_NOT_ALLOWED')
})

test('snapshot, then online, update and offline in sequence with no gaps', async (t) => {
  const app = await start(t)
  await beat(app, C, { kind: 'inGame', placeId: '1818', location: 'Crossroads' })
  const a = await connect(t, app, A)
  a.send({ type: 'subscribe', ids: [B, Number(C)] })
  const snapshot = await a.take()
  assert.equal(snapshot.type, 'snapshot')
  assert.equal(snapshot.seq, 1)
  assert.equal(typeof snapshot.resume, 'string')
  const [b, c] = snapshot.presences as Record<string, unknown>[]
  assert.deepEqual(b, {
    userId: B,
    state: 'offline',
    lastOnline: null,
    locationHidden: false,
    sessions: [],
  })
  assert.equal(c!.userId, C)
  assert.equal(c!.state, 'inGame')
  assert.deepEqual((c!.sessions as { activity: Activity }[])[0]!.activity, {
    kind: 'inGame',
    placeId: '1818',
    location: 'Crossroads',
  })

  await beat(app, B)
  const online = await a.take()
  assert.deepEqual([online.type, online.seq, online.userId], ['online', 2, B])
  assert.equal(presenceOf(online).state, 'online')
  assert.equal(presenceOf(online).lastOnline, null)

  // a refresh that changes nothing visible sends nothing
  await beat(app, B)
  await beat(app, B, { kind: 'inStudio' })
  const update = await a.take()
  assert.deepEqual([update.type, update.seq, presenceOf(update).state], ['update', 3, 'inStudio'])

  await app.service.endSession(B, 'app')
  const offline = await a.take()
  assert.deepEqual([offline.type, offline.seq, offline.reason], ['offline', 4, 'explicit'])
  assert.equal(presenceOf(offline).state, 'offline')
  assert.match(String(presenceOf(offline).lastOnline), /^\d{4}-\d\d-\d\dT/)
  assert.deepEqual(a.pending(), [])

  // unsubscribe stops events for that user only
  a.send({ type: 'unsubscribe', ids: [B] })
  a.send({ type: 'subscribe', ids: [A] })
  assert.equal((await a.take()).type, 'snapshot')
  await beat(app, B)
  await beat(app, C, { kind: 'online' })
  const next = await a.take()
  assert.deepEqual([next.type, next.userId, next.seq], ['update', C, 6])
})

test('malformed frames get an error frame and the connection stays up', async (t) => {
  const app = await start(t)
  const a = await connect(t, app, A)
  // `for` names the frame refused when it could be read as one of a known type
  const refusal = async () => {
    const frame = await a.take()
    return [frame.code, frame.for]
  }
  a.send('not json')
  assert.deepEqual(await refusal(), ['FRAME_INVALID', undefined])
  a.send('[1,2]')
  assert.deepEqual(await refusal(), ['FRAME_INVALID', undefined])
  a.send({ type: 'dance' })
  assert.deepEqual(await refusal(), ['TYPE_UNKNOWN', undefined])
  a.send({ type: 'subscribe', ids: ['12', 'abc'] })
  const badId = await a.take()
  assert.deepEqual([badId.code, badId.for], ['IDS_INVALID', 'subscribe'])
  assert.match(String(badId.message), /abc/)
  a.send({ type: 'subscribe', ids: [] })
  assert.deepEqual(await refusal(), ['IDS_INVALID', 'subscribe'])
  a.send({ type: 'subscribe', ids: Array.from({ length: 1001 }, (_, i) => String(i + 1)) })
  assert.deepEqual(await refusal(), ['TOO_MANY_IDS', 'subscribe'])
  a.send({ type: 'unsubscribe', ids: ['abc'] })
  assert.deepEqual(await refusal(), ['IDS_INVALID', 'unsubscribe'])
  a.send({ type: 'heartbeat', activity: { kind: 'flying' } })
  assert.deepEqual(await refusal(), ['HEARTBEAT_INVALID', 'heartbeat'])
  a.send({ type: 'resume', resume: 'not a token!', since: 0 })
  assert.deepEqual(await refusal(), ['FRAME_INVALID', 'resume'])
  a.socket.send(Buffer.from([1, 2, 3]), { binary: true })
  assert.deepEqual(await refusal(), ['FRAME_INVALID', undefined])
  // an int64 literal beyond 2^53 is read exactly
  a.send('{"type":"subscribe","ids":[9223372036854775807]}')
  const snapshot = await a.take()
  assert.equal(snapshot.type, 'snapshot')
  assert.equal((snapshot.presences as { userId: string }[])[0]!.userId, '9223372036854775807')
  a.send({ type: 'resume', resume: 'abc', since: 0 })
  assert.equal((await a.take()).code, 'RESUME_LATE')
  assert.equal(a.socket.readyState, a.socket.OPEN)
})

test('a frame nested deeper than the stack gets an error frame; the node keeps serving', async (t) => {
  const app = await start(t)
  const a = await connect(t, app, A)
  const deep = '['.repeat(20_000) + ']'.repeat(20_000) // 40 KB, within the 64 KiB frame limit
  a.send(`{"type":"subscribe","ids":[${deep}]}`)
  assert.equal((await a.take()).code, 'IDS_INVALID')
  a.send(`{"type":${deep}}`)
  assert.equal((await a.take()).code, 'TYPE_UNKNOWN')
  a.send({ type: 'subscribe', ids: [B] })
  assert.equal((await a.take()).type, 'snapshot')
  assert.equal(a.socket.readyState, a.socket.OPEN)
})

test('an abusive stream of malformed frames is closed with 1008', async (t) => {
  const app = await start(t)
  const a = await connect(t, app, A)
  for (let i = 0; i < 25; i++) a.send('{')
  const closed = await a.closed
  assert.equal(closed.code, 1008)
  assert.equal(closed.reason, 'too many malformed frames')
  // the node is unaffected
  const b = await connect(t, app, B)
  b.send({ type: 'subscribe', ids: [A] })
  assert.equal((await b.take()).type, 'snapshot')
})

test('privacy changes mid-stream change what each subscriber sees at once', async (t) => {
  const app = await start(t)
  await app.service.putSettings(B, { visibility: 'friends', invisible: false })
  await beat(app, B, { kind: 'inGame', placeId: '1818', location: 'Crossroads' })
  const a = await connect(t, app, A)
  const self = await connect(t, app, B)
  a.send({ type: 'subscribe', ids: [B, C] })
  self.send({ type: 'subscribe', ids: [B] })
  const snapshot = await a.take()
  const seen = (snapshot.presences as Record<string, unknown>[])[0]!
  assert.equal(seen.state, 'inGame')
  assert.equal(seen.locationHidden, true)
  assert.deepEqual((seen.sessions as { activity: Activity }[])[0]!.activity, { kind: 'inGame' })
  await self.take()

  // a friend sees where
  await app.service.setFriends(A, B, true)
  const friended = await a.take()
  assert.equal(friended.type, 'update')
  assert.equal(presenceOf(friended).locationHidden, false)
  const activity = (presenceOf(friended).sessions as { activity: Activity }[])[0]!.activity
  assert.equal(activity.placeId, '1818')

  // invisible: an ordinary offline for others; Invisible for the user themself
  const hiding = Date.now()
  await app.service.putSettings(B, { visibility: 'friends', invisible: true })
  const hidden = await a.take()
  assert.deepEqual([hidden.type, hidden.reason], ['offline', 'explicit'])
  // B was online until it went invisible: last seen then, as if it had signed out
  assert.ok(Date.parse(String(presenceOf(hidden).lastOnline)) >= hiding - 1)
  assert.deepEqual(presenceOf(hidden).sessions, [])
  const lastOnline = presenceOf(hidden).lastOnline
  const own = await self.take()
  assert.deepEqual([own.type, presenceOf(own).state], ['update', 'invisible'])

  // while invisible nothing about B reaches A, not even a timestamp
  await beat(app, B, { kind: 'inGame', placeId: '99' })
  await beat(app, C)
  const next = await a.take()
  assert.deepEqual([next.type, next.userId], ['online', C])
  assert.equal((await self.take()).type, 'update')

  // visible again, then a block hides B from A
  await app.service.putSettings(B, { visibility: 'everyone', invisible: false })
  const back = await a.take()
  assert.deepEqual([back.type, back.userId, presenceOf(back).state], ['online', B, 'inGame'])
  assert.notEqual(presenceOf(back).lastOnline, lastOnline === null ? 'x' : undefined)
  const blocking = Date.now()
  await app.service.setBlocked(B, A, true)
  const blocked = await a.take()
  assert.deepEqual([blocked.type, blocked.reason], ['offline', 'explicit'])
  // A saw B online until the block: last seen then
  assert.ok(Date.parse(String(presenceOf(blocked).lastOnline)) >= blocking - 1)
})

test('expiry drives an offline with reason timeout', async (t) => {
  const clock = new ManualClock()
  const app = await start(t, {}, clock)
  const a = await connect(t, app, A)
  a.send({ type: 'subscribe', ids: [B] })
  await a.take()
  await app.service.heartbeat({
    userId: B,
    key: 'app',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'online' },
    ttlMs: 1000,
  })
  assert.equal((await a.take()).type, 'online')
  clock.advance(1500)
  await app.service.sweepExpired()
  const offline = await a.take()
  assert.deepEqual([offline.type, offline.reason], ['offline', 'timeout'])
  assert.equal(presenceOf(offline).lastOnline, new Date(clock.now() - 1500).toISOString())
})

test('flap damping: a session replaced within the grace period makes no offline/online pair', async (t) => {
  const app = await start(t, { flapGraceMs: 300 })
  const a = await connect(t, app, A)
  a.send({ type: 'subscribe', ids: [B, C] })
  await a.take()
  await beat(app, B, { kind: 'online' }, 'phone')
  assert.equal((await a.take()).type, 'online')

  await app.service.endSession(B, 'phone')
  await beat(app, B, { kind: 'online' }, 'laptop')
  // a sentinel on another user proves nothing about B was sent in between
  await beat(app, C)
  const sentinel = await a.take()
  assert.deepEqual([sentinel.type, sentinel.userId], ['online', C])

  // replaced by a different activity: one update, still no offline
  await app.service.endSession(B, 'laptop')
  await beat(app, B, { kind: 'inGame' }, 'console')
  const update = await a.take()
  assert.deepEqual([update.type, update.userId, presenceOf(update).state], ['update', B, 'inGame'])

  // a real offline arrives once the grace period has passed
  const ended = Date.now()
  await app.service.endSession(B, 'console')
  const offline = await a.take(2000)
  assert.deepEqual([offline.type, offline.userId, offline.reason], ['offline', B, 'explicit'])
  assert.ok(Date.now() - ended >= 280, 'the offline was held for the grace period')
  await new Promise((resolve) => setTimeout(resolve, 400))
  assert.deepEqual(a.pending(), [])
})

test('resume: a reconnecting client gets the missed events, then live ones', async (t) => {
  const app = await start(t)
  const token = await app.tokens.issue(A)
  const first = await NativeClient.connect(app.url, token)
  first.send({ type: 'subscribe', ids: [B] })
  const snapshot = await first.take()
  await beat(app, B)
  const online = await first.take()
  assert.equal(online.seq, 2)
  await first.close()

  // missed while away
  await beat(app, B, { kind: 'inGame' })
  await app.service.endSession(B, 'app')

  const second = await connect(t, app, A)
  second.send({ type: 'resume', resume: snapshot.resume, since: 2 })
  const missed = [await second.take(), await second.take()]
  assert.deepEqual(
    missed.map((f) => [f.type, f.seq]),
    [
      ['update', 3],
      ['offline', 4],
    ],
  )
  await beat(app, B)
  assert.deepEqual([(await second.take()).type, second.frames.at(-1)!.seq], ['online', 5])

  // another user cannot take the stream over
  const intruder = await connect(t, app, C)
  intruder.send({ type: 'resume', resume: snapshot.resume, since: 4 })
  assert.deepEqual(await intruder.take(), { type: 'reset', reason: 'unknown' })

  // a second connection resuming the same stream replaces the first (4009)
  const third = await connect(t, app, A)
  third.send({ type: 'resume', resume: snapshot.resume, since: 5 })
  assert.deepEqual(await second.closed, { code: 4009, reason: 'resumed elsewhere' })
  await beat(app, B, { kind: 'inStudio' })
  assert.deepEqual([(await third.take()).seq], [6])
})

test('resume from too far back is answered with reset', async (t) => {
  const app = await start(t, { realtimeReplayFrames: 4 })
  const token = await app.tokens.issue(A)
  const first = await NativeClient.connect(app.url, token)
  first.send({ type: 'subscribe', ids: [B] })
  const snapshot = await first.take()
  await first.close()
  for (const kind of ['online', 'inGame', 'inStudio', 'online', 'inGame', 'inStudio'] as const) {
    await beat(app, B, { kind })
  }
  const second = await connect(t, app, A)
  second.send({ type: 'resume', resume: snapshot.resume, since: 1 })
  assert.deepEqual(await second.take(), { type: 'reset', reason: 'too_old' })
  // the fresh stream works: subscribe again for a new snapshot
  second.send({ type: 'subscribe', ids: [B] })
  const fresh = await second.take()
  assert.deepEqual([fresh.type, fresh.seq], ['snapshot', 1])
  assert.notEqual(fresh.resume, snapshot.resume)
  assert.equal((fresh.presences as { state: string }[])[0]!.state, 'inStudio')
})

test('the connection is the heartbeat: B sees A online while A is connected', async (t) => {
  const app = await start(t)
  const b = await connect(t, app, B)
  b.send({ type: 'subscribe', ids: [A] })
  await b.take()
  const a = await connect(t, app, A)
  a.send({ type: 'heartbeat', activity: { kind: 'inGame', placeId: '1818' }, deviceType: 'iOS' })
  const online = await b.take()
  assert.deepEqual([online.type, presenceOf(online).state], ['online', 'inGame'])
  const session = (presenceOf(online).sessions as Record<string, unknown>[])[0]!
  assert.equal(session.deviceType, 'iOS')
  a.send({ type: 'heartbeat' })
  const update = await b.take()
  assert.deepEqual([update.type, presenceOf(update).state], ['update', 'online'])
  await a.close()
  const offline = await b.take()
  assert.deepEqual([offline.type, offline.reason], ['offline', 'explicit'])
  const [after] = await app.service.rawPresences([A])
  assert.deepEqual(after!.sessions, [])
})

test('a slow consumer is cut off with 4008 while others keep receiving', async (t) => {
  const app = await start(t, { realtimeQueueBytes: 64 * 1024 })
  const slow = await connect(t, app, A)
  const healthy = await connect(t, app, C)
  slow.send({ type: 'subscribe', ids: [B] })
  healthy.send({ type: 'subscribe', ids: [B] })
  await slow.take()
  await healthy.take()
  // the slow client stops reading from its socket; the kernel's socket buffers (several MB on
  // loopback) fill first, so the events below carry ~12 MB in all
  const raw = (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket
  raw.pause()
  const events = 400
  for (let i = 0; i < events; i++) {
    await beat(app, B, { kind: 'inGame', location: `${i} ${'x'.repeat(32_000)}` })
    // let the healthy client (in this same process) read
    await new Promise((resolve) => setImmediate(resolve))
  }
  const last = await healthy.waitFor((f) => locationOf(f).startsWith(`${events - 1} `), 10_000)
  // changes that arrive together may be coalesced, never reordered
  assert.ok(Number(last.seq) <= events + 1)
  raw.resume()
  const closed = await Promise.race([
    slow.closed,
    new Promise((resolve) => setTimeout(resolve, 10_000, 'still open').unref()),
  ])
  assert.deepEqual(closed, { code: 4008, reason: 'slow consumer' })
  assert.ok(slow.frames.length < events, `the slow client got ${slow.frames.length} frames`)
})

test('a connection ends with 4001 when the token that opened it expires', async (t) => {
  const app = await start(t)
  // long enough to connect on a loaded machine (1 s was refused with 401 there, once)
  const client = await NativeClient.connect(app.url, await app.tokens.issue(A, { ttlSeconds: 4 }))
  t.after(() => client.socket.terminate())
  client.send({ type: 'subscribe', ids: [B] })
  assert.equal((await client.take()).type, 'snapshot')
  assert.deepEqual(await client.closed, { code: 4001, reason: 'token expired' })
})

/**
 * A connected to `app` with a token of A that expires in 3 s; `holdPast()` waits until just
 * before the expiry, runs `meanwhile`, then holds the loop until the expiry has passed (a loaded
 * node runs its timers late): what comes meanwhile is handled before the expiry timer runs.
 */
async function expiringConnection(t: TestContext, app: StartedApp) {
  const token = await app.tokens.issue(A, { ttlSeconds: 3 })
  const expiresAt =
    (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp *
    1000
  const a = await NativeClient.connect(app.url, token)
  t.after(() => a.socket.terminate())
  const holdPast = async (meanwhile: () => void = () => {}) => {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now() - 200)))
    meanwhile()
    while (Date.now() <= expiresAt + 20) {
      // busy: the expiry passes while the loop is held
    }
  }
  return { a, holdPast }
}

test('past its token’s expiry a connection sends no frame, even before the expiry timer runs', async (t) => {
  const app = await start(t)
  const { a, holdPast } = await expiringConnection(t, app)
  a.send({ type: 'subscribe', ids: [B] })
  assert.equal((await a.take()).type, 'snapshot')
  // a change of a watched user comes before the connection's expiry timer has run
  await holdPast()
  await beat(app, B)
  assert.deepEqual(await a.closed, { code: 4001, reason: 'token expired' })
  assert.deepEqual(
    a.frames.map((f) => f.type),
    ['snapshot'],
    'no frame after the token expired',
  )
})

test('past its token’s expiry a connection takes no frame, even before the expiry timer runs', async (t) => {
  const app = await start(t)
  const { a, holdPast } = await expiringConnection(t, app)
  const b = await connect(t, app, B)
  b.send({ type: 'subscribe', ids: [A] })
  assert.equal((await b.take()).type, 'snapshot')
  // A's heartbeat frame is on its way while the loop is held: the node reads it after the
  // expiry, before its expiry timer has run
  await holdPast(() => a.send({ type: 'heartbeat', activity: { kind: 'inGame', placeId: '1818' } }))
  assert.deepEqual(await a.closed, { code: 4001, reason: 'token expired' })
  await new Promise((resolve) => setTimeout(resolve, 300))
  // the frame came with an expired token: nothing was written, nobody saw A online
  assert.deepEqual(
    b.frames.map((f) => f.type),
    ['snapshot'],
    'B saw nothing of A',
  )
  const read = await fetch(`${app.url}/v1/presence/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userIds: [A] }),
  })
  const [record] = ((await read.json()) as { userPresences: { lastOnline: string }[] })
    .userPresences
  assert.equal(record!.lastOnline, '1970-01-01T00:00:00.000Z', 'A was never online')
})
