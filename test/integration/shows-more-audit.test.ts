import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, type StartedApp } from '../helpers/start-app.js'
import { FAST_WEBHOOKS } from '../helpers/webhook-endpoint.js'
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js'
import { admin, beat, call, hook, namesPlace, startAudited, told } from './audit-kit.js'
import { NativeClient } from './native-client.js'
import { SseClient } from './sse-client.js'

/*
 * Audit of "nothing a user did while hidden shows once they show more" beyond the settings
 * write (hidden-expiry-audit.test.ts, PresenceService #replaceAfterExpiry): every other way a
 * user becomes more visible to someone while one of their sessions expired and was not swept.
 * A is in a game at place 1818 (universe 99) on the PC and online on iOS, hidden from B (a block
 * either way, or `friends` visibility with B a stranger, or `nobody`, or invisible); the PC's
 * session expires, not swept; A is shown more to B (the block lifted, A and B made friends, A
 * showing places to everyone, A visible again), by the admin API or by an import line; then a write, or the sweep, tells the expiry.
 * TWIN does the same at the same instants, its PC in a game elsewhere (place 2929, universe 77),
 * and is shown more to B the same way: B's WebSocket and SSE streams, and B's Roblox and Xbox
 * reads, must show of A exactly what they show of TWIN (ids replaced, stream numbering aside). Webhooks and the public
 * feed (no viewer) are told of A what they are told of TWIN when A hides from everyone (friends,
 * nobody, invisible), and, blocks being between users, of A what they are told of CONTROL (A's history,
 * never blocked) when A blocks or is blocked. Embedded, and in fleet mode on Redis.
 */

const TTL_MS = 10_000
const B = '9401'
const A = '9402'
const TWIN = '9403'
const CONTROL = '9404'
const SENTINEL = '9409'
const PLACE = '1818'
/** TWIN's game: universe 77, which no webhook here filters on. */
const TWIN_PLACE = '2929'
/** What ids are replaced with to compare two users' views. */
const SOMEONE = '9400'

const CONFIG: Partial<Config> = {
  ...FAST_WEBHOOKS,
  sessionTtlSeconds: TTL_MS / 1000,
  sweepIntervalMs: 3_600_000,
  flapGraceMs: 0,
}

type Kind = 'A blocks B' | 'B blocks A' | 'friends' | 'nobody' | 'invisible'
type Route = 'admin' | 'import'

const start = (t: TestContext, fleet: boolean) => startAudited(t, fleet, 'shows-more', CONFIG)

async function importLines(app: StartedApp, lines: readonly object[]) {
  const res = await fetch(`${app.url}/admin/v1/import`, {
    method: 'POST',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
    body: lines.map((line) => JSON.stringify(line)).join('\n'),
  })
  assert.equal(res.status, 200, await res.text())
}

/** Every read `viewer` (or no one) makes of `id`, its id replaced by SOMEONE. */
async function reads(app: StartedApp, id: string, viewer?: string) {
  const token = viewer && (await app.tokens.issue(viewer as UserId))
  const roblox = token ? { authorization: `Bearer ${token}` } : {}
  const out: string[] = []
  for (const [method, path, body] of [
    ['POST', '/v1/presence/users', { userIds: [id] }],
    ['GET', `/v1/users/${id}`],
  ] as const) {
    const answer = await call(app, method, path, roblox, body)
    out.push(`${path} ${answer.status} ${answer.body}`)
  }
  if (token) {
    const xbox = { authorization: `XBL3.0 x=1;${token}`, 'x-xbl-contract-version': '3' }
    for (const level of ['user', 'device', 'title', 'all']) {
      const batch = await call(app, 'POST', '/users/batch', xbox, { users: [id], level })
      out.push(`batch ${level} ${batch.status} ${batch.body}`)
      const one = await call(app, 'GET', `/users/xuid(${id})?level=${level}`, xbox)
      out.push(`xuid ${level} ${one.status} ${one.body}`)
    }
  }
  return out.map((line) => line.split(id).join(SOMEONE))
}

/** A webhook's events of `id`, as `told`. */
const hooked = (receiver: WebhookReceiver, id: string) =>
  told(
    receiver.accepted.map((r) => r.event as unknown as Record<string, unknown>),
    id,
    SOMEONE,
  )

/** Shows `ids` more to B, by `kind`, through `route`. */
async function showMore(app: StartedApp, kind: Kind, route: Route, ids: readonly string[]) {
  if (route === 'import') {
    await importLines(
      app,
      ids.map((id) =>
        kind === 'A blocks B'
          ? { type: 'block', blocker: id, blocked: B, isBlocked: false }
          : kind === 'B blocks A'
            ? { type: 'block', blocker: B, blocked: id, isBlocked: false }
            : kind === 'friends'
              ? { type: 'friends', a: id, b: B }
              : { type: 'settings', userId: id, visibility: 'everyone', invisible: false },
      ),
    )
    return
  }
  for (const id of ids) {
    if (kind === 'A blocks B') await admin(app, 'DELETE', `/admin/v1/users/${id}/blocks/${B}`)
    else if (kind === 'B blocks A') await admin(app, 'DELETE', `/admin/v1/users/${B}/blocks/${id}`)
    else if (kind === 'friends') await admin(app, 'PUT', `/admin/v1/users/${id}/friends/${B}`)
    else if (kind === 'nobody') {
      await admin(app, 'PUT', `/admin/v1/users/${id}/settings`, { visibility: 'everyone' })
    } else await admin(app, 'PUT', `/admin/v1/users/${id}/settings`, { invisible: false })
  }
}

/**
 * A (in a game at PLACE on the PC, online on iOS) and TWIN (the same, its PC in no place), and,
 * for a block, CONTROL (A's history, never blocked), hidden from B by `kind`; the PCs expire, not
 * swept; A and TWIN are shown more to B through `route`; then `then` tells the expiries.
 */
async function scenario(
  t: TestContext,
  fleet: boolean,
  kind: Kind,
  route: Route,
  then: 'write' | 'sweep',
) {
  const { app, clock } = await start(t, fleet)
  await admin(app, 'PUT', `/admin/v1/places/${PLACE}`, { universeId: 99, name: 'Crossroads' })
  await admin(app, 'PUT', `/admin/v1/places/${TWIN_PLACE}`, { universeId: 77, name: 'Harbour' })
  const block = kind === 'A blocks B' || kind === 'B blocks A'
  for (const id of [A, TWIN]) {
    if (kind === 'A blocks B') await admin(app, 'PUT', `/admin/v1/users/${id}/blocks/${B}`)
    if (kind === 'B blocks A') await admin(app, 'PUT', `/admin/v1/users/${B}/blocks/${id}`)
    if (kind === 'friends' || kind === 'nobody') {
      await admin(app, 'PUT', `/admin/v1/users/${id}/settings`, { visibility: kind })
    }
    if (kind === 'invisible') {
      await admin(app, 'PUT', `/admin/v1/users/${id}/settings`, { invisible: true })
    }
  }
  const plain = await startReceiver(t)
  await hook(app, plain)
  const placed = await startReceiver(t)
  await hook(app, placed, { universes: ['99'] })
  const token = await app.tokens.issue(B as UserId)
  const watched = [A, TWIN, CONTROL, SENTINEL]
  const ws = await NativeClient.connect(app.url, token)
  t.after(() => ws.socket.terminate())
  ws.send({ type: 'subscribe', ids: watched })
  const wsSnapshot = await ws.waitFor((f) => f.type === 'snapshot')
  const sse = await SseClient.open(app.url, token, watched)
  t.after(() => sse.close())
  const sseSnapshot = await sse.waitFor((e) => e.data.type === 'snapshot')
  const feed = await SseClient.get(`${app.url}/api/v1/stats/feed`)
  t.after(() => feed.close())

  const users = block ? [A, TWIN, CONTROL] : [A, TWIN]
  for (const id of users) {
    await beat(app, id, 'PC', id === TWIN ? TWIN_PLACE : PLACE)
    await beat(app, id, 'iOS')
  }
  clock.advance(TTL_MS / 2)
  for (const id of users) await beat(app, id, 'iOS')
  clock.advance(TTL_MS / 2 + 1000)
  // the PCs expired, not swept: A and TWIN are shown more to B
  await showMore(app, kind, route, [A, TWIN])
  assert.deepEqual(
    await reads(app, A, B),
    await reads(app, TWIN, B),
    'reads before the expiry is told',
  )
  clock.advance(1000)
  if (then === 'write') for (const id of users) await beat(app, id, 'iOS')
  else await app.service.sweepExpired()

  // the sentinel: everything told before it has arrived
  await beat(app, SENTINEL, 'PC')
  await ws.waitFor((f) => f.type !== 'snapshot' && f.userId === SENTINEL)
  await sse.waitFor((e) => e.data.type !== 'snapshot' && e.data.userId === SENTINEL)
  // (the universe webhook is not told of the sentinel, in no place: it is sent beside the other)
  await plain.until(
    () => plain.accepted.some((r) => r.event.userId === SENTINEL),
    15_000,
    'the sentinel',
  )
  await app.service.webhooks.idle()
  await new Promise((resolve) => setTimeout(resolve, 700))
  const frames = ws.frames.filter((f) => f !== wsSnapshot)
  const events = sse.events.filter((e) => e.data !== sseSnapshot.data).map((e) => e.data)
  return { app, frames, events, plain, placed, feed, block }
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'
  for (const kind of ['A blocks B', 'B blocks A', 'friends', 'nobody', 'invisible'] as const) {
    for (const route of ['admin', 'import'] as const) {
      for (const then of ['write', 'sweep'] as const) {
        test(`${mode}: ${kind}, shown more by ${route} while a game expired unswept, the ${then} telling it: B learns nothing of the place`, async (t) => {
          const { app, frames, events, plain, placed, feed, block } = await scenario(
            t,
            fleet,
            kind,
            route,
            then,
          )
          // B's streams: of A exactly what they show of TWIN, never the place
          const streams = JSON.stringify([told(frames, A, SOMEONE), told(events, A, SOMEONE)])
          assert.ok(!namesPlace(streams, PLACE, 'Crossroads'), streams)
          assert.deepEqual(
            told(frames, A, SOMEONE),
            told(frames, TWIN, SOMEONE),
            `WebSocket: ${JSON.stringify(frames)}`,
          )
          assert.deepEqual(
            told(events, A, SOMEONE),
            told(events, TWIN, SOMEONE),
            `SSE: ${JSON.stringify(events)}`,
          )
          // B's reads (Roblox, Xbox) and anyone's: byte for byte TWIN's
          assert.deepEqual(await reads(app, A, B), await reads(app, TWIN, B))
          if (!block) assert.deepEqual(await reads(app, A), await reads(app, TWIN))
          if (block) {
            // blocks are between users: a webhook is told of A what it is told of CONTROL
            assert.deepEqual(hooked(plain, A), hooked(plain, CONTROL))
            assert.deepEqual(hooked(placed, A), hooked(placed, CONTROL))
            assert.ok(hooked(placed, A).length > 0, 'the universe webhook sees A, never blocked')
            return
          }
          // A hid from everyone: webhooks and the public feed learn nothing of the place
          assert.deepEqual(hooked(plain, A), hooked(plain, TWIN))
          assert.deepEqual(hooked(placed, A), [])
          const text = JSON.stringify(feed.events)
          assert.ok(!namesPlace(text, PLACE, 'Crossroads'), `feed: ${text}`)
        })
      }
    }
  }
}
