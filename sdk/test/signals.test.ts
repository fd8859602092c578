import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { test } from 'node:test'
import { createClient } from '@presenced/client'
import { fakeServer, json } from './fake-server.js'

/*
 * `{ signal }` on the calls that lacked it: cloak, clearTitlePresence and subscribe. The server
 * here never answers the calls, so only the signal can end them.
 */

const token = 'tok'

/** Resolves once the server has received `count` requests. */
function received(requests: readonly unknown[], count: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (requests.length >= count ? resolve() : setTimeout(check, 5))
    check()
  })
}

test(
  'cloak and clearTitlePresence end with the signal reason when aborted',
  { timeout: 10_000 },
  async (t) => {
    const { url, requests } = await fakeServer(t, () => {})
    const client = createClient({ baseUrl: url, token })
    const reason = new Error('deadline')

    for (const call of [
      (signal: AbortSignal) => client.xbox.cloak(true, { xuid: 5, signal }),
      (signal: AbortSignal) => client.xbox.cloak(false, 5, { signal }),
      (signal: AbortSignal) => client.xbox.clearTitlePresence({ xuid: 5, titleId: 1, signal }),
    ]) {
      const controller = new AbortController()
      const before = requests.length
      const pending = call(controller.signal)
      await received(requests, before + 1)
      controller.abort(reason)
      await assert.rejects(pending, reason)
    }
    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.url} ${r.body}`),
      [
        'PUT /users/xuid(5)/state {"state":"Cloaked"}',
        'PUT /users/xuid(5)/state {"state":"Active"}',
        'DELETE /users/xuid(5)/devices/current/titles/current?titleId=1 ',
      ],
    )
    // an aborted signal sends nothing
    await assert.rejects(
      client.xbox.cloak(true, { xuid: 5, signal: AbortSignal.abort(reason) }),
      reason,
    )
    assert.equal(requests.length, 3)
  },
)

test(
  'aborting a subscription closes its stream and ends its iterators',
  { timeout: 10_000 },
  async (t) => {
    let closed = 0
    const { url, requests } = await fakeServer(t, (_req, res) => {
      res.on('close', () => closed++)
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const frame = { type: 'snapshot', seq: 1, resume: 'r', presences: [] }
      res.write(`id: r.1\ndata: ${JSON.stringify(frame)}\n\n`)
    })
    const client = createClient({ baseUrl: url, token })
    const controller = new AbortController()
    const sub = client.subscribe([1], { transport: 'sse', signal: controller.signal })
    await sub.ready
    const iterator = sub[Symbol.asyncIterator]()
    const closing = new Promise((resolve) => sub.on('close', resolve))
    const next = iterator.next()
    controller.abort()
    await closing
    assert.deepEqual(await next, { value: undefined, done: true })
    await new Promise<void>((resolve) => {
      const check = () => (closed === 1 ? resolve() : setTimeout(check, 5))
      check()
    })
    assert.equal(requests.length, 1, 'no reconnect after the abort')
  },
)

test(
  'aborting a subscription cancels its reconnect loop; ready rejects with the reason',
  { timeout: 10_000 },
  async (t) => {
    const { url, requests } = await fakeServer(t, (_req, res) => json(res, 503, { error: 'down' }))
    const client = createClient({ baseUrl: url, token })
    const controller = new AbortController()
    const reason = new Error('leaving')
    const sub = client.subscribe([1], {
      transport: 'sse',
      signal: controller.signal,
      reconnect: { minDelayMs: 50, maxDelayMs: 50 },
    })
    await new Promise((resolve) => sub.once('reconnecting', resolve))
    controller.abort(reason)
    await assert.rejects(sub.ready, reason)
    const after = requests.length
    // longer than the reconnect wait: a loop still running would have asked again by now
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(requests.length, after)

    // a signal aborted already: nothing is sent at all
    const never = client.subscribe([1], { transport: 'sse', signal: AbortSignal.abort(reason) })
    await assert.rejects(never.ready, reason)
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(requests.length, after)
  },
)

test(
  'a subscription closed (or failed) lets go of its signal: one long-lived signal for many subscriptions keeps no listener of a closed one',
  { timeout: 10_000 },
  async (t) => {
    const { url } = await fakeServer(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const frame = { type: 'snapshot', seq: 1, resume: 'r', presences: [] }
      res.write(`id: r.1\ndata: ${JSON.stringify(frame)}\n\n`)
    })
    const client = createClient({ baseUrl: url, token })
    const controller = new AbortController()
    const listeners = () => getEventListeners(controller.signal, 'abort').length
    const before = listeners()
    for (let i = 0; i < 5; i++) {
      const sub = client.subscribe([1], { transport: 'sse', signal: controller.signal })
      await sub.ready
      sub.close()
    }
    // a refused subscription (fatal: no WebSocket to open) closes itself
    const failed = client.subscribe([1], { transport: 'websocket', signal: controller.signal })
    failed.ready.catch(() => {})
    assert.equal(listeners(), before, 'no abort listener left behind')
  },
)
