import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, type PresenceEvent } from '@presenced/client'
import WebSocket from 'ws'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, type StartedApp } from '../helpers/start-app.js'
import { PLAYER, settledWithin, setup, WATCHER } from './sdk-kit.js'

/*
 * Audit of "hidden is indistinguishable from offline" through the SDK's sharded subscriptions
 * (aef4073, 854a6a9, bcb0a2c) and the SSE remove() that reopens its stream and resumes (272bf30).
 * A hidden user (invisible, blocking the watcher) among the ids of a second shard, on a server
 * whose limit (PRESENCED_REALTIME_MAX_IDS) is below the SDK's first guess, looks in the snapshot
 * and the events exactly like a user never online; a user who hides while an SSE stream
 * reopens is told offline as one who signs out then, and nothing after.
 */

const within = (promise: Promise<unknown>) => settledWithin(promise, 20_000)
const idsFrom = (from: number, n: number) => Array.from({ length: n }, (_, i) => String(from + i))

const INVISIBLE = '7001'
const BLOCKS_WATCHER = '7002'
const NEVER = '7003'

async function admin(server: StartedApp, method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.text()}`)
}

const beat = (server: StartedApp, userId: string, placeId?: string) =>
  server.service.heartbeat({
    userId: userId as UserId,
    key: 'app',
    source: 'app',
    deviceType: 'PC',
    activity: placeId ? { kind: 'inGame', placeId } : { kind: 'online' },
  })

const signOut = (server: StartedApp, userId: string) =>
  server.service.endSession(userId as UserId, 'app')

/** `presence` as JSON with `from` written as `to` (to compare two users' records). */
const as = (presence: unknown, from: string, to: string) =>
  JSON.stringify(presence).split(from).join(to)

for (const transport of ['websocket', 'sse'] as const) {
  test(`over ${transport}, hidden users in a second shard (a server limit of 300) look like a user never online`, async (t) => {
    const { server, watcherToken } = await setup(t, { realtimeMaxIds: 300 })
    await admin(server, 'PUT', `/admin/v1/users/${INVISIBLE}/settings`, { invisible: true })
    await admin(server, 'PUT', `/admin/v1/users/${BLOCKS_WATCHER}/blocks/${WATCHER}`)
    for (const id of [INVISIBLE, BLOCKS_WATCHER]) await beat(server, id, '1818')
    // the hidden users among the second shard's ids (and the third's, after the re-split)
    const ids = [
      ...idsFrom(1, 400),
      INVISIBLE,
      BLOCKS_WATCHER,
      NEVER,
      ...idsFrom(1000, 300),
      PLAYER,
    ]
    const client = createClient({ baseUrl: server.url, token: watcherToken, WebSocket })
    const sub = client.subscribe(ids, { transport })
    t.after(() => sub.close())
    const events: PresenceEvent[] = []
    sub.on('event', (e) => events.push(e))
    const errors: unknown[] = []
    sub.on('error', (e) => errors.push(e))
    assert.equal(await within(sub.ready), 'resolved')
    assert.equal(sub.presences.size, ids.length)
    const snapshotOf = (id: string) =>
      events
        .flatMap((e) => (e.type === 'snapshot' ? e.presences : []))
        .filter((p) => p.userId === id)
    for (const id of [INVISIBLE, BLOCKS_WATCHER]) {
      assert.equal(as(sub.presences.get(id), id, NEVER), as(sub.presences.get(NEVER), NEVER, NEVER))
      assert.equal(as(snapshotOf(id), id, NEVER), as(snapshotOf(NEVER), NEVER, NEVER))
    }

    // the hidden users act; the player comes online after: nothing of them before it
    for (const id of [INVISIBLE, BLOCKS_WATCHER]) {
      await beat(server, id, '1819')
      await signOut(server, id)
      await beat(server, id)
    }
    const seen = new Promise<void>((resolve) => {
      sub.on('event', (e) => {
        if (e.type !== 'snapshot' && e.presence.userId === PLAYER) resolve()
      })
    })
    await beat(server, PLAYER)
    assert.equal(await within(seen), 'resolved')
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.deepEqual(
      events.flatMap((e) => (e.type === 'snapshot' ? [] : [`${e.type} ${e.presence.userId}`])),
      [`online ${PLAYER}`],
    )
    for (const id of [INVISIBLE, BLOCKS_WATCHER]) {
      assert.equal(as(sub.presences.get(id), id, NEVER), as(sub.presences.get(NEVER), NEVER, NEVER))
    }
    assert.deepEqual(errors, [])
  })
}

for (const hiding of ['invisible', 'block'] as const) {
  test(`over sse, a user hiding (${hiding}) while remove() reopens the stream is told offline as one signing out then, and nothing after`, async (t) => {
    const { server, watcherToken } = await setup(t)
    const HIDER = '7101'
    const LEAVER = '7102'
    for (const id of [HIDER, LEAVER]) await beat(server, id, '1818')
    const client = createClient({ baseUrl: server.url, token: watcherToken })
    const sub = client.subscribe([HIDER, LEAVER, '13'], {
      transport: 'sse',
      reconnect: { minDelayMs: 50, maxDelayMs: 200 },
    })
    t.after(() => sub.close())
    const events: PresenceEvent[] = []
    sub.on('event', (e) => events.push(e))
    const errors: unknown[] = []
    sub.on('error', (e) => errors.push(e))
    assert.equal(await within(sub.ready), 'resolved')
    assert.equal(sub.presences.get(HIDER)?.type, 2)

    sub.remove(['13'])
    // while the stream reopens: one hides, the other signs out; both then act again
    if (hiding === 'invisible') {
      await admin(server, 'PUT', `/admin/v1/users/${HIDER}/settings`, { invisible: true })
    } else {
      await admin(server, 'PUT', `/admin/v1/users/${HIDER}/blocks/${WATCHER}`)
    }
    await signOut(server, LEAVER)
    await beat(server, HIDER, '1819')
    const seen = new Promise<void>((resolve) => {
      if (events.some((e) => e.type !== 'snapshot' && e.presence.userId === PLAYER)) resolve()
      sub.on('event', (e) => {
        if (e.type !== 'snapshot' && e.presence.userId === PLAYER) resolve()
      })
    })
    assert.equal(await within(sub.add([PLAYER])), 'resolved')
    await beat(server, PLAYER)
    assert.equal(await within(seen), 'resolved')
    await new Promise((resolve) => setTimeout(resolve, 300))

    const about = (id: string) =>
      events.filter((e) => e.type !== 'snapshot' && e.presence.userId === id)
    const hider = about(HIDER)
    const leaver = about(LEAVER)
    assert.deepEqual(
      hider.map((e) => e.type),
      ['offline'],
      `events: ${JSON.stringify(events)}`,
    )
    assert.deepEqual(
      leaver.map((e) => e.type),
      ['offline'],
    )
    // the same record but for the instant (each one's own lastOnline) and the event's number
    const shape = (e: PresenceEvent, id: string) =>
      e.type === 'snapshot'
        ? ''
        : as(
            {
              ...e,
              seq: 0,
              presence: { ...e.presence, lastOnline: 0 },
              raw: { ...(e.raw as object), lastOnline: 0 },
            },
            id,
            NEVER,
          )
    assert.equal(shape(hider[0]!, HIDER), shape(leaver[0]!, LEAVER))
    assert.equal(sub.presences.get(HIDER)?.type, 0)
    assert.equal(
      as({ ...sub.presences.get(HIDER), lastOnline: 0 }, HIDER, NEVER),
      as({ ...sub.presences.get(LEAVER), lastOnline: 0 }, LEAVER, NEVER),
    )
    assert.deepEqual(errors, [])
  })
}
