import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, PresencedError, type PresenceEvent } from '@presenced/client'
import type { UserId } from '../../src/core/user-id.js'
import type { StartedApp } from '../helpers/start-app.js'
import { prometheusSamples } from '../helpers/prometheus.js'
import { settledWithin, setup } from './sdk-kit.js'

// SSE has no unsubscribe frame: a remove() over SSE reopens the stream on the ids left, resuming
// where it was, and the server drops the watches the request no longer names.

const METRICS_KEY = 'metrics-key-of-the-sdk-sse-removes-test'
const within = (promise: Promise<unknown>) => settledWithin(promise, 20_000)

/** The server's watches (one per stream and user it watches, dropped streams' too). */
async function watches(server: StartedApp): Promise<number | undefined> {
  const response = await fetch(`${server.url}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_KEY}` },
  })
  assert.equal(response.status, 200)
  return prometheusSamples(await response.text()).get('presenced_realtime_subscriptions')
}

/** Waits (5 s at most) for the server to hold `expected` watches; the last count otherwise. */
async function watchesBecome(server: StartedApp, expected: number): Promise<number | undefined> {
  const deadline = Date.now() + 5000
  for (;;) {
    const count = await watches(server)
    if (count === expected || Date.now() > deadline) return count
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

const beat = (server: StartedApp, userId: string, kind: 'online' | 'inGame') =>
  server.service.heartbeat({
    userId: userId as UserId,
    key: 'app',
    source: 'app',
    deviceType: 'PC',
    activity: kind === 'online' ? { kind } : { kind, placeId: '1818' as UserId },
  })

const told = (e: PresenceEvent) =>
  e.type === 'snapshot'
    ? `snapshot ${e.presences.map((p) => p.userId).join(',')}${e.reset ? ' reset' : ''}`
    : `${e.type} ${e.presence.userId}`

test('over sse, remove() frees the server watches of the removed users; the others go on, each change once', async (t) => {
  const { server, watcherToken } = await setup(t, { metricsKey: METRICS_KEY })
  const client = createClient({ baseUrl: server.url, token: watcherToken })
  const sub = client.subscribe(['11', '12', '13'], {
    transport: 'sse',
    reconnect: { minDelayMs: 50, maxDelayMs: 200 },
  })
  t.after(() => sub.close())
  const events: string[] = []
  const errors: unknown[] = []
  sub.on('event', (e) => events.push(told(e)))
  sub.on('error', (e) => errors.push(e))
  await sub.ready
  assert.equal(await watchesBecome(server, 3), 3)

  sub.remove(['11'])
  sub.remove(['12'])
  // changes made while the stream reopens: 13's arrives once, 11's and 12's not at all
  await beat(server, '11', 'online')
  await beat(server, '13', 'online')
  await beat(server, '12', 'online')
  assert.equal(await watchesBecome(server, 1), 1, 'the server stopped watching 11 and 12')
  await beat(server, '13', 'inGame')
  await beat(server, '11', 'inGame')
  const updated = new Promise<void>((resolve) => {
    if (events.includes('update 13')) resolve()
    else sub.on('update', () => resolve())
  })
  assert.equal(await within(updated), 'resolved')
  assert.deepEqual(events, ['snapshot 11,12,13', 'online 13', 'update 13'])
  assert.deepEqual([...sub.ids], ['13'])
  assert.deepEqual(errors, [])
})

test('over sse, the users a remove() took out stop counting against the watch limit: another stream of the user may watch that many', async (t) => {
  const { server, watcherToken } = await setup(t, { realtimeWatchesPerUser: 3 })
  const client = createClient({ baseUrl: server.url, token: watcherToken })
  const options = { transport: 'sse', reconnect: { minDelayMs: 50, maxDelayMs: 200 } } as const
  const sub = client.subscribe(['11', '12', '13'], options)
  t.after(() => sub.close())
  await sub.ready
  sub.remove(['11', '12'])

  const other = client.subscribe(['21', '22'], options)
  t.after(() => other.close())
  const refusals: string[] = []
  other.on('reconnecting', ({ error }) =>
    refusals.push(error instanceof PresencedError ? String(error.code) : String(error)),
  )
  // refused WATCH_LIMIT while the server still watches 11 and 12 (the first stream may not have
  // reopened yet), tried again after a backoff; it opens once they are dropped
  assert.equal(
    await within(other.ready),
    'resolved',
    `${refusals.length} refusals: ${[...new Set(refusals)].join(',')}`,
  )
  assert.deepEqual([...other.ids], ['21', '22'])
})

test('over sse, remove()s one by one and add()s of one turn cost one request each, not one apiece: a small request budget is not run out', async (t) => {
  // 4 requests a minute: the subscription, the adds, the removes, and one to spare
  const { server, watcherToken } = await setup(t, { metricsKey: METRICS_KEY, rateLimitMax: 4 })
  const client = createClient({ baseUrl: server.url, token: watcherToken })
  const ids = ['11', '12', '13', '14', '15', '16', '17', '18']
  const sub = client.subscribe(ids, {
    transport: 'sse',
    reconnect: { minDelayMs: 50, maxDelayMs: 200 },
  })
  t.after(() => sub.close())
  const refusals: string[] = []
  const errors: unknown[] = []
  sub.on('reconnecting', ({ error }) =>
    refusals.push(error instanceof PresencedError ? String(error.code) : String(error)),
  )
  sub.on('error', (e) => errors.push(e))
  await sub.ready

  // two adds made together: one request carries both
  assert.equal(await within(Promise.all([sub.add(['21']), sub.add(['22'])])), 'resolved')
  // an app taking users out one at a time, a little apart
  for (const id of ids.slice(0, -1)) {
    sub.remove([id])
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const watched = await watchesBecome(server, 3)
  assert.deepEqual(refusals, [], 'no request refused (RATE_LIMITED), none dropped')
  assert.equal(watched, 3, 'the server watches 18, 21 and 22 only')
  await beat(server, '18', 'online')
  const online = new Promise<void>((resolve) => {
    if (sub.presences.get('18')?.type === 1) resolve()
    else sub.on('online', () => resolve())
  })
  assert.equal(await within(online), 'resolved')
  assert.deepEqual(refusals, [], 'no request refused (RATE_LIMITED), none dropped')
  assert.deepEqual(errors, [])
  assert.deepEqual([...sub.ids], ['18', '21', '22'])
})
