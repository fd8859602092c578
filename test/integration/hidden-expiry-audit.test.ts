import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import type { StartedApp } from '../helpers/start-app.js'
import { FAST_WEBHOOKS } from '../helpers/webhook-endpoint.js'
import { startReceiver } from '../helpers/webhook-receiver.js'
import { admin, beat, call, hook, namesPlace, startAudited } from './audit-kit.js'
import { NativeClient } from './native-client.js'
import { SseClient } from './sse-client.js'

/*
 * Audit of "hidden is indistinguishable from offline" on the expiries a write tells first
 * (PresenceChange.expired, core expiryOf: 2a5039d, d2653cc, ee0f9ca). Hidden users' sessions
 * expire and, before the sweep, they write again (the same device, another device) or end
 * another session; the sweep runs after. A stranger's WebSocket and SSE streams, the public
 * dashboard feed, two presence:read webhooks (one filtered on users) and the Roblox and Xbox
 * reads must show of them exactly what they show of a user who was never online: nothing
 * streamed, the streams numbered as if nothing happened, the same lastOnline before and after.
 * A `nobody` user is seen online, never where, the expiry of a session in a place included.
 * Embedded, and in fleet mode on Redis.
 */

const TTL_MS = 10_000
const VIEWER = '9301'
const INVISIBLE = '9302'
const BLOCKS_VIEWER = '9303'
const OFFLINE = '9304'
const NOBODY = '9305'
const SENTINEL = '9309'
/** Never online: read beside the target. */
const NEVER = '9310'
const PLACE = '1818'

const CONFIG: Partial<Config> = {
  ...FAST_WEBHOOKS,
  sessionTtlSeconds: TTL_MS / 1000,
  sweepIntervalMs: 3_600_000,
  flapGraceMs: 0,
}

const start = (t: TestContext, fleet: boolean) => startAudited(t, fleet, 'hidden-expiry', CONFIG)

/** Every read a viewer makes of `id`, its id replaced by OFFLINE's (for comparing). */
async function reads(app: StartedApp, id: string, viewer?: string) {
  const token = viewer && (await app.tokens.issue(viewer as UserId))
  const roblox = token ? { authorization: `Bearer ${token}` } : {}
  const out: string[] = []
  for (const [method, path, body] of [
    ['POST', '/v1/presence/users', { userIds: [id] }],
    ['POST', '/v1/presence/users', { userIds: [NEVER, id] }],
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
  return out.map((line) => line.split(id).join(OFFLINE))
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'
  test(`${mode}: expiries a write tells first of hidden users show nothing a stranger could tell from offline`, async (t) => {
    const { app, clock } = await start(t, fleet)
    await admin(app, 'PUT', `/admin/v1/places/${PLACE}`, { universeId: 99, name: 'Crossroads' })
    await admin(app, 'PUT', `/admin/v1/users/${INVISIBLE}/settings`, { invisible: true })
    await admin(app, 'PUT', `/admin/v1/users/${NOBODY}/settings`, { visibility: 'nobody' })
    await admin(app, 'PUT', `/admin/v1/users/${BLOCKS_VIEWER}/blocks/${VIEWER}`)
    const plain = await startReceiver(t)
    await hook(app, plain)
    const filtered = await startReceiver(t)
    await hook(app, filtered, { users: [INVISIBLE, OFFLINE, NOBODY, SENTINEL] })
    const placed = await startReceiver(t)
    await hook(app, placed, { universes: ['99'] })

    const token = await app.tokens.issue(VIEWER as UserId)
    const watched = [INVISIBLE, BLOCKS_VIEWER, OFFLINE, NOBODY, SENTINEL]
    const ws = await NativeClient.connect(app.url, token)
    t.after(() => ws.socket.terminate())
    ws.send({ type: 'subscribe', ids: watched })
    const wsSnapshot = await ws.waitFor((f) => f.type === 'snapshot')
    const sse = await SseClient.open(app.url, token, watched, '&positions=1')
    t.after(() => sse.close())
    const sseSnapshot = await sse.waitFor((e) => e.data.type === 'snapshot')
    const feed = await SseClient.get(`${app.url}/api/v1/stats/feed`)
    t.after(() => feed.close())

    const before = {
      anonymous: await reads(app, INVISIBLE),
      viewer: await reads(app, INVISIBLE, VIEWER),
      blocked: await reads(app, BLOCKS_VIEWER, VIEWER),
    }
    const offlineBefore = {
      anonymous: await reads(app, OFFLINE),
      viewer: await reads(app, OFFLINE, VIEWER),
    }
    assert.deepEqual(before.anonymous, offlineBefore.anonymous)
    assert.deepEqual(before.viewer, offlineBefore.viewer)
    assert.deepEqual(before.blocked, offlineBefore.viewer)

    // the hidden users come online, their sessions expire, and they write before the sweep
    for (const id of [INVISIBLE, BLOCKS_VIEWER]) {
      await beat(app, id, 'PC', PLACE)
      await beat(app, id, 'iOS')
    }
    await beat(app, NOBODY, 'PC', PLACE)
    clock.advance(TTL_MS / 2)
    for (const id of [INVISIBLE, BLOCKS_VIEWER, NOBODY]) await beat(app, id, 'iOS')
    clock.advance(TTL_MS / 2 + 1000)
    // the PC's game expired, not swept: another device writes (an update told first)
    for (const id of [INVISIBLE, BLOCKS_VIEWER, NOBODY]) {
      const change = await beat(app, id, 'iOS')
      assert.equal(change.expired?.length, 1, `${id}: the write ended the expired PC`)
    }
    clock.advance(TTL_MS + 1000)
    // every session expired, not swept: the same device writes (offline, online told first)
    for (const id of [INVISIBLE, BLOCKS_VIEWER, NOBODY]) {
      const change = await beat(app, id, 'iOS', PLACE)
      assert.equal(change.expired?.length, 1, `${id}: the write ended the expired iOS`)
    }
    // a second device, expired beside it, ended by a sign-out of the first
    for (const id of [INVISIBLE, BLOCKS_VIEWER, NOBODY]) await beat(app, id, 'PC', PLACE)
    clock.advance(TTL_MS / 2)
    for (const id of [INVISIBLE, BLOCKS_VIEWER, NOBODY]) await beat(app, id, 'iOS', PLACE)
    await beat(app, INVISIBLE, 'Web')
    await beat(app, BLOCKS_VIEWER, 'Web')
    await beat(app, NOBODY, 'Web')
    clock.advance(TTL_MS / 2 + 1000)
    for (const id of [INVISIBLE, BLOCKS_VIEWER, NOBODY]) {
      const change = await app.service.endSession(id as UserId, 'app:Web')
      assert.equal(change?.expired?.length, 1, `${id}: the sign-out ended the expired PC`)
    }
    clock.advance(TTL_MS)
    await app.service.sweepExpired()

    // the sentinel: everything told before it has arrived
    await beat(app, SENTINEL, 'PC')
    const wsNext = await ws.waitFor((f) => f.type !== 'snapshot' && f.userId === SENTINEL)
    const sseNext = await sse.waitFor(
      (e) => e.data.type !== 'snapshot' && e.data.userId === SENTINEL,
    )
    for (const receiver of [plain, filtered]) {
      await receiver.until(
        () => receiver.accepted.some((r) => r.event.userId === SENTINEL),
        15_000,
        'the sentinel',
      )
    }
    await app.service.webhooks.idle()
    await new Promise((resolve) => setTimeout(resolve, 700))

    // streams: NOBODY alone (online, never where), the sentinel numbered after NOBODY's alone
    const wsOthers = ws.frames.filter((f) => f !== wsSnapshot && f.userId !== NOBODY)
    assert.deepEqual(
      wsOthers.map((f) => f.userId),
      [SENTINEL],
      `WebSocket: ${JSON.stringify(ws.frames)}`,
    )
    const sseOthers = sse.events.filter(
      (e) => e.data !== sseSnapshot.data && e.data.userId !== NOBODY,
    )
    assert.deepEqual(
      sseOthers.map((e) => e.data.userId),
      [SENTINEL],
      `SSE: ${JSON.stringify(sse.events)}`,
    )
    const nobodyFrames = ws.frames.filter((f) => f.userId === NOBODY)
    const nobodySse = sse.events.filter((e) => e.data.userId === NOBODY).map((e) => e.data)
    assert.equal(wsNext.seq, nobodyFrames.length + 2, 'WebSocket seq counts NOBODY alone')
    assert.equal(sseNext.data.seq, nobodySse.length + 2, 'SSE seq counts NOBODY alone')
    for (const text of [JSON.stringify(nobodyFrames), JSON.stringify(nobodySse)]) {
      assert.ok(!namesPlace(text, PLACE, 'Crossroads'), `where leaks: ${text}`)
    }
    // SSE positions (positions=1): one per event the stream sent, none for the hidden users
    assert.deepEqual(
      sse.events.map((e) => Number(e.id!.split('.').at(-1))),
      sse.events.map((_, i) => i + 1),
    )

    // webhooks: nothing of the invisible user; NOBODY without a place; a universe filter nothing
    for (const receiver of [plain, filtered]) {
      const told = receiver.accepted.map((r) => r.event)
      assert.ok(
        !told.some((e) => e.userId === INVISIBLE || e.userId === OFFLINE),
        JSON.stringify(told),
      )
      const text = JSON.stringify(told.filter((e) => e.userId === NOBODY))
      assert.ok(!namesPlace(text, PLACE, 'Crossroads'), `where leaks: ${text}`)
    }
    assert.ok(
      !placed.accepted.some((r) => [INVISIBLE, NOBODY].includes(r.event.userId)),
      `universe filter: ${JSON.stringify(placed.accepted.map((r) => r.event))}`,
    )

    // the public feed: nothing of the invisible user (users are pseudonymous: count the items)
    const items = feed.events.flatMap((e) => (e.data as { items?: unknown[] }).items ?? [])
    const users = new Set(items.map((i) => (i as { user: string }).user))
    const placedUsers = new Set(
      items.filter((i) => 'where' in (i as object)).map((i) => (i as { user: string }).user),
    )
    // BLOCKS_VIEWER (public to the feed, with where), NOBODY (never where) and the sentinel
    assert.equal(users.size, 3, `feed: ${JSON.stringify(items)}`)
    assert.equal(placedUsers.size, 1, `feed: ${JSON.stringify(items)}`)

    // reads: as before, and still those of the offline user
    const after = {
      anonymous: await reads(app, INVISIBLE),
      viewer: await reads(app, INVISIBLE, VIEWER),
      blocked: await reads(app, BLOCKS_VIEWER, VIEWER),
    }
    assert.deepEqual(after.anonymous, offlineBefore.anonymous)
    assert.deepEqual(after.viewer, offlineBefore.viewer)
    assert.deepEqual(after.blocked, offlineBefore.viewer)
    assert.deepEqual(await reads(app, OFFLINE), offlineBefore.anonymous)
  })
}

/**
 * A `nobody` user in a game on the PC, online on iOS; the PC's session expires, and before the
 * sweep the user shows places to everyone; then a write (or the sweep) tells the expiry.
 * Returns what every surface told a stranger, and a universe-99 webhook's events.
 */
async function nobodyShowsPlaces(t: TestContext, fleet: boolean, then: 'write' | 'sweep') {
  const { app, clock } = await start(t, fleet)
  await admin(app, 'PUT', `/admin/v1/places/${PLACE}`, { universeId: 99, name: 'Crossroads' })
  await admin(app, 'PUT', `/admin/v1/users/${NOBODY}/settings`, { visibility: 'nobody' })
  const plain = await startReceiver(t)
  await hook(app, plain)
  const placed = await startReceiver(t)
  await hook(app, placed, { universes: ['99'] })
  const token = await app.tokens.issue(VIEWER as UserId)
  const ws = await NativeClient.connect(app.url, token)
  t.after(() => ws.socket.terminate())
  ws.send({ type: 'subscribe', ids: [NOBODY, SENTINEL] })
  await ws.waitFor((f) => f.type === 'snapshot')
  const sse = await SseClient.open(app.url, token, [NOBODY, SENTINEL])
  t.after(() => sse.close())
  await sse.waitFor((e) => e.data.type === 'snapshot')
  const feed = await SseClient.get(`${app.url}/api/v1/stats/feed`)
  t.after(() => feed.close())

  await beat(app, NOBODY, 'PC', PLACE)
  await beat(app, NOBODY, 'iOS')
  clock.advance(TTL_MS / 2)
  await beat(app, NOBODY, 'iOS')
  clock.advance(TTL_MS / 2 + 1000)
  // the PC's game expired, not swept; the user shows places from now on
  await admin(app, 'PUT', `/admin/v1/users/${NOBODY}/settings`, { visibility: 'everyone' })
  const read = await call(app, 'POST', '/v1/presence/users', {}, { userIds: [NOBODY] })
  assert.ok(!namesPlace(read.body, PLACE, 'Crossroads'), read.body)
  clock.advance(1000)
  if (then === 'write') await beat(app, NOBODY, 'iOS')
  else await app.service.sweepExpired()

  await beat(app, SENTINEL, 'PC')
  await ws.waitFor((f) => f.userId === SENTINEL)
  await sse.waitFor((e) => e.data.userId === SENTINEL)
  await plain.until(
    () => plain.accepted.some((r) => r.event.userId === SENTINEL),
    15_000,
    'the sentinel',
  )
  await app.service.webhooks.idle()
  await new Promise((resolve) => setTimeout(resolve, 700))
  const surfaces = {
    ws: JSON.stringify(ws.frames),
    sse: JSON.stringify(sse.events),
    webhook: JSON.stringify(plain.accepted.map((r) => r.event)),
    feed: JSON.stringify(feed.events),
  }
  return { surfaces, universe: placed.accepted.map((r) => r.event) }
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'
  for (const then of ['write', 'sweep'] as const) {
    test(`${mode}: a place a \`nobody\` user left by expiry shows nowhere once they show places, the ${then} telling the expiry`, async (t) => {
      const { surfaces } = await nobodyShowsPlaces(t, fleet, then)
      const leaks = Object.entries(surfaces).filter(([, text]) =>
        namesPlace(text, PLACE, 'Crossroads'),
      )
      assert.deepEqual(leaks, [])
    })

    test(`${mode}: a webhook of a universe a \`nobody\` user left by expiry is told nothing once they show places, the ${then} telling the expiry`, async (t) => {
      const { universe } = await nobodyShowsPlaces(t, fleet, then)
      assert.deepEqual(universe, [])
    })
  }
}

for (const fleet of [false, true]) {
  const mode = fleet ? 'fleet' : 'embedded'
  for (const then of ['write', 'sweep'] as const) {
    test(`${mode}: an invisible user's session expired and not swept, the user visible again, the ${then} telling the expiry: nothing of the hidden time shows`, async (t) => {
      const { app, clock } = await start(t, fleet)
      await admin(app, 'PUT', `/admin/v1/users/${INVISIBLE}/settings`, { invisible: true })
      const plain = await startReceiver(t)
      await hook(app, plain)
      const token = await app.tokens.issue(VIEWER as UserId)
      const ws = await NativeClient.connect(app.url, token)
      t.after(() => ws.socket.terminate())
      ws.send({ type: 'subscribe', ids: [INVISIBLE, SENTINEL] })
      await ws.waitFor((f) => f.type === 'snapshot')
      const sse = await SseClient.open(app.url, token, [INVISIBLE, SENTINEL])
      t.after(() => sse.close())
      await sse.waitFor((e) => e.data.type === 'snapshot')
      const feed = await SseClient.get(`${app.url}/api/v1/stats/feed`)
      t.after(() => feed.close())

      await beat(app, INVISIBLE, 'PC', PLACE)
      clock.advance(TTL_MS + 1000)
      // expired while invisible, not swept: the user shows again, then writes (or is swept)
      await admin(app, 'PUT', `/admin/v1/users/${INVISIBLE}/settings`, { invisible: false })
      const shown = await reads(app, INVISIBLE, VIEWER)
      assert.deepEqual(shown, await reads(app, OFFLINE, VIEWER))
      clock.advance(1000)
      if (then === 'write') await beat(app, INVISIBLE, 'iOS')
      else await app.service.sweepExpired()

      await beat(app, SENTINEL, 'PC')
      await ws.waitFor((f) => f.userId === SENTINEL)
      await sse.waitFor((e) => e.data.userId === SENTINEL)
      await plain.until(
        () => plain.accepted.some((r) => r.event.userId === SENTINEL),
        15_000,
        'the sentinel',
      )
      await app.service.webhooks.idle()
      await new Promise((resolve) => setTimeout(resolve, 700))
      const expected = then === 'write' ? ['online'] : []
      assert.deepEqual(
        ws.frames.filter((f) => f.userId === INVISIBLE).map((f) => f.type),
        expected,
        JSON.stringify(ws.frames),
      )
      assert.deepEqual(
        sse.events.filter((e) => e.data.userId === INVISIBLE).map((e) => e.data.type),
        expected,
      )
      const told = plain.accepted.filter((r) => r.event.userId === INVISIBLE).map((r) => r.event)
      assert.deepEqual(
        told.map((e) => e.type),
        expected,
        JSON.stringify(told),
      )
      // the public feed: the sentinel and, after a write, one `online` (users are pseudonymous)
      const items = feed.events.flatMap(
        (e) => (e.data as { items?: { type: string }[] }).items ?? [],
      )
      assert.deepEqual(
        items.map((i) => i.type),
        [...expected, 'online'],
        JSON.stringify(items),
      )
      // nothing of the hidden time in any lastOnline (the PC lived while invisible)
      const text = JSON.stringify([ws.frames, sse.events, told])
      assert.ok(!text.includes('09:00:00') && !text.includes('09:00:10'), text)
      if (then === 'sweep') {
        assert.deepEqual(await reads(app, INVISIBLE, VIEWER), await reads(app, OFFLINE, VIEWER))
      }
    })
  }
}
